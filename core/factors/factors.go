// Package factors holds what the factor packages below it (core/factors/<factor>) share: the
// dependencies each is built with. A factor package keeps its rules, its transport-free
// operations, its FDI endpoints and its hosted steps together; core/server builds each one and
// registers it on the router.
package factors

import (
	"net/http"
	"time"

	"github.com/go-logr/logr"

	"github.com/twofold-dev/twofold/core/hostedui"
	"github.com/twofold-dev/twofold/core/mfaengine"
	"github.com/twofold-dev/twofold/core/session"
	"github.com/twofold-dev/twofold/core/store"
	"github.com/twofold-dev/twofold/core/tenant"
)

// Options are a factor's dependencies.
type Options struct {
	Store    store.Store
	Tenants  *tenant.Service
	Sessions *session.Manager
	Engine   *mfaengine.Engine
	// Pages renders the hosted steps; without it the factor serves its FDI endpoints only.
	Pages  *hostedui.UI
	Clock  func() time.Time
	Logger logr.Logger
	// Audit records a security event of request r in the audit trail (httpapi.API.Audit, see
	// docs/audit.md); nothing is recorded when nil.
	Audit func(r *http.Request, msg, tenantID, userID, outcome string, kv ...any)
}

// WithDefaults fills in the clock (time.Now) and the logger (discard) when they are unset.
func (o Options) WithDefaults() Options {
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger.GetSink() == nil {
		o.Logger = logr.Discard()
	}
	return o
}

// Record writes an audit event of request r, when the factor has an audit trail.
func (o Options) Record(r *http.Request, msg, tenantID, userID, outcome string, kv ...any) {
	if o.Audit != nil {
		o.Audit(r, msg, tenantID, userID, outcome, kv...)
	}
}

// RecordCodeAttempt records one verification of a code factor (TOTP, recovery codes) for the
// FDI endpoints and the hosted steps alike: "Completed factor" for outcome "success" (setup
// when it set the factor up), else "Refused factor code" with the outcome ("invalid_code" with
// the failures counted, "locked", or why nothing was checked), and "Locked second factor"
// when an invalid code locked the user for lockedFor.
func (o Options) RecordCodeAttempt(r *http.Request, sess session.Session, factor, outcome string, failures int, lockedFor time.Duration, setup bool) {
	switch outcome {
	case "success":
		o.Record(r, "Completed factor", sess.TenantID, sess.UserID, outcome, "factor", factor, "setup", setup)
	case "invalid_code":
		o.Record(r, "Refused factor code", sess.TenantID, sess.UserID, outcome, "factor", factor, "failedAttempts", failures)
		if lockedFor > 0 {
			o.Record(r, "Locked second factor", sess.TenantID, sess.UserID, "locked", "factor", factor, "lockedFor", lockedFor)
		}
	default:
		o.Record(r, "Refused factor code", sess.TenantID, sess.UserID, outcome, "factor", factor)
	}
}
