package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// maxCoreBody bounds what the sidecar reads from the core, so a broken core cannot exhaust
// the sidecar's memory.
const maxCoreBody = 4 << 20

// ErrKeysNotRefetched accompanies ErrUnknownKey when the JWKS could not be fetched again to
// look for the kid (the refetch is rate-limited or failed): the kid may be a key the core
// has just started signing with, so the client is told to refresh rather than to sign in.
var ErrKeysNotRefetched = errors.New("JWKS not refetched")

// keyStore holds the core's signing keys. Readers load the current set without locking;
// fetches are serialised and an unknown kid triggers at most one fetch per minRefetch.
type keyStore struct {
	url        string
	client     *http.Client
	now        func() time.Time
	minRefetch time.Duration
	// onRemoved is called when a fetched set lacks a kid the previous set had, so tokens
	// verified with a retired key leave the cache.
	onRemoved func()

	keys atomic.Pointer[map[string]*publicKey]

	mu          sync.Mutex // serialises fetches
	lastAttempt time.Time

	fetches  atomic.Uint64
	failures atomic.Uint64
}

// get returns the key for kid from the current set.
func (s *keyStore) get(kid string) (*publicKey, bool) {
	m := s.keys.Load()
	if m == nil {
		return nil, false
	}
	k, ok := (*m)[kid]
	return k, ok
}

// hasKeys reports whether a key set was ever fetched.
func (s *keyStore) hasKeys() bool { return s.keys.Load() != nil }

// count returns how many keys the current set holds.
func (s *keyStore) count() int {
	if m := s.keys.Load(); m != nil {
		return len(*m)
	}
	return 0
}

// lookup returns the key for kid, fetching the JWKS again when kid is unknown and the last
// fetch attempt is older than minRefetch. Concurrent callers with the same unknown kid wait
// for one fetch and then see its result.
func (s *keyStore) lookup(ctx context.Context, kid string) (*publicKey, error) {
	if k, ok := s.get(kid); ok {
		return k, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.get(kid); ok { // fetched while this caller waited
		return k, nil
	}
	now := s.now()
	if !s.lastAttempt.IsZero() && now.Sub(s.lastAttempt) < s.minRefetch {
		return nil, fmt.Errorf("%w: kid %q: %w (rate-limited)", ErrUnknownKey, kid, ErrKeysNotRefetched)
	}
	if err := s.fetchLocked(ctx, now); err != nil {
		return nil, fmt.Errorf("%w: kid %q: %w: %w", ErrUnknownKey, kid, ErrKeysNotRefetched, err)
	}
	if k, ok := s.get(kid); ok {
		return k, nil
	}
	return nil, fmt.Errorf("%w: kid %q", ErrUnknownKey, kid)
}

// refresh fetches the JWKS unconditionally (periodic refresh and start-up).
func (s *keyStore) refresh(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetchLocked(ctx, s.now())
}

func (s *keyStore) fetchLocked(ctx context.Context, now time.Time) error {
	s.lastAttempt = now
	s.fetches.Add(1)
	keys, err := s.fetch(ctx)
	if err != nil {
		s.failures.Add(1)
		return err
	}
	old := s.keys.Swap(&keys)
	if old != nil && s.onRemoved != nil {
		for kid := range *old {
			if _, ok := keys[kid]; !ok {
				s.onRemoved()
				break
			}
		}
	}
	return nil
}

func (s *keyStore) fetch(ctx context.Context) (map[string]*publicKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, fmt.Errorf("building JWKS request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching JWKS: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxCoreBody))
	if err != nil {
		return nil, fmt.Errorf("reading JWKS: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching JWKS: status %d", resp.StatusCode)
	}
	return parseJWKS(body)
}
