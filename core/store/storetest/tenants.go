package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/core/store"
)

// claimedBy fails the test unless err is a *store.ClaimedError naming owner.
func claimedBy(t *testing.T, err error, owner string) {
	t.Helper()
	var ce *store.ClaimedError
	if !errors.As(err, &ce) || !errors.Is(err, store.ErrClaimed) || ce.Owner != owner {
		t.Fatalf("error = %v, want a ClaimedError naming owner %q", err, owner)
	}
}

func testTenantOwnership(t *testing.T, open Factory) {
	ctx := context.Background()
	const a, b = "ns-a/acme/uid-1", "ns-b/acme/uid-2"
	t.Run("the first owner to put a new tenant owns it", func(t *testing.T) {
		s := open(t)
		tn, created, err := s.PutTenantOwned(ctx, "acme", json.RawMessage(`{"a":1}`), "h1", a, t0)
		if err != nil || !created || tn.Owner != a || tn.Version != 1 {
			t.Fatalf("PutTenantOwned = %+v, %v, %v", tn, created, err)
		}
		if got := must(s.GetTenant(ctx, "acme"))(t); got.Owner != a {
			t.Fatalf("GetTenant owner = %q, want %q", got.Owner, a)
		}
		if list := must(s.ListTenants(ctx))(t); len(list) != 1 || list[0].Owner != a {
			t.Fatalf("ListTenants = %+v", list)
		}
	})
	t.Run("another owner cannot overwrite a claimed tenant and changes nothing", func(t *testing.T) {
		s := open(t)
		must2(s.PutTenantOwned(ctx, "acme", json.RawMessage(`{"a":1}`), "h1", a, t0))(t)
		_, _, err := s.PutTenantOwned(ctx, "acme", json.RawMessage(`{"smtp":"evil"}`), "h-evil", b, t0.Add(time.Hour))
		claimedBy(t, err, a)
		got := must(s.GetTenant(ctx, "acme"))(t)
		if got.Owner != a || got.Hash != "h1" || got.Version != 1 || string(got.Config) != `{"a":1}` {
			t.Fatalf("tenant after the refused put = %+v", got)
		}
	})
	t.Run("the owner updates its tenant as before", func(t *testing.T) {
		s := open(t)
		must2(s.PutTenantOwned(ctx, "acme", json.RawMessage(`{"a":1}`), "h1", a, t0))(t)
		tn, created, err := s.PutTenantOwned(ctx, "acme", json.RawMessage(`{"a":2}`), "h2", a, t0.Add(time.Hour))
		if err != nil || created || tn.Version != 2 || tn.Owner != a || tn.Hash != "h2" {
			t.Fatalf("PutTenantOwned = %+v, %v, %v", tn, created, err)
		}
	})
	t.Run("an unowned tenant is claimed without a new version when its configuration is the same", func(t *testing.T) {
		s := open(t)
		must2(s.PutTenant(ctx, "acme", json.RawMessage(`{"a":1}`), "h1", t0))(t)
		tn, created, err := s.PutTenantOwned(ctx, "acme", json.RawMessage(`{"a":1}`), "h1", b, t0.Add(time.Hour))
		if err != nil || created || tn.Owner != b || tn.Version != 1 {
			t.Fatalf("PutTenantOwned = %+v, %v, %v", tn, created, err)
		}
		if got := must(s.GetTenant(ctx, "acme"))(t); got.Owner != b || got.Version != 1 {
			t.Fatalf("GetTenant = %+v", got)
		}
	})
	t.Run("the admin's own put changes the configuration and keeps the owner", func(t *testing.T) {
		s := open(t)
		must2(s.PutTenantOwned(ctx, "acme", json.RawMessage(`{"a":1}`), "h1", a, t0))(t)
		tn, _, err := s.PutTenant(ctx, "acme", json.RawMessage(`{"a":2}`), "h2", t0.Add(time.Hour))
		if err != nil || tn.Owner != a || tn.Version != 2 {
			t.Fatalf("PutTenant = %+v, %v", tn, err)
		}
	})
	t.Run("only the owner can release a tenant, and then another may claim it", func(t *testing.T) {
		s := open(t)
		must2(s.PutTenantOwned(ctx, "acme", json.RawMessage(`{"a":1}`), "h1", a, t0))(t)
		_, err := s.ReleaseTenant(ctx, "acme", b)
		claimedBy(t, err, a)
		tn, err := s.ReleaseTenant(ctx, "acme", a)
		if err != nil || tn.Owner != "" || tn.Version != 1 {
			t.Fatalf("ReleaseTenant = %+v, %v", tn, err)
		}
		if tn, err := s.ReleaseTenant(ctx, "acme", a); err != nil || tn.Owner != "" {
			t.Fatalf("releasing again = %+v, %v; want no error", tn, err)
		}
		if tn, _, err := s.PutTenantOwned(ctx, "acme", json.RawMessage(`{"a":2}`), "h2", b, t0); err != nil || tn.Owner != b {
			t.Fatalf("claim after release = %+v, %v", tn, err)
		}
	})
	t.Run("releasing without an owner releases whoever owns the tenant", func(t *testing.T) {
		s := open(t)
		must2(s.PutTenantOwned(ctx, "acme", json.RawMessage(`{"a":1}`), "h1", a, t0))(t)
		if tn, err := s.ReleaseTenant(ctx, "acme", ""); err != nil || tn.Owner != "" {
			t.Fatalf("ReleaseTenant = %+v, %v", tn, err)
		}
		if got := must(s.GetTenant(ctx, "acme"))(t); got.Owner != "" {
			t.Fatalf("owner after a forced release = %q", got.Owner)
		}
	})
	t.Run("releasing an unknown tenant is not found", func(t *testing.T) {
		s := open(t)
		if _, err := s.ReleaseTenant(ctx, "nope", a); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("ReleaseTenant error = %v, want ErrNotFound", err)
		}
	})
	t.Run("only the owner can delete a tenant", func(t *testing.T) {
		s := open(t)
		must2(s.PutTenantOwned(ctx, "acme", json.RawMessage(`{"a":1}`), "h1", a, t0))(t)
		claimedBy(t, s.DeleteTenantOwned(ctx, "acme", b, false), a)
		must(s.GetTenant(ctx, "acme"))(t)
		if err := s.DeleteTenantOwned(ctx, "acme", a, false); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetTenant(ctx, "acme"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("GetTenant after the owner deleted it = %v", err)
		}
		if err := s.DeleteTenantOwned(ctx, "acme", a, false); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("deleting again = %v, want ErrNotFound", err)
		}
	})
	t.Run("an owner cannot delete a tenant nobody owns", func(t *testing.T) {
		s := open(t)
		must2(s.PutTenant(ctx, "acme", json.RawMessage(`{"a":1}`), "h1", t0))(t)
		claimedBy(t, s.DeleteTenantOwned(ctx, "acme", b, false), "")
		must(s.GetTenant(ctx, "acme"))(t)
	})
	t.Run("owners racing for a new tenant: exactly one wins", func(t *testing.T) {
		s := open(t)
		const n = 8
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				owner := "ns/acme/uid-" + string(rune('a'+i))
				_, _, errs[i] = s.PutTenantOwned(ctx, "acme", json.RawMessage(`{"i":`+string(rune('0'+i))+`}`), "h"+string(rune('0'+i)), owner, t0)
			}()
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case errors.Is(err, store.ErrClaimed):
			default:
				t.Fatalf("unexpected error: %v", err)
			}
		}
		got := must(s.GetTenant(ctx, "acme"))(t)
		if won != 1 || got.Version != 1 {
			t.Fatalf("%d owners won, tenant = %+v; want exactly one at version 1", won, got)
		}
	})
}

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
