package recoverycode

import (
	"net/http"

	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/session"
)

// auditResult records a recovery code's use in the audit trail, for the FDI endpoint and the
// hosted step alike: "Completed factor" for a code used up, "Refused factor code" for a
// refused one, and "Locked second factor" when that refusal locked the user. A failed use
// (err) is the internal error's, not an event.
func (f *Factor) auditResult(r *http.Request, sess session.Session, res Result, err error) {
	if err != nil {
		return
	}
	outcome := map[Outcome]string{Accepted: "success", Invalid: "invalid_code", Locked: "locked", NoCodes: "no_codes"}[res.Outcome]
	f.opts.RecordCodeAttempt(r, sess, mfa.RecoveryCode, outcome, res.Failures, res.RetryAfter, false)
}
