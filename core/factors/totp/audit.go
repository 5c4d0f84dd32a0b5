package totp

import (
	"net/http"

	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/session"
)

// auditResult records a verification in the audit trail, for the FDI endpoints and the hosted
// steps alike: "Completed factor" for an accepted code (setup when it verified a new device),
// "Refused factor code" for a refused one, and "Locked second factor" when that refusal
// locked the user. A failed verification (err) is the internal error's, not an event.
func (f *Factor) auditResult(r *http.Request, sess session.Session, res Result, err error, setup bool) {
	if f.opts.Audit == nil || err != nil {
		return
	}
	switch res.Outcome {
	case Accepted:
		f.opts.Audit(r, "Completed factor", sess.TenantID, sess.UserID, "success", "factor", mfa.TOTP, "setup", setup)
	case Invalid:
		f.opts.Audit(r, "Refused factor code", sess.TenantID, sess.UserID, "invalid_code", "factor", mfa.TOTP, "failedAttempts", res.Failures)
		if res.RetryAfter > 0 {
			f.opts.Audit(r, "Locked second factor", sess.TenantID, sess.UserID, "locked", "factor", mfa.TOTP, "lockedFor", res.RetryAfter)
		}
	case Locked:
		f.opts.Audit(r, "Refused factor code", sess.TenantID, sess.UserID, "locked", "factor", mfa.TOTP)
	case NoDevice:
		f.opts.Audit(r, "Refused factor code", sess.TenantID, sess.UserID, "no_device", "factor", mfa.TOTP)
	}
}

// auditRemoved records a device removed by its user.
func (f *Factor) auditRemoved(r *http.Request, sess session.Session, name string) {
	if f.opts.Audit != nil {
		f.opts.Audit(r, "Removed factor", sess.TenantID, sess.UserID, "success", "factor", mfa.TOTP, "device", name)
	}
}
