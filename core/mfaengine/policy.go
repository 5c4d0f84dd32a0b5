package mfaengine

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/store"
	"github.com/twofold-dev/twofold/core/tenant"
)

// This file holds the rules that do not depend on a session: the requirement that applies
// to a user, the factors a tenant offers and the user has set up, and the policy they make.

// policy is everything about a user and tenant that does not depend on the session's
// completed factors, so a claim can be recomputed inside the store's transaction.
type policy struct {
	req        mfa.Requirement
	setUp      []string
	available  []string
	maxAge     time.Duration
	graceUntil time.Time
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
func factorsSetUp(ctx context.Context, r store.MFAReader, u store.User) ([]string, error) {
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
	st, err := r.GetMFAStatus(ctx, u.ID)
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
	return e.policyFrom(ctx, e.opts.Store, t, u)
}

// policyFrom is policyFor reading through r: the store, or a session's transaction.
func (e *Engine) policyFrom(ctx context.Context, r store.MFAReader, t tenant.Tenant, u store.User) (policy, error) {
	own, err := userFactors(ctx, r, u.ID)
	if err != nil {
		return policy{}, err
	}
	p := policy{req: Requirement(t, own), available: Available(t),
		maxAge: time.Duration(t.Config.MFA.MaxFactorAgeSeconds) * time.Second}
	if p.setUp, err = factorsSetUp(ctx, r, u); err != nil {
		return policy{}, err
	}
	grace := time.Duration(t.Config.MFA.EnrollmentGracePeriodSeconds) * time.Second
	if grace > 0 && len(p.req) > 0 && !slices.ContainsFunc(p.req.Factors(), func(f string) bool { return slices.Contains(p.setUp, f) }) {
		start, err := r.MFAPolicyStart(ctx, u.ID, t.ID, e.opts.Clock())
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
