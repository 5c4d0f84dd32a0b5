package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/core/store"
)

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
