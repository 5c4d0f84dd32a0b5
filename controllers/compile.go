package controllers

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	authv1alpha1 "github.com/twofold-dev/twofold/api/v1alpha1"
	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
)

// ErrConflict is wrapped when MFAPolicies on one tenant contradict each other.
var ErrConflict = errors.New("MFAPolicies conflict")

// ErrSecretNotFound is wrapped when a referenced Secret or key is missing.
var ErrSecretNotFound = errors.New("secret not found")

// SecretLookup returns the value of one key of a Secret in the tenant's namespace, or an error
// wrapping ErrSecretNotFound.
type SecretLookup func(ref authv1alpha1.SecretKeySelector) (string, error)

// compileTenant turns an AuthTenant, the MFAPolicies that name it and the referenced Secrets
// into the configuration the core's admin API takes. Policies are combined by combinePolicies.
func compileTenant(t *authv1alpha1.AuthTenant, policies []authv1alpha1.MFAPolicy, secret SecretLookup) (contract.TenantConfig, error) {
	s := t.Spec
	cfg := contract.TenantConfig{
		EmailVerification: strings.ToUpper(s.EmailVerification),
		WebsiteDomain:     s.WebsiteDomain,
	}
	for _, f := range s.FirstFactors {
		cfg.FirstFactors = append(cfg.FirstFactors, string(f))
	}
	for _, p := range s.ThirdPartyProviders {
		secretValue, err := secret(p.ClientSecretRef)
		if err != nil {
			return cfg, fmt.Errorf("provider %s client secret: %w", p.ID, err)
		}
		cfg.ThirdPartyProviders = append(cfg.ThirdPartyProviders, contract.Provider{
			ID:           p.ID,
			Name:         p.Name,
			Type:         strings.ToLower(p.Type),
			Issuer:       p.Issuer,
			ClientID:     p.ClientID,
			ClientSecret: secretValue,
			Scopes:       p.Scopes,
		})
	}
	if s.Email != nil {
		smtp := &contract.SMTP{Host: s.Email.SMTP.Host, Port: int(s.Email.SMTP.Port), From: s.Email.SMTP.From, TLS: strings.ToLower(s.Email.SMTP.TLS)}
		if ref := s.Email.SMTP.UsernameRef; ref != nil {
			v, err := secret(*ref)
			if err != nil {
				return cfg, fmt.Errorf("SMTP username: %w", err)
			}
			smtp.Username = v
		}
		if ref := s.Email.SMTP.PasswordRef; ref != nil {
			v, err := secret(*ref)
			if err != nil {
				return cfg, fmt.Errorf("SMTP password: %w", err)
			}
			smtp.Password = v
		}
		cfg.Email = &contract.Email{SMTP: smtp}
	}
	if s.SMS != nil {
		sms := &contract.SMS{Provider: strings.ToLower(s.SMS.Provider)}
		if tw := s.SMS.Twilio; tw != nil {
			token, err := secret(tw.AuthTokenRef)
			if err != nil {
				return cfg, fmt.Errorf("Twilio auth token: %w", err)
			}
			sms.Twilio = &contract.Twilio{AccountSID: tw.AccountSID, AuthToken: token, From: tw.From, BaseURL: tw.BaseURL}
		}
		if wh := s.SMS.Webhook; wh != nil {
			sec, err := secret(wh.SecretRef)
			if err != nil {
				return cfg, fmt.Errorf("SMS webhook secret: %w", err)
			}
			sms.Webhook = &contract.SMSWebhook{URL: wh.URL, Secret: sec}
		}
		cfg.SMS = sms
	}
	var err error
	if cfg.Session.AccessTokenLifetimeSeconds, err = seconds(s.Session.AccessTokenLifetime); err != nil {
		return cfg, fmt.Errorf("session.accessTokenLifetime: %w", err)
	}
	if cfg.Session.RefreshTokenLifetimeSeconds, err = seconds(s.Session.RefreshTokenLifetime); err != nil {
		return cfg, fmt.Errorf("session.refreshTokenLifetime: %w", err)
	}
	cfg.Session.CookieDomain = s.Session.CookieDomain
	cfg.Session.CookieSameSite = strings.ToLower(s.Session.CookieSameSite)
	cfg.Session.CookieSecure = s.Session.CookieSecure
	if s.TOTP != nil {
		cfg.TOTP = contract.TOTP{Issuer: s.TOTP.Issuer, Digits: int(s.TOTP.Digits), PeriodSeconds: int(s.TOTP.PeriodSeconds)}
		if s.TOTP.Skew != nil {
			cfg.TOTP.Skew = int(*s.TOTP.Skew)
		}
	}
	if w := s.WebAuthn; w != nil {
		cfg.WebAuthn = contract.WebAuthn{RPName: w.RPName, RPID: w.RPID, Origins: w.Origins, Attestation: w.Attestation,
			UserVerification: w.UserVerification, AuthenticatorAttachment: w.AuthenticatorAttachment, ResidentKey: w.ResidentKey}
	}
	if b := s.Branding; b != nil {
		cfg.Branding = &contract.Branding{AppName: b.AppName, LogoURL: b.LogoURL, PrimaryColor: b.PrimaryColor}
	}
	if s.OTPEmail != nil {
		cfg.OTPEmail.AllowNewAddresses = s.OTPEmail.AllowNewAddresses
	}
	if cs := s.CodeSending; cs != nil {
		if cs.MaxPerContact != nil {
			cfg.CodeSending.MaxPerContact = int(*cs.MaxPerContact)
		}
		if cs.MaxPerUser != nil {
			cfg.CodeSending.MaxPerUser = int(*cs.MaxPerUser)
		}
		if cfg.CodeSending.WindowSeconds, err = seconds(cs.Window); err != nil {
			return cfg, fmt.Errorf("codeSending.window: %w", err)
		}
	}
	cfg.MFA, err = combinePolicies(policies)
	return cfg, err
}

