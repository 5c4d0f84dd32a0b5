// Package mfa holds Twofold's multi-factor requirement grammar and its evaluation, with the
// semantics of SuperTokens' MFA recipe: an ordered list of items, each a factor id, a oneOf
// group or an allOfInAnyOrder group, checked against the factors a session has completed.
//
// The package depends only on the standard library: the core, the controllers and the sidecar
// all import it, and the sidecar binary must stay small.
package mfa

// Factor ids, as they appear in the st-mfa claim and in requirements.
const (
	EmailPassword = "emailpassword"
	ThirdParty    = "thirdparty"
	OTPEmail      = "otp-email"
	OTPPhone      = "otp-phone"
	LinkEmail     = "link-email"
	LinkPhone     = "link-phone"
	TOTP          = "totp"
	WebAuthn      = "webauthn"
	// RecoveryCode is Twofold's own factor: a one-time code that stands in for a lost device.
	RecoveryCode = "recovery-code"
)

type factorKind struct{ first, secondary bool }

var factors = map[string]factorKind{
	EmailPassword: {first: true, secondary: true},
	ThirdParty:    {first: true},
	OTPEmail:      {first: true, secondary: true},
	OTPPhone:      {first: true, secondary: true},
	LinkEmail:     {first: true, secondary: true},
	LinkPhone:     {first: true, secondary: true},
	TOTP:          {secondary: true},
	WebAuthn:      {first: true, secondary: true},
	RecoveryCode:  {secondary: true},
}

// AllFactors lists every factor id in a stable order.
var AllFactors = []string{EmailPassword, ThirdParty, OTPEmail, OTPPhone, LinkEmail, LinkPhone, TOTP, WebAuthn, RecoveryCode}

// IsFactor reports whether id is a known factor id.
func IsFactor(id string) bool { _, ok := factors[id]; return ok }

// IsFirstFactor reports whether id can be used to start a session.
func IsFirstFactor(id string) bool { return factors[id].first }

// IsSecondaryFactor reports whether id can be required after the first factor.
func IsSecondaryFactor(id string) bool { return factors[id].secondary }
