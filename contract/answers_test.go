package contract_test

import (
	"encoding/json"
	"testing"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
)

func TestAnswersAreEncodedAsSuperTokensSendsThem(t *testing.T) {
	no := false
	tests := []struct {
		name string
		body any
		want string
	}{
		{"an expired token asks for a refresh", contract.MessageBody{Message: contract.MessageTryRefreshToken},
			`{"message":"try refresh token"}`},
		{"an unmet requirement names the st-mfa claim", contract.InvalidClaim(contract.MFARefusal(mfa.ClaimNotSatisfiedMessage, nil)),
			`{"message":"invalid claim","claimValidationErrors":[{"id":"st-mfa","reason":{"message":"MFA requirement for auth is not satisfied"}}]}`},
		{"an unmet requirement carries the next factors when they are known", contract.InvalidClaim(contract.MFARefusal(mfa.ClaimNotSatisfiedMessage, []string{mfa.TOTP})),
			`{"message":"invalid claim","claimValidationErrors":[{"id":"st-mfa","reason":{"message":"MFA requirement for auth is not satisfied","nextFactors":["totp"]}}]}`},
		{"an unverified email is a wrong st-ev value", contract.InvalidClaim(contract.EmailVerificationRefusal(&no)),
			`{"message":"invalid claim","claimValidationErrors":[{"id":"st-ev","reason":{"message":"wrong value","expectedValue":true,"actualValue":false}}]}`},
		{"a missing st-ev claim is a value that does not exist", contract.InvalidClaim(contract.EmailVerificationRefusal(nil)),
			`{"message":"invalid claim","claimValidationErrors":[{"id":"st-ev","reason":{"message":"value does not exist","expectedValue":true}}]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(tc.body)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tc.want {
				t.Errorf("got  %s\nwant %s", b, tc.want)
			}
		})
	}
}

func TestAnEmailIsVerifiedOnlyWhenTheClaimSaysSo(t *testing.T) {
	tests := []struct {
		name, claim string
		want        bool
	}{
		{"v true is verified", `{"v":true,"t":1}`, true},
		{"v false is not", `{"v":false,"t":1}`, false},
		{"a claim without v is not", `{"t":1}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c contract.EmailVerificationClaim
			if err := json.Unmarshal([]byte(tc.claim), &c); err != nil {
				t.Fatal(err)
			}
			if c.Verified() != tc.want {
				t.Errorf("Verified() = %v, want %v", c.Verified(), tc.want)
			}
		})
	}
}
