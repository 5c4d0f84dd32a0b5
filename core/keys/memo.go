package keys

import "sync"

// This file remembers tokens whose signature is known to be good, so a token presented
// again costs a map lookup instead of a signature check: an ES256 verification is about
// twice the signing, and a client presents to the core the token the core just gave it.

// DefaultMemoSize is how many tokens a Manager remembers.
const DefaultMemoSize = 4096

// memo maps compact tokens to their payload and the kid of the key that signed them. A token
// is added only when this Manager signed it or verified its signature, and a hit counts only
// while that kid is still among the loaded keys, so removing a key ends its tokens here as
// everywhere. The map is bounded: when full, an eighth of it is dropped, arbitrarily.
type memo struct {
	mu  sync.RWMutex
	m   map[string]memoEntry
	max int
}

type memoEntry struct {
	payload []byte
	kid     string
}

func newMemo(max int) *memo {
	return &memo{m: make(map[string]memoEntry, max), max: max}
}

func (c *memo) get(token string) (memoEntry, bool) {
	c.mu.RLock()
	e, ok := c.m[token]
	c.mu.RUnlock()
	return e, ok
}

func (c *memo) put(token string, payload []byte, kid string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		drop := c.max / 8
		for t := range c.m {
			if drop <= 0 {
				break
			}
			delete(c.m, t)
			drop--
		}
	}
	c.m[token] = memoEntry{payload: payload, kid: kid}
}

func (c *memo) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}
