package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/core/store"
	"github.com/twofold-dev/twofold/core/store/sqlite"
)

func TestLiveUserSessionsListsOnlyUsableSessionsNewestFirst(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "twofold.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, id := range []string{"u1", "u2"} {
		if _, err := st.CreateEmailPasswordUser(ctx, store.NewEmailPasswordUser{UserID: id, TenantID: "public", Email: id + "@example.com", PasswordHash: "x", Now: t0}); err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range []store.Session{
		{Handle: "old", UserID: "u1", RecipeUserID: "u1", TenantID: "public", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)},
		{Handle: "new", UserID: "u1", RecipeUserID: "u1", TenantID: "public", CreatedAt: t0.Add(time.Minute), ExpiresAt: t0.Add(time.Hour)},
		{Handle: "expired", UserID: "u1", RecipeUserID: "u1", TenantID: "public", CreatedAt: t0, ExpiresAt: t0.Add(time.Minute)},
		{Handle: "revoked", UserID: "u1", RecipeUserID: "u1", TenantID: "public", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)},
		{Handle: "other", UserID: "u2", RecipeUserID: "u2", TenantID: "public", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)},
	} {
		s.CurrentRefreshHash = "hash-" + s.Handle
		if err := st.CreateSession(ctx, s); err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
	}
	if _, err := st.RevokeSession(ctx, "revoked", t0); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, user string
		want       []string
	}{
		{"the primary user id finds every live session", "u1", []string{"new", "old"}},
		{"another user's sessions are not listed", "u2", []string{"other"}},
		{"an unknown user has none", "nobody", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := st.LiveUserSessions(ctx, tc.user, t0.Add(2*time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			var handles []string
			for _, s := range got {
				handles = append(handles, s.Handle)
			}
			if len(handles) != len(tc.want) || (len(handles) > 0 && (handles[0] != tc.want[0] || handles[len(handles)-1] != tc.want[len(tc.want)-1])) {
				t.Fatalf("LiveUserSessions(%s) = %v, want %v", tc.user, handles, tc.want)
			}
		})
	}
}
