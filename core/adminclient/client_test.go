package adminclient_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/adminclient"
	"github.com/twofold-dev/twofold/core/coretest"
)

var emailPassword = contract.TenantConfig{FirstFactors: []string{mfa.EmailPassword}}

// fixedKey returns key for every request.
func fixedKey(key string) func() (string, error) { return func() (string, error) { return key, nil } }

func TestTheClientTalksToARealCore(t *testing.T) {
	ctx := context.Background()
	core := coretest.Start(t, coretest.Options{})
	admin := adminclient.New(core.TS.URL+"/", fixedKey(coretest.AdminKey), nil)

	t.Run("a tenant put is read back and listed", func(t *testing.T) {
		put, err := admin.PutTenant(ctx, "acme", emailPassword)
		if err != nil || put.TenantID != "acme" || put.ConfigVersion < 1 {
			t.Fatalf("PutTenant = %+v, %v", put, err)
		}
		got, err := admin.GetTenant(ctx, "acme")
		if err != nil || got.ConfigHash != put.ConfigHash || got.ConfigVersion != put.ConfigVersion {
			t.Fatalf("GetTenant = %+v, %v; want what PutTenant answered %+v", got, err, put)
		}
		list, err := admin.ListTenants(ctx)
		found := false
		for _, s := range list {
			found = found || s.TenantID == "acme"
		}
		if err != nil || !found {
			t.Fatalf("ListTenants = %+v, %v; want acme among them", list, err)
		}
	})

	t.Run("an unknown tenant is ErrNotFound, and deleting it is no error", func(t *testing.T) {
		if _, err := admin.GetTenant(ctx, "nobody"); !errors.Is(err, adminclient.ErrNotFound) {
			t.Fatalf("GetTenant(nobody) error = %v, want ErrNotFound", err)
		}
		if err := admin.DeleteTenant(ctx, "nobody"); err != nil {
			t.Fatalf("DeleteTenant(nobody) = %v, want nil", err)
		}
	})

	t.Run("a configuration the core refuses is an InvalidError naming the field", func(t *testing.T) {
		_, err := admin.PutTenant(ctx, "broken", contract.TenantConfig{FirstFactors: []string{"carrier-pigeon"}})
		var inv *adminclient.InvalidError
		if !errors.As(err, &inv) || inv.Field != "firstFactors[0]" {
			t.Fatalf("PutTenant of an unknown factor error = %v, want an InvalidError on firstFactors[0]", err)
		}
		if _, err := admin.GetTenant(ctx, "broken"); !errors.Is(err, adminclient.ErrNotFound) {
			t.Fatalf("the refused tenant exists: %v", err)
		}
	})

	t.Run("a tenant claimed by one owner is refused to another, naming its owner", func(t *testing.T) {
		if _, err := admin.PutTenantAs(ctx, "owned", "ns/a/uid-1", emailPassword); err != nil {
			t.Fatal(err)
		}
		_, err := admin.PutTenantAs(ctx, "owned", "ns/b/uid-2", emailPassword)
		var claimed *adminclient.ClaimedError
		if !errors.As(err, &claimed) || !errors.Is(err, adminclient.ErrClaimed) || claimed.Owner != "ns/a/uid-1" {
			t.Fatalf("PutTenantAs by another owner error = %v, want a ClaimedError naming ns/a/uid-1", err)
		}
		if err := admin.DeleteTenantAs(ctx, "owned", "ns/b/uid-2"); !errors.Is(err, adminclient.ErrClaimed) {
			t.Fatalf("DeleteTenantAs by another owner error = %v, want ErrClaimed", err)
		}
		st, err := admin.ReleaseTenant(ctx, "owned", "ns/a/uid-1")
		if err != nil || st.Owner != "" {
			t.Fatalf("ReleaseTenant by its owner = %+v, %v; want no owner", st, err)
		}
		if _, err := admin.PutTenantAs(ctx, "owned", "ns/b/uid-2", emailPassword); err != nil {
			t.Fatalf("PutTenantAs after the release = %v", err)
		}
	})

	t.Run("a wrong key is ErrUnauthorized", func(t *testing.T) {
		wrong := adminclient.New(core.TS.URL, fixedKey("not-the-key"), nil)
		if _, err := wrong.ListTenants(ctx); !errors.Is(err, adminclient.ErrUnauthorized) {
			t.Fatalf("ListTenants with a wrong key error = %v, want ErrUnauthorized", err)
		}
	})

	t.Run("the key is read for every request, so a rotated key file is picked up", func(t *testing.T) {
		var key atomic.Value
		key.Store("old-key")
		rotating := adminclient.New(core.TS.URL, func() (string, error) { return key.Load().(string), nil }, nil)
		if _, err := rotating.ListTenants(ctx); !errors.Is(err, adminclient.ErrUnauthorized) {
			t.Fatalf("with the old key: %v, want ErrUnauthorized", err)
		}
		key.Store(coretest.AdminKey)
		if _, err := rotating.ListTenants(ctx); err != nil {
			t.Fatalf("with the new key: %v", err)
		}
	})

	t.Run("a key that cannot be read is its own error, not a refusal by the core", func(t *testing.T) {
		unreadable := adminclient.New(core.TS.URL, func() (string, error) { return "", errors.New("open /etc/twofold/admin-key: no such file") }, nil)
		if _, err := unreadable.ListTenants(ctx); err == nil || errors.Is(err, adminclient.ErrUnauthorized) {
			t.Fatalf("ListTenants with an unreadable key error = %v, want the read error", err)
		}
	})
}

func TestACoreThatCannotBeReachedIsErrUnavailable(t *testing.T) {
	srv := httptest.NewServer(nil)
	url := srv.URL
	srv.Close()
	admin := adminclient.New(url, fixedKey(coretest.AdminKey), nil)
	if _, err := admin.GetTenant(context.Background(), "acme"); !errors.Is(err, adminclient.ErrUnavailable) {
		t.Fatalf("GetTenant of a closed core error = %v, want ErrUnavailable", err)
	}
}
