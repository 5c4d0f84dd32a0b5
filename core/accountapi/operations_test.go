package accountapi_test

import (
	"context"
	"errors"
	"testing"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/accountapi"
	"github.com/twofold-dev/twofold/core/delivery"
	"github.com/twofold-dev/twofold/core/factors/factortest"
	"github.com/twofold-dev/twofold/core/httpapi"
	"github.com/twofold-dev/twofold/core/passwordless"
)

// The operations refuse in FDI's words, as a *Refusal the edges answer or word for people.
func TestTheAccountOperationsRefuseWithTheStatusTheSDKsKnow(t *testing.T) {
	c := factortest.New(t, mfa.Requirement{})
	ctx := context.Background()
	ten := c.Tenant()
	acc, client := c.Srv.Account, httpapi.Client{}
	tests := []struct {
		name       string
		op         func() error
		wantStatus string
	}{
		{"an unknown reset token is invalid", func() error {
			_, err := acc.ResetPassword(ctx, client, ten, "no-such-token", "new horse 22")
			return err
		}, contract.StatusResetPasswordInvalidToken},
		{"a short new password is a field error", func() error {
			_, err := acc.ResetPassword(ctx, client, ten, "no-such-token", "short")
			return err
		}, contract.StatusFieldError},
		{"a resend for an unknown device restarts the flow", func() error {
			return acc.ResendCode(ctx, client, ten, "device", "no-such-attempt")
		}, contract.StatusRestartFlow},
		{"an invalid email is refused before anything is sent", func() error {
			_, err := accountapi.ParseContact(delivery.Email, "not an email")
			return err
		}, contract.StatusGeneralError},
		{"a code by email is refused when the tenant's first factors do not include it", func() error {
			_, err := acc.CreateCode(ctx, client, ten, passwordless.Contact{Email: factortest.Email})
			return err
		}, contract.StatusSignInUpNotAllowed},
		{"verifying an email is refused while the tenant has verification off", func() error {
			_, _, err := acc.VerifyEmail(ctx, client, ten, "no-such-token", nil)
			return err
		}, contract.StatusGeneralError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ref *accountapi.Refusal
			if err := tt.op(); !errors.As(err, &ref) || ref.Status != tt.wantStatus {
				t.Fatalf("error = %v, want a refusal with status %s", err, tt.wantStatus)
			}
		})
	}
}

func TestAnUnknownCodeAttemptAsksTheClientToStartAgain(t *testing.T) {
	c := factortest.New(t, mfa.Requirement{})
	ctx := context.Background()
	ten := c.Tenant()
	res, err := c.Srv.Account.ConsumeCode(ctx, httpapi.Client{}, ten, "no-such-attempt",
		passwordless.Input{DeviceID: "device", UserInputCode: "123456"})
	if err != nil || res.Status != contract.StatusRestartFlow || res.Tokens != nil {
		t.Fatalf("result = %+v, %v; want RESTART_FLOW_ERROR without a session", res, err)
	}
}
