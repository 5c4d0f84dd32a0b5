package mfaengine

import (
	"context"
	"slices"

	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/session"
)

// This file serves the admin API: forgetting factors an admin removed, and where a user
// stands at their next sign-in.

// Forget removes the factors from the session's completed factors and recomputes v from the
// requirement that applies now: after an admin removed a user's factors, the session has to
// complete (and so set up) them again. The new claim reaches the client with the session's
// next refresh; the tokens it already holds keep the old claim until they expire.
func (e *Engine) Forget(ctx context.Context, sess session.Session, factors []string) (Update, error) {
	_, p, err := e.load(ctx, sess.TenantID, sess.UserID)
	if err != nil {
		return Update{Session: sess}, err
	}
	return e.updateWith(ctx, sess, p, func(c mfa.Completed) {
		for f := range c {
			if slices.Contains(factors, f) {
				delete(c, f)
			}
		}
	})
}
