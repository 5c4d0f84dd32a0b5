package contract

// EmailVerificationClaimKey is the access-token claim of email verification, as SuperTokens
// names it. The core adds it to the sessions of tenants whose emailVerification is REQUIRED;
// the sidecar then refuses sessions whose claim is not verified. (The st-mfa claim and its key
// are in contract/mfa.)
const EmailVerificationClaimKey = "st-ev"

// EmailVerificationClaim is the value of the st-ev claim: {"v": verified, "t": unix
// milliseconds when the value was fetched}. V is a pointer because SuperTokens' validator tells
// a claim without v ("value does not exist") from one whose v is false ("wrong value").
type EmailVerificationClaim struct {
	V *bool `json:"v"`
	T int64 `json:"t"`
}

// Verified reports whether the claim says the email is verified: v is present and true.
func (c EmailVerificationClaim) Verified() bool { return c.V != nil && *c.V }
