// Package keys manages the keys that sign access tokens: RS256 (the default, which every
// SuperTokens SDK verifies), ES256 or EdDSA. Keys live in the store so every replica signs with
// and publishes the same keys:
//
//   - a new key is created only inside a store transaction that finds no key younger than the
//     rotation interval, so replicas that rotate at the same moment create one key between them;
//   - a new key is published at once but signs only after ActivationDelay, longer than the
//     replicas' reload period, so no token carries a kid some replica's JWKS lacks;
//   - a replaced key stays published until the tokens it signed have expired;
//   - changing the algorithm creates a key of the new one at once, published beside the old
//     key, which keeps signing until the new key activates: a switch is a rotation.
//
// A token is verified with the key its kid names, by that key's algorithm only: the alg a
// token's header claims must be the key's, never a reason to try another.
package keys

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
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

// ErrAlgorithm is returned for a token whose header names another algorithm than its key's.
var ErrAlgorithm = errors.New("algorithm does not match the signing key")

// Algorithms are the JWS algorithms a core signs access tokens with, the default first.
var Algorithms = []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA}

// ParseAlgorithm reads a signing algorithm setting; empty is the default, RS256.
func ParseAlgorithm(s string) (jose.SignatureAlgorithm, error) {
	if s == "" {
		return jose.RS256, nil
	}
	if a := jose.SignatureAlgorithm(s); slices.Contains(Algorithms, a) {
		return a, nil
	}
	names := make([]string, len(Algorithms))
	for i, a := range Algorithms {
		names[i] = string(a)
	}
	return "", fmt.Errorf("signing algorithm %q: want one of %s", s, strings.Join(names, ", "))
}

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
	// Algorithm is what new keys sign with; RS256 when empty.
	Algorithm jose.SignatureAlgorithm
	// MemoSize is how many tokens signed or verified here are remembered, so presenting one
	// again skips the signature check; DefaultMemoSize when zero.
	MemoSize int
}

// Key is a loaded signing key.
type Key struct {
	KID       string
	Algorithm jose.SignatureAlgorithm
	Private   crypto.Signer
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

	memo *memo
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
	if opts.Algorithm == "" {
		opts.Algorithm = jose.RS256
	}
	if opts.MemoSize <= 0 {
		opts.MemoSize = DefaultMemoSize
	}
	return &Manager{store: st, opts: opts, memo: newMemo(opts.MemoSize)}
}

// Rotate creates a key of the configured algorithm when none is younger than the rotation
// interval, deletes keys whose tokens have all expired, and reloads the key set. created
// reports whether this call stored a key (false when another replica did).
func (m *Manager) Rotate(ctx context.Context) (created bool, err error) {
	now := m.opts.Clock()
	stored, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return false, fmt.Errorf("rotate signing keys: %w", err)
	}
	notBefore := now.Add(-m.opts.RotationInterval)
	i := slices.IndexFunc(stored, func(k store.SigningKey) bool { return store.KeyAlgorithm(k) == string(m.opts.Algorithm) })
	if i < 0 || !stored[i].CreatedAt.After(notBefore) {
		k, err := generate(m.opts.Algorithm, now)
		if err != nil {
			return false, err
		}
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

// generate makes a new key pair for alg.
func generate(alg jose.SignatureAlgorithm, now time.Time) (store.SigningKey, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case jose.RS256:
		priv, err = rsa.GenerateKey(rand.Reader, keyBits)
	case jose.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		err = fmt.Errorf("unsupported algorithm %q", alg)
	}
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("generate signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return store.SigningKey{}, fmt.Errorf("encode signing key: %w", err)
	}
	kid, err := kidOf(priv.Public())
	if err != nil {
		return store.SigningKey{}, err
	}
	return store.SigningKey{KID: kid, Algorithm: string(alg), PrivateDER: der, CreatedAt: now}, nil
}

// kidOf derives a key id from the public key, so the same key has the same kid everywhere.
// RSA keys hash their PKCS#1 form, as they always have; others their PKIX form.
func kidOf(pub crypto.PublicKey) (string, error) {
	var der []byte
	if rsaPub, ok := pub.(*rsa.PublicKey); ok {
		der = x509.MarshalPKCS1PublicKey(rsaPub)
	} else {
		var err error
		if der, err = x509.MarshalPKIXPublicKey(pub); err != nil {
			return "", fmt.Errorf("encode public key: %w", err)
		}
	}
	sum := sha256.Sum256(der)
	return "s-" + base64.RawURLEncoding.EncodeToString(sum[:12]), nil
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
	alg := jose.SignatureAlgorithm(store.KeyAlgorithm(s))
	var priv crypto.Signer
	switch k := parsed.(type) {
	case *rsa.PrivateKey:
		priv = k
		err = wantAlgorithm(s.KID, alg, jose.RS256)
	case *ecdsa.PrivateKey:
		priv = k
		err = wantAlgorithm(s.KID, alg, jose.ES256)
		if err == nil && k.Curve != elliptic.P256() {
			err = fmt.Errorf("signing key %s is on %s, not P-256", s.KID, k.Curve.Params().Name)
		}
	case ed25519.PrivateKey:
		priv = k
		err = wantAlgorithm(s.KID, alg, jose.EdDSA)
	default:
		err = fmt.Errorf("signing key %s is %T, not RSA, ECDSA or Ed25519", s.KID, parsed)
	}
	if err != nil {
		return nil, err
	}
	opts := (&jose.SignerOptions{}).WithType("JWT").WithHeader("version", "5")
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: priv, KeyID: s.KID, Algorithm: string(alg)}}, opts)
	if err != nil {
		return nil, fmt.Errorf("signer for key %s: %w", s.KID, err)
	}
	return &Key{KID: s.KID, Algorithm: alg, Private: priv, CreatedAt: s.CreatedAt, signer: signer}, nil
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
	m.memo.put(out, bytes.Clone(payload), k.KID)
	return out, nil
}

// active returns the key that signs now: the newest key of the configured algorithm published
// for at least ActivationDelay; while a key of a new algorithm waits to activate, the newest
// one of any algorithm published that long; the newest one when none is that old (a fresh
// installation). keys must not be empty.
func (m *Manager) active(keys []*Key) *Key {
	activeBefore := m.opts.Clock().Add(-m.opts.ActivationDelay)
	var fallback *Key
	for _, c := range keys {
		if c.CreatedAt.After(activeBefore) {
			continue
		}
		if c.Algorithm == m.opts.Algorithm {
			return c
		}
		if fallback == nil {
			fallback = c
		}
	}
	if fallback != nil {
		return fallback
	}
	return keys[0]
}
