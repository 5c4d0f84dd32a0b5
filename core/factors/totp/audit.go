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
	if err != nil {
		return
	}
	outcome := map[Outcome]string{Accepted: "success", Invalid: "invalid_code", Locked: "locked", NoDevice: "no_device"}[res.Outcome]
	f.opts.RecordCodeAttempt(r, sess, mfa.TOTP, outcome, res.Failures, res.RetryAfter, setup)
}

// auditRemoved records a device removed by its user.
func (f *Factor) auditRemoved(r *http.Request, sess session.Session, name string) {
	f.opts.Record(r, "Removed factor", sess.TenantID, sess.UserID, "success", "factor", mfa.TOTP, "device", name)
}
