package contract

import "github.com/twofold-dev/twofold/contract/mfa"

// Messages of the FDI's 401 and 403 answers. SuperTokens' frontend SDKs match on them: "try
// refresh token" makes them refresh the session, "unauthorised" signs the user out.
const (
	MessageUnauthorised    = "unauthorised"
	MessageTryRefreshToken = "try refresh token"
	MessageTokenTheft      = "token theft detected"
	MessageInvalidClaim    = "invalid claim"
)

// MessageBody is the body of a 401 answer: {"message": MessageTryRefreshToken},
// {"message": MessageUnauthorised} or {"message": MessageTokenTheft}.
type MessageBody struct {
	Message string `json:"message"`
}

// InvalidClaimBody is the body of a 403 answer to a session that a claim of its access token
// does not allow the request: {"message": "invalid claim", "claimValidationErrors": [...]}.
type InvalidClaimBody struct {
	Message               string                 `json:"message"`
	ClaimValidationErrors []ClaimValidationError `json:"claimValidationErrors"`
}

// ClaimValidationError names the refusing claim (ID is its access-token key) and why.
type ClaimValidationError struct {
	ID     string                `json:"id"`
	Reason ClaimValidationReason `json:"reason"`
}

// ClaimValidationReason is why a claim refused. SDKs read only Message; the other fields are
// set by the refusals that have them.
type ClaimValidationReason struct {
	Message string `json:"message"`
	// NextFactors is Twofold's addition to an st-mfa refusal: the next set of factors that
	// would satisfy the requirement, when the refusing side computed it.
	NextFactors []string `json:"nextFactors,omitempty"`
	// ExpectedValue and ActualValue are an st-ev refusal's fields, as SuperTokens' boolean
	// claim validator reports them.
	ExpectedValue *bool `json:"expectedValue,omitempty"`
	ActualValue   *bool `json:"actualValue,omitempty"`
}

// InvalidClaim returns the 403 body of the refusals errs.
func InvalidClaim(errs ...ClaimValidationError) InvalidClaimBody {
	return InvalidClaimBody{Message: MessageInvalidClaim, ClaimValidationErrors: errs}
}

// MFARefusal is the st-mfa claim's refusal with reason (mfa.ClaimNotSatisfiedMessage when the
// requirement is not met, the setup rule's reason when a setup is refused) and, when known,
// the next set of factors.
func MFARefusal(reason string, next []string) ClaimValidationError {
	return ClaimValidationError{ID: mfa.ClaimKey, Reason: ClaimValidationReason{Message: reason, NextFactors: next}}
}

// EmailVerificationRefusal is the st-ev claim's refusal of a session whose email must be
// verified: "value does not exist" when the claim or its v is missing (actual nil), "wrong
// value" when v is false.
func EmailVerificationRefusal(actual *bool) ClaimValidationError {
	expected := true
	r := ClaimValidationReason{Message: "wrong value", ExpectedValue: &expected, ActualValue: actual}
	if actual == nil {
		r.Message = "value does not exist"
	}
	return ClaimValidationError{ID: EmailVerificationClaimKey, Reason: r}
}
