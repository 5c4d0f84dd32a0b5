// Package mfaengine is the auth core's multi-factor engine: it works out which requirement
// applies to a user (tenant policy, Required or UserOptIn enforcement, the user's own required
// factors, the enrolment grace period, the maximum factor age), writes the st-mfa claim
// {c, v} into sessions when they start and whenever a factor is completed, and applies
// SuperTokens' setup rule. It knows no transport: its operations take a session and return
// the session's new state and tokens (Update), which the HTTP edge (core/mfaapi, the
// factors' endpoints, the hosted pages) sends to the client.
//
// Rules, in the order they apply:
//
//   - Enforcement Required: the tenant's requirement applies to every user. UserOptIn: it
//     applies only to users who opted in, that is whose metadata lists at least one factor in
//     _supertokens.requiredSecondaryFactors (what PUT /auth/user/mfa writes).
//   - A user's own required factors add one item {oneOf: factors} after the tenant's items:
//     one of them must also be completed.
//   - Completed factors older than the tenant's maxFactorAgeSeconds do not count.
//   - Recovery codes: unless the requirement names recovery-code itself, a completed
//     recovery code stands in for one item: the first unsatisfied one when it is a single
//     factor or a oneOf group, or an allOfInAnyOrder group with one member missing. So a user
//     who lost their device completes that item with a code; each session gets one stand-in.
//     While a user has unused codes, recovery-code is offered in the next set of such an item.
//   - Enrolment grace: a user who has set up none of the factors the requirement names, and
//     whose first evaluation under the tenant's policy (recorded in the store) is less than
//     enrollmentGracePeriodSeconds ago, gets v = true; the next set still lists what to set up.
package mfaengine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"

	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/session"
	"github.com/twofold-dev/twofold/core/store"
	"github.com/twofold-dev/twofold/core/tenant"
)

// MetadataKey is the user-metadata key SuperTokens keeps MFA settings under, and
// RequiredFactorsKey the list of the user's own required secondary factors inside it.
const (
	MetadataKey        = "_supertokens"
	RequiredFactorsKey = "requiredSecondaryFactors"
)

// Supported lists the secondary factors the core can set up and complete, in the order
// mfa/info reports them. A tenant's allowedSecondaryFactors narrows it.
var Supported = []string{mfa.EmailPassword, mfa.OTPEmail, mfa.OTPPhone, mfa.LinkEmail, mfa.LinkPhone, mfa.TOTP, mfa.WebAuthn, mfa.RecoveryCode}

// Options are the engine's dependencies.
type Options struct {
	Store    store.Store
	Tenants  *tenant.Service
	Sessions *session.Manager
	Clock    func() time.Time
	Logger   logr.Logger
}

// Engine evaluates MFA requirements and keeps sessions' st-mfa claims current. It is safe
// for concurrent use.
type Engine struct {
	opts Options
}

// New returns an Engine.
func New(opts Options) *Engine {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Logger.GetSink() == nil {
		opts.Logger = logr.Discard()
	}
	return &Engine{opts: opts}
}

// State is where a user stands against the requirement that applies to them.
type State struct {
	// Requirement is the requirement that applies to the user now (empty: nothing required).
	Requirement mfa.Requirement
	// Next is the set of factors that would satisfy the first unsatisfied item; empty when
	// the requirement is met. During the enrolment grace period it lists what to set up.
	Next []string
	// V is the st-mfa v: the requirement is met, or the user is in the grace period.
	V bool
	// InGracePeriod reports that V is true only because of the enrolment grace period.
	InGracePeriod bool
	// SetUp lists the secondary factors the user has set up.
	SetUp []string
	// AllowedToSetUp lists the factors the setup rule lets this session set up now.
	AllowedToSetUp []string
	// Available lists the secondary factors the tenant lets users use.
	Available []string
}

// SetupDeniedError is the setup rule's refusal; Reason is SuperTokens' exact text, and the
// error unwraps to mfa.ErrSetupNotInNextSet, mfa.ErrSetupAlreadySatisfiable or
// ErrFactorNotAvailable. The HTTP edge answers it with the 403 invalid claim carrying Reason.
type SetupDeniedError struct {
	Factor string
	Reason string
	Err    error
}

