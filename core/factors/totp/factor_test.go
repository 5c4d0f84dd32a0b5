package totp_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/emailpassword"
	"github.com/twofold-dev/twofold/core/factors/totp"
	"github.com/twofold-dev/twofold/core/mfaengine"
	"github.com/twofold-dev/twofold/core/server"
	"github.com/twofold-dev/twofold/core/session"
	"github.com/twofold-dev/twofold/core/store/sqlite"
)

// The FDI endpoints and the hosted pages are tested through HTTP in core/server and
// core/hostedui; these tests call the operations as they are, with no request or response.

// core is a whole core in process with a fake clock, and a user signed in with a password to
// the public tenant, which requires totp.
type core struct {
	t   *testing.T
	srv *server.Server
	now time.Time
}

func newCore(t *testing.T) *core {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "twofold.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c := &core{t: t, now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	c.srv, err = server.New(ctx, server.Options{Store: st, Issuer: "http://core.test/auth", Clock: func() time.Time { return c.now },
		PasswordParams: emailpassword.Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := contract.TenantConfig{MFA: contract.MFA{Requirement: mfa.Requirement{{Factor: mfa.TOTP}}}}
	if _, _, err := c.srv.Tenants.Put(ctx, contract.PublicTenantID, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := c.srv.EmailPassword.SignUp(ctx, contract.PublicTenantID, "ada@example.com", "correct horse 1"); err != nil {
		t.Fatal(err)
	}
	return c
}

// signIn starts a session of the user with the password completed.
func (c *core) signIn() session.Session {
	c.t.Helper()
	ctx := context.Background()
	u, err := c.srv.EmailPassword.SignIn(ctx, contract.PublicTenantID, "ada@example.com", "correct horse 1")
	if err != nil {
		c.t.Fatal(err)
	}
	t, err := c.srv.Tenants.Current(ctx, contract.PublicTenantID)
	if err != nil {
		c.t.Fatal(err)
	}
	claims, err := c.srv.MFA.Claims(ctx, t, u, mfa.Completed{mfa.EmailPassword: c.now.Unix()})
	if err != nil {
		c.t.Fatal(err)
	}
	sess, _, err := c.srv.Sessions.Create(ctx, contract.PublicTenantID, u.ID, u.LoginMethods[0].RecipeUserID, claims)
	if err != nil {
		c.t.Fatal(err)
	}
	return sess
}

func (c *core) code(secret string) string {
	c.t.Helper()
	code, err := totp.DefaultConfig().Code(secret, c.now)
	if err != nil {
		c.t.Fatal(err)
	}
	return code
}

func TestTheOperationsSetUpAndCompleteTOTPWithoutATransport(t *testing.T) {
	c := newCore(t)
	ctx, f := context.Background(), c.srv.TOTP
	sess := c.signIn()

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
	if _, err := f.QRCode(ctx, c.signIn(), d.Name); !errors.Is(err, totp.ErrOtherSession) {
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
	if err != nil || claim.C[mfa.TOTP] != c.now.Unix() || !claim.V {
		t.Fatalf("the session's claim after the code = %+v, %v", claim, err)
	}
	if res, err := f.Verify(ctx, sess, c.code(d.Secret)); err != nil || res.Outcome != totp.Invalid {
		t.Fatalf("the same code again = %+v, %v, want Invalid", res, err)
	}
}

func TestASessionThatHasNotMetItsRequirementCannotRemoveAVerifiedDevice(t *testing.T) {
	c := newCore(t)
	ctx, f := context.Background(), c.srv.TOTP
	owner := c.signIn()
	d, err := f.CreateDevice(ctx, owner, "phone")
	if err != nil {
		t.Fatal(err)
	}
	if res, err := f.VerifyDevice(ctx, owner, d.Name, c.code(d.Secret)); err != nil || res.Outcome != totp.Accepted {
		t.Fatalf("verify = %+v, %v", res, err)
	}

	thief := c.signIn()
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
