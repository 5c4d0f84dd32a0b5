package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/core/passwordless"
	"github.com/twofold-dev/twofold/core/store"
	"github.com/twofold-dev/twofold/core/store/postgres"
	"github.com/twofold-dev/twofold/test/pgtest"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// replicas opens n stores on one fresh schema, as n core replicas sharing a database would.
func replicas(t *testing.T, n int) []*postgres.Store {
	t.Helper()
	dsn := pgtest.Schema(t)
	out := make([]*postgres.Store, n)
	for i := range out {
		s, err := postgres.Open(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		out[i] = s
	}
	return out
}

// race runs f(i, replica) for i in [0, n) at once, spreading the calls over the replicas, and
// waits for all of them.
func race(n int, rs []*postgres.Store, f func(i int, s *postgres.Store)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			f(i, rs[i%len(rs)])
		}()
	}
	close(start)
	wg.Wait()
}

func TestReplicasStartingTogetherMigrateOnce(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Schema(t)
	stores := make([]*postgres.Store, 4)
	errs := make([]error, 4)
	var wg sync.WaitGroup
	for i := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = postgres.Open(ctx, dsn)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	var rows, versions int
	if err := stores[0].Pool().QueryRow(ctx, `SELECT count(*), count(DISTINCT version) FROM schema_migrations`).Scan(&rows, &versions); err != nil {
		t.Fatal(err)
	}
	v, err := stores[0].SchemaVersion(ctx)
	if err != nil || v < 5 || rows != versions || rows != v {
		t.Fatalf("schema_migrations has %d rows, %d versions, newest %d (%v): want one row per version", rows, versions, v, err)
	}
	if _, _, err := stores[1].PutTenant(ctx, "acme", []byte(`{}`), "h", t0); err != nil {
		t.Fatal(err)
	}
	again, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("reopening: %v", err)
	}
	defer again.Close()
	if v2, _ := again.SchemaVersion(ctx); v2 != v {
		t.Fatalf("schema version moved from %d to %d", v, v2)
	}
	if _, err := again.GetTenant(ctx, "acme"); err != nil {
		t.Fatalf("data lost across reopening: %v", err)
	}
}

func TestOpenAppliesStatementTimeoutUnlessTheDSNSetsOne(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Schema(t)
	for _, tc := range []struct{ dsn, want string }{
		{dsn, "5s"},
		{dsn + "&statement_timeout=250", "250ms"},
	} {
		s, err := postgres.Open(ctx, tc.dsn)
		if err != nil {
			t.Fatal(err)
		}
		var got string
		err = s.Pool().QueryRow(ctx, `SHOW statement_timeout`).Scan(&got)
		s.Close()
		if err != nil || got != tc.want {
			t.Fatalf("statement_timeout = %q, %v; want %q", got, err, tc.want)
		}
	}
}

func TestOpenRefusesABadDSN(t *testing.T) {
	if _, err := postgres.Open(context.Background(), "postgres://%zz"); err == nil {
		t.Fatal("Open accepted a DSN that does not parse")
	}
}

func newUser(t *testing.T, s store.Store, id string) {
	t.Helper()
	if _, err := s.CreateEmailPasswordUser(context.Background(), store.NewEmailPasswordUser{UserID: id, TenantID: "public", Email: id + "@x.io", PasswordHash: "h", Now: t0}); err != nil {
		t.Fatal(err)
	}
}

