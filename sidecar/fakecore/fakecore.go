// Package fakecore is a stand-in for the auth core's wire protocol towards sidecars: it
// serves a real JWKS of an RSA key it holds, the enforcement feed of docs/contracts.md with
// strong ETags and 304s, and mints access tokens in the SuperTokens v5 layout. The sidecar's
// tests and benchmarks use it; it is not part of any shipped binary.
package fakecore

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
)

var b64 = base64.RawURLEncoding

// Key is a signing key with its kid.
type Key struct {
	Kid     string
	Private *rsa.PrivateKey
}

// NewKey generates a 2048-bit RSA key.
func NewKey(kid string) (Key, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return Key{}, fmt.Errorf("generating RSA key: %w", err)
	}
	return Key{Kid: kid, Private: k}, nil
}

// Core is the fake core. It is an http.Handler.
type Core struct {
	mu          sync.Mutex
	keys        []Key // published in the JWKS; the first one signs
	enforcement contract.Enforcement
	body        []byte
	etag        string
	down        bool
	answer      []byte // set by SetFeedAnswer

	// Counters of requests served, for tests that assert on traffic to the core.
	JWKSRequests     atomic.Int64
	FeedRequests     atomic.Int64
	FeedNotModified  atomic.Int64
	OtherRequests    atomic.Int64
	LastOtherHeaders atomic.Pointer[http.Header]
	// LastFeedQuery is the query string of the last feed request.
	LastFeedQuery atomic.Pointer[string]
}

// New returns a core for tenant with issuer, one signing key (kid "k1") and a feed that
// requires nothing beyond v.
func New(tenant, issuer string) (*Core, error) {
	k, err := NewKey("k1")
	if err != nil {
		return nil, err
	}
	c := &Core{keys: []Key{k}}
	c.enforcement = contract.Enforcement{
		V:             contract.EnforcementVersion,
		TenantID:      tenant,
		ConfigVersion: 1,
		EnforcementPolicy: contract.EnforcementPolicy{
			Issuer:                     issuer,
			AccessTokenLifetimeSeconds: 3600,
			MFA:                        contract.EnforcementMFA{Requirement: mfa.Requirement{}, Enforcement: contract.EnforcementRequired, Routes: []contract.Route{}},
			HostedUI:                   contract.HostedUI{SignIn: "/auth/signin", MFA: "/auth/mfa"},
		},
		RevokedSessions: []contract.RevokedSession{},
	}
	if err := c.encodeLocked(); err != nil {
		return nil, err
	}
	return c, nil
}

// Update changes the enforcement feed; the configVersion and the ETag change with it.
func (c *Core) Update(change func(e *contract.Enforcement)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	change(&c.enforcement)
	c.enforcement.ConfigVersion++
	return c.encodeLocked()
}

func (c *Core) encodeLocked() error {
	b, err := json.Marshal(c.enforcement)
	if err != nil {
		return fmt.Errorf("encoding enforcement feed: %w", err)
	}
	sum := sha256.Sum256(b)
	c.body, c.etag = b, `"`+hex.EncodeToString(sum[:16])+`"`
	return nil
}

// SetKeys replaces the published keys; the first one signs from now on.
func (c *Core) SetKeys(keys ...Key) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keys = keys
}

// SigningKey returns the key Mint signs with.
func (c *Core) SigningKey() Key {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.keys[0]
}

// SetFeedAnswer makes the feed answer 200 with exactly body, whatever was asked, until it is
// set to nil: answers a real core would not give, to see what a sidecar does with them.
func (c *Core) SetFeedAnswer(body []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.answer = body
}

// SetDown makes every request fail with 503 (true) or be served again (false).
func (c *Core) SetDown(down bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.down = down
}

// ServeHTTP serves /auth/jwt/jwks.json, /auth/{tenant}/enforcement and, for anything else
// under /auth/, a small JSON echo of the path and the X-Twofold-* headers it received.
func (c *Core) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	down, keys, body, etag, tenant := c.down, c.keys, c.body, c.etag, c.enforcement.TenantID
	c.mu.Unlock()
	if down {
		http.Error(w, "core down", http.StatusServiceUnavailable)
		return
	}
	switch r.URL.Path {
	case "/auth/jwt/jwks.json":
		c.JWKSRequests.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(JWKS(keys...))
	case "/auth/" + tenant + "/enforcement":
		c.FeedRequests.Add(1)
		q := r.URL.RawQuery
		c.LastFeedQuery.Store(&q)
		c.mu.Lock()
		answer := c.answer
		c.mu.Unlock()
		if answer != nil {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(answer)
			return
		}
		w.Header().Set("ETag", etag)
		if r.Header.Get("If-None-Match") == etag {
			c.FeedNotModified.Add(1)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	default:
		c.OtherRequests.Add(1)
		h := r.Header.Clone()
		c.LastOtherHeaders.Store(&h)
		var twofold []string
		for k := range r.Header {
			if strings.HasPrefix(strings.ToLower(k), "x-twofold-") {
				twofold = append(twofold, k)
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"core": true, "path": r.URL.Path, "twofoldHeaders": twofold})
	}
}

// JWKS returns the JWKS document of keys.
func JWKS(keys ...Key) map[string]any {
	out := make([]map[string]string, 0, len(keys))
	for _, k := range keys {
		pub := k.Private.PublicKey
		out = append(out, map[string]string{
			"kty": "RSA", "kid": k.Kid, "use": "sig", "alg": "RS256",
			"n": b64.EncodeToString(pub.N.Bytes()),
			"e": b64.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
		})
	}
	return map[string]any{"keys": out}
}

// Token is the payload of an access token in the SuperTokens v5 layout.
type Token struct {
	Sub           string    `json:"sub"`
	RecipeSub     string    `json:"rsub,omitempty"`
	TenantID      string    `json:"tId"`
	SessionHandle string    `json:"sessionHandle"`
	Iss           string    `json:"iss"`
	Iat           int64     `json:"iat"`
	Exp           int64     `json:"exp"`
	MFA           mfa.Claim `json:"st-mfa"`
	// EV is the st-ev claim; nil leaves it out, as the core does unless the tenant requires
	// email verification.
	EV *contract.EmailVerificationClaim `json:"st-ev,omitempty"`
}

// Mint signs t with the core's signing key.
func (c *Core) Mint(t Token) string {
	k := c.SigningKey()
	return Sign(k.Private, k.Kid, t)
}

// Sign returns t as a compact RS256 JWS with the v5 header.
func Sign(key *rsa.PrivateKey, kid string, t Token) string {
	return SignInput(key, SigningInput(map[string]any{"alg": "RS256", "typ": "JWT", "kid": kid, "version": "5"}, t))
}

// SignInput appends an RS256 signature by key to a signing input.
func SignInput(key *rsa.PrivateKey, in string) string {
	sum := sha256.Sum256([]byte(in))
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:])
	if err != nil {
		panic(fmt.Sprintf("signing test token: %v", err)) // only with a broken key
	}
	return in + "." + b64.EncodeToString(sig)
}

// SigningInput returns base64url(header).base64url(payload), for building forged tokens.
func SigningInput(header map[string]any, payload any) string {
	h, err := json.Marshal(header)
	if err != nil {
		panic(fmt.Sprintf("encoding test token header: %v", err))
	}
	p, err := json.Marshal(payload)
	if err != nil {
		panic(fmt.Sprintf("encoding test token payload: %v", err))
	}
	return b64.EncodeToString(h) + "." + b64.EncodeToString(p)
}
