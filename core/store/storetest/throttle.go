package storetest

import (
	"context"
	"sync"
	"testing"
	"time"
)

// testSignInThrottle checks the failed-sign-in count and lock.
func testSignInThrottle(t *testing.T, open Factory) {
	ctx := context.Background()
	const max, lock = 3, 15 * time.Minute

	t.Run("the failure that reaches the limit locks the account until the lock ends", func(t *testing.T) {
		s := open(t)
		for i := 1; i < max; i++ {
			until, err := s.RecordSignInFailure(ctx, "public", "a@x.io", t0, max, lock)
			if err != nil || !until.IsZero() {
				t.Fatalf("failure %d: locked until %v, %v", i, until, err)
			}
		}
		until, err := s.RecordSignInFailure(ctx, "public", "a@x.io", t0, max, lock)
		if err != nil || !until.Equal(t0.Add(lock)) {
			t.Fatalf("failure %d: locked until %v (%v), want %v", max, until, err, t0.Add(lock))
		}
		if got, _ := s.SignInLockedUntil(ctx, "public", "a@x.io", t0.Add(time.Minute)); !got.Equal(t0.Add(lock)) {
			t.Fatalf("lock read back as %v", got)
		}
		if got, _ := s.SignInLockedUntil(ctx, "public", "a@x.io", t0.Add(lock)); !got.IsZero() {
			t.Fatalf("the lock outlived its end: %v", got)
		}
	})

	t.Run("accounts are counted apart, per tenant", func(t *testing.T) {
		s := open(t)
		for i := 0; i < max; i++ {
			if _, err := s.RecordSignInFailure(ctx, "public", "a@x.io", t0, max, lock); err != nil {
				t.Fatal(err)
			}
		}
		for _, other := range [][2]string{{"public", "b@x.io"}, {"acme", "a@x.io"}} {
			if got, _ := s.SignInLockedUntil(ctx, other[0], other[1], t0); !got.IsZero() {
				t.Fatalf("%v is locked by another account's failures", other)
			}
		}
	})

	t.Run("a successful sign-in forgets the failures", func(t *testing.T) {
		s := open(t)
		for i := 1; i < max; i++ {
			if _, err := s.RecordSignInFailure(ctx, "public", "a@x.io", t0, max, lock); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.ResetSignInFailures(ctx, "public", "a@x.io"); err != nil {
			t.Fatal(err)
		}
		if until, _ := s.RecordSignInFailure(ctx, "public", "a@x.io", t0, max, lock); !until.IsZero() {
			t.Fatal("the count went on after a reset")
		}
	})

	t.Run("concurrent failures are all counted", func(t *testing.T) {
		s := open(t)
		const n = 2*max - 1
		var wg sync.WaitGroup
		locks := make(chan time.Time, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				until, err := s.RecordSignInFailure(ctx, "public", "a@x.io", t0, max, lock)
				if err != nil {
					t.Error(err)
				}
				locks <- until
			}()
		}
		wg.Wait()
		close(locks)
		locked := 0
		for u := range locks {
			if !u.IsZero() {
				locked++
			}
		}
		// 5 failures with a limit of 3: the 3rd locks, and it and the two after it report the
		// lock. A lost update would leave fewer failures counted and fewer reporting it.
		if locked != n-(max-1) {
			t.Fatalf("%d of %d concurrent failures reported the lock, want %d", locked, n, n-(max-1))
		}
	})
}
