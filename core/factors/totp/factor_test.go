package totp_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/factors/factortest"
	"github.com/twofold-dev/twofold/core/factors/totp"
	"github.com/twofold-dev/twofold/core/mfaengine"
)

// The FDI endpoints and the hosted pages are tested through HTTP in core/server and
// core/hostedui; these tests call the operations as they are, with no request or response.

// core is a whole core in process whose public tenant requires totp.
type core struct{ *factortest.Core }

func newCore(t *testing.T) core {
	return core{factortest.New(t, mfa.Requirement{{Factor: mfa.TOTP}})}
}

func (c core) code(secret string) string {
	c.T.Helper()
	code, err := totp.DefaultConfig().Code(secret, c.Now)
	if err != nil {
		c.T.Fatal(err)
	}
	return code
}

func TestTheOperationsSetUpAndCompleteTOTPWithoutATransport(t *testing.T) {
	c := newCore(t)
	ctx, f := context.Background(), c.Srv.TOTP
	sess := c.SignIn()

	d, err := f.CreateDevice(ctx, sess, "")
	if err != nil || d.Name != "TOTP Device 1" || !strings.Contains(d.URI, "secret="+d.Secret) {
		t.Fatalf("CreateDevice = %+v, %v", d, err)
	}
	if _, err := f.CreateDevice(ctx, sess, d.Name); !errors.Is(err, totp.ErrDeviceExists) {
		t.Fatalf("a second device of the same name: %v, want ErrDeviceExists", err)
	}
	if pending, ok, err := f.PendingDevice(ctx, sess); err != nil || !ok || pending.Name != d.Name {
		t.Fatalf("PendingDevice = %+v, %v, %v", pending, ok, err)
	}
	if png, err := f.QRCode(ctx, sess, d.Name); err != nil || !strings.HasPrefix(string(png), "\x89PNG") {
		t.Fatalf("QRCode: %v", err)
	}
	if _, err := f.QRCode(ctx, c.SignIn(), d.Name); !errors.Is(err, totp.ErrOtherSession) {
		t.Fatalf("the QR code for another session: %v, want ErrOtherSession", err)
	}
	if res, err := f.Verify(ctx, sess, c.code(d.Secret)); err != nil || res.Outcome != totp.NoDevice {
		t.Fatalf("Verify before any device is verified = %+v, %v, want NoDevice", res, err)
	}

	res, err := f.VerifyDevice(ctx, sess, d.Name, "000000")
	if err != nil || res.Outcome != totp.Invalid || res.Failures != 1 || res.Update.Tokens != nil {
		t.Fatalf("a wrong code = %+v, %v", res, err)
	}
	res, err = f.VerifyDevice(ctx, sess, d.Name, c.code(d.Secret))
	if err != nil || res.Outcome != totp.Accepted || res.WasAlreadyVerified || res.Update.Tokens == nil || !res.Update.State.V {
		t.Fatalf("the right code = %+v, %v", res, err)
	}
	claim, err := res.Update.Session.MFA()
	if err != nil || claim.C[mfa.TOTP] != c.Now.Unix() || !claim.V {
		t.Fatalf("the session's claim after the code = %+v, %v", claim, err)
	}
	if res, err := f.Verify(ctx, sess, c.code(d.Secret)); err != nil || res.Outcome != totp.Invalid {
		t.Fatalf("the same code again = %+v, %v, want Invalid", res, err)
	}
}

func TestASessionThatHasNotMetItsRequirementCannotRemoveAVerifiedDevice(t *testing.T) {
	c := newCore(t)
	ctx, f := context.Background(), c.Srv.TOTP
	owner := c.SignIn()
	d, err := f.CreateDevice(ctx, owner, "phone")
	if err != nil {
		t.Fatal(err)
	}
	if res, err := f.VerifyDevice(ctx, owner, d.Name, c.code(d.Secret)); err != nil || res.Outcome != totp.Accepted {
		t.Fatalf("verify = %+v, %v", res, err)
	}

	thief := c.SignIn()
	if existed, err := f.RemoveDevice(ctx, thief, "phone"); !existed || !errors.Is(err, mfaengine.ErrNotSatisfied) {
		t.Fatalf("RemoveDevice by a session without totp = %v, %v, want ErrNotSatisfied", existed, err)
	}
	if devices, err := f.Devices(ctx, owner.UserID); err != nil || len(devices) != 1 {
		t.Fatalf("devices after the refused removal = %+v, %v", devices, err)
	}
	var denied *mfaengine.SetupDeniedError
	if _, err := f.CreateDevice(ctx, thief, "thief's phone"); !errors.As(err, &denied) {
		t.Fatalf("CreateDevice by a session without totp = %v, want the setup rule's refusal", err)
	}
}
