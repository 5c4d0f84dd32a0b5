// Package storetest is the conformance suite every store.Store implementation passes. An
// implementation's tests call Run with a function that opens a fresh, empty store.
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

// Factory opens a new, empty store for one test; the suite closes it.
type Factory func(t *testing.T) store.Store

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// Run runs the conformance suite against stores made by open.
func Run(t *testing.T, open Factory) {
	fresh := func(t *testing.T) store.Store {
		s := open(t)
		t.Cleanup(func() { s.Close() })
		return s
	}
	t.Run("tenants", func(t *testing.T) { testTenants(t, fresh) })
	t.Run("tenant ownership", func(t *testing.T) { testTenantOwnership(t, fresh) })
	t.Run("users", func(t *testing.T) { testUsers(t, fresh) })
	t.Run("bulk import", func(t *testing.T) { testImport(t, fresh) })
	t.Run("account linking", func(t *testing.T) { testLinking(t, fresh) })
	t.Run("metadata", func(t *testing.T) { testMetadata(t, fresh) })
	t.Run("sessions", func(t *testing.T) { testSessions(t, fresh) })
	t.Run("revocation cursor", func(t *testing.T) { testRevocationCursor(t, fresh) })
	t.Run("refresh token rotation", func(t *testing.T) { testRotation(t, fresh) })
	t.Run("signing keys", func(t *testing.T) { testKeys(t, fresh) })
	t.Run("concurrent writes", func(t *testing.T) { testConcurrency(t, fresh) })
	t.Run("mfa", func(t *testing.T) { testMFA(t, fresh) })
	t.Run("webauthn", func(t *testing.T) { testWebAuthn(t, fresh) })
	t.Run("account flows", func(t *testing.T) { testAccountFlows(t, fresh) })
	t.Run("sign-in throttle", func(t *testing.T) { testSignInThrottle(t, fresh) })
	t.Run("send limits", func(t *testing.T) { testSendLimits(t, fresh) })
	t.Run("user admin", func(t *testing.T) { testUserAdmin(t, fresh) })
	t.Run("admin keys", func(t *testing.T) { testAdminKeys(t, fresh) })
}

// must turns a (value, error) result into a function that fails the test on the error.
func must[T any](v T, err error) func(*testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func must2[T, U any](v T, _ U, err error) func(*testing.T) T { return must(v, err) }

func testTenants(t *testing.T, open Factory) {
	ctx := context.Background()
	t.Run("a new tenant starts at version 1 and reports it was created", func(t *testing.T) {
		s := open(t)
		tn, created, err := s.PutTenant(ctx, "acme", json.RawMessage(`{"a":1}`), "h1", t0)
		if err != nil || !created || tn.Version != 1 || tn.Hash != "h1" {
			t.Fatalf("PutTenant = %+v, %v, %v", tn, created, err)
		}
	})
	t.Run("putting the same hash again changes nothing", func(t *testing.T) {
		s := open(t)
		must2(s.PutTenant(ctx, "acme", json.RawMessage(`{"a":1}`), "h1", t0))(t)
		tn, created, err := s.PutTenant(ctx, "acme", json.RawMessage(`{"a":1}`), "h1", t0.Add(time.Hour))
		if err != nil || created || tn.Version != 1 || !tn.UpdatedAt.Equal(t0) {
			t.Fatalf("second PutTenant = %+v, %v, %v", tn, created, err)
		}
	})
	t.Run("a different hash increases the version", func(t *testing.T) {
		s := open(t)
		must2(s.PutTenant(ctx, "acme", json.RawMessage(`{"a":1}`), "h1", t0))(t)
		tn, _, err := s.PutTenant(ctx, "acme", json.RawMessage(`{"a":2}`), "h2", t0.Add(time.Hour))
		if err != nil || tn.Version != 2 {
			t.Fatalf("PutTenant = %+v, %v", tn, err)
		}
		got := must(s.GetTenant(ctx, "acme"))(t)
		if got.Version != 2 || string(got.Config) != `{"a":2}` || got.Hash != "h2" || !got.UpdatedAt.Equal(t0.Add(time.Hour)) || !got.CreatedAt.Equal(t0) {
			t.Fatalf("GetTenant = %+v", got)
		}
	})
	t.Run("an unknown tenant is not found", func(t *testing.T) {
		s := open(t)
		if _, err := s.GetTenant(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("GetTenant error = %v, want ErrNotFound", err)
		}
		if err := s.DeleteTenant(ctx, "nope", false); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("DeleteTenant error = %v, want ErrNotFound", err)
		}
	})
	t.Run("tenants are listed by id", func(t *testing.T) {
		s := open(t)
		for _, id := range []string{"zeta", "alpha", "mid"} {
			must2(s.PutTenant(ctx, id, json.RawMessage(`{}`), "h", t0))(t)
		}
		list := must(s.ListTenants(ctx))(t)
		if len(list) != 3 || list[0].ID != "alpha" || list[1].ID != "mid" || list[2].ID != "zeta" {
			t.Fatalf("ListTenants = %+v", list)
		}
	})
	t.Run("deleting a tenant keeps its users unless asked", func(t *testing.T) {
		s := open(t)
		must2(s.PutTenant(ctx, "acme", json.RawMessage(`{}`), "h", t0))(t)
		must(s.CreateEmailPasswordUser(ctx, store.NewEmailPasswordUser{UserID: "u1", TenantID: "acme", Email: "a@x.io", PasswordHash: "p", Now: t0}))(t)
		if err := s.DeleteTenant(ctx, "acme", false); err != nil {
			t.Fatal(err)
		}
		must(s.GetUser(ctx, "u1"))(t)
		must2(s.PutTenant(ctx, "acme", json.RawMessage(`{}`), "h", t0))(t)
		createSession(t, s, "s1", "u1", "acme", "r1")
		if err := s.DeleteTenant(ctx, "acme", true); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetUser(ctx, "u1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("user survived deleteUsers: %v", err)
		}
		if _, err := s.GetSession(ctx, "s1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("session survived deleteUsers: %v", err)
		}
	})
}

