package contract

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/twofold-dev/twofold/contract/mfa"
)

// Defaults and limits applied by Normalize and Validate.
const (
	DefaultAccessTokenLifetimeSeconds  = 3600
	DefaultRefreshTokenLifetimeSeconds = 8_640_000
	// MaxAccessTokenLifetimeSeconds bounds access tokens, so signing keys and revocation lists
	// need to be kept only this long after they stop being used.
	MaxAccessTokenLifetimeSeconds  = 86_400
	MinAccessTokenLifetimeSeconds  = 60
	MaxRefreshTokenLifetimeSeconds = 10 * 365 * 86_400
	DefaultWebsiteBasePath         = "/auth"
)

// ErrInvalid is wrapped by every validation error of this package.
var ErrInvalid = errors.New("invalid tenant configuration")

// ValidationError names the offending field (a JSON path such as "mfa.requirement") and why.
type ValidationError struct {
	Field   string
	Message string
}

// Error reads "field: message".
func (e *ValidationError) Error() string { return e.Field + ": " + e.Message }

// Unwrap lets errors.Is(err, ErrInvalid) match.
func (e *ValidationError) Unwrap() error { return ErrInvalid }

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Message: fmt.Sprintf(format, args...)}
}

var tenantIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// reservedTenantIDs collide with path segments of the public API under /auth.
var reservedTenantIDs = []string{
	"signin", "signup", "signout", "signinup", "session", "jwt", "loginmethods", "emailpassword",
	"thirdparty", "passwordless", "authorisationurl", "totp", "mfa", "user", "enforcement",
	"recipe", "webauthn", "recovery", "admin", "healthz", "readyz", "metrics", "callback",
}

// ValidateTenantID checks a tenant id: lower-case letters, digits and hyphens, at most 63
// characters, not a word the public API uses as a path segment.
func ValidateTenantID(id string) error {
	if !tenantIDPattern.MatchString(id) {
		return invalid("tenantId", "%q is not a valid tenant id: use 1 to 63 lower-case letters, digits and hyphens, starting with a letter or digit", id)
	}
	if slices.Contains(reservedTenantIDs, id) {
		return invalid("tenantId", "%q is reserved by the public API and cannot be a tenant id", id)
	}
	return nil
}

