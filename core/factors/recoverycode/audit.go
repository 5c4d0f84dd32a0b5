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
	if f.opts.Audit == nil || err != nil {
		return
	}
	switch res.Outcome {
	case Accepted:
		f.opts.Audit(r, "Completed factor", sess.TenantID, sess.UserID, "success", "factor", mfa.RecoveryCode, "setup", false)
	case Invalid:
		f.opts.Audit(r, "Refused factor code", sess.TenantID, sess.UserID, "invalid_code", "factor", mfa.RecoveryCode, "failedAttempts", res.Failures)
		if res.RetryAfter > 0 {
			f.opts.Audit(r, "Locked second factor", sess.TenantID, sess.UserID, "locked", "factor", mfa.RecoveryCode, "lockedFor", res.RetryAfter)
		}
	case Locked:
		f.opts.Audit(r, "Refused factor code", sess.TenantID, sess.UserID, "locked", "factor", mfa.RecoveryCode)
	case NoCodes:
		f.opts.Audit(r, "Refused factor code", sess.TenantID, sess.UserID, "no_codes", "factor", mfa.RecoveryCode)
	}
}
