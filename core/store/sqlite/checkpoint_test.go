package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/core/store"
)

// The writer leaves the WAL to the checkpointer (its own checkpoint waits for 16,000 pages),
// so the checkpointer's connection must be able to copy every committed page into the
// database file while the store is open.
func TestTheCheckpointerCopiesTheWALIntoTheDatabase(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "twofold.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range 50 {
		id := fmt.Sprintf("u%d", i)
		if _, err := s.CreateEmailPasswordUser(ctx, store.NewEmailPasswordUser{UserID: id, TenantID: "public", Email: id + "@x.io", PasswordHash: "h", Now: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	frames, copied, err := s.ck.checkpoint(ctx)
	if err != nil || frames == 0 || copied != frames {
		t.Fatalf("checkpoint = %d frames, %d copied, %v; want every frame of the 50 sign-ups copied", frames, copied, err)
	}
}
