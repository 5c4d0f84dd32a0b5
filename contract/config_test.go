package contract

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func parse(t *testing.T, s string) TenantConfig {
	t.Helper()
	var c TenantConfig
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return c
}

func TestNormalizeFillsDefaults(t *testing.T) {
	c := TenantConfig{}.Normalize()
	if len(c.FirstFactors) != 1 || c.FirstFactors[0] != "emailpassword" {
		t.Fatalf("first factors = %v", c.FirstFactors)
	}
	if c.Session.AccessTokenLifetimeSeconds != 3600 || c.Session.RefreshTokenLifetimeSeconds != 8_640_000 ||
		c.Session.CookieSameSite != "lax" || c.Session.CookieSecure == nil || !*c.Session.CookieSecure {
		t.Fatalf("session = %+v", c.Session)
	}
	if c.MFA.Enforcement != EnforcementRequired || c.EmailVerification != "OFF" || c.WebsiteBasePath != "/auth" || c.TOTP.Digits != 6 {
		t.Fatalf("defaults = %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("the default configuration is invalid: %v", err)
	}
}

func TestNormalizeDerivesTheRelyingPartyFromTheWebsite(t *testing.T) {
	c := parse(t, `{"firstFactors":["webauthn"],"websiteDomain":"https://app.example.com/","branding":{"appName":"Acme"}}`).Normalize()
	w := c.WebAuthn
	if w.RPID != "app.example.com" || len(w.Origins) != 1 || w.Origins[0] != "https://app.example.com" || w.RPName != "Acme" {
		t.Fatalf("relying party = %+v, want app.example.com on https://app.example.com named Acme", w)
	}
	if w.UserVerification != "required" || w.ResidentKey != "required" || w.Attestation != "none" {
		t.Fatalf("ceremony defaults = %+v, want user verification and resident keys required, no attestation", w)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	sub := parse(t, `{"firstFactors":["webauthn"],"webauthn":{"rpId":"example.com","origins":["https://a.example.com","https://b.example.com:8443","http://localhost:3000"]}}`).Normalize()
	if err := sub.Validate(); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "localhost") {
		t.Fatalf("an http://localhost origin beside example.com: %v, want it refused as off the relying party id", err)
	}
	onIP := parse(t, `{"websiteDomain":"http://127.0.0.1:8080"}`).Normalize()
	if err := onIP.Validate(); err != nil || onIP.WebAuthn.HasRelyingParty() {
		t.Fatalf("a tenant on an IP address that does not use passkeys: Validate = %v, HasRelyingParty = %v; want it valid, without a relying party", err, onIP.WebAuthn.HasRelyingParty())
	}
	sub.WebAuthn.Origins = sub.WebAuthn.Origins[:2]
	if err := sub.Validate(); err != nil {
		t.Fatalf("subdomains of the relying party id: %v", err)
	}
}

func TestHashIgnoresSpelledOutDefaultsAndSeesSecrets(t *testing.T) {
	a := parse(t, `{}`)
	b := parse(t, `{"firstFactors":["emailpassword"],"session":{"accessTokenLifetimeSeconds":3600,"cookieSameSite":"lax","cookieSecure":true},"mfa":{"enforcement":"Required"}}`)
	if a.Hash() != b.Hash() {
		t.Fatalf("a configuration that spells out defaults hashes differently")
	}
	if !strings.HasPrefix(a.Hash(), "sha256:") || len(a.Hash()) != len("sha256:")+64 {
		t.Fatalf("hash = %q", a.Hash())
	}
	p1 := parse(t, `{"thirdPartyProviders":[{"id":"google","type":"google","clientId":"c","clientSecret":"one"}]}`)
	p2 := parse(t, `{"thirdPartyProviders":[{"id":"google","type":"google","clientId":"c","clientSecret":"two"}]}`)
	if p1.Hash() == p2.Hash() {
		t.Fatalf("a changed secret does not change the hash")
	}
}

func TestRedactHidesEverySecretAndLeavesTheOriginal(t *testing.T) {
	c := parse(t, `{"thirdPartyProviders":[{"id":"google","type":"google","clientId":"c","clientSecret":"s1"}],
		"email":{"smtp":{"host":"h","port":587,"from":"f","password":"s2"}},
		"sms":{"provider":"twilio","twilio":{"accountSid":"a","from":"+1","authToken":"s3"},"webhook":{"url":"https://x","secret":"s4"}}}`)
	r := c.Redact()
	b, _ := json.Marshal(r)
	for _, secret := range []string{"s1", "s2", "s3", "s4"} {
		if strings.Contains(string(b), `"`+secret+`"`) {
			t.Fatalf("secret %s survived redaction: %s", secret, b)
		}
	}
	if c.ThirdPartyProviders[0].ClientSecret != "s1" {
		t.Fatalf("Redact changed the original")
	}
}

func TestValidateNamesTheOffendingField(t *testing.T) {
	tests := []struct {
		name, config, field, message string
	}{
		{"totp is refused as a first factor", `{"firstFactors":["totp"]}`, "firstFactors[0]", "cannot be a first factor"},
		{"an unknown first factor is refused", `{"firstFactors":["sms"]}`, "firstFactors[0]", `unknown factor "sms"`},
		{"thirdparty without providers is refused", `{"firstFactors":["thirdparty"]}`, "firstFactors", "no thirdPartyProviders"},
		{"a provider of unknown type is refused", `{"thirdPartyProviders":[{"id":"x","type":"saml","clientId":"c"}]}`, "thirdPartyProviders[0].type", `"saml"`},
		{"a generic OIDC provider needs an issuer", `{"thirdPartyProviders":[{"id":"x","type":"oidc","clientId":"c"}]}`, "thirdPartyProviders[0].issuer", "issuer"},
		{"a provider id used twice is refused", `{"thirdPartyProviders":[{"id":"g","type":"google","clientId":"c"},{"id":"g","type":"google","clientId":"c"}]}`, "thirdPartyProviders[1].id", "used twice"},
		{"a too long access-token lifetime is refused", `{"session":{"accessTokenLifetimeSeconds":999999}}`, "session.accessTokenLifetimeSeconds", "not between"},
		{"SameSite none without Secure is refused", `{"session":{"cookieSameSite":"none","cookieSecure":false}}`, "session.cookieSecure", "SameSite=none"},
		{"thirdparty in the requirement is refused", `{"mfa":{"requirement":["thirdparty"]}}`, "mfa.requirement", "cannot be a secondary factor"},
		{"an unknown enforcement is refused", `{"mfa":{"enforcement":"Sometimes"}}`, "mfa.enforcement", `"Sometimes"`},
		{"a route path must start with a slash", `{"mfa":{"routes":[{"pathPrefix":"admin"}]}}`, "mfa.routes[0].pathPrefix", "must start with /"},
		{"a public route cannot require factors", `{"mfa":{"routes":[{"pathPrefix":"/x","public":true,"requirement":["totp"]}]}}`, "mfa.routes[0]", "public route"},
		{"an SMTP port out of range is refused", `{"email":{"smtp":{"host":"h","port":70000,"from":"f"}}}`, "email.smtp.port", "70000"},
		{"an unknown SMS provider is refused", `{"sms":{"provider":"pigeon"}}`, "sms.provider", `"pigeon"`},
		{"passkeys as a first factor need an origin", `{"firstFactors":["webauthn"]}`, "webauthn.origins", "set websiteDomain"},
		{"passkeys in the requirement need an origin", `{"mfa":{"requirement":[{"oneOf":["totp","webauthn"]}]}}`, "webauthn.origins", "set websiteDomain"},
		{"passkeys in a step-up route need an origin", `{"mfa":{"routes":[{"pathPrefix":"/x","requirement":["webauthn"]}]}}`, "webauthn.origins", "set websiteDomain"},
		{"a relying party id that is an IP address is refused", `{"firstFactors":["webauthn"],"websiteDomain":"https://10.0.0.1"}`, "webauthn.rpId", "browsers refuse IP addresses"},
		{"a plain http origin other than localhost is refused", `{"firstFactors":["webauthn"],"websiteDomain":"http://app.example.com"}`, "webauthn.origins[0]", "https origins"},
		{"an origin off the relying party id is refused", `{"firstFactors":["webauthn"],"webauthn":{"rpId":"example.com","origins":["https://example.com","https://evil.test"]}}`, "webauthn.origins[1]", "not on the relying party id"},
		{"an origin with a path is refused", `{"firstFactors":["webauthn"],"webauthn":{"rpId":"example.com","origins":["https://example.com/app"]}}`, "webauthn.origins[0]", "not an origin"},
		{"an unknown user verification is refused", `{"webauthn":{"userVerification":"always"}}`, "webauthn.userVerification", `"always"`},
		{"an unknown attachment is refused", `{"webauthn":{"authenticatorAttachment":"usb"}}`, "webauthn.authenticatorAttachment", `"usb"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := parse(t, tt.config).Normalize().Validate()
			var ve *ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("Validate = %v, want a *ValidationError", err)
			}
			if ve.Field != tt.field || !strings.Contains(ve.Message, tt.message) {
				t.Fatalf("Validate = %q on %q, want %q on %q", ve.Message, ve.Field, tt.message, tt.field)
			}
		})
	}
}

func TestValidateTenantID(t *testing.T) {
	for id, ok := range map[string]bool{"public": true, "acme-1": true, "Acme": false, "": false, "-x": false, "signin": false, "session": false, strings.Repeat("a", 64): false} {
		if err := ValidateTenantID(id); (err == nil) != ok {
			t.Errorf("ValidateTenantID(%q) = %v, want ok=%v", id, err, ok)
		}
	}
}

func TestEnforcementNeverHasNullLists(t *testing.T) {
	e := TenantConfig{}.Normalize().Enforcement("public", 3, "https://core/auth", nil)
	b, _ := json.Marshal(e)
	for _, want := range []string{`"requirement":[]`, `"routes":[]`, `"revokedSessions":[]`, `"v":2`, `"configVersion":3`, `"signIn":"/auth/signin"`} {
		if !strings.Contains(string(b), want) {
			t.Fatalf("enforcement %s lacks %s", b, want)
		}
	}
}
