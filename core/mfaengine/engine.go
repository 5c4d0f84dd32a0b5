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
	"slices"
	"time"

	"github.com/go-logr/logr"

	"github.com/twofold-dev/twofold/contract"
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

// policy is everything about a user and tenant that does not depend on the session's
// completed factors, so a claim can be recomputed inside the store's transaction.
type policy struct {
	req        mfa.Requirement
	setUp      []string
	available  []string
	maxAge     time.Duration
	graceUntil time.Time
}

// UserFactors returns the user's own required secondary factors from their metadata.
func (e *Engine) UserFactors(ctx context.Context, userID string) ([]string, error) {
	md, err := e.opts.Store.GetUserMetadata(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("read MFA settings of user %s: %w", userID, err)
	}
	return factorsFromMetadata(md)
}

func factorsFromMetadata(md map[string]json.RawMessage) ([]string, error) {
	raw, ok := md[MetadataKey]
	if !ok {
		return nil, nil
	}
	var st map[string]json.RawMessage
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, fmt.Errorf("user metadata %s is not an object: %w", MetadataKey, err)
	}
	var out []string
	if r, ok := st[RequiredFactorsKey]; ok && string(r) != "null" {
		if err := json.Unmarshal(r, &out); err != nil {
			return nil, fmt.Errorf("user metadata %s.%s is not a list of factor ids: %w", MetadataKey, RequiredFactorsKey, err)
		}
	}
	return out, nil
}

// SetUserFactors replaces the user's own required secondary factors in their metadata,
// keeping the other keys of the _supertokens object.
func (e *Engine) SetUserFactors(ctx context.Context, userID string, factors []string) error {
	md, err := e.opts.Store.GetUserMetadata(ctx, userID)
	if err != nil {
		return fmt.Errorf("read MFA settings of user %s: %w", userID, err)
	}
	st := map[string]json.RawMessage{}
	if raw, ok := md[MetadataKey]; ok {
		if err := json.Unmarshal(raw, &st); err != nil || st == nil {
			st = map[string]json.RawMessage{}
		}
	}
	if factors == nil {
		factors = []string{}
	}
	list, err := json.Marshal(factors)
	if err != nil {
		return fmt.Errorf("encode required factors: %w", err)
	}
	st[RequiredFactorsKey] = list
	obj, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode MFA settings: %w", err)
	}
	if _, err := e.opts.Store.UpdateUserMetadata(ctx, userID, map[string]json.RawMessage{MetadataKey: obj}, e.opts.Clock()); err != nil {
		return fmt.Errorf("store MFA settings of user %s: %w", userID, err)
	}
	return nil
}

// Requirement returns the requirement that applies to a user with the given own required
// factors under tenant t: the tenant's items (under UserOptIn only when the user opted in)
// followed by {oneOf: userFactors}.
func Requirement(t tenant.Tenant, userFactors []string) mfa.Requirement {
	var req mfa.Requirement
	optedIn := len(userFactors) > 0
	if t.Config.MFA.Enforcement != contract.EnforcementUserOptIn || optedIn {
		req = append(req, t.Config.MFA.Requirement...)
	}
	if optedIn {
		req = append(req, mfa.Item{OneOf: slices.Clone(userFactors)})
	}
	return req
}

// Available returns the secondary factors tenant t offers: its allowedSecondaryFactors (or
// every supported factor when it names none), plus every factor its requirement names. A tenant
// without a relying party for passkeys cannot offer webauthn.
func Available(t tenant.Tenant) []string {
	var out []string
	allowed := t.Config.MFA.AllowedSecondaryFactors
	for _, f := range Supported {
		if f == mfa.WebAuthn && !t.Config.WebAuthn.HasRelyingParty() {
			continue
		}
		if len(allowed) == 0 || slices.Contains(allowed, f) || slices.Contains(t.Config.MFA.Requirement.Factors(), f) {
			out = append(out, f)
		}
	}
	return out
}