func testUsers(t *testing.T, open Factory) {
	ctx := context.Background()
	t.Run("an emailpassword user is a primary user with one login method", func(t *testing.T) {
		s := open(t)
		u := must(s.CreateEmailPasswordUser(ctx, store.NewEmailPasswordUser{UserID: "u1", TenantID: "public", Email: "a@x.io", PasswordHash: "hash", Now: t0}))(t)
		if u.ID != "u1" || !u.IsPrimary || len(u.LoginMethods) != 1 || u.LoginMethods[0].Email != "a@x.io" ||
			u.LoginMethods[0].RecipeID != store.RecipeEmailPassword || u.LoginMethods[0].RecipeUserID != "u1" || !u.TimeJoined.Equal(t0) {
			t.Fatalf("user = %+v", u)
		}
		got, hash, err := s.GetEmailPasswordLogin(ctx, "public", "a@x.io")
		if err != nil || got.ID != "u1" || hash != "hash" {
			t.Fatalf("GetEmailPasswordLogin = %+v, %q, %v", got, hash, err)
		}
	})
	t.Run("an email is taken once per tenant", func(t *testing.T) {
		s := open(t)
		must(s.CreateEmailPasswordUser(ctx, store.NewEmailPasswordUser{UserID: "u1", TenantID: "public", Email: "a@x.io", PasswordHash: "h", Now: t0}))(t)
		_, err := s.CreateEmailPasswordUser(ctx, store.NewEmailPasswordUser{UserID: "u2", TenantID: "public", Email: "a@x.io", PasswordHash: "h", Now: t0})
		if !errors.Is(err, store.ErrEmailTaken) {
			t.Fatalf("second sign-up error = %v, want ErrEmailTaken", err)
		}
		if _, err := s.GetUser(ctx, "u2"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the refused sign-up left a user behind: %v", err)
		}
		must(s.CreateEmailPasswordUser(ctx, store.NewEmailPasswordUser{UserID: "u3", TenantID: "other", Email: "a@x.io", PasswordHash: "h", Now: t0}))(t)
	})
	t.Run("an unknown login or user is not found", func(t *testing.T) {
		s := open(t)
		if _, _, err := s.GetEmailPasswordLogin(ctx, "public", "no@x.io"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("GetEmailPasswordLogin error = %v", err)
		}
		if _, err := s.GetUser(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("GetUser error = %v", err)
		}
	})
	t.Run("a third-party identity is created once and updated afterwards", func(t *testing.T) {
		s := open(t)
		id := store.ThirdPartyIdentity{TenantID: "public", ThirdPartyID: "google", ThirdPartyUserID: "g-1", Email: "a@x.io", Verified: false}
		u, created, err := s.UpsertThirdPartyUser(ctx, id, "u1", t0)
		if err != nil || !created || u.ID != "u1" || u.LoginMethods[0].ThirdPartyUserID != "g-1" || u.LoginMethods[0].Verified {
			t.Fatalf("first upsert = %+v, %v, %v", u, created, err)
		}
		id.Email, id.Verified = "b@x.io", true
		u, created, err = s.UpsertThirdPartyUser(ctx, id, "u2", t0)
		if err != nil || created || u.ID != "u1" || u.LoginMethods[0].Email != "b@x.io" || !u.LoginMethods[0].Verified {
			t.Fatalf("second upsert = %+v, %v, %v", u, created, err)
		}
		if _, err := s.GetUser(ctx, "u2"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("the second upsert created a user: %v", err)
		}
	})
}

