package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/core/store"
)

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
