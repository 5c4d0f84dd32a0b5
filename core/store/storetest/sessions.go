package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/core/store"
)

func testSessions(t *testing.T, open Factory) {
	ctx := context.Background()
	t.Run("a created session reads back", func(t *testing.T) {
		s := open(t)
		newUser(t, s, "u1")
		want := createSession(t, s, "s1", "u1", "public", "r1")
		got := must(s.GetSession(ctx, "s1"))(t)
		if got.Handle != want.Handle || got.UserID != "u1" || got.TenantID != "public" || string(got.Claims) != string(want.Claims) ||
			!got.ExpiresAt.Equal(want.ExpiresAt) || !got.RevokedAt.IsZero() || got.CurrentRefreshHash != "r1" {
			t.Fatalf("GetSession = %+v", got)
		}
	})
	t.Run("revoking is recorded once and listed for the tenant", func(t *testing.T) {
		s := open(t)
		newUser(t, s, "u1")
		createSession(t, s, "s1", "u1", "public", "r1")
		createSession(t, s, "s2", "u1", "other", "r2")
		got := must(s.RevokeSession(ctx, "s1", t0.Add(time.Minute)))(t)
		if !got.RevokedAt.Equal(t0.Add(time.Minute)) {
			t.Fatalf("RevokedAt = %v", got.RevokedAt)
		}
		again := must(s.RevokeSession(ctx, "s1", t0.Add(time.Hour)))(t)
		if !again.RevokedAt.Equal(t0.Add(time.Minute)) {
			t.Fatalf("revoking twice moved RevokedAt to %v", again.RevokedAt)
		}
		if _, err := s.RevokeSession(ctx, "nope", t0); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("revoking an unknown session: %v", err)
		}
		list := must(s.RevokedSince(ctx, "public", t0))(t)
		if len(list) != 1 || list[0].Handle != "s1" {
			t.Fatalf("RevokedSince = %+v", list)
		}
		if list := must(s.RevokedSince(ctx, "public", t0.Add(2*time.Minute)))(t); len(list) != 0 {
			t.Fatalf("RevokedSince after the revocation = %+v", list)
		}
	})
	t.Run("revoking a user's sessions counts only live ones", func(t *testing.T) {
		s := open(t)
		newUser(t, s, "u1")
		newUser(t, s, "u2")
		createSession(t, s, "s1", "u1", "public", "r1")
		createSession(t, s, "s2", "u1", "public", "r2")
		createSession(t, s, "s3", "u2", "public", "r3")
		must(s.RevokeSession(ctx, "s1", t0))(t)
		if n := must(s.RevokeUserSessions(ctx, "u1", t0))(t); n != 1 {
			t.Fatalf("RevokeUserSessions = %d, want 1", n)
		}
		if got := must(s.GetSession(ctx, "s3"))(t); !got.RevokedAt.IsZero() {
			t.Fatalf("another user's session was revoked")
		}
	})
	t.Run("old sessions are deleted with their tokens", func(t *testing.T) {
		s := open(t)
		newUser(t, s, "u1")
		createSession(t, s, "s1", "u1", "public", "r1")
		createSession(t, s, "s2", "u1", "public", "r2")
		must(s.RevokeSession(ctx, "s1", t0))(t)
		if n := must(s.DeleteSessionsBefore(ctx, t0.Add(time.Second)))(t); n != 1 {
			t.Fatalf("DeleteSessionsBefore = %d, want 1", n)
		}
		if _, err := s.RotateRefreshToken(ctx, "r1", "r1b", t0); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the token of a deleted session: %v", err)
		}
		must(s.GetSession(ctx, "s2"))(t)
	})
}