func TestTwoReplicas(t *testing.T) {
	ctx := context.Background()

	t.Run("failed TOTP attempts counted on both replicas are all stored", func(t *testing.T) {
		rs := replicas(t, 2)
		newUser(t, rs[0], "u1")
		const n = 20
		race(n, rs, func(_ int, s *postgres.Store) {
			_, err := s.VerifyTOTP(ctx, "u1", "", func(l store.AttemptLimit, _ []store.TOTPDevice) (store.TOTPAttempt, error) {
				return store.TOTPAttempt{Limit: store.AttemptLimit{Failures: l.Failures + 1}}, nil
			})
			if err != nil {
				t.Error(err)
			}
		})
		if l, err := rs[1].GetAttemptLimit(ctx, "u1"); err != nil || l.Failures != n {
			t.Fatalf("failures = %d, %v; want %d: a concurrent attempt was lost", l.Failures, err, n)
		}
	})

	t.Run("metadata merged on both replicas at once keeps every key", func(t *testing.T) {
		rs := replicas(t, 2)
		newUser(t, rs[0], "u1")
		const n = 20
		race(n, rs, func(i int, s *postgres.Store) {
			if _, err := s.UpdateUserMetadata(ctx, "u1", map[string]json.RawMessage{fmt.Sprintf("k%d", i): json.RawMessage(`true`)}, t0); err != nil {
				t.Error(err)
			}
		})
		if md, err := rs[1].GetUserMetadata(ctx, "u1"); err != nil || len(md) != n {
			t.Fatalf("metadata has %d keys (%v), want %d: a concurrent merge was lost", len(md), err, n)
		}
	})

	t.Run("password sign-ins reserved on both replicas at once are evaluated up to the limit", func(t *testing.T) {
		rs := replicas(t, 2)
		limits := store.SignInLimits{MaxAccountFailures: 10, AccountLock: time.Hour, MaxClientAttempts: 100, ClientWindow: time.Hour}
		var evaluated, locking atomic.Int32
		race(40, rs, func(_ int, s *postgres.Store) {
			res, err := s.ReserveSignIn(ctx, store.SignInAttempt{TenantID: "public", Account: "a@x.io", Client: "198.51.100.7", Now: t0, Limits: limits})
			if err != nil {
				t.Error(err)
			}
			if res.RefusedUntil.IsZero() {
				evaluated.Add(1)
			}
			if !res.LocksAccount.IsZero() {
				locking.Add(1)
			}
		})
		if evaluated.Load() != 10 || locking.Load() != 1 {
			t.Fatalf("%d of 40 attempts evaluated (%d locking), want 10 (1 locking)", evaluated.Load(), locking.Load())
		}
	})

	t.Run("a TOTP step is accepted once across replicas", func(t *testing.T) {
		rs := replicas(t, 2)
		newUser(t, rs[0], "u1")
		if err := rs[0].CreateTOTPDevice(ctx, store.TOTPDevice{UserID: "u1", Name: "phone", Secret: "S", Digits: 6, Period: 30, Skew: 1, CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
		var ok, used atomic.Int32
		race(10, rs, func(_ int, s *postgres.Store) {
			_, err := s.VerifyTOTP(ctx, "u1", "phone", func(store.AttemptLimit, []store.TOTPDevice) (store.TOTPAttempt, error) {
				return store.TOTPAttempt{Device: "phone", Step: 42}, nil
			})
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, store.ErrStepUsed):
				used.Add(1)
			default:
				t.Error(err)
			}
		})
		if ok.Load() != 1 || used.Load() != 9 {
			t.Fatalf("%d accepted, %d refused as used; want 1 and 9", ok.Load(), used.Load())
		}
	})

	t.Run("a passwordless code is consumed once across replicas", func(t *testing.T) {
		rs := replicas(t, 2)
		d, sec, err := passwordless.NewDevice(passwordless.Contact{Email: "a@x.io"}, passwordless.FlowUserInputCode, t0)
		if err != nil {
			t.Fatal(err)
		}
		if err := rs[0].CreatePasswordlessDevice(ctx, "public", d); err != nil {
			t.Fatal(err)
		}
		var ok, gone atomic.Int32
		race(10, rs, func(_ int, s *postgres.Store) {
			_, out, err := s.ConsumePasswordlessCode(ctx, "public", d.PreAuthSessionID, func(d *passwordless.Device) (passwordless.Outcome, error) {
				return d.Consume(passwordless.Input{DeviceID: sec.DeviceID, UserInputCode: sec.UserInputCode}, t0)
			})
			switch {
			case err == nil && out.Status == passwordless.StatusOK:
				ok.Add(1)
			case errors.Is(err, store.ErrNotFound):
				gone.Add(1)
			default:
				t.Errorf("consume = %+v, %v", out, err)
			}
		})
		if ok.Load() != 1 || gone.Load() != 9 {
			t.Fatalf("%d consumes succeeded, %d found the device gone; want 1 and 9", ok.Load(), gone.Load())
		}
	})

	t.Run("an account token is used once across replicas", func(t *testing.T) {
		rs := replicas(t, 2)
		tok := store.AccountToken{Hash: "h", Kind: store.TokenPasswordReset, TenantID: "public", RecipeUserID: "u1", Email: "u1@x.io", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
		if err := rs[0].CreateAccountToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		var ok atomic.Int32
		race(10, rs, func(_ int, s *postgres.Store) {
			_, err := s.ConsumeAccountToken(ctx, tok.Kind, tok.Hash, t0)
			if err == nil {
				ok.Add(1)
			} else if !errors.Is(err, store.ErrNotFound) {
				t.Error(err)
			}
		})
		if ok.Load() != 1 {
			t.Fatalf("%d of 10 uses succeeded", ok.Load())
		}
	})

	t.Run("of two sibling refresh tokens used at once on two replicas one wins and the other is theft", func(t *testing.T) {
		for round := range 5 {
			rs := replicas(t, 2)
			newUser(t, rs[0], "u1")
			handle := fmt.Sprintf("s%d", round)
			if err := rs[0].CreateSession(ctx, store.Session{Handle: handle, UserID: "u1", RecipeUserID: "u1", TenantID: "public",
				CreatedAt: t0, ExpiresAt: t0.Add(time.Hour), CurrentRefreshHash: "r0"}); err != nil {
				t.Fatal(err)
			}
			for _, child := range []string{"a", "b"} {
				if _, err := rs[0].RotateRefreshToken(ctx, "r0", child, t0); err != nil {
					t.Fatal(err)
				}
			}
			var ok, theft atomic.Int32
			race(2, rs, func(i int, s *postgres.Store) {
				_, err := s.RotateRefreshToken(ctx, []string{"a", "b"}[i], fmt.Sprintf("next%d", i), t0)
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, store.ErrTokenTheft):
					theft.Add(1)
				default:
					t.Errorf("rotation %d: %v", i, err)
				}
			})
			// Two clients holding children of one token means one of them stole it: the
			// second to arrive revokes the session, on every replica.
			if ok.Load() != 1 || theft.Load() != 1 {
				t.Fatalf("round %d: %d rotations succeeded and %d were theft; want 1 and 1", round, ok.Load(), theft.Load())
			}
			if s, err := rs[1].GetSession(ctx, handle); err != nil || s.RevokedAt.IsZero() {
				t.Fatalf("round %d: session = %+v, %v; want it revoked", round, s, err)
			}
		}
	})

	t.Run("replicas rotating signing keys at once store one", func(t *testing.T) {
		rs := replicas(t, 3)
		var created atomic.Int32
		race(12, rs, func(i int, s *postgres.Store) {
			ok, err := s.CreateSigningKeyIfNone(ctx, store.SigningKey{KID: fmt.Sprintf("k%d", i), PrivateDER: []byte{1}, CreatedAt: t0}, t0.Add(-time.Hour))
			if err != nil {
				t.Error(err)
			}
			if ok {
				created.Add(1)
			}
		})
		keys, err := rs[0].ListSigningKeys(ctx)
		if err != nil || created.Load() != 1 || len(keys) != 1 {
			t.Fatalf("created %d, stored %d (%v); want 1", created.Load(), len(keys), err)
		}
	})

	t.Run("linking one user to two primaries at once links it to one", func(t *testing.T) {
		rs := replicas(t, 2)
		for _, id := range []string{"p1", "p2", "r1"} {
			newUser(t, rs[0], id)
		}
		var ok, refused atomic.Int32
		race(2, rs, func(i int, s *postgres.Store) {
			_, err := s.LinkAccounts(ctx, "r1", []string{"p1", "p2"}[i])
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, store.ErrAlreadyLinked), errors.Is(err, store.ErrNotFound):
				refused.Add(1)
			default:
				t.Errorf("link %d: %v", i, err)
			}
		})
		if ok.Load() != 1 || refused.Load() != 1 {
			t.Fatalf("%d links succeeded, %d refused; want 1 and 1", ok.Load(), refused.Load())
		}
		u, err := rs[1].GetUser(ctx, "r1")
		if err != nil || (u.ID != "p1" && u.ID != "p2") || len(u.LoginMethods) != 2 {
			t.Fatalf("r1 belongs to %+v, %v", u, err)
		}
	})

	t.Run("a third-party identity signed up on two replicas at once makes one user", func(t *testing.T) {
		rs := replicas(t, 2)
		id := store.ThirdPartyIdentity{TenantID: "public", ThirdPartyID: "google", ThirdPartyUserID: "g1", Email: "a@x.io"}
		var created atomic.Int32
		users := make([]string, 6)
		race(6, rs, func(i int, s *postgres.Store) {
			u, c, err := s.UpsertThirdPartyUser(ctx, id, fmt.Sprintf("u%d", i), t0)
			if err != nil {
				t.Error(err)
				return
			}
			if c {
				created.Add(1)
			}
			users[i] = u.ID
		})
		if created.Load() != 1 {
			t.Fatalf("%d sign-ups created a user, want 1", created.Load())
		}
		for _, u := range users[1:] {
			if u != users[0] {
				t.Fatalf("the sign-ups returned different users: %v", users)
			}
		}
	})
}

