package recoverycode_test

import (
	"context"
	"errors"
	"testing"

	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/factors/factortest"
	"github.com/twofold-dev/twofold/core/factors/recoverycode"
	"github.com/twofold-dev/twofold/core/factors/totp"
	"github.com/twofold-dev/twofold/core/mfaengine"
	"github.com/twofold-dev/twofold/core/session"
)

// The FDI endpoints and the hosted pages are tested through HTTP in core/server and
// core/hostedui; these tests call the operations as they are, with no request or response.

// withTOTP starts a core whose public tenant requires totp, and returns a session that set up
// and completed it, so recovery codes may be set up.
func withTOTP(t *testing.T) (*factortest.Core, session.Session) {
	t.Helper()
	c := factortest.New(t, mfa.Requirement{{Factor: mfa.TOTP}})
	ctx, sess := context.Background(), c.SignIn()
	d, err := c.Srv.TOTP.CreateDevice(ctx, sess, "phone")
	if err != nil {
		t.Fatal(err)
	}
	code, err := totp.DefaultConfig().Code(d.Secret, c.Now)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Srv.TOTP.VerifyDevice(ctx, sess, d.Name, code)
	if err != nil || res.Outcome != totp.Accepted {
		t.Fatalf("verify the totp device = %+v, %v", res, err)
	}
	return c, res.Update.Session
}

func TestTheOperationsCreateAndUseUpRecoveryCodesWithoutATransport(t *testing.T) {
	c := factortest.New(t, mfa.Requirement{{Factor: mfa.TOTP}})
	ctx, f := context.Background(), c.Srv.RecoveryCodes
	var denied *mfaengine.SetupDeniedError
	if _, err := f.NewSet(ctx, c.SignIn()); !errors.As(err, &denied) {
		t.Fatalf("a first set before the requirement is met: %v, want the setup rule's refusal", err)
	}

	c, sess := withTOTP(t)
	f = c.Srv.RecoveryCodes
	codes, err := f.NewSet(ctx, sess)
	if err != nil || len(codes) != recoverycode.Count {
		t.Fatalf("NewSet = %v, %v", codes, err)
	}
	if unused, total, err := f.Remaining(ctx, sess.UserID); err != nil || unused != recoverycode.Count || total != recoverycode.Count {
		t.Fatalf("Remaining = %d of %d, %v", unused, total, err)
	}

	lost := c.SignIn()
	res, err := f.Use(ctx, lost, "0000-0000-0000")
	if err != nil || res.Outcome != recoverycode.Invalid || res.Failures != 1 || res.Update.Tokens != nil {
		t.Fatalf("a wrong code = %+v, %v", res, err)
	}
	res, err = f.Use(ctx, lost, codes[0])
	if err != nil || res.Outcome != recoverycode.Accepted || res.Update.Tokens == nil || !res.Update.State.V {
		t.Fatalf("the right code = %+v, %v", res, err)
	}
	claim, err := res.Update.Session.MFA()
	if err != nil || claim.C[mfa.RecoveryCode] != c.Now.Unix() || !claim.V {
		t.Fatalf("the session's claim after the code = %+v, %v", claim, err)
	}
	if res, err := f.Use(ctx, c.SignIn(), codes[0]); err != nil || res.Outcome != recoverycode.Invalid {
		t.Fatalf("the same code again = %+v, %v, want Invalid", res, err)
	}
	if unused, _, err := f.Remaining(ctx, sess.UserID); err != nil || unused != recoverycode.Count-1 {
		t.Fatalf("Remaining after one use = %d, %v", unused, err)
	}
}

func TestASessionThatHasNotMetItsRequirementCannotReplaceUnusedCodes(t *testing.T) {
	c, owner := withTOTP(t)
	ctx, f := context.Background(), c.Srv.RecoveryCodes
	codes, err := f.NewSet(ctx, owner)
	if err != nil {
		t.Fatal(err)
	}

	if _, err := f.NewSet(ctx, c.SignIn()); !errors.Is(err, mfaengine.ErrNotSatisfied) {
		t.Fatalf("NewSet by a session without totp = %v, want ErrNotSatisfied", err)
	}
	if res, err := f.Use(ctx, c.SignIn(), codes[1]); err != nil || res.Outcome != recoverycode.Accepted {
		t.Fatalf("a code of the set after the refused replacement = %+v, %v, want Accepted", res, err)
	}
}
