package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/core/passwordless"
	"github.com/twofold-dev/twofold/core/store"
)

// testAccountFlows checks passwordless devices and users, and email verification and
// password reset tokens.
func testAccountFlows(t *testing.T, open Factory) {
	ctx := context.Background()
	newDevice := func(t *testing.T, s store.Store, tenantID string, c passwordless.Contact) (passwordless.Device, passwordless.Secrets) {
		t.Helper()
		d, sec, err := passwordless.NewDevice(c, passwordless.FlowUserInputCodeAndMagicLink, t0)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.CreatePasswordlessDevice(ctx, tenantID, d); err != nil {
			t.Fatal(err)
		}
		return d, sec
	}
	t.Run("a device is stored with its codes and found only in its tenant", func(t *testing.T) {
		s := open(t)
		d, sec := newDevice(t, s, "public", passwordless.Contact{Email: "a@x.io"})
		code, _, err := d.Resend(sec.DeviceID, t0.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.AddPasswordlessCode(ctx, "public", d.PreAuthSessionID, code); err != nil {
			t.Fatal(err)
		}
		got := must(s.GetPasswordlessDevice(ctx, "public", d.PreAuthSessionID))(t)
		if got.Email != "a@x.io" || got.Flow != d.Flow || len(got.Codes) != 2 || got.Codes[0] != d.Codes[0] || got.Codes[1] != code {
			t.Fatalf("device = %+v, want %+v", got, d)
		}
		if _, err := s.GetPasswordlessDevice(ctx, "other", d.PreAuthSessionID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("another tenant's lookup = %v, want ErrNotFound", err)
		}
		if err := s.AddPasswordlessCode(ctx, "public", "unknown", code); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("adding a code to an unknown device = %v, want ErrNotFound", err)
		}
	})
	t.Run("a wrong code saves the failed attempt and the right one deletes the device", func(t *testing.T) {
		s := open(t)
		d, sec := newDevice(t, s, "public", passwordless.Contact{PhoneNumber: "+14155550100"})
		wrong := "000000"
		if sec.UserInputCode == wrong {
			wrong = "111111"
		}
		consume := func(code string) func(*passwordless.Device) (passwordless.Outcome, error) {
			return func(d *passwordless.Device) (passwordless.Outcome, error) {
				return d.Consume(passwordless.Input{DeviceID: sec.DeviceID, UserInputCode: code}, t0)
			}
		}
		_, out, err := s.ConsumePasswordlessCode(ctx, "public", d.PreAuthSessionID, consume(wrong))
		if err != nil || out.Status != passwordless.StatusIncorrectCode || out.FailedAttempts != 1 {
			t.Fatalf("wrong code = %+v, %v", out, err)
		}
		if got := must(s.GetPasswordlessDevice(ctx, "public", d.PreAuthSessionID))(t); got.FailedAttempts != 1 {
			t.Fatalf("failed attempts stored = %d, want 1", got.FailedAttempts)
		}
		got, out, err := s.ConsumePasswordlessCode(ctx, "public", d.PreAuthSessionID, consume(sec.UserInputCode))
		if err != nil || out.Status != passwordless.StatusOK || got.PhoneNumber != "+14155550100" {
			t.Fatalf("right code = %+v, %+v, %v", got, out, err)
		}
		if _, _, err := s.ConsumePasswordlessCode(ctx, "public", d.PreAuthSessionID, consume(sec.UserInputCode)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a second consume = %v, want ErrNotFound", err)
		}
	})
	t.Run("concurrent wrong codes are all counted and the limit deletes the device", func(t *testing.T) {
		s := open(t)
		d, sec := newDevice(t, s, "public", passwordless.Contact{Email: "a@x.io"})
		var wg sync.WaitGroup
		statuses := make(chan passwordless.Status, 2*passwordless.MaxAttempts)
		for range 2 * passwordless.MaxAttempts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, out, err := s.ConsumePasswordlessCode(ctx, "public", d.PreAuthSessionID, func(d *passwordless.Device) (passwordless.Outcome, error) {
					return d.Consume(passwordless.Input{DeviceID: sec.DeviceID, UserInputCode: "x"}, t0)
				})
				if errors.Is(err, store.ErrNotFound) {
					statuses <- passwordless.StatusRestartFlow
					return
				}
				if err != nil {
					t.Error(err)
				}
				statuses <- out.Status
			}()
		}
		wg.Wait()
		close(statuses)
		incorrect := 0
		for st := range statuses {
			if st == passwordless.StatusIncorrectCode {
				incorrect++
			}
		}
		if incorrect != passwordless.MaxAttempts-1 {
			t.Fatalf("%d incorrect answers, want %d before the restart", incorrect, passwordless.MaxAttempts-1)
		}
		if _, err := s.GetPasswordlessDevice(ctx, "public", d.PreAuthSessionID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the device outlived the attempt limit: %v", err)
		}
	})
	t.Run("devices whose every code was created at or before the cutoff are deleted", func(t *testing.T) {
		s := open(t)
		old, _ := newDevice(t, s, "public", passwordless.Contact{Email: "a@x.io"})
		d, sec, err := passwordless.NewDevice(passwordless.Contact{Email: "b@x.io"}, passwordless.FlowUserInputCode, t0)
		if err != nil {
			t.Fatal(err)
		}
		must(0, s.CreatePasswordlessDevice(ctx, "public", d))(t)
		code, _, err := d.Resend(sec.DeviceID, t0.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		must(0, s.AddPasswordlessCode(ctx, "public", d.PreAuthSessionID, code))(t)
		if n := must(s.DeletePasswordlessDevicesBefore(ctx, t0))(t); n != 1 {
			t.Fatalf("deleted %d devices, want 1", n)
		}
		if _, err := s.GetPasswordlessDevice(ctx, "public", old.PreAuthSessionID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the old device is still there: %v", err)
		}
		must(s.GetPasswordlessDevice(ctx, "public", d.PreAuthSessionID))(t)
	})
	t.Run("a passwordless user is created once per contact and tenant, verified", func(t *testing.T) {
		s := open(t)
		u, rid, created, err := s.SignInUpPasswordless(ctx, store.NewPasswordlessUser{RecipeUserID: "p1", TenantID: "public", Email: "a@x.io", Now: t0})
		if err != nil || !created || rid != "p1" || u.ID != "p1" || len(u.LoginMethods) != 1 || !u.LoginMethods[0].Verified || u.LoginMethods[0].RecipeID != store.RecipePasswordless {
			t.Fatalf("first sign-up = %+v, %q, %v, %v", u, rid, created, err)
		}
		u, rid, created, err = s.SignInUpPasswordless(ctx, store.NewPasswordlessUser{RecipeUserID: "p2", TenantID: "public", Email: "a@x.io", Now: t0})
		if err != nil || created || rid != "p1" || u.ID != "p1" {
			t.Fatalf("second sign-in = %+v, %q, %v, %v", u, rid, created, err)
		}
		if _, _, created, _ := s.SignInUpPasswordless(ctx, store.NewPasswordlessUser{RecipeUserID: "p3", TenantID: "other", Email: "a@x.io", Now: t0}); !created {
			t.Fatalf("another tenant's sign-up found the public tenant's user")
		}
	})
	t.Run("a passwordless login method can be added to an existing user", func(t *testing.T) {
		s := open(t)
		newUser(t, s, "owner")
		u, rid, created, err := s.SignInUpPasswordless(ctx, store.NewPasswordlessUser{RecipeUserID: "r1", UserID: "owner", TenantID: "public", PhoneNumber: "+14155550100", Now: t0})
		if err != nil || !created || rid != "r1" || u.ID != "owner" || len(u.LoginMethods) != 2 || u.LoginMethods[1].PhoneNumber != "+14155550100" {
			t.Fatalf("linked sign-up = %+v, %q, %v, %v", u, rid, created, err)
		}
		if users := must(s.UsersByPhone(ctx, "public", "+14155550100"))(t); len(users) != 1 || users[0].ID != "owner" {
			t.Fatalf("UsersByPhone = %+v", users)
		}
		newUser(t, s, "stranger")
		u, _, created, err = s.SignInUpPasswordless(ctx, store.NewPasswordlessUser{RecipeUserID: "r2", UserID: "stranger", TenantID: "public", PhoneNumber: "+14155550100", Now: t0})
		if err != nil || created || u.ID != "owner" || len(u.LoginMethods) != 2 || !u.TimeJoined.Equal(t0) || u.LoginMethods[0].Email != "owner@x.io" {
			t.Fatalf("linking a taken phone to another user = %+v, %v, %v; want the owner with both login methods, not created", u, created, err)
		}
		if _, _, _, err := s.SignInUpPasswordless(ctx, store.NewPasswordlessUser{RecipeUserID: "r3", UserID: "nobody", TenantID: "public", Email: "n@x.io", Now: t0}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("linking to an unknown user = %v, want ErrNotFound", err)
		}
	})
	t.Run("an email is verified only while it is still the login method's", func(t *testing.T) {
		s := open(t)
		newUser(t, s, "u1")
		if _, err := s.SetEmailVerified(ctx, "u1", "other@x.io"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("verifying another email = %v, want ErrNotFound", err)
		}
		if u := must(s.SetEmailVerified(ctx, "u1", "u1@x.io"))(t); !u.LoginMethods[0].Verified {
			t.Fatalf("user after verification = %+v", u)
		}
	})
	t.Run("a password hash is replaced on emailpassword login methods only", func(t *testing.T) {
		s := open(t)
		newUser(t, s, "u1")
		must(s.SetPasswordHash(ctx, "u1", "new-hash"))(t)
		if _, hash, _ := s.GetEmailPasswordLogin(ctx, "public", "u1@x.io"); hash != "new-hash" {
			t.Fatalf("stored hash = %q", hash)
		}
		must4(s.SignInUpPasswordless(ctx, store.NewPasswordlessUser{RecipeUserID: "p1", TenantID: "public", Email: "p@x.io", Now: t0}))(t)
		if _, err := s.SetPasswordHash(ctx, "p1", "h"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("setting a password on a passwordless login method = %v, want ErrNotFound", err)
		}
	})
	t.Run("a token is used once and takes the login method's other tokens of its kind with it", func(t *testing.T) {
		s := open(t)
		tok := func(hash, kind, user string) store.AccountToken {
			return store.AccountToken{Hash: hash, Kind: kind, TenantID: "public", RecipeUserID: user, Email: user + "@x.io", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
		}
		for _, tk := range []store.AccountToken{tok("a", store.TokenPasswordReset, "u1"), tok("b", store.TokenPasswordReset, "u1"),
			tok("c", store.TokenEmailVerification, "u1"), tok("d", store.TokenPasswordReset, "u2")} {
			must(0, s.CreateAccountToken(ctx, tk))(t)
		}
		if _, err := s.ConsumeAccountToken(ctx, store.TokenEmailVerification, "a", t0); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a token of another kind = %v, want ErrNotFound", err)
		}
		got := must(s.ConsumeAccountToken(ctx, store.TokenPasswordReset, "a", t0.Add(time.Minute)))(t)
		if got != tok("a", store.TokenPasswordReset, "u1") {
			t.Fatalf("consumed %+v", got)
		}
		for _, hash := range []string{"a", "b"} {
			if _, err := s.ConsumeAccountToken(ctx, store.TokenPasswordReset, hash, t0); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("token %s after use = %v, want ErrNotFound", hash, err)
			}
		}
		must(s.ConsumeAccountToken(ctx, store.TokenEmailVerification, "c", t0))(t)
		must(s.ConsumeAccountToken(ctx, store.TokenPasswordReset, "d", t0))(t)
	})
	t.Run("a token can be looked at without using it up, until it expires", func(t *testing.T) {
		s := open(t)
		tk := store.AccountToken{Hash: "a", Kind: store.TokenPasskeyRecovery, TenantID: "public", RecipeUserID: "u1", Email: "u1@x.io", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
		must(0, s.CreateAccountToken(ctx, tk))(t)
		for range 2 {
			if got := must(s.GetAccountToken(ctx, store.TokenPasskeyRecovery, "a", t0))(t); got != tk {
				t.Fatalf("GetAccountToken = %+v, want %+v", got, tk)
			}
		}
		if _, err := s.GetAccountToken(ctx, store.TokenPasswordReset, "a", t0); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the token as another kind = %v, want ErrNotFound", err)
		}
		if _, err := s.GetAccountToken(ctx, store.TokenPasskeyRecovery, "a", t0.Add(time.Hour)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the token at its expiry = %v, want ErrNotFound", err)
		}
		must(s.ConsumeAccountToken(ctx, store.TokenPasskeyRecovery, "a", t0))(t)
		if _, err := s.GetAccountToken(ctx, store.TokenPasskeyRecovery, "a", t0); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the token after use = %v, want ErrNotFound", err)
		}
	})
	t.Run("an expired token is refused and removed", func(t *testing.T) {
		s := open(t)
		tk := store.AccountToken{Hash: "a", Kind: store.TokenPasswordReset, TenantID: "public", RecipeUserID: "u1", Email: "u1@x.io", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
		must(0, s.CreateAccountToken(ctx, tk))(t)
		tk.Hash, tk.ExpiresAt = "b", t0.Add(2*time.Hour)
		must(0, s.CreateAccountToken(ctx, tk))(t)
		if _, err := s.ConsumeAccountToken(ctx, store.TokenPasswordReset, "a", t0.Add(time.Hour)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("an expired token = %v, want ErrNotFound", err)
		}
		if n := must(s.DeleteAccountTokensBefore(ctx, t0.Add(2*time.Hour)))(t); n != 1 {
			t.Fatalf("deleted %d tokens, want 1: b, which expired exactly at the cutoff (a went when it was refused)", n)
		}
	})
}

func must4[A, B, C any](a A, _ B, _ C, err error) func(*testing.T) A { return must(a, err) }
