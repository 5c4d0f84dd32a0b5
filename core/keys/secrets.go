package keys

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
)

// This file derives secrets from the signing keys, for values every replica must verify.

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
	k, err := m.key(ctx, kid)
	if err != nil {
		return nil, err
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
