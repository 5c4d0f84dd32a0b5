package keys_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/twofold-dev/twofold/core/keys"
	"github.com/twofold-dev/twofold/core/store/sqlite"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func open(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "keys.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func kidOf(t *testing.T, token string) string {
	t.Helper()
	jws, err := jose.ParseSigned(token, keys.Algorithms)
	if err != nil {
		t.Fatal(err)
	}
	return jws.Signatures[0].Header.KeyID
}

func kids(t *testing.T, m *keys.Manager) []string {
	t.Helper()
	set, err := m.JWKS(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.KeyID)
	}
	return out
}

const (
	interval   = 24 * time.Hour
	activation = 2 * time.Minute
	lifetime   = time.Hour
)

func newManager(st *sqlite.Store, c *clock) *keys.Manager {
	return keys.New(st, keys.Options{RotationInterval: interval, ActivationDelay: activation, ReloadInterval: 30 * time.Second, MaxTokenLifetime: lifetime, Clock: c.Now})
}

func TestReplicasRotatingTogetherCreateOneKeyAndPublishTheSameSet(t *testing.T) {
	ctx := context.Background()
	st := open(t)
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	replicas := []*keys.Manager{newManager(st, c), newManager(st, c), newManager(st, c)}
	var wg sync.WaitGroup
	created := make(chan bool, len(replicas))
	for _, m := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := m.Rotate(ctx)
			if err != nil {
				t.Error(err)
			}
			created <- ok
		}()
	}
	wg.Wait()
	close(created)
	n := 0
	for ok := range created {
		if ok {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d replicas created a key, want exactly 1", n)
	}
	for _, m := range replicas {
		if got := kids(t, m); len(got) != 1 || got[0] != kids(t, replicas[0])[0] {
			t.Fatalf("replica publishes %v, first replica %v", got, kids(t, replicas[0]))
		}
	}
}

func TestRotationPublishesBeforeSigningAndKeepsOldKeysUntilTheirTokensExpire(t *testing.T) {
	ctx := context.Background()
	st := open(t)
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	a, b := newManager(st, c), newManager(st, c)
	if _, err := a.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	tok, err := a.Sign(ctx, []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	first := kidOf(t, tok)

	t.Run("no new key before the interval", func(t *testing.T) {
		c.Advance(interval - time.Minute)
		if ok, _ := a.Rotate(ctx); ok {
			t.Fatalf("rotated before the interval")
		}
	})
	c.Advance(time.Minute)
	if ok, err := a.Rotate(ctx); err != nil || !ok {
		t.Fatalf("Rotate after the interval = %v, %v", ok, err)
	}
	t.Run("the other replica publishes the new key within its reload period, before it signs", func(t *testing.T) {
		c.Advance(31 * time.Second)
		if got := kids(t, b); len(got) != 2 {
			t.Fatalf("replica b publishes %v", got)
		}
		tok, _ := a.Sign(ctx, []byte(`{}`))
		if kidOf(t, tok) != first {
			t.Fatalf("the new key signed before its activation delay")
		}
	})
	t.Run("after the activation delay the new key signs and the old one stays published", func(t *testing.T) {
		c.Advance(activation)
		tok, _ := b.Sign(ctx, []byte(`{}`))
		if kidOf(t, tok) == first {
			t.Fatalf("the old key still signs after the new one activated")
		}
		if got := kids(t, b); !slices.Contains(got, first) {
			t.Fatalf("the old key is no longer published: %v", got)
		}
	})
	t.Run("the old key is deleted once its last tokens have expired", func(t *testing.T) {
		c.Advance(lifetime - time.Minute)
		a.Rotate(ctx)
		if got := kids(t, a); len(got) != 2 {
			t.Fatalf("deleted the old key while its tokens may live: %v", got)
		}
		c.Advance(2 * time.Minute)
		a.Rotate(ctx)
		if got := kids(t, a); len(got) != 1 || got[0] == first {
			t.Fatalf("after expiry the set is %v", got)
		}
	})
	t.Run("a replica that has not reloaded yet finds a new kid by reloading", func(t *testing.T) {
		c.Advance(interval)
		if _, err := a.Rotate(ctx); err != nil {
			t.Fatal(err)
		}
		c.Advance(activation)
		a.Reload(ctx)
		tok, _ := a.Sign(ctx, []byte(`{}`))
		if _, _, err := b.Verify(ctx, tok); err != nil {
			t.Fatalf("replica b cannot verify a token of the newest kid: %v", err)
		}
	})
}

func TestEveryReplicaDerivesTheSameSecretFromTheSharedKeys(t *testing.T) {
	ctx := context.Background()
	st := open(t)
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	a := keys.New(st, keys.Options{Clock: c.Now})
	b := keys.New(st, keys.Options{Clock: c.Now})
	if _, err := a.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	kid, secret, err := a.DeriveSecret(ctx, "hosted-ui csrf")
	if err != nil || len(secret) != 32 {
		t.Fatalf("DeriveSecret = %d bytes, %v", len(secret), err)
	}
	other, err := b.DeriveSecretFor(ctx, kid, "hosted-ui csrf")
	if err != nil || string(other) != string(secret) {
		t.Fatalf("another replica derived a different secret for %s: %v", kid, err)
	}
	if p, _ := a.DeriveSecretFor(ctx, kid, "another purpose"); string(p) == string(secret) {
		t.Fatal("two purposes share a secret")
	}
	if _, err := b.DeriveSecretFor(ctx, "s-unknown", "hosted-ui csrf"); !errors.Is(err, keys.ErrUnknownKey) {
		t.Fatalf("an unknown kid = %v, want ErrUnknownKey", err)
	}
}

func TestARememberedTokenIsRefusedOnceItsKeyIsGone(t *testing.T) {
	ctx := context.Background()
	st := open(t)
	c := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	m := newManager(st, c)
	if _, err := m.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	// The token is remembered as signed here: verifying it again checks no signature.
	tok, err := m.Sign(ctx, []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Verify(ctx, tok); err != nil {
		t.Fatal(err)
	}
	// A new key takes over, and the old one is deleted once its tokens may have expired.
	c.Advance(interval)
	if _, err := m.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	c.Advance(activation + lifetime + time.Minute)
	if _, err := m.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if got := kids(t, m); slices.Contains(got, kidOf(t, tok)) {
		t.Fatalf("the old key is still published: %v", got)
	}
	if _, _, err := m.Verify(ctx, tok); !errors.Is(err, keys.ErrUnknownKey) {
		t.Fatalf("a remembered token of a deleted key = %v, want ErrUnknownKey", err)
	}
}
