package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/twofold-dev/twofold/core/store"
	"github.com/twofold-dev/twofold/core/store/sqlite"
	"github.com/twofold-dev/twofold/core/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "twofold.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestReopeningAppliesNoMigrationTwice(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "twofold.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.PutTenant(ctx, "acme", []byte(`{}`), "h", storetestTime); err != nil {
		t.Fatal(err)
	}
	v1, err := s.SchemaVersion(ctx)
	if err != nil || v1 < 1 {
		t.Fatalf("SchemaVersion = %d, %v", v1, err)
	}
	s.Close()
	s, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatalf("reopening: %v", err)
	}
	defer s.Close()
	if v2, _ := s.SchemaVersion(ctx); v2 != v1 {
		t.Fatalf("schema version moved from %d to %d", v1, v2)
	}
	if _, err := s.GetTenant(ctx, "acme"); err != nil {
		t.Fatalf("data lost across reopening: %v", err)
	}
}

var storetestTime = mustTime("2026-01-02T03:04:05Z")