func testLinking(t *testing.T, open Factory) {
	ctx := context.Background()
	setup := func(t *testing.T) store.Store {
		s := open(t)
		must(s.CreateEmailPasswordUser(ctx, store.NewEmailPasswordUser{UserID: "p1", TenantID: "public", Email: "a@x.io", PasswordHash: "h", Now: t0}))(t)
		must2(s.UpsertThirdPartyUser(ctx, store.ThirdPartyIdentity{TenantID: "public", ThirdPartyID: "google", ThirdPartyUserID: "g1", Email: "a@x.io", Verified: true}, "r1", t0.Add(time.Minute)))(t)
		return s
	}
	t.Run("linking moves the login method to the primary user and keeps its recipe user id", func(t *testing.T) {
		s := setup(t)
		u := must(s.LinkAccounts(ctx, "r1", "p1"))(t)
		if u.ID != "p1" || len(u.LoginMethods) != 2 || u.LoginMethods[1].RecipeUserID != "r1" || u.LoginMethods[1].ThirdPartyID != "google" {
			t.Fatalf("linked user = %+v", u)
		}
		if got := must(s.GetUser(ctx, "r1"))(t); got.ID != "p1" {
			t.Fatalf("GetUser by the recipe user id = %q, want the primary p1", got.ID)
		}
		again := must2(s.UpsertThirdPartyUser(ctx, store.ThirdPartyIdentity{TenantID: "public", ThirdPartyID: "google", ThirdPartyUserID: "g1", Email: "a@x.io", Verified: true}, "r9", t0))(t)
		if again.ID != "p1" {
			t.Fatalf("the next third-party sign-in found %q, not the primary user", again.ID)
		}
	})
	t.Run("a user linked already, or the same user, is refused and nothing changes", func(t *testing.T) {
		s := setup(t)
		must(s.LinkAccounts(ctx, "r1", "p1"))(t)
		must(s.CreateEmailPasswordUser(ctx, store.NewEmailPasswordUser{UserID: "p2", TenantID: "public", Email: "b@x.io", PasswordHash: "h", Now: t0}))(t)
		for _, tt := range []struct{ recipe, primary string }{{"r1", "p2"}, {"p1", "p2"}, {"p1", "p1"}, {"r1", "p1"}} {
			if _, err := s.LinkAccounts(ctx, tt.recipe, tt.primary); !errors.Is(err, store.ErrAlreadyLinked) {
				t.Fatalf("LinkAccounts(%s, %s) = %v, want ErrAlreadyLinked", tt.recipe, tt.primary, err)
			}
		}
		if u := must(s.GetUser(ctx, "p2"))(t); len(u.LoginMethods) != 1 {
			t.Fatalf("a refused link changed p2: %+v", u)
		}
		if _, err := s.LinkAccounts(ctx, "nobody", "p1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("linking an unknown user = %v", err)
		}
	})
	t.Run("users are found by their contact details in a tenant", func(t *testing.T) {
		s := setup(t)
		users := must(s.UsersByEmail(ctx, "public", "a@x.io"))(t)
		if len(users) != 2 || users[0].ID != "p1" || users[1].ID != "r1" {
			t.Fatalf("UsersByEmail before linking = %+v", users)
		}
		must(s.LinkAccounts(ctx, "r1", "p1"))(t)
		if users := must(s.UsersByEmail(ctx, "public", "a@x.io"))(t); len(users) != 1 || users[0].ID != "p1" {
			t.Fatalf("UsersByEmail after linking = %+v", users)
		}
		if users := must(s.UsersByEmail(ctx, "other", "a@x.io"))(t); len(users) != 0 {
			t.Fatalf("another tenant's users were found: %+v", users)
		}
		if users := must(s.UsersByPhone(ctx, "public", "+15550000000"))(t); len(users) != 0 {
			t.Fatalf("UsersByPhone = %+v", users)
		}
	})
}