// Error implements error.
func (e *SetupDeniedError) Error() string {
	return fmt.Sprintf("setting up %s is not allowed: %s", e.Factor, e.Reason)
}

// Unwrap returns the rule that refused.
func (e *SetupDeniedError) Unwrap() error { return e.Err }

// ErrFactorNotAvailable refuses setting up a factor the tenant does not offer.
var ErrFactorNotAvailable = errors.New("Not allowed to setup factor that is not enabled for the tenant")

// ErrNotSatisfied is returned by RequireSatisfied when the session's requirement is not met.
var ErrNotSatisfied = errors.New(mfa.ClaimNotSatisfiedMessage)

// Claims computes the claims of new sessions (the core's ClaimsFunc): st-mfa {c, v} for user u, who just
// completed the factors in completed, from the requirement that applies to them.
func (e *Engine) Claims(ctx context.Context, r store.MFAReader, t tenant.Tenant, u store.User, completed mfa.Completed) (map[string]json.RawMessage, error) {
	p, err := e.policyFrom(ctx, r, t, u)
	if err != nil {
		return nil, err
	}
	b, _, err := p.claim(completed, e.opts.Clock())
	if err != nil {
		return nil, err
	}
	return map[string]json.RawMessage{mfa.ClaimKey: b}, nil
}

func (e *Engine) load(ctx context.Context, tenantID, userID string) (tenant.Tenant, policy, error) {
	t, err := e.opts.Tenants.Current(ctx, tenantID)
	if err != nil {
		return tenant.Tenant{}, policy{}, fmt.Errorf("load tenant %s: %w", tenantID, err)
	}
	u, err := e.opts.Store.GetUser(ctx, userID)
	if err != nil {
		return tenant.Tenant{}, policy{}, fmt.Errorf("load user %s: %w", userID, err)
	}
	p, err := e.policyFor(ctx, t, u)
	return t, p, err
}

// State returns where user userID of tenant t stands with the completed factors c.
func (e *Engine) State(ctx context.Context, t tenant.Tenant, userID string, c mfa.Completed) (State, error) {
	u, err := e.opts.Store.GetUser(ctx, userID)
	if err != nil {
		return State{}, fmt.Errorf("load user %s: %w", userID, err)
	}
	p, err := e.policyFor(ctx, t, u)
	if err != nil {
		return State{}, err
	}
	return p.state(c, e.opts.Clock()), nil
}

// SessionState returns where a session stands: State for its user, tenant and completed
// factors.
func (e *Engine) SessionState(ctx context.Context, sess session.Session) (State, error) {
	claim, err := sess.MFA()
	if err != nil {
		return State{}, err
	}
	_, p, err := e.load(ctx, sess.TenantID, sess.UserID)
	if err != nil {
		return State{}, err
	}
	return p.state(claim.C, e.opts.Clock()), nil
}

// CheckSetup applies the setup rule to a session that wants to set up factorID. A refusal
// is a *SetupDeniedError carrying SuperTokens' exact reason.
func (e *Engine) CheckSetup(ctx context.Context, sess session.Session, factorID string) error {
	claim, err := sess.MFA()
	if err != nil {
		return err
	}
	_, p, err := e.load(ctx, sess.TenantID, sess.UserID)
	if err != nil {
		return err
	}
	return p.canSetUp(p.state(claim.C, e.opts.Clock()), factorID)
}

// RequireSatisfied returns ErrNotSatisfied unless the session's requirement is met now
// (recomputed, so an aged-out factor counts as not completed). Endpoints that weaken a
// user's protection (removing a verified device, disabling a factor, replacing recovery
// codes) call it; the HTTP edge answers the 403 invalid claim with mfa.ClaimNotSatisfiedMessage.
func (e *Engine) RequireSatisfied(ctx context.Context, sess session.Session) error {
	s, err := e.SessionState(ctx, sess)
	if err != nil {
		return err
	}
	if !s.V {
		return ErrNotSatisfied
	}
	return nil
}