// Validate checks a normalised configuration and returns a *ValidationError naming the first
// offending field.
func (c TenantConfig) Validate() error {
	if len(c.FirstFactors) == 0 {
		return invalid("firstFactors", "at least one first factor is needed")
	}
	for i, f := range c.FirstFactors {
		field := fmt.Sprintf("firstFactors[%d]", i)
		if !mfa.IsFactor(f) {
			return invalid(field, "unknown factor %q (known: %s)", f, strings.Join(mfa.AllFactors, ", "))
		}
		if !mfa.IsFirstFactor(f) {
			return invalid(field, "%q cannot be a first factor", f)
		}
		if slices.Index(c.FirstFactors, f) != i {
			return invalid(field, "%q is listed twice", f)
		}
	}
	if slices.Contains(c.FirstFactors, mfa.ThirdParty) && len(c.ThirdPartyProviders) == 0 {
		return invalid("firstFactors", "thirdparty is a first factor but no thirdPartyProviders are configured")
	}
	for i, p := range c.ThirdPartyProviders {
		if err := p.validate(fmt.Sprintf("thirdPartyProviders[%d]", i)); err != nil {
			return err
		}
		for _, q := range c.ThirdPartyProviders[:i] {
			if q.ID == p.ID {
				return invalid(fmt.Sprintf("thirdPartyProviders[%d].id", i), "provider id %q is used twice", p.ID)
			}
		}
	}
	if c.Email != nil && c.Email.SMTP != nil {
		s := c.Email.SMTP
		switch {
		case s.Host == "":
			return invalid("email.smtp.host", "an SMTP host is needed")
		case s.Port < 1 || s.Port > 65535:
			return invalid("email.smtp.port", "port %d is not between 1 and 65535", s.Port)
		case s.From == "":
			return invalid("email.smtp.from", "a sender address is needed")
		case !slices.Contains([]string{"starttls", "tls", "none"}, s.TLS):
			return invalid("email.smtp.tls", "%q is not one of starttls, tls, none", s.TLS)
		}
	}
	if c.SMS != nil {
		switch c.SMS.Provider {
		case "twilio":
			if c.SMS.Twilio == nil || c.SMS.Twilio.AccountSID == "" || c.SMS.Twilio.From == "" {
				return invalid("sms.twilio", "the twilio provider needs accountSid and from")
			}
			if c.SMS.Twilio.BaseURL != "" {
				if err := validateURL("sms.twilio.baseURL", c.SMS.Twilio.BaseURL); err != nil {
					return err
				}
			}
		case "webhook":
			if c.SMS.Webhook == nil {
				return invalid("sms.webhook", "the webhook provider needs a url")
			}
			if err := validateURL("sms.webhook.url", c.SMS.Webhook.URL); err != nil {
				return err
			}
		default:
			return invalid("sms.provider", "%q is not one of twilio, webhook", c.SMS.Provider)
		}
	}
	s := c.Session
	if s.AccessTokenLifetimeSeconds < MinAccessTokenLifetimeSeconds || s.AccessTokenLifetimeSeconds > MaxAccessTokenLifetimeSeconds {
		return invalid("session.accessTokenLifetimeSeconds", "%d is not between %d and %d", s.AccessTokenLifetimeSeconds, MinAccessTokenLifetimeSeconds, MaxAccessTokenLifetimeSeconds)
	}
	if s.RefreshTokenLifetimeSeconds < s.AccessTokenLifetimeSeconds || s.RefreshTokenLifetimeSeconds > MaxRefreshTokenLifetimeSeconds {
		return invalid("session.refreshTokenLifetimeSeconds", "%d is not between the access-token lifetime (%d) and %d", s.RefreshTokenLifetimeSeconds, s.AccessTokenLifetimeSeconds, MaxRefreshTokenLifetimeSeconds)
	}
	if !slices.Contains([]string{"lax", "strict", "none"}, s.CookieSameSite) {
		return invalid("session.cookieSameSite", "%q is not one of lax, strict, none", s.CookieSameSite)
	}
	if s.CookieSameSite == "none" && (s.CookieSecure == nil || !*s.CookieSecure) {
		return invalid("session.cookieSecure", "browsers drop SameSite=none cookies that are not Secure")
	}
	if !slices.Contains([]string{EmailVerificationOff, EmailVerificationOptional, EmailVerificationRequired}, c.EmailVerification) {
		return invalid("emailVerification", "%q is not one of OFF, OPTIONAL, REQUIRED", c.EmailVerification)
	}
	if c.WebsiteDomain != "" {
		if err := validateURL("websiteDomain", c.WebsiteDomain); err != nil {
			return err
		}
	}
	if !strings.HasPrefix(c.WebsiteBasePath, "/") {
		return invalid("websiteBasePath", "%q must start with /", c.WebsiteBasePath)
	}
	t := c.TOTP
	if t.Digits != 6 && t.Digits != 8 {
		return invalid("totp.digits", "%d is not 6 or 8", t.Digits)
	}
	if t.PeriodSeconds < 15 || t.PeriodSeconds > 300 {
		return invalid("totp.periodSeconds", "%d is not between 15 and 300", t.PeriodSeconds)
	}
	if t.Skew < 0 || t.Skew > 5 {
		return invalid("totp.skew", "%d is not between 0 and 5", t.Skew)
	}
	cs := c.CodeSending
	if cs.MaxPerContact < 1 || cs.MaxPerContact > 100 {
		return invalid("codeSending.maxPerContact", "%d is not between 1 and 100", cs.MaxPerContact)
	}
	if cs.MaxPerUser < 1 || cs.MaxPerUser > 100 {
		return invalid("codeSending.maxPerUser", "%d is not between 1 and 100", cs.MaxPerUser)
	}
	if cs.WindowSeconds < 60 || cs.WindowSeconds > MaxCodeWindowSeconds {
		return invalid("codeSending.windowSeconds", "%d is not between 60 and %d", cs.WindowSeconds, MaxCodeWindowSeconds)
	}
	if err := c.WebAuthn.validate(c.usesWebAuthn()); err != nil {
		return err
	}
	return c.MFA.validate()
}