func testMetadata(t *testing.T, open Factory) {
	ctx := context.Background()
	t.Run("metadata merges at the top level and null removes a key", func(t *testing.T) {
		s := open(t)
		must(s.CreateEmailPasswordUser(ctx, store.NewEmailPasswordUser{UserID: "u1", TenantID: "public", Email: "a@x.io", PasswordHash: "h", Now: t0}))(t)
		if md := must(s.GetUserMetadata(ctx, "u1"))(t); len(md) != 0 {
			t.Fatalf("fresh metadata = %v", md)
		}
		must(s.UpdateUserMetadata(ctx, "u1", map[string]json.RawMessage{"a": json.RawMessage(`1`), "b": json.RawMessage(`{"x":true}`)}, t0))(t)
		md := must(s.UpdateUserMetadata(ctx, "u1", map[string]json.RawMessage{"a": json.RawMessage(`null`), "c": json.RawMessage(`"z"`)}, t0))(t)
		got := must(s.GetUserMetadata(ctx, "u1"))(t)
		for _, m := range []map[string]json.RawMessage{md, got} {
			if _, ok := m["a"]; ok || string(m["b"]) != `{"x":true}` || string(m["c"]) != `"z"` {
				t.Fatalf("metadata = %v", m)
			}
		}
	})
	t.Run("metadata of an unknown user is not found", func(t *testing.T) {
		s := open(t)
		if _, err := s.UpdateUserMetadata(ctx, "nobody", map[string]json.RawMessage{"a": json.RawMessage(`1`)}, t0); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("UpdateUserMetadata error = %v", err)
		}
		if _, err := s.GetUserMetadata(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("GetUserMetadata error = %v", err)
		}
	})
}

func createSession(t *testing.T, s store.Store, handle, userID, tenantID, refreshHash string) store.Session {
	t.Helper()
	sess := store.Session{Handle: handle, UserID: userID, RecipeUserID: userID, TenantID: tenantID,
		Claims: json.RawMessage(`{"st-mfa":{"c":{},"v":true}}`), CreatedAt: t0, ExpiresAt: t0.Add(24 * time.Hour), CurrentRefreshHash: refreshHash}
	if err := s.CreateSession(context.Background(), sess); err != nil {
		t.Fatal(err)
	}
	return sess
}

