// Package keys manages the RS256 keys that sign access tokens. Keys live in the store so every
// replica signs with and publishes the same keys:
//
//   - a new key is created only inside a store transaction that finds no key younger than the
//     rotation interval, so replicas that rotate at the same moment create one key between them;
//   - a new key is published at once but signs only after ActivationDelay, longer than the
//     replicas' reload period, so no token carries a kid some replica's JWKS lacks;
//   - a replaced key stays published until the tokens it signed have expired.
package keys

import (
	"context"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/twofold-dev/twofold/core/store"
)

// Defaults for Options.
const (
	DefaultRotationInterval = 7 * 24 * time.Hour
	DefaultActivationDelay  = 2 * time.Minute
	DefaultReloadInterval   = 30 * time.Second
	keyBits                 = 2048
)

// ErrUnknownKey is returned for a kid the store does not hold.
var ErrUnknownKey = errors.New("unknown signing key")

// Options configure a Manager. Zero values take the defaults.
type Options struct {
	// RotationInterval is how long a key signs before a new one is created.
	RotationInterval time.Duration
	// ActivationDelay is how long a new key is published before it signs.
	ActivationDelay time.Duration
	// ReloadInterval is how often the key set is re-read from the store.
	ReloadInterval time.Duration
	// MaxTokenLifetime is the longest access-token lifetime; replaced keys are kept this long.
	MaxTokenLifetime time.Duration
	// Clock returns the current time.
	Clock func() time.Time
}

// Key is a loaded signing key.
type Key struct {
	KID       string
	Private   *rsa.PrivateKey
	CreatedAt time.Time
	signer    jose.Signer
}

// Manager loads, rotates and publishes signing keys. It is safe for concurrent use.
type Manager struct {
	store store.Keys
	opts  Options

	reloadMu sync.Mutex // one reload at a time
	mu       sync.RWMutex
	keys     []*Key // newest first
	loadedAt time.Time
}

// New returns a Manager over st; call Rotate once before serving so a key exists.
func New(st store.Keys, opts Options) *Manager {
	if opts.RotationInterval <= 0 {
		opts.RotationInterval = DefaultRotationInterval
	}
	if opts.ActivationDelay < 0 {
		opts.ActivationDelay = 0
	}
	if opts.ReloadInterval <= 0 {
		opts.ReloadInterval = DefaultReloadInterval
	}
	if opts.MaxTokenLifetime <= 0 {
		opts.MaxTokenLifetime = 24 * time.Hour
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	return &Manager{store: st, opts: opts}
}

// Rotate creates a key when none is younger than the rotation interval, deletes keys whose
// tokens have all expired, and reloads the key set. created reports whether this call stored
// a key (false when another replica did).
func (m *Manager) Rotate(ctx context.Context) (created bool, err error) {
	now := m.opts.Clock()
	stored, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return false, fmt.Errorf("rotate signing keys: %w", err)
	}
	notBefore := now.Add(-m.opts.RotationInterval)
	if len(stored) == 0 || !stored[0].CreatedAt.After(notBefore) {
		priv, err := rsa.GenerateKey(rand.Reader, keyBits)
		if err != nil {
			return false, fmt.Errorf("generate signing key: %w", err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return false, fmt.Errorf("encode signing key: %w", err)
		}
		k := store.SigningKey{KID: kidOf(&priv.PublicKey), PrivateDER: der, CreatedAt: now}
		if created, err = m.store.CreateSigningKeyIfNone(ctx, k, notBefore); err != nil {
			return false, fmt.Errorf("rotate signing keys: %w", err)
		}
	}
	// A replaced key signs until its successor activates and its tokens live MaxTokenLifetime.
	cutoff := now.Add(-m.opts.ActivationDelay - m.opts.MaxTokenLifetime)
	if _, err := m.store.DeleteSigningKeysSupersededBefore(ctx, cutoff); err != nil {
		return created, fmt.Errorf("rotate signing keys: %w", err)
	}
	if err := m.Reload(ctx); err != nil {
		return created, err
	}
	return created, nil
}

// kidOf derives a key id from the public key, so the same key has the same kid everywhere.
func kidOf(pub *rsa.PublicKey) string {
	sum := sha256.Sum256(x509.MarshalPKCS1PublicKey(pub))
	return "s-" + base64.RawURLEncoding.EncodeToString(sum[:12])
}

// Reload re-reads the key set from the store.
func (m *Manager) Reload(ctx context.Context) error {
	stored, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("reload signing keys: %w", err)
	}
	m.mu.RLock()
	old := map[string]*Key{}
	for _, k := range m.keys {
		old[k.KID] = k
	}
	m.mu.RUnlock()
	keys := make([]*Key, 0, len(stored))
	for _, s := range stored {
		if k, ok := old[s.KID]; ok {
			keys = append(keys, k)
			continue
		}
		k, err := load(s)
		if err != nil {
			return err
		}
		keys = append(keys, k)
	}
	m.mu.Lock()
	m.keys, m.loadedAt = keys, m.opts.Clock()
	m.mu.Unlock()
	return nil
}

