package httpapi_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/factors/factortest"
	"github.com/twofold-dev/twofold/core/httpapi"
	"github.com/twofold-dev/twofold/core/session"
)

// The operations are called as the hosted pages call them: a tenant, a client and plain
// values, no request.
func TestThePasswordSignInOperationAnswersWithoutARequest(t *testing.T) {
	c := factortest.New(t, mfa.Requirement{})
	ctx := context.Background()
	ten := c.Tenant()
	client := httpapi.Client{Addr: netip.MustParseAddr("203.0.113.7")}
	tests := []struct {
		name       string
		password   string
		wantStatus string
	}{
		{"the right password starts a session with the password completed", factortest.Password, contract.StatusOK},
		{"a wrong password is refused without a session", "wrong horse 1", contract.StatusWrongCredentials},
		{"an empty password is a field error", "", contract.StatusFieldError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := c.Srv.API.SignIn(ctx, client, ten, factortest.Email, tt.password)
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != tt.wantStatus {
				t.Fatalf("status = %q, want %q", res.Status, tt.wantStatus)
			}
			if tt.wantStatus != contract.StatusOK {
				if res.Tokens.AccessToken != "" {
					t.Fatal("a refused sign-in has tokens")
				}
				return
			}
			sess, err := c.Srv.Sessions.Verify(ctx, res.Tokens.AccessToken, session.VerifyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			claim, err := sess.MFA()
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := claim.C[mfa.EmailPassword]; !ok || sess.Handle != res.Session.Handle || res.User.ID != sess.UserID {
				t.Fatalf("session %+v with claim %+v, want the result's session with emailpassword completed", sess, claim)
			}
		})
	}
}

func TestAThrottledSignInSaysHowLongToWait(t *testing.T) {
	c := factortest.New(t, mfa.Requirement{})
	ctx := context.Background()
	ten := c.Tenant()
	client := httpapi.Client{Addr: netip.MustParseAddr("203.0.113.8")}
	for range 10 {
		if _, err := c.Srv.API.SignIn(ctx, client, ten, factortest.Email, "wrong horse 1"); err != nil {
			t.Fatal(err)
		}
	}
	res, err := c.Srv.API.SignIn(ctx, client, ten, factortest.Email, factortest.Password)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != contract.StatusGeneralError || res.RetryAfter != 15*time.Minute || res.Message == "" {
		t.Fatalf("result = %+v, want GENERAL_ERROR with a message and 15 minutes to wait", res)
	}
}
