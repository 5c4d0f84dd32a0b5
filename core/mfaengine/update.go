package mfaengine

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/session"
	"github.com/twofold-dev/twofold/core/store"
)

// This file brings a session's st-mfa claim up to date: a completed factor, or a resync.

// Update is a session whose st-mfa claim the engine brought up to date: the session with its
// current claims, where it stands now, and the tokens that carry a changed claim to the
// client. The caller sends Tokens in whatever transport it serves (session.Manager's
// WriteTokensFor for an HTTP request).
type Update struct {
	Session session.Session
	State   State
	// Tokens are the new access token and front-token; nil when the claim did not change.
	Tokens *session.Tokens
}

// Complete marks factorID completed now in the session (no new session), recomputes v, and
// returns the session with the new tokens.
func (e *Engine) Complete(ctx context.Context, sess session.Session, factorID string) (Update, error) {
	upd, _, err := e.CompleteIf(ctx, sess, factorID, func(store.SessionTx) (bool, error) { return true, nil })
	return upd, err
}

// CompleteIf runs check, the factor's own verification, in the store transaction that
// updates the session. When check reports that the factor passed, factorID is marked
// completed now and v is recomputed from the user's factors as that same transaction reads
// them (so a device the check has just verified counts as set up), and the session's new
// claims commit with the check's writes. Otherwise only the check's writes (a failure
// counted) commit, and the Update keeps the session as it was, with no tokens. check may
// run more than once (store.Sessions.UpdateSession): it must set what it reports from
// scratch on each run.
func (e *Engine) CompleteIf(ctx context.Context, sess session.Session, factorID string, check func(store.SessionTx) (passed bool, err error)) (Update, bool, error) {
	t, err := e.opts.Tenants.Current(ctx, sess.TenantID)
	if err != nil {
		return Update{Session: sess}, false, fmt.Errorf("load tenant %s: %w", sess.TenantID, err)
	}
	now := e.opts.Clock()
	var p policy
	updated, tokens, err := e.opts.Sessions.Update(ctx, sess.Handle, func(tx store.SessionTx, claims map[string]json.RawMessage) (bool, error) {
		passed, err := check(tx)
		if err != nil || !passed {
			return false, err
		}
		u, err := tx.GetUser(ctx, sess.UserID)
		if err != nil {
			return false, fmt.Errorf("load user %s: %w", sess.UserID, err)
		}
		if p, err = e.policyFrom(ctx, tx, t, u); err != nil {
			return false, err
		}
		return true, setClaim(claims, p, now, func(c mfa.Completed) { c[factorID] = now.Unix() })
	})
	if err != nil {
		return Update{Session: sess}, false, err
	}
	if tokens == nil {
		return Update{Session: sess}, false, nil
	}
	claim, err := updated.MFA()
	if err != nil {
		return Update{Session: updated}, true, err
	}
	return Update{Session: updated, State: p.state(claim.C, now), Tokens: tokens}, true, nil
}

// Resync recomputes the session's v from the requirement that applies now and, when the
// claim changes, stores it and returns the new tokens with the session and its state.
func (e *Engine) Resync(ctx context.Context, sess session.Session) (Update, error) {
	claim, err := sess.MFA()
	if err != nil {
		return Update{Session: sess}, err
	}
	_, p, err := e.load(ctx, sess.TenantID, sess.UserID)
	if err != nil {
		return Update{Session: sess}, err
	}
	st := p.state(claim.C, e.opts.Clock())
	_, hasClaim := sess.Claims[mfa.ClaimKey]
	if hasClaim && st.V == claim.V {
		return Update{Session: sess, State: st}, nil
	}
	return e.updateWith(ctx, sess, p, func(mfa.Completed) {})
}

// updateWith edits the completed factors inside the store's transaction and recomputes v
// with p.
func (e *Engine) updateWith(ctx context.Context, sess session.Session, p policy, edit func(mfa.Completed)) (Update, error) {
	now := e.opts.Clock()
	updated, tokens, err := e.opts.Sessions.UpdateClaims(ctx, sess.Handle, func(claims map[string]json.RawMessage) error {
		return setClaim(claims, p, now, edit)
	})
	if err != nil {
		return Update{Session: sess}, fmt.Errorf("update the %s claim: %w", mfa.ClaimKey, err)
	}
	claim, err := updated.MFA()
	if err != nil {
		return Update{Session: updated}, err
	}
	return Update{Session: updated, State: p.state(claim.C, now), Tokens: &tokens}, nil
}

// setClaim applies edit to the completed factors of claims' st-mfa and stores it with v
// recomputed with p at now.
func setClaim(claims map[string]json.RawMessage, p policy, now time.Time, edit func(mfa.Completed)) error {
	c := mfa.Claim{C: mfa.Completed{}}
	if raw, ok := claims[mfa.ClaimKey]; ok {
		if err := json.Unmarshal(raw, &c); err != nil {
			return fmt.Errorf("decode %s claim: %w", mfa.ClaimKey, err)
		}
		if c.C == nil {
			c.C = mfa.Completed{}
		}
	}
	edit(c.C)
	b, _, err := p.claim(c.C, now)
	if err != nil {
		return err
	}
	claims[mfa.ClaimKey] = b
	return nil
}
