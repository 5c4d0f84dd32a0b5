package contract

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/twofold-dev/twofold/contract/mfa"
)

// Normalize returns a copy with defaults filled in. Hash and the core both work on the
// normalised form, so a configuration that spells out a default and one that leaves it out
// are the same configuration.
func (c TenantConfig) Normalize() TenantConfig {
	out := c.clone()
	if len(out.FirstFactors) == 0 {
		out.FirstFactors = []string{mfa.EmailPassword}
		if len(out.ThirdPartyProviders) > 0 {
			out.FirstFactors = append(out.FirstFactors, mfa.ThirdParty)
		}
	}
	for i := range out.ThirdPartyProviders {
		p := &out.ThirdPartyProviders[i]
		if p.Name == "" {
			switch p.Type {
			case ProviderGoogle:
				p.Name = "Google"
			case ProviderGitHub:
				p.Name = "GitHub"
			default:
				p.Name = p.ID
			}
		}
	}
	if out.Email != nil && out.Email.SMTP != nil && out.Email.SMTP.TLS == "" {
		out.Email.SMTP.TLS = "starttls"
	}
	s := &out.Session
	if s.AccessTokenLifetimeSeconds == 0 {
		s.AccessTokenLifetimeSeconds = DefaultAccessTokenLifetimeSeconds
	}
	if s.RefreshTokenLifetimeSeconds == 0 {
		s.RefreshTokenLifetimeSeconds = DefaultRefreshTokenLifetimeSeconds
	}
	if s.CookieSameSite == "" {
		s.CookieSameSite = "lax"
	}
	if s.CookieSecure == nil {
		t := true
		s.CookieSecure = &t
	}
	if out.EmailVerification == "" {
		out.EmailVerification = EmailVerificationOff
	}
	if out.WebsiteBasePath == "" {
		out.WebsiteBasePath = DefaultWebsiteBasePath
	}
	if out.TOTP.Issuer == "" {
		out.TOTP.Issuer = "Twofold"
		if out.Branding != nil && out.Branding.AppName != "" {
			out.TOTP.Issuer = out.Branding.AppName
		}
	}
	if out.TOTP.Digits == 0 {
		out.TOTP.Digits = 6
	}
	if out.TOTP.PeriodSeconds == 0 {
		out.TOTP.PeriodSeconds = 30
	}
	if out.TOTP.Skew == 0 {
		out.TOTP.Skew = 1
	}
	w := &out.WebAuthn
	if w.RPName == "" {
		w.RPName = "Twofold"
		if out.Branding != nil && out.Branding.AppName != "" {
			w.RPName = out.Branding.AppName
		}
	}
	if len(w.Origins) == 0 && out.WebsiteDomain != "" {
		w.Origins = []string{strings.TrimSuffix(out.WebsiteDomain, "/")}
	}
	if w.RPID == "" && len(w.Origins) > 0 {
		if u, err := url.Parse(w.Origins[0]); err == nil {
			w.RPID = u.Hostname()
		}
	}
	if w.Attestation == "" {
		w.Attestation = AttestationNone
	}
	if w.UserVerification == "" {
		w.UserVerification = UserVerificationRequired
	}
	if w.ResidentKey == "" {
		w.ResidentKey = ResidentKeyRequired
	}
	cs := &out.CodeSending
	if cs.MaxPerContact == 0 {
		cs.MaxPerContact = DefaultMaxCodesPerContact
	}
	if cs.MaxPerUser == 0 {
		cs.MaxPerUser = DefaultMaxCodesPerUser
	}
	if cs.WindowSeconds == 0 {
		cs.WindowSeconds = DefaultCodeWindowSeconds
	}
	if out.MFA.Enforcement == "" {
		out.MFA.Enforcement = EnforcementRequired
	}
	return out
}

// clone deep-copies the configuration so Normalize and Redact never alias the caller's slices.
func (c TenantConfig) clone() TenantConfig {
	b, err := json.Marshal(c)
	if err != nil {
		// Every field marshals; a failure here is a programming error.
		panic(fmt.Sprintf("config: marshal TenantConfig: %v", err))
	}
	var out TenantConfig
	if err := json.Unmarshal(b, &out); err != nil {
		panic(fmt.Sprintf("config: unmarshal TenantConfig: %v", err))
	}
	return out
}

// Hash returns "sha256:<hex>" of the normalised configuration, secrets included. Two
// configurations that normalise to the same thing have the same hash, so a controller can
// compare the hash of what it wants with the core's without reading secrets back.
func (c TenantConfig) Hash() string {
	b, err := json.Marshal(c.Normalize())
	if err != nil {
		panic(fmt.Sprintf("config: marshal TenantConfig: %v", err))
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Redact returns a copy with every non-empty secret replaced by Redacted.
func (c TenantConfig) Redact() TenantConfig {
	out := c.clone()
	red := func(s *string) {
		if *s != "" {
			*s = Redacted
		}
	}
	for i := range out.ThirdPartyProviders {
		red(&out.ThirdPartyProviders[i].ClientSecret)
	}
	if out.Email != nil && out.Email.SMTP != nil {
		red(&out.Email.SMTP.Password)
	}
	if out.SMS != nil {
		if out.SMS.Twilio != nil {
			red(&out.SMS.Twilio.AuthToken)
		}
		if out.SMS.Webhook != nil {
			red(&out.SMS.Webhook.Secret)
		}
	}
	return out
}