func testRotation(t *testing.T, open Factory) {
	ctx := context.Background()
	setup := func(t *testing.T) store.Store {
		s := open(t)
		newUser(t, s, "u1")
		createSession(t, s, "s1", "u1", "public", "r0")
		return s
	}
	t.Run("the current token yields a child and stays current until the child is used", func(t *testing.T) {
		s := setup(t)
		rot := must(s.RotateRefreshToken(ctx, "r0", "r1", t0))(t)
		if rot.Session.Handle != "s1" || rot.ParentHash != "r0" || rot.Session.CurrentRefreshHash != "r0" {
			t.Fatalf("rotation = %+v", rot)
		}
		// A lost answer: the client retries with r0 and gets another child.
		must(s.RotateRefreshToken(ctx, "r0", "r1b", t0))(t)
		rot = must(s.RotateRefreshToken(ctx, "r1", "r2", t0))(t)
		if rot.Session.CurrentRefreshHash != "r1" {
			t.Fatalf("the used child did not become current: %+v", rot)
		}
		if _, err := s.RotateRefreshToken(ctx, "r1b", "x", t0); !errors.Is(err, store.ErrTokenTheft) {
			t.Fatalf("an unused sibling presented after its brother's use = %v, want ErrTokenTheft", err)
		}
	})
	t.Run("a thief's child of the current token used first makes the victim's child theft", func(t *testing.T) {
		s := setup(t)
		must(s.RotateRefreshToken(ctx, "r0", "victim", t0))(t)
		// The thief replays r0 before the victim used its child, and uses the child it got.
		must(s.RotateRefreshToken(ctx, "r0", "thief", t0))(t)
		must(s.RotateRefreshToken(ctx, "thief", "thief2", t0))(t)
		if _, err := s.RotateRefreshToken(ctx, "victim", "v2", t0.Add(time.Second)); !errors.Is(err, store.ErrTokenTheft) {
			t.Fatalf("the victim's child after the thief's = %v, want ErrTokenTheft", err)
		}
		if _, err := s.RotateRefreshToken(ctx, "thief2", "thief3", t0.Add(time.Second)); !errors.Is(err, store.ErrSessionRevoked) {
			t.Fatalf("the thief's token after the theft was detected = %v, want ErrSessionRevoked", err)
		}
	})
	t.Run("two children of one token used at once: one wins, the other is theft", func(t *testing.T) {
		s := setup(t)
		must(s.RotateRefreshToken(ctx, "r0", "a", t0))(t)
		must(s.RotateRefreshToken(ctx, "r0", "b", t0))(t)
		errs := make(chan error, 2)
		for _, tok := range []string{"a", "b"} {
			go func() {
				_, err := s.RotateRefreshToken(ctx, tok, tok+"2", t0)
				errs <- err
			}()
		}
		var ok, theft int
		for range 2 {
			switch err := <-errs; {
			case err == nil:
				ok++
			case errors.Is(err, store.ErrTokenTheft):
				theft++
			default:
				t.Errorf("concurrent use of a child: %v", err)
			}
		}
		if ok != 1 || theft != 1 {
			t.Fatalf("%d rotations succeeded and %d were theft, want 1 and 1", ok, theft)
		}
		if got := must(s.GetSession(ctx, "s1"))(t); got.RevokedAt.IsZero() {
			t.Fatalf("the session survived two clients using its tokens")
		}
	})
	t.Run("a token mints a bounded number of unused children and then changes nothing", func(t *testing.T) {
		s := setup(t)
		for i := range store.MaxUnusedRefreshChildren {
			must(s.RotateRefreshToken(ctx, "r0", fmt.Sprintf("c%d", i), t0))(t)
		}
		if _, err := s.RotateRefreshToken(ctx, "r0", "one-too-many", t0); !errors.Is(err, store.ErrTooManyRefreshes) {
			t.Fatalf("child number %d = %v, want ErrTooManyRefreshes", store.MaxUnusedRefreshChildren+1, err)
		}
		if _, err := s.RotateRefreshToken(ctx, "one-too-many", "x", t0); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the refused child was stored: %v", err)
		}
		// The session lives on: using one of the children works.
		if rot := must(s.RotateRefreshToken(ctx, "c3", "d0", t0))(t); rot.Session.CurrentRefreshHash != "c3" {
			t.Fatalf("rotation after the refusal = %+v", rot)
		}
	})
	t.Run("reusing a parent after its child was used is theft and revokes the session", func(t *testing.T) {
		s := setup(t)
		must(s.RotateRefreshToken(ctx, "r0", "r1", t0))(t)
		must(s.RotateRefreshToken(ctx, "r1", "r2", t0))(t)
		_, err := s.RotateRefreshToken(ctx, "r0", "evil", t0.Add(time.Second))
		if !errors.Is(err, store.ErrTokenTheft) {
			t.Fatalf("reuse of r0 = %v, want ErrTokenTheft", err)
		}
		got := must(s.GetSession(ctx, "s1"))(t)
		if !got.RevokedAt.Equal(t0.Add(time.Second)) {
			t.Fatalf("theft did not revoke the session: %+v", got)
		}
		if _, err := s.RotateRefreshToken(ctx, "r2", "r3", t0); !errors.Is(err, store.ErrSessionRevoked) {
			t.Fatalf("the legitimate child after theft: %v, want ErrSessionRevoked", err)
		}
	})
	t.Run("a session with a refresh lifetime slides its expiry at every rotation", func(t *testing.T) {
		s := open(t)
		newUser(t, s, "u1")
		sess := store.Session{Handle: "s2", UserID: "u1", RecipeUserID: "u1", TenantID: "public", CreatedAt: t0,
			ExpiresAt: t0.Add(time.Hour), RefreshLifetime: time.Hour, CurrentRefreshHash: "a0"}
		if err := s.CreateSession(ctx, sess); err != nil {
			t.Fatal(err)
		}
		rot := must(s.RotateRefreshToken(ctx, "a0", "a1", t0.Add(50*time.Minute)))(t)
		if !rot.Session.ExpiresAt.Equal(t0.Add(110*time.Minute)) || rot.Session.RefreshLifetime != time.Hour {
			t.Fatalf("expiry after rotation = %v", rot.Session)
		}
		must(s.RotateRefreshToken(ctx, "a1", "a2", t0.Add(100*time.Minute)))(t)
		if got := must(s.GetSession(ctx, "s2"))(t); !got.ExpiresAt.Equal(t0.Add(160 * time.Minute)) {
			t.Fatalf("stored expiry = %v", got.ExpiresAt)
		}
	})
	t.Run("an unknown token is not found and an expired session refuses", func(t *testing.T) {
		s := setup(t)
		if _, err := s.RotateRefreshToken(ctx, "nope", "x", t0); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown token: %v", err)
		}
		if _, err := s.RotateRefreshToken(ctx, "r0", "x", t0.Add(25*time.Hour)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("expired session: %v", err)
		}
	})
}

func testConcurrency(t *testing.T, open Factory) {
	ctx := context.Background()
	t.Run("many concurrent sign-ups and rotations all succeed", func(t *testing.T) {
		s := open(t)
		newUser(t, s, "owner")
		for i := range 50 {
			createSession(t, s, fmt.Sprintf("s%d", i), "owner", "public", fmt.Sprintf("r%d", i))
		}
		var wg sync.WaitGroup
		errs := make(chan error, 200)
		for i := range 50 {
			wg.Add(2)
			go func() {
				defer wg.Done()
				_, err := s.CreateEmailPasswordUser(ctx, store.NewEmailPasswordUser{UserID: fmt.Sprintf("u%d", i), TenantID: "public", Email: fmt.Sprintf("u%d@x.io", i), PasswordHash: "h", Now: t0})
				errs <- err
			}()
			go func() {
				defer wg.Done()
				_, err := s.RotateRefreshToken(ctx, fmt.Sprintf("r%d", i), fmt.Sprintf("c%d", i), t0)
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		for i := range 50 {
			must(s.GetUser(ctx, fmt.Sprintf("u%d", i)))(t)
		}
	})
}