// factorsSetUp lists the secondary factors user u has set up: totp with a verified device,
// recovery-code with unused codes, emailpassword with an emailpassword login method, and the
// passwordless factors with a passwordless login method holding an email or phone number, and
// webauthn with a credential of a webauthn login method.
func (e *Engine) factorsSetUp(ctx context.Context, u store.User) ([]string, error) {
	has := map[string]bool{}
	for _, lm := range u.LoginMethods {
		switch lm.RecipeID {
		case store.RecipeEmailPassword:
			has[mfa.EmailPassword] = true
		case store.RecipePasswordless:
			if lm.Email != "" {
				has[mfa.OTPEmail], has[mfa.LinkEmail] = true, true
			}
			if lm.PhoneNumber != "" {
				has[mfa.OTPPhone], has[mfa.LinkPhone] = true, true
			}
		case store.RecipeWebAuthn:
			has[mfa.WebAuthn] = has[mfa.WebAuthn] || len(lm.WebAuthnCredentialIDs) > 0
		}
	}
	st, err := e.opts.Store.GetMFAStatus(ctx, u.ID)
	if err != nil {
		return nil, fmt.Errorf("read the user's TOTP devices and recovery codes: %w", err)
	}
	has[mfa.TOTP] = st.VerifiedTOTPDevices > 0
	has[mfa.RecoveryCode] = st.UnusedRecoveryCodes > 0
	var out []string
	for _, f := range Supported {
		if has[f] {
			out = append(out, f)
		}
	}
	return out, nil
}

// policyFor gathers what the claim of user u under tenant t depends on besides the
// completed factors, recording the start of the grace period when it first applies.
func (e *Engine) policyFor(ctx context.Context, t tenant.Tenant, u store.User) (policy, error) {
	own, err := e.UserFactors(ctx, u.ID)
	if err != nil {
		return policy{}, err
	}
	p := policy{req: Requirement(t, own), available: Available(t),
		maxAge: time.Duration(t.Config.MFA.MaxFactorAgeSeconds) * time.Second}
	if p.setUp, err = e.factorsSetUp(ctx, u); err != nil {
		return policy{}, err
	}
	grace := time.Duration(t.Config.MFA.EnrollmentGracePeriodSeconds) * time.Second
	if grace > 0 && len(p.req) > 0 && !slices.ContainsFunc(p.req.Factors(), func(f string) bool { return slices.Contains(p.setUp, f) }) {
		start, err := e.opts.Store.MFAPolicyStart(ctx, u.ID, t.ID, e.opts.Clock())
		if err != nil {
			return policy{}, fmt.Errorf("record the start of the MFA grace period: %w", err)
		}
		p.graceUntil = start.Add(grace)
	}
	return p, nil
}

// state evaluates p for a session's completed factors at now.
func (p policy) state(c mfa.Completed, now time.Time) State {
	fresh := c.Fresh(now, p.maxAge)
	s := State{Requirement: p.req, SetUp: p.setUp, Available: p.available}
	s.Next = p.req.NextSetWithRecovery(fresh, slices.Contains(p.setUp, mfa.RecoveryCode))
	s.V = len(s.Next) == 0
	if !s.V && now.Before(p.graceUntil) {
		s.V, s.InGracePeriod = true, true
	}
	for _, f := range p.available {
		if p.canSetUp(s, f) == nil {
			s.AllowedToSetUp = append(s.AllowedToSetUp, f)
		}
	}
	return s
}

// canSetUp applies the setup rule to factor f in state s.
func (p policy) canSetUp(s State, f string) error {
	if !slices.Contains(p.available, f) {
		return &SetupDeniedError{Factor: f, Reason: ErrFactorNotAvailable.Error(), Err: ErrFactorNotAvailable}
	}
	err := mfa.CanSetUp(f, s.Next, s.V, func(x string) bool { return slices.Contains(p.setUp, x) })
	if err != nil {
		return &SetupDeniedError{Factor: f, Reason: err.Error(), Err: err}
	}
	return nil
}

func (p policy) claim(c mfa.Completed, now time.Time) (json.RawMessage, bool, error) {
	if c == nil {
		c = mfa.Completed{}
	}
	v := p.state(c, now).V
	b, err := json.Marshal(mfa.Claim{C: c, V: v})
	if err != nil {
		return nil, false, fmt.Errorf("encode %s claim: %w", mfa.ClaimKey, err)
	}
	return b, v, nil
}

// Claims computes the claims of new sessions (the core's ClaimsFunc): st-mfa {c, v} for user u, who just
// completed the factors in completed, from the requirement that applies to them.
func (e *Engine) Claims(ctx context.Context, t tenant.Tenant, u store.User, completed mfa.Completed) (map[string]json.RawMessage, error) {
	p, err := e.policyFor(ctx, t, u)
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
