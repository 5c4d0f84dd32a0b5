package otp_test

import (
	"context"
	"errors"
	"testing"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/accountapi"
	"github.com/twofold-dev/twofold/core/factors/factortest"
	"github.com/twofold-dev/twofold/core/factors/otp"
	"github.com/twofold-dev/twofold/core/httpapi"
	"github.com/twofold-dev/twofold/core/mfaengine"
	"github.com/twofold-dev/twofold/core/passwordless"
)

// The FDI endpoints and the hosted pages are tested through HTTP in core/server and
// core/hostedui (sending needs a mail or SMS server); these tests call the operations as they
// are, with no request or response, for what is decided before anything is sent.

func TestASecondFactorCodeIsRefusedBeforeAnythingIsSent(t *testing.T) {
	c := factortest.New(t, mfa.Requirement{{Factor: mfa.TOTP}})
	ctx := context.Background()
	if _, err := c.Srv.EmailPassword.SignUp(ctx, contract.PublicTenantID, "eve@example.com", factortest.Password); err != nil {
		t.Fatal(err)
	}
	ten := c.Tenant()
	sess := c.SignIn()
	tests := []struct {
		name       string
		contact    passwordless.Contact
		wantReason string
		wantDenied bool
	}{
		{"an email of another user is refused", passwordless.Contact{Email: "eve@example.com"}, otp.ReasonContactTaken, false},
		{"an email that is on no login method of the user is refused", passwordless.Contact{Email: "new@example.com"}, otp.ReasonNewEmail, false},
		{"a new phone number is a setup the setup rule refuses while totp is next", passwordless.Contact{PhoneNumber: "+15555550100"}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Srv.OTP.Send(ctx, httpapi.Client{}, ten, sess, tt.contact)
			var ref *accountapi.Refusal
			var denied *mfaengine.SetupDeniedError
			switch {
			case tt.wantDenied && !errors.As(err, &denied):
				t.Fatalf("Send = %v, want a refusal of the setup rule", err)
			case !tt.wantDenied && (!errors.As(err, &ref) || ref.Status != contract.StatusSignInUpNotAllowed || ref.Reason != tt.wantReason):
				t.Fatalf("Send = %v, want SIGN_IN_UP_NOT_ALLOWED with %q", err, tt.wantReason)
			}
		})
	}
}

func TestEveryCodeEntryCountsTowardTheLockEvenForAnUnknownDevice(t *testing.T) {
	c := factortest.New(t, mfa.Requirement{{Factor: mfa.OTPEmail}})
	ctx := context.Background()
	ten := c.Tenant()
	sess := c.SignIn()
	in := passwordless.Input{DeviceID: "device", UserInputCode: "123456"}
	for i := range 5 {
		res, err := c.Srv.OTP.Verify(ctx, httpapi.Client{}, ten, sess, "no-such-attempt", in)
		if err != nil || res.Status != contract.StatusRestartFlow {
			t.Fatalf("entry %d = %+v, %v; want RESTART_FLOW_ERROR", i+1, res, err)
		}
	}
	_, err := c.Srv.OTP.Verify(ctx, httpapi.Client{}, ten, sess, "no-such-attempt", in)
	var ref *accountapi.Refusal
	if !errors.As(err, &ref) || ref.Status != contract.StatusGeneralError || !ref.Retry || ref.RetryAfter <= 0 {
		t.Fatalf("the sixth entry = %v, want GENERAL_ERROR with retryAfterMs", err)
	}
}