func load(s store.SigningKey) (*Key, error) {
	parsed, err := x509.ParsePKCS8PrivateKey(s.PrivateDER)
	if err != nil {
		return nil, fmt.Errorf("decode signing key %s: %w", s.KID, err)
	}
	priv, ok := parsed.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("signing key %s is %T, not RSA", s.KID, parsed)
	}
	opts := (&jose.SignerOptions{}).WithType("JWT").WithHeader("version", "5")
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: priv, KeyID: s.KID, Algorithm: string(jose.RS256)}}, opts)
	if err != nil {
		return nil, fmt.Errorf("signer for key %s: %w", s.KID, err)
	}
	return &Key{KID: s.KID, Private: priv, CreatedAt: s.CreatedAt, signer: signer}, nil
}

// current returns the loaded keys, reloading them when they are older than ReloadInterval.
func (m *Manager) current(ctx context.Context) ([]*Key, error) {
	m.mu.RLock()
	keys, loadedAt := m.keys, m.loadedAt
	m.mu.RUnlock()
	if len(keys) > 0 && m.opts.Clock().Sub(loadedAt) < m.opts.ReloadInterval {
		return keys, nil
	}
	m.reloadMu.Lock()
	defer m.reloadMu.Unlock()
	m.mu.RLock()
	keys, loadedAt = m.keys, m.loadedAt
	m.mu.RUnlock()
	if len(keys) > 0 && m.opts.Clock().Sub(loadedAt) < m.opts.ReloadInterval {
		return keys, nil // another request reloaded meanwhile
	}
	if err := m.Reload(ctx); err != nil {
		if len(keys) > 0 {
			// Keep signing with what we have while the store is briefly unavailable.
			return keys, nil
		}
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.keys, nil
}

// Sign signs payload with the newest active key: the newest one published for at least
// ActivationDelay, or the newest one when none is that old (a fresh installation).
func (m *Manager) Sign(ctx context.Context, payload []byte) (string, error) {
	keys, err := m.current(ctx)
	if err != nil {
		return "", err
	}
	if len(keys) == 0 {
		return "", errors.New("sign access token: no signing key: Rotate has not run")
	}
	k := m.active(keys)
	jws, err := k.signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("sign access token: %w", err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		return "", fmt.Errorf("serialize access token: %w", err)
	}
	return out, nil
}

// active returns the key that signs now: the newest one published for at least
// ActivationDelay, or the newest one when none is that old. keys must not be empty.
func (m *Manager) active(keys []*Key) *Key {
	activeBefore := m.opts.Clock().Add(-m.opts.ActivationDelay)
	for _, c := range keys {
		if !c.CreatedAt.After(activeBefore) {
			return c
		}
	}
	return keys[0]
}

// DeriveSecret returns a 32-byte secret for purpose, derived (HKDF-SHA256) from the signing
// key that signs now, and that key's id. Every replica derives the same secret from the
// shared key set, so a value one replica authenticates with it (a hosted form's CSRF token)
// verifies on any other, and no further secret needs storing or configuring. The secret
// rotates with the key; DeriveSecretFor finds it again while the key is kept.
func (m *Manager) DeriveSecret(ctx context.Context, purpose string) (kid string, secret []byte, err error) {
	keys, err := m.current(ctx)
	if err != nil {
		return "", nil, err
	}
	if len(keys) == 0 {
		return "", nil, errors.New("derive secret: no signing key: Rotate has not run")
	}
	k := m.active(keys)
	secret, err = derive(k, purpose)
	return k.KID, secret, err
}

// DeriveSecretFor returns the secret DeriveSecret gave for purpose with key kid, reloading
// once from the store when kid is unknown; an error wrapping ErrUnknownKey once the key is
// gone.
func (m *Manager) DeriveSecretFor(ctx context.Context, kid, purpose string) ([]byte, error) {
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
	k := find(keys)
	if k == nil {
		if err := m.Reload(ctx); err != nil {
			return nil, err
		}
		m.mu.RLock()
		k = find(m.keys)
		m.mu.RUnlock()
	}
	if k == nil {
		return nil, fmt.Errorf("kid %q: %w", kid, ErrUnknownKey)
	}
	return derive(k, purpose)
}

func derive(k *Key, purpose string) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.Private)
	if err != nil {
		return nil, fmt.Errorf("derive secret from key %s: %w", k.KID, err)
	}
	return hkdf.Key(sha256.New, der, []byte(k.KID), "twofold/"+purpose, 32)
}

// PublicKey returns the public key of kid, reloading once from the store when it is unknown.
func (m *Manager) PublicKey(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	find := func(keys []*Key) *rsa.PublicKey {
		for _, k := range keys {
			if k.KID == kid {
				return &k.Private.PublicKey
			}
		}
		return nil
	}
	keys, err := m.current(ctx)
	if err != nil {
		return nil, err
	}
	if pub := find(keys); pub != nil {
		return pub, nil
	}
	if err := m.Reload(ctx); err != nil {
		return nil, err
	}
	m.mu.RLock()
	pub := find(m.keys)
	m.mu.RUnlock()
	if pub == nil {
		return nil, fmt.Errorf("kid %q: %w", kid, ErrUnknownKey)
	}
	return pub, nil
}

// JWKS returns every published public key, newest first.
func (m *Manager) JWKS(ctx context.Context) (jose.JSONWebKeySet, error) {
	keys, err := m.current(ctx)
	if err != nil {
		return jose.JSONWebKeySet{}, err
	}
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(keys))}
	for _, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.Private.PublicKey, KeyID: k.KID, Algorithm: string(jose.RS256), Use: "sig"})
	}
	return set, nil
}
