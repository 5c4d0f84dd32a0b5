package storetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/core/store"
)

// handles lists the handles of revocations in order.
func handles(rs store.Revocations) []string {
	out := make([]string, 0, len(rs.Sessions))
	for _, r := range rs.Sessions {
		out = append(out, r.Handle)
	}
	return out
}

func testRevocationCursor(t *testing.T, open Factory) {
	ctx := context.Background()
	since := func(t *testing.T, s store.Store, tenant string, cursor int64) store.Revocations {
		t.Helper()
		return must(s.RevocationsSince(ctx, tenant, cursor, t0))(t)
	}
	t.Run("a tenant without revocations is at cursor 0 and lists nothing", func(t *testing.T) {
		s := open(t)
		got := since(t, s, "public", 0)
		if got.Cursor != 0 || len(got.Sessions) != 0 || !got.Full {
			t.Fatalf("RevocationsSince = %+v, want cursor 0, nothing, full", got)
		}
	})
	t.Run("a reader asking with its cursor gets only what was revoked after it", func(t *testing.T) {
		s := open(t)
		newUser(t, s, "u1")
		for _, h := range []string{"s1", "s2", "s3"} {
			createSession(t, s, h, "u1", "public", "r-"+h)
		}
		must(s.RevokeSession(ctx, "s1", t0.Add(time.Minute)))(t)
		first := since(t, s, "public", 0)
		if got := handles(first); !slices.Equal(got, []string{"s1"}) || !first.Full || first.Cursor <= 0 {
			t.Fatalf("first ask = %+v, want s1, full, a positive cursor", first)
		}
		must(s.RevokeSession(ctx, "s2", t0.Add(2*time.Minute)))(t)
		must(s.RevokeSession(ctx, "s3", t0.Add(3*time.Minute)))(t)
		next := since(t, s, "public", first.Cursor)
		if got := handles(next); !slices.Equal(got, []string{"s2", "s3"}) || next.Full || next.Cursor <= first.Cursor {
			t.Fatalf("ask after cursor %d = %+v, want s2 then s3, not full, a larger cursor", first.Cursor, next)
		}
		if !next.Sessions[0].RevokedAt.Equal(t0.Add(2 * time.Minute)) {
			t.Fatalf("s2 revoked at %v, want %v", next.Sessions[0].RevokedAt, t0.Add(2*time.Minute))
		}
		if again := since(t, s, "public", next.Cursor); len(again.Sessions) != 0 || again.Cursor != next.Cursor || again.Full {
			t.Fatalf("asking with the current cursor = %+v, want nothing at cursor %d", again, next.Cursor)
		}
		if got := must(s.RevocationCursor(ctx, "public"))(t); got != next.Cursor {
			t.Fatalf("RevocationCursor = %d, want %d", got, next.Cursor)
		}
		if next.Sessions[0].Seq <= first.Cursor || next.Sessions[1].Seq != next.Cursor {
			t.Fatalf("cursor values of s2 and s3 = %d and %d, want above %d and the last at %d",
				next.Sessions[0].Seq, next.Sessions[1].Seq, first.Cursor, next.Cursor)
		}
	})
	t.Run("revoking a revoked session does not list it again", func(t *testing.T) {
		s := open(t)
		newUser(t, s, "u1")
		createSession(t, s, "s1", "u1", "public", "r1")
		must(s.RevokeSession(ctx, "s1", t0.Add(time.Minute)))(t)
		cursor := since(t, s, "public", 0).Cursor
		must(s.RevokeSession(ctx, "s1", t0.Add(time.Hour)))(t)
		if got := since(t, s, "public", cursor); len(got.Sessions) != 0 {
			t.Fatalf("after revoking again: %+v, want nothing new", got)
		}
	})
	t.Run("a user's sessions revoked at once are listed for each of their tenants", func(t *testing.T) {
		s := open(t)
		newUser(t, s, "u1")
		newUser(t, s, "u2")
		createSession(t, s, "s1", "u1", "public", "r1")
		createSession(t, s, "s2", "u1", "public", "r2")
		createSession(t, s, "s3", "u1", "other", "r3")
		createSession(t, s, "s4", "u2", "public", "r4")
		publicBefore, otherBefore := since(t, s, "public", 0).Cursor, since(t, s, "other", 0).Cursor
		if n := must(s.RevokeUserSessions(ctx, "u1", t0.Add(time.Minute)))(t); n != 3 {
			t.Fatalf("RevokeUserSessions = %d, want 3", n)
		}
		pub := since(t, s, "public", publicBefore)
		if got := handles(pub); !slices.Equal(got, []string{"s1", "s2"}) {
			t.Fatalf("public after the user's revocation = %+v, want s1 and s2", pub)
		}
		if got := handles(since(t, s, "other", otherBefore)); !slices.Equal(got, []string{"s3"}) {
			t.Fatalf("other after the user's revocation = %v, want s3", got)
		}
	})
	t.Run("a session revoked for theft is listed", func(t *testing.T) {
		s := open(t)
		newUser(t, s, "u1")
		createSession(t, s, "s1", "u1", "public", "r0")
		must(s.RotateRefreshToken(ctx, "r0", "r1", t0))(t)
		must(s.RotateRefreshToken(ctx, "r1", "r2", t0))(t)
		s.RotateRefreshToken(ctx, "r0", "evil", t0.Add(time.Second))
		if got := handles(since(t, s, "public", 0)); !slices.Equal(got, []string{"s1"}) {
			t.Fatalf("after theft = %v, want s1", got)
		}
	})
	t.Run("a cursor the tenant never reached gets the full list", func(t *testing.T) {
		s := open(t)
		newUser(t, s, "u1")
		createSession(t, s, "s1", "u1", "public", "r1")
		must(s.RevokeSession(ctx, "s1", t0.Add(time.Minute)))(t)
		got := since(t, s, "public", 1000)
		if !got.Full || !slices.Equal(handles(got), []string{"s1"}) || got.Cursor >= 1000 {
			t.Fatalf("asking with cursor 1000 = %+v, want the full list at the tenant's cursor", got)
		}
	})
	t.Run("sessions revoked before notBefore are left out", func(t *testing.T) {
		s := open(t)
		newUser(t, s, "u1")
		createSession(t, s, "s1", "u1", "public", "r1")
		createSession(t, s, "s2", "u1", "public", "r2")
		must(s.RevokeSession(ctx, "s1", t0.Add(time.Minute)))(t)
		must(s.RevokeSession(ctx, "s2", t0.Add(time.Hour)))(t)
		got := must(s.RevocationsSince(ctx, "public", 0, t0.Add(30*time.Minute)))(t)
		if !slices.Equal(handles(got), []string{"s2"}) {
			t.Fatalf("RevocationsSince with notBefore after s1 = %v, want s2", handles(got))
		}
	})
	t.Run("a reader following its cursor misses no revocation made concurrently", func(t *testing.T) {
		s := open(t)
		newUser(t, s, "u1")
		const writers, each = 4, 15
		for w := range writers {
			for i := range each {
				createSession(t, s, fmt.Sprintf("s%d-%d", w, i), "u1", "public", fmt.Sprintf("r%d-%d", w, i))
			}
		}
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					if _, err := s.RevokeSession(ctx, fmt.Sprintf("s%d-%d", w, i), t0.Add(time.Minute)); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		seen := map[string]bool{}
		var cursor int64
		for finished := false; !finished; {
			select {
			case <-done:
				finished = true
			default:
			}
			got := since(t, s, "public", cursor)
			if got.Full {
				clear(seen)
			}
			for _, h := range handles(got) {
				seen[h] = true
			}
			cursor = got.Cursor
		}
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		// One more ask after the last writer finished, as the next poll would.
		for _, h := range handles(since(t, s, "public", cursor)) {
			seen[h] = true
		}
		if len(seen) != writers*each {
			t.Fatalf("the reader saw %d of %d revocations", len(seen), writers*each)
		}
	})
}
