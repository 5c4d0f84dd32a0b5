package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/core/store"
)

// testSignInThrottle checks the reservation of sign-in attempts per account and per client.
func testSignInThrottle(t *testing.T, open Factory) {
	ctx := context.Background()
	limits := store.SignInLimits{MaxAccountFailures: 3, AccountLock: 15 * time.Minute, MaxClientAttempts: 5, ClientWindow: 10 * time.Minute}
	attempt := func(account, client string, at time.Time) store.SignInAttempt {
		return store.SignInAttempt{TenantID: "public", Account: account, Client: client, Now: at, Limits: limits}
	}
	reserve := func(t *testing.T, s store.Store, a store.SignInAttempt) store.SignInReservation {
		t.Helper()
		res, err := s.ReserveSignIn(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}

	t.Run("the attempt that reaches the limit locks the account until the lock ends", func(t *testing.T) {
		s := open(t)
		for i := range limits.MaxAccountFailures - 1 {
			if res := reserve(t, s, attempt("a@x.io", "", t0)); !res.RefusedUntil.IsZero() || !res.LocksAccount.IsZero() {
				t.Fatalf("attempt %d = %+v, want evaluated without a lock", i+1, res)
			}
		}
		if res := reserve(t, s, attempt("a@x.io", "", t0)); !res.LocksAccount.Equal(t0.Add(limits.AccountLock)) || !res.RefusedUntil.IsZero() {
			t.Fatalf("the attempt reaching the limit = %+v, want evaluated and locking", res)
		}
		if res := reserve(t, s, attempt("a@x.io", "", t0.Add(time.Minute))); !res.RefusedUntil.Equal(t0.Add(limits.AccountLock)) {
			t.Fatalf("an attempt during the lock = %+v, want refused until the lock ends", res)
		}
		if res := reserve(t, s, attempt("a@x.io", "", t0.Add(limits.AccountLock))); !res.RefusedUntil.IsZero() || !res.LocksAccount.IsZero() {
			t.Fatalf("the first attempt after the lock = %+v, want evaluated with a fresh count", res)
		}
	})

	t.Run("accounts and tenants are counted apart", func(t *testing.T) {
		s := open(t)
		for range limits.MaxAccountFailures {
			reserve(t, s, attempt("a@x.io", "", t0))
		}
		for _, a := range []store.SignInAttempt{attempt("b@x.io", "", t0), {TenantID: "acme", Account: "a@x.io", Now: t0, Limits: limits}} {
			if res := reserve(t, s, a); !res.RefusedUntil.IsZero() {
				t.Fatalf("%s/%s is refused by another account's lock", a.TenantID, a.Account)
			}
		}
	})

	t.Run("a correct password forgets the account's failures and lifts the lock it set", func(t *testing.T) {
		s := open(t)
		for range limits.MaxAccountFailures - 1 {
			reserve(t, s, attempt("a@x.io", "c1", t0))
		}
		if err := s.SignInSucceeded(ctx, "public", "a@x.io", "c1"); err != nil {
			t.Fatal(err)
		}
		if res := reserve(t, s, attempt("a@x.io", "c1", t0)); !res.LocksAccount.IsZero() {
			t.Fatalf("the count went on after a success: %+v", res)
		}
	})

	t.Run("one client's failures over many accounts spend its budget, and a success gives one back", func(t *testing.T) {
		s := open(t)
		for i := range limits.MaxClientAttempts {
			if res := reserve(t, s, attempt(fmt.Sprintf("u%d@x.io", i), "198.51.100.7", t0)); !res.RefusedUntil.IsZero() {
				t.Fatalf("attempt %d of the client = %+v", i+1, res)
			}
		}
		res := reserve(t, s, attempt("fresh@x.io", "198.51.100.7", t0.Add(time.Minute)))
		if !res.ClientRefused || !res.RefusedUntil.Equal(t0.Add(limits.ClientWindow)) {
			t.Fatalf("the client over its budget = %+v, want refused until its window ends", res)
		}
		if res := reserve(t, s, attempt("fresh@x.io", "", t0.Add(time.Minute))); !res.LocksAccount.IsZero() || !res.RefusedUntil.IsZero() {
			t.Fatalf("the refused attempt was counted against the account: %+v", res)
		}
		if res := reserve(t, s, attempt("fresh@x.io", "203.0.113.9", t0.Add(time.Minute))); !res.RefusedUntil.IsZero() {
			t.Fatalf("another client is refused by the first one's budget: %+v", res)
		}
		if err := s.SignInSucceeded(ctx, "public", "u0@x.io", "198.51.100.7"); err != nil {
			t.Fatal(err)
		}
		if res := reserve(t, s, attempt("u0@x.io", "198.51.100.7", t0.Add(time.Minute))); !res.RefusedUntil.IsZero() {
			t.Fatalf("a success did not give the client its attempt back: %+v", res)
		}
		if res := reserve(t, s, attempt("u9@x.io", "198.51.100.7", t0.Add(limits.ClientWindow))); !res.RefusedUntil.IsZero() {
			t.Fatalf("the client is still refused after its window: %+v", res)
		}
	})

	t.Run("of many concurrent attempts exactly the limit are evaluated", func(t *testing.T) {
		s := open(t)
		const n = 4 * 3
		var wg sync.WaitGroup
		results := make(chan store.SignInReservation, n)
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := s.ReserveSignIn(ctx, attempt("a@x.io", "", t0))
				if err != nil {
					t.Error(err)
				}
				results <- res
			}()
		}
		wg.Wait()
		close(results)
		evaluated, locking := 0, 0
		for res := range results {
			if res.RefusedUntil.IsZero() {
				evaluated++
			}
			if !res.LocksAccount.IsZero() {
				locking++
			}
		}
		if evaluated != limits.MaxAccountFailures || locking != 1 {
			t.Fatalf("%d of %d concurrent attempts were evaluated (%d locking), want %d (1 locking)", evaluated, n, locking, limits.MaxAccountFailures)
		}
	})
}