func newUser(t *testing.T, s store.Store, id string) {
	t.Helper()
	must(s.CreateEmailPasswordUser(context.Background(), store.NewEmailPasswordUser{UserID: id, TenantID: "public", Email: id + "@x.io", PasswordHash: "h", Now: t0}))(t)
}

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
	t.Run("claims are updated inside a transaction", func(t *testing.T) {
		s := open(t)
		newUser(t, s, "u1")
		createSession(t, s, "s1", "u1", "public", "r1")
		got, err := s.UpdateSessionClaims(ctx, "s1", func(old json.RawMessage) (json.RawMessage, error) {
			if string(old) != `{"st-mfa":{"c":{},"v":true}}` {
				return nil, fmt.Errorf("old claims = %s", old)
			}
			return json.RawMessage(`{"st-mfa":{"c":{"totp":5},"v":true}}`), nil
		})
		if err != nil || string(got.Claims) != `{"st-mfa":{"c":{"totp":5},"v":true}}` {
			t.Fatalf("UpdateSessionClaims = %+v, %v", got, err)
		}
		boom := errors.New("boom")
		if _, err := s.UpdateSessionClaims(ctx, "s1", func(json.RawMessage) (json.RawMessage, error) { return nil, boom }); !errors.Is(err, boom) {
			t.Fatalf("a failing update returned %v", err)
		}
		if got := must(s.GetSession(ctx, "s1"))(t); string(got.Claims) != `{"st-mfa":{"c":{"totp":5},"v":true}}` {
			t.Fatalf("a failing update changed the claims: %s", got.Claims)
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
		if _, err := s.UpdateSessionClaims(ctx, "s1", func(c json.RawMessage) (json.RawMessage, error) { return c, nil }); !errors.Is(err, store.ErrSessionRevoked) {
			t.Fatalf("updating a revoked session: %v", err)
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

func testKeys(t *testing.T, open Factory) {
	ctx := context.Background()
	t.Run("concurrent replicas create one key per interval", func(t *testing.T) {
		s := open(t)
		var wg sync.WaitGroup
		var mu sync.Mutex
		created := 0
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, err := s.CreateSigningKeyIfNone(ctx, store.SigningKey{KID: fmt.Sprintf("k%d", i), PrivateDER: []byte{1}, CreatedAt: t0}, t0.Add(-time.Hour))
				if err != nil {
					t.Error(err)
				}
				if ok {
					mu.Lock()
					created++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if keys := must(s.ListSigningKeys(ctx))(t); created != 1 || len(keys) != 1 {
			t.Fatalf("created %d keys, stored %d, want 1", created, len(keys))
		}
	})
	t.Run("a key of another algorithm is created beside a young key, once", func(t *testing.T) {
		s := open(t)
		must(s.CreateSigningKeyIfNone(ctx, store.SigningKey{KID: "rsa", PrivateDER: []byte{1}, CreatedAt: t0}, t0.Add(-time.Hour)))(t)
		ec := store.SigningKey{KID: "ec", Algorithm: "ES256", PrivateDER: []byte{2}, CreatedAt: t0.Add(time.Minute)}
		if ok := must(s.CreateSigningKeyIfNone(ctx, ec, t0.Add(-time.Hour)))(t); !ok {
			t.Fatal("an ES256 key was not created beside a young RS256 key")
		}
		ec.KID = "ec2"
		if ok := must(s.CreateSigningKeyIfNone(ctx, ec, t0.Add(-time.Hour)))(t); ok {
			t.Fatal("a second ES256 key was created within the interval")
		}
		keys := must(s.ListSigningKeys(ctx))(t)
		if len(keys) != 2 || keys[0].KID != "ec" || keys[0].Algorithm != "ES256" || keys[1].Algorithm != "RS256" {
			t.Fatalf("ListSigningKeys = %+v, want the ES256 key then the RS256 one", keys)
		}
	})
	t.Run("keys list newest first and superseded keys are deleted", func(t *testing.T) {
		s := open(t)
		for i, at := range []time.Time{t0, t0.Add(time.Hour), t0.Add(2 * time.Hour)} {
			if ok := must(s.CreateSigningKeyIfNone(ctx, store.SigningKey{KID: fmt.Sprintf("k%d", i), PrivateDER: []byte{byte(i)}, CreatedAt: at}, at.Add(-time.Minute)))(t); !ok {
				t.Fatalf("key %d not created", i)
			}
		}
		keys := must(s.ListSigningKeys(ctx))(t)
		if len(keys) != 3 || keys[0].KID != "k2" || keys[2].KID != "k0" || keys[1].PrivateDER[0] != 1 {
			t.Fatalf("ListSigningKeys = %+v", keys)
		}
		// k1 replaced k0 at t0+1h; k2 replaced k1 at t0+2h.
		if n := must(s.DeleteSigningKeysSupersededBefore(ctx, t0.Add(90*time.Minute)))(t); n != 1 {
			t.Fatalf("deleted %d keys, want 1", n)
		}
		if n := must(s.DeleteSigningKeysSupersededBefore(ctx, t0.Add(100*time.Hour)))(t); n != 1 {
			t.Fatalf("deleted %d keys, want 1 (the newest stays)", n)
		}
		if keys := must(s.ListSigningKeys(ctx))(t); len(keys) != 1 || keys[0].KID != "k2" {
			t.Fatalf("left %+v", keys)
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