func seconds(d *authv1alpha1.Duration) (int64, error) {
	if d == nil {
		return 0, nil
	}
	v, err := d.Duration()
	if err != nil {
		return 0, err
	}
	return int64(v / time.Second), nil
}

// combinePolicies merges the MFAPolicies of one tenant so that all of them must hold, in a
// stable order (by policy name):
//   - requirements are concatenated, an item already required earlier being dropped;
//   - allowed secondary factors are the union (each policy defaulting to the factors its
//     requirement names plus recovery-code);
//   - the shortest non-zero grace period and maximum factor age win;
//   - routes are merged by path prefix.
//
// Policies that cannot all hold at once are a conflict: different enforcement modes, or two
// different rules for one path prefix.
func combinePolicies(policies []authv1alpha1.MFAPolicy) (contract.MFA, error) {
	sorted := slices.Clone(policies)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })

	var out contract.MFA
	if len(sorted) == 0 {
		return out, nil
	}
	allowed := map[string]bool{}
	routes := map[string]contract.Route{}
	routeOwner := map[string]string{}
	enforcementOwner := ""
	for _, p := range sorted {
		spec := p.Spec
		enforcement := spec.Enforcement
		if enforcement == "" {
			enforcement = contract.EnforcementRequired
		}
		if out.Enforcement == "" {
			out.Enforcement, enforcementOwner = enforcement, p.Name
		} else if out.Enforcement != enforcement {
			return contract.MFA{}, fmt.Errorf("%w: MFAPolicy %s enforces %s but %s enforces %s; policies on one tenant must agree on enforcement",
				ErrConflict, enforcementOwner, out.Enforcement, p.Name, enforcement)
		}
		req := toRequirement(spec.Requirement)
		for _, item := range req {
			if !slices.ContainsFunc(out.Requirement, func(have mfa.Item) bool { return reflect.DeepEqual(have, item) }) {
				out.Requirement = append(out.Requirement, item)
			}
		}
		if len(spec.AllowedSecondaryFactors) > 0 {
			for _, f := range spec.AllowedSecondaryFactors {
				allowed[string(f)] = true
			}
		} else {
			for _, f := range req.Factors() {
				allowed[f] = true
			}
			allowed[mfa.RecoveryCode] = true
		}
		grace, err := seconds(spec.EnrollmentGracePeriod)
		if err != nil {
			return contract.MFA{}, fmt.Errorf("MFAPolicy %s enrollmentGracePeriod: %w", p.Name, err)
		}
		out.EnrollmentGracePeriodSeconds = minNonZero(out.EnrollmentGracePeriodSeconds, grace)
		age, err := seconds(spec.MaxFactorAge)
		if err != nil {
			return contract.MFA{}, fmt.Errorf("MFAPolicy %s maxFactorAge: %w", p.Name, err)
		}
		out.MaxFactorAgeSeconds = minNonZero(out.MaxFactorAgeSeconds, age)
		for _, r := range spec.Routes {
			route, err := toRoute(r)
			if err != nil {
				return contract.MFA{}, fmt.Errorf("MFAPolicy %s route %s: %w", p.Name, r.PathPrefix, err)
			}
			if have, ok := routes[r.PathPrefix]; ok && !reflect.DeepEqual(have, route) {
				return contract.MFA{}, fmt.Errorf("%w: MFAPolicies %s and %s both set a different rule for path prefix %s; keep one",
					ErrConflict, routeOwner[r.PathPrefix], p.Name, r.PathPrefix)
			}
			routes[r.PathPrefix], routeOwner[r.PathPrefix] = route, p.Name
		}
	}
	for _, f := range mfa.AllFactors {
		if allowed[f] {
			out.AllowedSecondaryFactors = append(out.AllowedSecondaryFactors, f)
		}
	}
	prefixes := make([]string, 0, len(routes))
	for p := range routes {
		prefixes = append(prefixes, p)
	}
	sort.Strings(prefixes)
	for _, p := range prefixes {
		out.Routes = append(out.Routes, routes[p])
	}
	return out, nil
}

