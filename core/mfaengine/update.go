package mfaengine

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/session"
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
	_, p, err := e.load(ctx, sess.TenantID, sess.UserID)
	if err != nil {
		return Update{Session: sess}, err
	}
	now := e.opts.Clock()
	return e.updateWith(ctx, sess, p, func(c mfa.Completed) { c[factorID] = now.Unix() })
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