// usesWebAuthn reports whether the configuration lets anyone sign in or complete a factor with
// a passkey.
func (c TenantConfig) usesWebAuthn() bool {
	m := c.MFA
	uses := slices.Contains(c.FirstFactors, mfa.WebAuthn) || slices.Contains(m.AllowedSecondaryFactors, mfa.WebAuthn) ||
		slices.Contains(m.Requirement.Factors(), mfa.WebAuthn)
	for _, r := range m.Routes {
		uses = uses || slices.Contains(r.Requirement.Factors(), mfa.WebAuthn)
	}
	return uses
}

// validate checks the WebAuthn settings of a normalised configuration; the relying party is
// needed only when a requirement or a first factor uses webauthn.
func (w WebAuthn) validate(used bool) error {
	oneOf := func(field, v string, allowed ...string) error {
		if !slices.Contains(allowed, v) {
			return invalid(field, "%q is not one of %s", v, strings.Join(allowed, ", "))
		}
		return nil
	}
	if err := oneOf("webauthn.attestation", w.Attestation, AttestationNone, AttestationIndirect, AttestationDirect, AttestationEnterprise); err != nil {
		return err
	}
	if err := oneOf("webauthn.userVerification", w.UserVerification, UserVerificationRequired, UserVerificationPreferred, UserVerificationDiscouraged); err != nil {
		return err
	}
	if err := oneOf("webauthn.residentKey", w.ResidentKey, ResidentKeyRequired, ResidentKeyPreferred, ResidentKeyDiscouraged); err != nil {
		return err
	}
	if w.AuthenticatorAttachment != "" {
		if err := oneOf("webauthn.authenticatorAttachment", w.AuthenticatorAttachment, AttachmentPlatform, AttachmentCrossPlatform); err != nil {
			return err
		}
	}
	if len(w.RPName) > 100 {
		return invalid("webauthn.rpName", "is longer than 100 characters")
	}
	if !used {
		return nil
	}
	return w.relyingPartyError()
}

// HasRelyingParty reports whether the settings name a relying party browsers accept: origins
// on a domain relying party id. A tenant whose website is on an IP address has none, and
// cannot offer webauthn.
func (w WebAuthn) HasRelyingParty() bool { return w.relyingPartyError() == nil }

func (w WebAuthn) relyingPartyError() error {
	if len(w.Origins) == 0 {
		return invalid("webauthn.origins", "webauthn is used but the tenant has no origin for passkeys: set websiteDomain, or webauthn.origins and webauthn.rpId")
	}
	if w.RPID == "" || net.ParseIP(strings.Trim(w.RPID, "[]")) != nil || strings.ContainsAny(w.RPID, ":/") {
		return invalid("webauthn.rpId", "%q is not a domain name: a relying party id is a host name such as example.com (browsers refuse IP addresses)", w.RPID)
	}
	for i, o := range w.Origins {
		field := fmt.Sprintf("webauthn.origins[%d]", i)
		u, err := url.Parse(o)
		if err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return invalid(field, "%q is not an origin such as https://app.example.com", o)
		}
		host := u.Hostname()
		if u.Scheme != "https" && !(u.Scheme == "http" && host == "localhost") {
			return invalid(field, "%q: browsers offer passkeys only on https origins (or http://localhost)", o)
		}
		if host != w.RPID && !strings.HasSuffix(host, "."+w.RPID) {
			return invalid(field, "%q is not on the relying party id %q: its host must be %[2]s or a subdomain of it", o, w.RPID)
		}
	}
	return nil
}

