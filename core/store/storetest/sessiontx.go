package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

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
