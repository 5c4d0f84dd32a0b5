package storetest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/core/store"
)

// testMFA checks TOTP devices, recovery codes, the attempt limit and grace-period starts.
func testMFA(t *testing.T, open Factory) {
	ctx := context.Background()
	device := func(user, name string) store.TOTPDevice {
		return store.TOTPDevice{UserID: user, Name: name, Secret: "JBSWY3DPEHPK3PXP", Digits: 6, Period: 30, Skew: 1, CreatedAt: t0, CreatedBySession: "s-" + name}
	}
	accept := func(name string, step int64) func(store.AttemptLimit, []store.TOTPDevice) (store.TOTPAttempt, error) {
		return func(store.AttemptLimit, []store.TOTPDevice) (store.TOTPAttempt, error) {
			return store.TOTPAttempt{Device: name, Step: step}, nil
		}
	}

	t.Run("a created device lists back unverified and a second one with its name is refused", func(t *testing.T) {
		s := open(t)
		newUser(t, s, "u1")
		if err := s.CreateTOTPDevice(ctx, device("u1", "phone")); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateTOTPDevice(ctx, device("u1", "phone")); !errors.Is(err, store.ErrDeviceExists) {
			t.Fatalf("duplicate device = %v, want ErrDeviceExists", err)
		}
		if err := s.CreateTOTPDevice(ctx, device("nobody", "phone")); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("device of an unknown user = %v, want ErrNotFound", err)
		}
		got := must(s.ListTOTPDevices(ctx, "u1"))(t)
		want := device("u1", "phone")
		if len(got) != 1 || got[0] != want {
			t.Fatalf("ListTOTPDevices = %+v, want [%+v]", got, want)
		}
	})

	t.Run("an accepted code stores its step, verifies the device, and the same step is refused", func(t *testing.T) {
		s := open(t)
		newUser(t, s, "u1")
		must(0, s.CreateTOTPDevice(ctx, device("u1", "phone")))(t)
		var seen []store.TOTPDevice
		_, err := s.VerifyTOTP(ctx, "u1", "phone", func(l store.AttemptLimit, d []store.TOTPDevice) (store.TOTPAttempt, error) {
			seen = d
			return store.TOTPAttempt{Device: "phone", Step: 100}, nil
		})
		if err != nil || len(seen) != 1 {
			t.Fatalf("VerifyTOTP = %v, devices %v", err, seen)
		}
		d := must(s.ListTOTPDevices(ctx, "u1"))(t)[0]
		if !d.Verified || d.LastUsedStep != 100 {
			t.Fatalf("device after verification = %+v", d)
		}
		if st := must(s.GetMFAStatus(ctx, "u1"))(t); st.VerifiedTOTPDevices != 1 || st.UnusedRecoveryCodes != 0 {
			t.Fatalf("GetMFAStatus = %+v", st)
		}
		if _, err := s.VerifyTOTP(ctx, "u1", "phone", accept("phone", 100)); !errors.Is(err, store.ErrStepUsed) {
			t.Fatalf("same step again = %v, want ErrStepUsed", err)
		}
		if _, err := s.VerifyTOTP(ctx, "u1", "phone", accept("phone", 99)); !errors.Is(err, store.ErrStepUsed) {
			t.Fatalf("an earlier step = %v, want ErrStepUsed", err)
		}
	})

	t.Run("without a name only verified devices are tried", func(t *testing.T) {
		s := open(t)
		newUser(t, s, "u1")
		must(0, s.CreateTOTPDevice(ctx, device("u1", "a")))(t)
		must(0, s.CreateTOTPDevice(ctx, device("u1", "b")))(t)
		must(s.VerifyTOTP(ctx, "u1", "b", accept("b", 5)))(t)
		var names []string
		must(s.VerifyTOTP(ctx, "u1", "", func(_ store.AttemptLimit, ds []store.TOTPDevice) (store.TOTPAttempt, error) {
			for _, d := range ds {
				names = append(names, d.Name)
			}
			return store.TOTPAttempt{}, nil
		}))(t)
		if !slices.Equal(names, []string{"b"}) {
			t.Fatalf("devices tried = %v, want [b]", names)
		}
	})

	t.Run("the attempt limit is stored with the verification and an error from decide changes nothing", func(t *testing.T) {
		s := open(t)
		newUser(t, s, "u1")
		must(0, s.CreateTOTPDevice(ctx, device("u1", "phone")))(t)
		lim := store.AttemptLimit{Failures: 5, LockedUntil: t0.Add(15 * time.Minute)}
		must(s.VerifyTOTP(ctx, "u1", "phone", func(store.AttemptLimit, []store.TOTPDevice) (store.TOTPAttempt, error) {
			return store.TOTPAttempt{Limit: lim}, nil
		}))(t)
		if got := must(s.GetAttemptLimit(ctx, "u1"))(t); got.Failures != 5 || !got.LockedUntil.Equal(lim.LockedUntil) {
			t.Fatalf("GetAttemptLimit = %+v, want %+v", got, lim)
		}
		boom := errors.New("boom")
		_, err := s.VerifyTOTP(ctx, "u1", "phone", func(l store.AttemptLimit, _ []store.TOTPDevice) (store.TOTPAttempt, error) {
			if l.Failures != 5 {
				t.Errorf("decide saw %+v", l)
			}
			return store.TOTPAttempt{Device: "phone", Step: 9}, boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("VerifyTOTP = %v, want decide's error", err)
		}
		if d := must(s.ListTOTPDevices(ctx, "u1"))(t)[0]; d.Verified || d.LastUsedStep != 0 {
			t.Fatalf("a failed decide changed the device: %+v", d)
		}
		// A recovery-code attempt sees the same limit: it is per user.
		must(s.UseRecoveryCode(ctx, "u1", t0, func(l store.AttemptLimit, _ []store.RecoveryCode) (store.RecoveryAttempt, error) {
			if l.Failures != 5 {
				t.Errorf("recovery decide saw %+v", l)
			}
			return store.RecoveryAttempt{}, nil
		}))(t)
		if got := must(s.GetAttemptLimit(ctx, "u1"))(t); got != (store.AttemptLimit{}) {
			t.Fatalf("limit after a reset = %+v", got)
		}
	})

	t.Run("deleting a device reports whether it existed and can spare verified ones", func(t *testing.T) {
		s := open(t)
		newUser(t, s, "u1")
		must(0, s.CreateTOTPDevice(ctx, device("u1", "phone")))(t)
		must(s.VerifyTOTP(ctx, "u1", "phone", accept("phone", 1)))(t)
		existed, deleted, err := s.DeleteTOTPDevice(ctx, "u1", "phone", true)
		if err != nil || !existed || deleted {
			t.Fatalf("onlyUnverified delete of a verified device = %v %v %v", existed, deleted, err)
		}
		existed, deleted, err = s.DeleteTOTPDevice(ctx, "u1", "phone", false)
		if err != nil || !existed || !deleted {
			t.Fatalf("delete = %v %v %v", existed, deleted, err)
		}
		existed, deleted, err = s.DeleteTOTPDevice(ctx, "u1", "phone", false)
		if err != nil || existed || deleted {
			t.Fatalf("delete of a missing device = %v %v %v", existed, deleted, err)
		}
	})

	t.Run("recovery codes are replaced as a set and each is used once, also concurrently", func(t *testing.T) {
		s := open(t)
		newUser(t, s, "u1")
		must(0, s.ReplaceRecoveryCodes(ctx, "u1", [][]byte{[]byte("a"), []byte("b")}, t0))(t)
		must(0, s.ReplaceRecoveryCodes(ctx, "u1", [][]byte{[]byte("c"), []byte("d"), []byte("e")}, t0))(t)
		if unused, total, err := s.CountRecoveryCodes(ctx, "u1"); err != nil || unused != 3 || total != 3 {
			t.Fatalf("after a replacement CountRecoveryCodes = %d, %d, %v; want 3, 3", unused, total, err)
		}
		pick := func(hash string) func(store.AttemptLimit, []store.RecoveryCode) (store.RecoveryAttempt, error) {
			return func(_ store.AttemptLimit, codes []store.RecoveryCode) (store.RecoveryAttempt, error) {
				for _, c := range codes {
					if string(c.Hash) == hash {
						return store.RecoveryAttempt{CodeID: c.ID}, nil
					}
				}
				return store.RecoveryAttempt{}, nil
			}
		}
		var wg sync.WaitGroup
		used := make(chan int64, 8)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				a, err := s.UseRecoveryCode(ctx, "u1", t0, pick("d"))
				if err != nil && !errors.Is(err, store.ErrCodeUsed) {
					t.Error(err)
				}
				if err == nil && a.CodeID != 0 {
					used <- a.CodeID
				}
			}()
		}
		wg.Wait()
		close(used)
		if st := must(s.GetMFAStatus(ctx, "u1"))(t); st.UnusedRecoveryCodes != 2 || st.VerifiedTOTPDevices != 0 {
			t.Fatalf("GetMFAStatus = %+v", st)
		}
		if n := len(used); n != 1 {
			t.Fatalf("%d of 8 concurrent uses of one code succeeded", n)
		}
		unused, total, err := s.CountRecoveryCodes(ctx, "u1")
		if err != nil || unused != 2 || total != 3 {
			t.Fatalf("CountRecoveryCodes = %d, %d, %v; want 2, 3", unused, total, err)
		}
	})

	t.Run("the start of a user's grace period is recorded once per tenant", func(t *testing.T) {
		s := open(t)
		newUser(t, s, "u1")
		first := must(s.MFAPolicyStart(ctx, "u1", "acme", t0))(t)
		again := must(s.MFAPolicyStart(ctx, "u1", "acme", t0.Add(time.Hour)))(t)
		other := must(s.MFAPolicyStart(ctx, "u1", "beta", t0.Add(time.Hour)))(t)
		if !first.Equal(t0) || !again.Equal(t0) || !other.Equal(t0.Add(time.Hour)) {
			t.Fatalf("starts = %v, %v, %v", first, again, other)
		}
		if _, err := s.MFAPolicyStart(ctx, "nobody", "acme", t0); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("start for an unknown user = %v, want ErrNotFound", err)
		}
	})
}
