package keys

import (
	"context"
	"fmt"

	jose "github.com/go-jose/go-jose/v4"
)

// This file verifies tokens against the key their kid names and publishes the keys (JWKS).

// wantAlgorithm refuses a key whose stored algorithm is not the one its key type signs.
func wantAlgorithm(kid string, stored, fits jose.SignatureAlgorithm) error {
	if stored != fits {
		return fmt.Errorf("signing key %s is stored for %s but its key type signs %s", kid, stored, fits)
	}
	return nil
}

// key returns the loaded key kid, reloading once from the store when it is unknown.
func (m *Manager) key(ctx context.Context, kid string) (*Key, error) {
	find := func(keys []*Key) *Key {
		for _, k := range keys {
			if k.KID == kid {
				return k
			}
		}
		return nil
	}
	keys, err := m.current(ctx)
	if err != nil {
		return nil, err
	}
	if k := find(keys); k != nil {
		return k, nil
	}
	if err := m.Reload(ctx); err != nil {
		return nil, err
	}
	m.mu.RLock()
	k := find(m.keys)
	m.mu.RUnlock()
	if k == nil {
		return nil, fmt.Errorf("kid %q: %w", kid, ErrUnknownKey)
	}
	return k, nil
}

// Verify checks a compact JWS signed by one of the core's keys and returns its payload and the
// kid that signed it. The kid picks the key, and the key's algorithm is the only one accepted:
// a header naming another (none, HS256 with a public key as the secret, RS256 against an EC
// key, ...) is refused before any signature is checked. A token this Manager signed or has
// verified, whose key is still loaded, is not checked again. Callers must not modify the
// payload.
func (m *Manager) Verify(ctx context.Context, token string) (payload []byte, kid string, err error) {
	if e, ok := m.memo.get(token); ok && m.loaded(ctx, e.kid) {
		return e.payload, e.kid, nil
	}
	jws, err := jose.ParseSigned(token, Algorithms)
	if err != nil {
		return nil, "", fmt.Errorf("malformed token: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, "", fmt.Errorf("token has %d signatures, want 1", len(jws.Signatures))
	}
	h := jws.Signatures[0].Header
	k, err := m.key(ctx, h.KeyID)
	if err != nil {
		return nil, h.KeyID, err
	}
	if jose.SignatureAlgorithm(h.Algorithm) != k.Algorithm {
		return nil, h.KeyID, fmt.Errorf("%w: the header says %q, key %s signs %s", ErrAlgorithm, h.Algorithm, k.KID, k.Algorithm)
	}
	payload, err = jws.Verify(k.Private.Public())
	if err != nil {
		return nil, h.KeyID, fmt.Errorf("signature: %w", err)
	}
	m.memo.put(token, payload, h.KeyID)
	return payload, h.KeyID, nil
}

// loaded reports whether key kid is among the current keys, without reloading for it.
func (m *Manager) loaded(ctx context.Context, kid string) bool {
	keys, err := m.current(ctx)
	if err != nil {
		return false
	}
	for _, k := range keys {
		if k.KID == kid {
			return true
		}
	}
	return false
}

// JWKS returns every published public key, newest first.
func (m *Manager) JWKS(ctx context.Context) (jose.JSONWebKeySet, error) {
	keys, err := m.current(ctx)
	if err != nil {
		return jose.JSONWebKeySet{}, err
	}
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(keys))}
	for _, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.Private.Public(), KeyID: k.KID, Algorithm: string(k.Algorithm), Use: "sig"})
	}
	return set, nil
}