func (m MFA) validate() error {
	if err := m.Requirement.Validate(); err != nil {
		return invalid("mfa.requirement", "%v", err)
	}
	if m.Enforcement != EnforcementRequired && m.Enforcement != EnforcementUserOptIn {
		return invalid("mfa.enforcement", "%q is not one of Required, UserOptIn", m.Enforcement)
	}
	for i, f := range m.AllowedSecondaryFactors {
		field := fmt.Sprintf("mfa.allowedSecondaryFactors[%d]", i)
		if !mfa.IsFactor(f) {
			return invalid(field, "unknown factor %q", f)
		}
		if !mfa.IsSecondaryFactor(f) {
			return invalid(field, "%q cannot be a secondary factor", f)
		}
	}
	if m.EnrollmentGracePeriodSeconds < 0 {
		return invalid("mfa.enrollmentGracePeriodSeconds", "must not be negative")
	}
	if m.MaxFactorAgeSeconds < 0 {
		return invalid("mfa.maxFactorAgeSeconds", "must not be negative")
	}
	for i, r := range m.Routes {
		field := fmt.Sprintf("mfa.routes[%d]", i)
		if !strings.HasPrefix(r.PathPrefix, "/") {
			return invalid(field+".pathPrefix", "%q must start with /", r.PathPrefix)
		}
		for _, meth := range r.Methods {
			if !slices.Contains([]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}, meth) {
				return invalid(field+".methods", "%q is not an HTTP method in upper case", meth)
			}
		}
		if r.Public && (len(r.Requirement) > 0 || r.MaxFactorAgeSeconds > 0) {
			return invalid(field, "a public route cannot also have a requirement or a maximum factor age")
		}
		if err := r.Requirement.Validate(); err != nil {
			return invalid(field+".requirement", "%v", err)
		}
		if r.MaxFactorAgeSeconds < 0 {
			return invalid(field+".maxFactorAgeSeconds", "must not be negative")
		}
	}
	return nil
}

func (p Provider) validate(field string) error {
	if p.ID == "" {
		return invalid(field+".id", "a provider id is needed")
	}
	if !tenantIDPattern.MatchString(p.ID) {
		return invalid(field+".id", "%q is not a valid provider id: use lower-case letters, digits and hyphens", p.ID)
	}
	if p.ClientID == "" {
		return invalid(field+".clientId", "a client id is needed")
	}
	switch p.Type {
	case ProviderGoogle, ProviderGitHub:
	case ProviderOIDC:
		if p.Issuer == "" {
			return invalid(field+".issuer", "a generic OIDC provider needs an issuer for discovery")
		}
	default:
		return invalid(field+".type", "%q is not one of google, github, oidc", p.Type)
	}
	for _, f := range []struct{ name, v string }{
		{"issuer", p.Issuer}, {"authorizationEndpoint", p.AuthorizationEndpoint},
		{"tokenEndpoint", p.TokenEndpoint}, {"userInfoEndpoint", p.UserInfoEndpoint},
	} {
		if f.v != "" {
			if err := validateURL(field+"."+f.name, f.v); err != nil {
				return err
			}
		}
	}
	return nil
}

func validateURL(field, s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return invalid(field, "%q is not an absolute http(s) URL", s)
	}
	return nil
}

// Destination is a URL the core itself calls for a tenant, with the field that holds it.
type Destination struct {
	Field string
	URL   string
}

// Destinations lists the URLs the core calls for this configuration: the providers' issuers
// (for discovery), token and userinfo endpoints, the Twilio base URL and the SMS webhook.
// Authorization endpoints are left out: browsers visit them, the core does not.
func (c TenantConfig) Destinations() []Destination {
	var out []Destination
	add := func(field, u string) {
		if u != "" {
			out = append(out, Destination{Field: field, URL: u})
		}
	}
	for i, p := range c.ThirdPartyProviders {
		field := fmt.Sprintf("thirdPartyProviders[%d]", i)
		add(field+".issuer", p.Issuer)
		add(field+".tokenEndpoint", p.TokenEndpoint)
		add(field+".userInfoEndpoint", p.UserInfoEndpoint)
	}
	if c.SMS != nil && c.SMS.Twilio != nil {
		add("sms.twilio.baseURL", c.SMS.Twilio.BaseURL)
	}
	if c.SMS != nil && c.SMS.Webhook != nil {
		add("sms.webhook.url", c.SMS.Webhook.URL)
	}
	return out
}

// CheckDestinations calls check on every destination and returns the first refusal as a
// *ValidationError naming its field, so the admin API answers which URL the core will not
// call and why.
func (c TenantConfig) CheckDestinations(check func(url string) error) error {
	for _, d := range c.Destinations() {
		if err := check(d.URL); err != nil {
			return invalid(d.Field, "%v", err)
		}
	}
	return nil
}
