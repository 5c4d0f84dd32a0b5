// Package storetest is the conformance suite every store.Store implementation passes. An
// implementation's tests call Run with a function that opens a fresh, empty store.
package storetest

import (
	"context"
	"encoding/json"
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
	t.Run("session transactions", func(t *testing.T) { testSessionTx(t, fresh) })
	t.Run("write transactions", func(t *testing.T) { testWrite(t, fresh) })
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
