package proxy

import (
	"sync"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
)

// session is what a verified access token says, with the identity header values prepared
// once so forwarding a request does not rebuild them.
type session struct {
	userID string
	tenant string
	handle string
	// handleHash is how the feed names the session (contract.SessionHandleHash), computed
	// once per verified token, not per request.
	handleHash string
	issuer     string
	exp        int64 // unix seconds
	claim      mfa.Claim
	// ev is the st-ev claim's v; nil when the token has none.
	ev      *bool
	factors string // sorted, comma-separated completed factor ids
	// kid and key are what the signature was verified with: a hit counts only while the
	// current JWKS still maps kid to the same key.
	kid string
	key *publicKey

	hdrUser, hdrTenant, hdrSession, hdrFactors []string
}

func newSession(c *jwtClaims, kid string, key *publicKey) *session {
	s := &session{
		kid:        kid,
		key:        key,
		userID:     c.Sub,
		tenant:     c.TenantID,
		handle:     c.SessionHandle,
		handleHash: contract.SessionHandleHash(c.SessionHandle),
		issuer:     c.Iss,
		exp:        *c.Exp,
	}
	if c.EV != nil {
		s.ev = c.EV.V
	}
	if c.MFA != nil {
		s.claim = *c.MFA
	}
	names := s.claim.C.Names()
	for i, n := range names {
		if i > 0 {
			s.factors += ","
		}
		s.factors += n
	}
	// Length and capacity 1: an append by a later handler reallocates instead of writing
	// into a slice shared by every request of this session.
	s.hdrUser = []string{s.userID}
	s.hdrTenant = []string{s.tenant}
	s.hdrSession = []string{s.handle}
	s.hdrFactors = []string{s.factors}
	return s
}

// tokenCache maps raw access tokens whose signature verified to their sessions, so the
// steady state does no signature work. Expiry is checked by the caller on every hit; the
// cache is bounded: when full it drops expired entries, then arbitrary ones.
type tokenCache struct {
	mu  sync.RWMutex
	m   map[string]*session
	max int
}

func newTokenCache(maxEntries int) *tokenCache {
	return &tokenCache{m: make(map[string]*session), max: maxEntries}
}

func (c *tokenCache) get(tok string) *session {
	c.mu.RLock()
	s := c.m[tok]
	c.mu.RUnlock()
	return s
}

func (c *tokenCache) put(tok string, s *session, nowUnix int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for k, v := range c.m {
			if v.exp <= nowUnix {
				delete(c.m, k)
			}
		}
	}
	if len(c.m) >= c.max {
		// Still full: drop an eighth of the entries at random (map order). Those sessions
		// pay one more signature check; a flood of distinct tokens cannot grow memory.
		drop := len(c.m) - c.max + 1 + c.max/8
		for k := range c.m {
			if drop <= 0 {
				break
			}
			delete(c.m, k)
			drop--
		}
	}
	c.m[tok] = s
}

func (c *tokenCache) remove(tok string) {
	c.mu.Lock()
	delete(c.m, tok)
	c.mu.Unlock()
}

func (c *tokenCache) purge() {
	c.mu.Lock()
	clear(c.m)
	c.mu.Unlock()
}

func (c *tokenCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
