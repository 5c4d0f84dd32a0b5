package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/core/store"
)

// testSendLimits checks the sliding-window send budgets and the shared MFA attempt limit.
func testSendLimits(t *testing.T, open Factory) {
	ctx := context.Background()
	const window = 15 * time.Minute
	budgets := []store.SendBudget{{Key: "contact:a@x.io", Max: 3}, {Key: "user:u1", Max: 5}}
	reserve := func(t *testing.T, s store.Store, tenant string, b []store.SendBudget, at time.Time) time.Time {
		t.Helper()
		until, err := s.ReserveSend(ctx, tenant, b, window, at)
		if err != nil {
			t.Fatal(err)
		}
		return until
	}

	t.Run("a spent budget refuses until its oldest send leaves the window", func(t *testing.T) {
		s := open(t)
		for i := range 3 {
			if until := reserve(t, s, "public", budgets, t0.Add(time.Duration(i)*time.Minute)); !until.IsZero() {
				t.Fatalf("send %d refused until %v", i+1, until)
			}
		}
		if until := reserve(t, s, "public", budgets, t0.Add(5*time.Minute)); !until.Equal(t0.Add(window)) {
			t.Fatalf("the fourth send = %v, want refused until %v", until, t0.Add(window))
		}
		if until := reserve(t, s, "public", budgets, t0.Add(window)); !until.IsZero() {
			t.Fatalf("a send after the oldest left the window refused until %v", until)
		}
		if until := reserve(t, s, "public", budgets, t0.Add(window)); !until.Equal(t0.Add(time.Minute + window)) {
			t.Fatalf("the window slides one send at a time: %v", until)
		}
	})

	t.Run("a refused send counts against no budget", func(t *testing.T) {
		s := open(t)
		for range 3 {
			reserve(t, s, "public", budgets, t0)
		}
		reserve(t, s, "public", budgets, t0) // refused: the contact is spent
		// The user had 3 sends counted, not 4: two more to another contact fit.
		other := []store.SendBudget{{Key: "contact:b@x.io", Max: 3}, {Key: "user:u1", Max: 5}}
		for i := range 2 {
			if until := reserve(t, s, "public", other, t0); !until.IsZero() {
				t.Fatalf("send %d to another contact refused until %v", i+1, until)
			}
		}
		if until := reserve(t, s, "public", other, t0); until.IsZero() {
			t.Fatal("the user's budget of 5 let a sixth send through")
		}
	})

	t.Run("tenants have budgets of their own", func(t *testing.T) {
		s := open(t)
		for range 3 {
			reserve(t, s, "public", budgets, t0)
		}
		if until := reserve(t, s, "acme", budgets, t0); !until.IsZero() {
			t.Fatalf("another tenant's contact is refused until %v", until)
		}
	})

	t.Run("concurrent sends to one contact stop at its budget", func(t *testing.T) {
		s := open(t)
		const n = 12
		var wg sync.WaitGroup
		var mu sync.Mutex
		sent := 0
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				until, err := s.ReserveSend(ctx, "public", budgets[:1], window, t0)
				if err != nil {
					t.Error(err)
				}
				if until.IsZero() {
					mu.Lock()
					sent++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if sent != 3 {
			t.Fatalf("%d of %d concurrent sends went through, want 3", sent, n)
		}
	})

	t.Run("old sends are deleted", func(t *testing.T) {
		s := open(t)
		reserve(t, s, "public", budgets, t0)
		reserve(t, s, "public", budgets, t0.Add(time.Hour))
		if n, err := s.DeleteSendsBefore(ctx, t0.Add(time.Minute)); err != nil || n != 2 {
			t.Fatalf("DeleteSendsBefore = %d, %v; want the 2 rows of the first send", n, err)
		}
	})

	t.Run("the attempt limit is updated inside a transaction", func(t *testing.T) {
		s := open(t)
		newUser(t, s, "u1")
		const n = 10
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := s.UpdateAttemptLimit(ctx, "u1", func(l store.AttemptLimit) store.AttemptLimit {
					l.Failures++
					return l
				}); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if l := must(s.GetAttemptLimit(ctx, "u1"))(t); l.Failures != n {
			t.Fatalf("failures = %d, want %d: a concurrent update was lost", l.Failures, n)
		}
		if _, err := s.UpdateAttemptLimit(ctx, "nobody", func(l store.AttemptLimit) store.AttemptLimit { l.Failures++; return l }); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the limit of an unknown user: %v, want ErrNotFound", err)
		}
	})
}
