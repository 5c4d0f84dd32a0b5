package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/core/passwordless"
	"github.com/twofold-dev/twofold/core/store"
)

// testSessionTx checks UpdateSession: a factor's check, the reads the MFA policy needs and a
// session's new claims, committed together or not at all.
func testSessionTx(t *testing.T, open Factory) {
	ctx := context.Background()
	const before, after = `{"st-mfa":{"c":{},"v":true}}`, `{"st-mfa":{"c":{"totp":5},"v":true}}`
	claimsOf := func(t *testing.T, s store.Store, handle string) string {
		t.Helper()
		return string(must(s.GetSession(ctx, handle))(t).Claims)
	}
	// setUp stores user u1 with an unverified TOTP device "phone" and a session s1.
	setUp := func(t *testing.T) store.Store {
		s := open(t)
		newUser(t, s, "u1")
		must(0, s.CreateTOTPDevice(ctx, store.TOTPDevice{UserID: "u1", Name: "phone", Secret: "JBSWY3DPEHPK3PXP", Digits: 6, Period: 30, Skew: 1, CreatedAt: t0}))(t)
		createSession(t, s, "s1", "u1", "public", "r1")
		return s
	}
	accept := func(step int64) func(store.AttemptLimit, []store.TOTPDevice) (store.TOTPAttempt, error) {
		return func(store.AttemptLimit, []store.TOTPDevice) (store.TOTPAttempt, error) {
			return store.TOTPAttempt{Device: "phone", Step: step}, nil
		}
	}

	t.Run("claims set in the transaction are stored and returned, and a failing one changes nothing", func(t *testing.T) {
		s := setUp(t)
		got, err := s.UpdateSession(ctx, "s1", func(tx store.SessionTx) error {
			if c := string(tx.Session().Claims); c != before {
				return fmt.Errorf("the transaction read claims %s", c)
			}
			tx.SetClaims(json.RawMessage(after))
			return nil
		})
		if err != nil || string(got.Claims) != after || got.UserID != "u1" {
			t.Fatalf("UpdateSession = %+v, %v", got, err)
		}
		boom := errors.New("boom")
		_, err = s.UpdateSession(ctx, "s1", func(tx store.SessionTx) error {
			tx.SetClaims(json.RawMessage(`{}`))
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("a failing update returned %v, want its own error", err)
		}
		if c := claimsOf(t, s, "s1"); c != after {
			t.Fatalf("a failing update changed the claims to %s", c)
		}
	})

	t.Run("an accepted code and the claims commit together, and the policy reads see the device verified", func(t *testing.T) {
		s := setUp(t)
		var status store.MFAStatus
		_, err := s.UpdateSession(ctx, "s1", func(tx store.SessionTx) error {
			if _, err := tx.VerifyTOTP(ctx, "u1", "phone", accept(100)); err != nil {
				return err
			}
			var err error
			if status, err = tx.GetMFAStatus(ctx, "u1"); err != nil {
				return err
			}
			tx.SetClaims(json.RawMessage(after))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if status.VerifiedTOTPDevices != 1 {
			t.Fatalf("inside the transaction GetMFAStatus = %+v, want the device just verified", status)
		}
		if d := must(s.ListTOTPDevices(ctx, "u1"))(t)[0]; !d.Verified || d.LastUsedStep != 100 {
			t.Fatalf("device after the transaction = %+v", d)
		}
		if c := claimsOf(t, s, "s1"); c != after {
			t.Fatalf("claims = %s", c)
		}
	})

	t.Run("a replayed code rolls back the whole transaction", func(t *testing.T) {
		s := setUp(t)
		must(s.VerifyTOTP(ctx, "u1", "phone", accept(100)))(t)
		_, err := s.UpdateSession(ctx, "s1", func(tx store.SessionTx) error {
			if _, err := tx.MFAPolicyStart(ctx, "u1", "public", t0); err != nil {
				return err
			}
			if _, err := tx.VerifyTOTP(ctx, "u1", "phone", accept(100)); err != nil {
				return err
			}
			tx.SetClaims(json.RawMessage(after))
			return nil
		})
		if !errors.Is(err, store.ErrStepUsed) {
			t.Fatalf("UpdateSession with a used step = %v, want ErrStepUsed", err)
		}
		if c := claimsOf(t, s, "s1"); c != before {
			t.Fatalf("claims after the rollback = %s", c)
		}
		// The grace-period start written before the replay was rolled back with it.
		if got := must(s.MFAPolicyStart(ctx, "u1", "public", t0.Add(time.Hour)))(t); !got.Equal(t0.Add(time.Hour)) {
			t.Fatalf("MFAPolicyStart after the rollback = %v, want the new time", got)
		}
	})

	t.Run("a wrong code's failure is stored without touching the claims", func(t *testing.T) {
		s := setUp(t)
		_, err := s.UpdateSession(ctx, "s1", func(tx store.SessionTx) error {
			_, err := tx.VerifyTOTP(ctx, "u1", "phone", func(l store.AttemptLimit, _ []store.TOTPDevice) (store.TOTPAttempt, error) {
				return store.TOTPAttempt{Limit: store.AttemptLimit{Failures: l.Failures + 1}}, nil
			})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := must(s.GetAttemptLimit(ctx, "u1"))(t); got.Failures != 1 {
			t.Fatalf("GetAttemptLimit = %+v, want one failure", got)
		}
		if c := claimsOf(t, s, "s1"); c != before {
			t.Fatalf("claims = %s", c)
		}
	})

	t.Run("the user, their metadata and the grace-period start read inside the transaction", func(t *testing.T) {
		s := setUp(t)
		must(s.UpdateUserMetadata(ctx, "u1", map[string]json.RawMessage{"k": json.RawMessage(`1`)}, t0))(t)
		_, err := s.UpdateSession(ctx, "s1", func(tx store.SessionTx) error {
			u, err := tx.GetUser(ctx, "u1")
			if err != nil || u.ID != "u1" || len(u.LoginMethods) != 1 {
				return fmt.Errorf("GetUser = %+v, %v", u, err)
			}
			if _, err := tx.GetUser(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("GetUser of an unknown user = %v", err)
			}
			md, err := tx.GetUserMetadata(ctx, "u1")
			if err != nil || string(md["k"]) != "1" {
				return fmt.Errorf("GetUserMetadata = %v, %v", md, err)
			}
			first, err := tx.MFAPolicyStart(ctx, "u1", "public", t0)
			if err != nil {
				return err
			}
			if again, err := tx.MFAPolicyStart(ctx, "u1", "public", t0.Add(time.Hour)); err != nil || !again.Equal(first) || !first.Equal(t0) {
				return fmt.Errorf("MFAPolicyStart = %v then %v, %v", first, again, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := must(s.MFAPolicyStart(ctx, "u1", "public", t0.Add(time.Hour)))(t); !got.Equal(t0) {
			t.Fatalf("MFAPolicyStart after the commit = %v, want %v", got, t0)
		}
	})

	t.Run("one recovery code completes one of many concurrent sessions", func(t *testing.T) {
		s := setUp(t)
		must(0, s.ReplaceRecoveryCodes(ctx, "u1", [][]byte{[]byte("a"), []byte("b")}, t0))(t)
		const n = 8
		for i := range n {
			createSession(t, s, fmt.Sprintf("c%d", i), "u1", "public", fmt.Sprintf("rc%d", i))
		}
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.UpdateSession(ctx, fmt.Sprintf("c%d", i), func(tx store.SessionTx) error {
					a, err := tx.UseRecoveryCode(ctx, "u1", t0, func(_ store.AttemptLimit, codes []store.RecoveryCode) (store.RecoveryAttempt, error) {
						for _, c := range codes {
							if string(c.Hash) == "a" {
								return store.RecoveryAttempt{CodeID: c.ID}, nil
							}
						}
						return store.RecoveryAttempt{}, nil
					})
					if err != nil || a.CodeID == 0 {
						return err
					}
					tx.SetClaims(json.RawMessage(after))
					return nil
				})
				if err != nil && !errors.Is(err, store.ErrCodeUsed) {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		completed := 0
		for i := range n {
			if claimsOf(t, s, fmt.Sprintf("c%d", i)) == after {
				completed++
			}
		}
		if completed != 1 {
			t.Fatalf("%d of %d sessions completed with one recovery code", completed, n)
		}
		if st := must(s.GetMFAStatus(ctx, "u1"))(t); st.UnusedRecoveryCodes != 1 {
			t.Fatalf("GetMFAStatus = %+v, want one unused code", st)
		}
	})

	t.Run("a revoked or unknown session runs nothing", func(t *testing.T) {
		s := setUp(t)
		must(s.RevokeSession(ctx, "s1", t0))(t)
		for handle, want := range map[string]error{"s1": store.ErrSessionRevoked, "nope": store.ErrNotFound} {
			ran := false
			_, err := s.UpdateSession(ctx, handle, func(store.SessionTx) error { ran = true; return nil })
			if !errors.Is(err, want) || ran {
				t.Fatalf("UpdateSession(%s) = %v, ran %v; want %v without running", handle, err, ran, want)
			}
		}
	})
}

// testWrite checks Write: a code consumed, the user it signs in or up and their new session,
// committed together or not at all.
func testWrite(t *testing.T, open Factory) {
	ctx := context.Background()
	device := func(t *testing.T, s store.Store, email string) (passwordless.Device, passwordless.Secrets) {
		t.Helper()
		d, sec, err := passwordless.NewDevice(passwordless.Contact{Email: email}, passwordless.FlowUserInputCode, t0)
		if err != nil {
			t.Fatal(err)
		}
		must(0, s.CreatePasswordlessDevice(ctx, "public", d))(t)
		return d, sec
	}
	consumeWith := func(sec passwordless.Secrets, code string) func(*passwordless.Device) (passwordless.Outcome, error) {
		return func(d *passwordless.Device) (passwordless.Outcome, error) {
			return d.Consume(passwordless.Input{DeviceID: sec.DeviceID, UserInputCode: code}, t0)
		}
	}
	newSession := func(handle, userID string) store.Session {
		return store.Session{Handle: handle, UserID: userID, RecipeUserID: userID, TenantID: "public", Claims: json.RawMessage(`{}`),
			CreatedAt: t0, ExpiresAt: t0.Add(time.Hour), CurrentRefreshHash: "r-" + handle}
	}
	signIn := func(s store.Store, d passwordless.Device, sec passwordless.Secrets, code, handle string, after func(store.Tx) error) (store.User, passwordless.Outcome, error) {
		var u store.User
		var out passwordless.Outcome
		err := s.Write(ctx, func(tx store.Tx) error {
			var err error
			if _, out, err = tx.ConsumePasswordlessCode(ctx, "public", d.PreAuthSessionID, consumeWith(sec, code)); err != nil || out.Status != passwordless.StatusOK {
				return err
			}
			if u, _, _, err = tx.SignInUpPasswordless(ctx, store.NewPasswordlessUser{RecipeUserID: "pl-" + handle, TenantID: "public", Email: d.Email, Now: t0}); err != nil {
				return err
			}
			if err := tx.CreateSession(ctx, newSession(handle, u.ID)); err != nil {
				return err
			}
			if after != nil {
				return after(tx)
			}
			return nil
		})
		return u, out, err
	}

	t.Run("a consumed code, the user it signs up and the session commit together", func(t *testing.T) {
		s := open(t)
		d, sec := device(t, s, "a@x.io")
		u, out, err := signIn(s, d, sec, sec.UserInputCode, "s1", nil)
		if err != nil || out.Status != passwordless.StatusOK || u.ID == "" {
			t.Fatalf("sign-in = %+v, %+v, %v", u, out, err)
		}
		if _, err := s.GetPasswordlessDevice(ctx, "public", d.PreAuthSessionID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the consumed device is still stored: %v", err)
		}
		if got := must(s.GetSession(ctx, "s1"))(t); got.UserID != u.ID {
			t.Fatalf("session = %+v", got)
		}
	})

	t.Run("an error after the code was consumed rolls back the code, the user and the session", func(t *testing.T) {
		s := open(t)
		d, sec := device(t, s, "a@x.io")
		boom := errors.New("boom")
		if _, _, err := signIn(s, d, sec, sec.UserInputCode, "s1", func(store.Tx) error { return boom }); !errors.Is(err, boom) {
			t.Fatalf("Write = %v, want its own error", err)
		}
		if _, err := s.GetPasswordlessDevice(ctx, "public", d.PreAuthSessionID); err != nil {
			t.Fatalf("the device was consumed by a rolled-back transaction: %v", err)
		}
		if _, err := s.GetSession(ctx, "s1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the rolled-back session is stored: %v", err)
		}
		if u, _, _, err := s.SignInUpPasswordless(ctx, store.NewPasswordlessUser{RecipeUserID: "fresh", TenantID: "public", Email: "a@x.io", Now: t0}); err != nil || u.ID != "fresh" {
			t.Fatalf("the rolled-back user exists: %+v, %v", u, err)
		}
	})

	t.Run("a wrong code's failed attempt commits", func(t *testing.T) {
		s := open(t)
		d, sec := device(t, s, "a@x.io")
		wrong := "000000"
		if sec.UserInputCode == wrong {
			wrong = "111111"
		}
		if _, out, err := signIn(s, d, sec, wrong, "s1", nil); err != nil || out.Status != passwordless.StatusIncorrectCode {
			t.Fatalf("a wrong code = %+v, %v", out, err)
		}
		if got := must(s.GetPasswordlessDevice(ctx, "public", d.PreAuthSessionID))(t); got.FailedAttempts != 1 {
			t.Fatalf("FailedAttempts = %d, want 1", got.FailedAttempts)
		}
	})

	t.Run("a disabled user's session is refused inside the transaction, and what came before commits", func(t *testing.T) {
		s := open(t)
		d, sec := device(t, s, "a@x.io")
		u := must4(s.SignInUpPasswordless(ctx, store.NewPasswordlessUser{RecipeUserID: "u1", TenantID: "public", Email: "a@x.io", Now: t0}))(t)
		must(s.SetUserDisabled(ctx, u.ID, true, t0))(t)
		err := s.Write(ctx, func(tx store.Tx) error {
			if _, _, err := tx.ConsumePasswordlessCode(ctx, "public", d.PreAuthSessionID, consumeWith(sec, sec.UserInputCode)); err != nil {
				return err
			}
			owner, _, _, err := tx.SignInUpPasswordless(ctx, store.NewPasswordlessUser{RecipeUserID: "other", TenantID: "public", Email: "a@x.io", Now: t0})
			if err != nil || owner.DisabledAt.IsZero() {
				return fmt.Errorf("the owner read in the transaction = %+v, %v; want it disabled", owner, err)
			}
			if err := tx.CreateSession(ctx, newSession("s1", u.ID)); !errors.Is(err, store.ErrUserDisabled) {
				return fmt.Errorf("CreateSession = %v, want ErrUserDisabled", err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetPasswordlessDevice(ctx, "public", d.PreAuthSessionID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the code's consumption did not commit: %v", err)
		}
		if _, err := s.GetSession(ctx, "s1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("a disabled user's session is stored: %v", err)
		}
	})

	t.Run("concurrent sign-ups of one contact create one user", func(t *testing.T) {
		s := open(t)
		const n = 6
		ids := make(chan string, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := s.Write(ctx, func(tx store.Tx) error {
					u, _, _, err := tx.SignInUpPasswordless(ctx, store.NewPasswordlessUser{RecipeUserID: fmt.Sprintf("pl-%d", i), TenantID: "public", Email: "same@x.io", Now: t0})
					if err != nil {
						return err
					}
					return tx.CreateSession(ctx, newSession(fmt.Sprintf("s%d", i), u.ID))
				})
				if err != nil {
					t.Error(err)
					return
				}
				ids <- must(s.GetSession(ctx, fmt.Sprintf("s%d", i)))(t).UserID
			}()
		}
		wg.Wait()
		close(ids)
		users := map[string]bool{}
		for id := range ids {
			users[id] = true
		}
		if len(users) != 1 {
			t.Fatalf("the sessions belong to %d users, want 1: %v", len(users), users)
		}
	})
}