// lockedByA opens replicas a (with extra DSN parameters) and b on one schema, starts a TOTP
// verification on a that stops inside its transaction, holding the user's lock, until release
// is closed, and starts one on b, which must wait for that lock. It returns when both are
// under way; aDone and bDone receive their results.
func lockedByA(t *testing.T, aParams string) (a, b *postgres.Store, release chan struct{}, aDone, bDone chan error) {
	t.Helper()
	ctx := context.Background()
	dsn := pgtest.Schema(t)
	var err error
	if a, err = postgres.Open(ctx, dsn+aParams); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if b, err = postgres.Open(ctx, dsn); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	newUser(t, a, "u1")
	fail := func(l store.AttemptLimit, _ []store.TOTPDevice) (store.TOTPAttempt, error) {
		return store.TOTPAttempt{Limit: store.AttemptLimit{Failures: l.Failures + 1}}, nil
	}
	locked := make(chan struct{})
	release = make(chan struct{})
	aDone, bDone = make(chan error, 1), make(chan error, 1)
	go func() {
		_, err := a.VerifyTOTP(ctx, "u1", "", func(l store.AttemptLimit, d []store.TOTPDevice) (store.TOTPAttempt, error) {
			close(locked)
			<-release
			return fail(l, d)
		})
		aDone <- err
	}()
	<-locked
	go func() {
		_, err := b.VerifyTOTP(ctx, "u1", "", fail)
		bDone <- err
	}()
	select {
	case err := <-bDone:
		t.Fatalf("replica b did not wait for a's lock: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	return a, b, release, aDone, bDone
}

// afterAFault checks that b went on once a's transaction was gone, that a's own call failed,
// and that a's next call works and sees b's failure alone.
func afterAFault(t *testing.T, a *postgres.Store, release chan struct{}, aDone, bDone chan error) {
	t.Helper()
	select {
	case err := <-bDone:
		if err != nil {
			t.Fatalf("replica b after a's fault: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("replica b still waits for a lock of a transaction that is gone")
	}
	close(release)
	if err := <-aDone; err == nil {
		t.Fatal("replica a's verification reported success though its transaction was ended before its writes")
	}
	l, err := a.GetAttemptLimit(context.Background(), "u1")
	if err != nil || l.Failures != 1 {
		t.Fatalf("replica a's next call = %+v, %v; want it to work and see b's one failure", l, err)
	}
}

// TestAReplicaWhoseConnectionDiesMidTransactionBlocksNobody: replica a holds a user's lock in
// the middle of a TOTP verification when its connection dies (the process was killed, or the
// network went). Its transaction rolls back, replica b, which was waiting for the lock, goes
// on, and a's pool replaces the connection for its next call.
func TestAReplicaWhoseConnectionDiesMidTransactionBlocksNobody(t *testing.T) {
	a, b, release, aDone, bDone := lockedByA(t, "&application_name=replica-a")
	var killed int
	if err := b.Pool().QueryRow(context.Background(), `SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE application_name = 'replica-a' AND state = 'idle in transaction') k`).Scan(&killed); err != nil || killed != 1 {
		t.Fatalf("terminated %d of replica a's connections (%v), want the one in its transaction", killed, err)
	}
	afterAFault(t, a, release, aDone, bDone)
}

// TestAReplicaThatHangsMidTransactionLosesItsLocks: replica a stops inside a transaction and
// stays connected (a stuck process). The server ends the transaction after
// idle_in_transaction_session_timeout (30 s by default; 300 ms here) and replica b goes on.
func TestAReplicaThatHangsMidTransactionLosesItsLocks(t *testing.T) {
	a, _, release, aDone, bDone := lockedByA(t, "&idle_in_transaction_session_timeout=300")
	afterAFault(t, a, release, aDone, bDone)
}

// TestADatabaseRestartUnderLoadLosesNoAcknowledgedWrite restarts the database (a fast
// shutdown closes every connection, as a restart or failover does) while two replicas count
// failed TOTP attempts for one user. Calls may fail while it is down; every call that
// reported success must be in the count afterwards, and both replicas must serve again once
// it is back, through connections their pools replaced.
func TestADatabaseRestartUnderLoadLosesNoAcknowledgedWrite(t *testing.T) {
	ctx := context.Background()
	rs := replicas(t, 2)
	newUser(t, rs[0], "u1")
	fail := func(l store.AttemptLimit, _ []store.TOTPDevice) (store.TOTPAttempt, error) {
		return store.TOTPAttempt{Limit: store.AttemptLimit{Failures: l.Failures + 1}}, nil
	}
	var ok, failed, okAfter atomic.Int64
	var restarted atomic.Bool
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				_, err := rs[i%2].VerifyTOTP(cctx, "u1", "", fail)
				cancel()
				if err != nil {
					failed.Add(1)
					time.Sleep(10 * time.Millisecond)
					continue
				}
				ok.Add(1)
				if restarted.Load() {
					okAfter.Add(1)
				}
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	pgtest.Restart(t)
	restarted.Store(true)
	deadline := time.Now().Add(5 * time.Second)
	for okAfter.Load() < 20 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if okAfter.Load() < 20 {
		t.Fatalf("%d calls succeeded after the restart (%d failed in all): the replicas did not recover", okAfter.Load(), failed.Load())
	}
	var l store.AttemptLimit
	var err error
	for range 50 { // the first call on a pool may still meet a connection from before
		if l, err = rs[1].GetAttemptLimit(ctx, "u1"); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	// A call that failed may still have committed (the answer to COMMIT was lost), so the
	// count lies between the acknowledged calls and all calls.
	if n := int64(l.Failures); n < ok.Load() || n > ok.Load()+failed.Load() {
		t.Fatalf("count = %d after %d acknowledged and %d failed calls", n, ok.Load(), failed.Load())
	}
	t.Logf("%d acknowledged, %d failed during the restart, count %d", ok.Load(), failed.Load(), l.Failures)
}

// TestAWaitForAnotherReplicasLockIsBounded: while replica a holds a user's lock, a call on
// replica b gives up when its context ends, and with a short statement_timeout in its DSN
// when the server cancels the wait, instead of queueing behind a for as long as a holds on.
func TestAWaitForAnotherReplicasLockIsBounded(t *testing.T) {
	a, b, release, aDone, bDone := lockedByA(t, "")
	defer func() {
		close(release)
		<-aDone
		<-bDone
	}()
	fail := func(l store.AttemptLimit, _ []store.TOTPDevice) (store.TOTPAttempt, error) {
		return store.TOTPAttempt{Limit: store.AttemptLimit{Failures: l.Failures + 1}}, nil
	}
	dsn := a.Pool().Config().ConnString()
	short, err := postgres.Open(context.Background(), dsn+"&statement_timeout=200")
	if err != nil {
		t.Fatal(err)
	}
	defer short.Close()
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"a context deadline", func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			_, err := b.VerifyTOTP(ctx, "u1", "", fail)
			return err
		}},
		{"the statement timeout", func() error {
			_, err := short.VerifyTOTP(context.Background(), "u1", "", fail)
			return err
		}},
	} {
		start := time.Now()
		err := tc.call()
		if took := time.Since(start); err == nil || took > 2*time.Second {
			t.Fatalf("with %s, a call waiting for the lock returned %v after %v; want an error within 2s", tc.name, err, took)
		}
	}
}
