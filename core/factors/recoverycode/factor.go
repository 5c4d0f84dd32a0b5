package recoverycode

import (
	"context"
	"embed"
	"errors"
	"time"

	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/attempts"
	"github.com/twofold-dev/twofold/core/factors"
	"github.com/twofold-dev/twofold/core/mfaengine"
	"github.com/twofold-dev/twofold/core/session"
	"github.com/twofold-dev/twofold/core/store"
)

//go:embed templates/*.html
var templates embed.FS

// Options are the factor's dependencies.
type Options = factors.Options

// Factor is the recovery-code factor: its operations, and Register for its endpoints and pages.
type Factor struct {
	opts Options
}

// New returns the factor and adds its hosted steps to opts.Pages.
func New(opts Options) (*Factor, error) {
	opts = opts.WithDefaults()
	f := &Factor{opts: opts}
	if opts.Pages != nil {
		if err := opts.Pages.AddFactor(mfa.RecoveryCode, templates); err != nil {
			return nil, err
		}
		opts.Pages.AfterFirstSetup(f.firstSetupStep)
	}
	return f, nil
}

// NewSet replaces the user's recovery codes with a new set and returns the codes, the only
// time they are seen. A first set passes the MFA engine's setup rule (a refusal is a
// *mfaengine.SetupDeniedError); replacing a set with unused codes needs the session's
// requirement met (mfaengine.ErrNotSatisfied otherwise).
func (f *Factor) NewSet(ctx context.Context, sess session.Session) ([]string, error) {
	unused, _, err := f.opts.Store.CountRecoveryCodes(ctx, sess.UserID)
	if err != nil {
		return nil, err
	}
	if unused > 0 {
		if err := f.opts.Engine.RequireSatisfied(ctx, sess); err != nil {
			return nil, err
		}
	} else if err := f.opts.Engine.CheckSetup(ctx, sess, mfa.RecoveryCode); err != nil {
		return nil, err
	}
	set, err := Generate(sess.UserID)
	if err != nil {
		return nil, err
	}
	if err := f.opts.Store.ReplaceRecoveryCodes(ctx, sess.UserID, set.Hashes, f.opts.Clock()); err != nil {
		return nil, err
	}
	return set.Codes, nil
}

// Remaining counts the user's unused codes and the codes of their set.
func (f *Factor) Remaining(ctx context.Context, userID string) (unused, total int, err error) {
	return f.opts.Store.CountRecoveryCodes(ctx, userID)
}

// Outcome is what one use of a code came to.
type Outcome int

// The outcomes of a use.
const (
	// Accepted: the code matched an unused one, now used up; recovery-code is completed in
	// the session.
	Accepted Outcome = iota
	// Invalid: the code matched none (or another request used it first); one more failure
	// counted.
	Invalid
	// Locked: too many failures; the code was not checked.
	Locked
	// NoCodes: the user has no unused codes.
	NoCodes
)

// Result is a use's outcome with what the answer reports.
type Result struct {
	Outcome Outcome
	// Failures counts the user's consecutive failures after an Invalid code, of MaxFailures.
	Failures int
	// RetryAfter is how long the lock lasts: Locked, or the Invalid code that locked the user.
	RetryAfter time.Duration
	// Update is the session with recovery-code completed (Accepted).
	Update mfaengine.Update
}

// MaxFailures is how many consecutive failures lock the user out.
const MaxFailures = attempts.MaxFailures

// Use checks code against the user's unused codes and, when one matches, uses it up and
// completes recovery-code in the session.
func (f *Factor) Use(ctx context.Context, sess session.Session, code string) (Result, error) {
	now := f.opts.Clock()
	var res Result
	upd, _, err := f.opts.Engine.CompleteIf(ctx, sess, mfa.RecoveryCode, func(tx store.SessionTx) (bool, error) {
		_, err := tx.UseRecoveryCode(ctx, sess.UserID, now, func(limit store.AttemptLimit, codes []store.RecoveryCode) (store.RecoveryAttempt, error) {
			res = Result{}
			l := attempts.Limiter(limit)
			if l.Locked(now) {
				res.Outcome, res.RetryAfter = Locked, l.RetryAfter(now)
				return store.RecoveryAttempt{Limit: limit}, nil
			}
			if len(codes) == 0 {
				res.Outcome = NoCodes
				return store.RecoveryAttempt{Limit: limit}, nil
			}
			hashes := make([][]byte, len(codes))
			for i, c := range codes {
				hashes[i] = c.Hash
			}
			i, err := Verify(sess.UserID, code, hashes)
			if err == nil {
				l.Succeed()
				res.Outcome = Accepted
				return store.RecoveryAttempt{Limit: store.AttemptLimit(l), CodeID: codes[i].ID}, nil
			}
			l.Fail(now)
			res.Outcome, res.Failures = Invalid, l.Failures
			res.RetryAfter = l.RetryAfter(now)
			return store.RecoveryAttempt{Limit: store.AttemptLimit(l)}, nil
		})
		return err == nil && res.Outcome == Accepted, err
	})
	if errors.Is(err, store.ErrCodeUsed) {
		// Another request used this code first; it is not accepted twice.
		res = Result{Outcome: Invalid}
		if l, lerr := f.opts.Store.GetAttemptLimit(ctx, sess.UserID); lerr == nil {
			res.Failures = l.Failures
		}
		err = nil
	}
	if err != nil {
		return Result{}, err
	}
	if res.Outcome == Accepted {
		res.Update = upd
	}
	return res, nil
}