func toRequirement(in authv1alpha1.Requirement) mfa.Requirement {
	var out mfa.Requirement
	strs := func(fs []authv1alpha1.FactorID) []string {
		s := make([]string, len(fs))
		for i, f := range fs {
			s[i] = string(f)
		}
		return s
	}
	for _, it := range in {
		switch {
		case it.Factor != "":
			out = append(out, mfa.Item{Factor: string(it.Factor)})
		case len(it.OneOf) > 0:
			out = append(out, mfa.Item{OneOf: strs(it.OneOf)})
		case len(it.AllOfInAnyOrder) > 0:
			out = append(out, mfa.Item{AllOfInAnyOrder: strs(it.AllOfInAnyOrder)})
		}
	}
	return out
}

func toRoute(r authv1alpha1.RouteRule) (contract.Route, error) {
	age, err := seconds(r.MaxFactorAge)
	if err != nil {
		return contract.Route{}, err
	}
	route := contract.Route{PathPrefix: r.PathPrefix, Requirement: toRequirement(r.Requirement), MaxFactorAgeSeconds: age, Public: r.Public}
	for _, m := range r.Methods {
		route.Methods = append(route.Methods, string(m))
	}
	sort.Strings(route.Methods)
	return route, nil
}

func minNonZero(a, b int64) int64 {
	switch {
	case a == 0:
		return b
	case b == 0:
		return a
	default:
		return min(a, b)
	}
}

// equalStatus reports whether a reconcile left status as it was, so that it writes nothing.
// meta.SetStatusCondition keeps a condition's transition time when its status is unchanged.
func equalStatus[T any](a, b T) bool { return reflect.DeepEqual(a, b) }
