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
// everywhere. It holds two generations of at most half its size each: when the current one
// fills up, it becomes the previous one and the previous one is dropped, so a token stays at
// least half the memo's size of insertions, the oldest go first, and a hit in the previous
// generation moves the token to the current one.
type memo struct {
	mu        sync.Mutex
	cur, prev map[string]memoEntry
	half      int
}

type memoEntry struct {
	payload []byte
	kid     string
}

func newMemo(size int) *memo {
	half := max(1, size/2)
	return &memo{cur: make(map[string]memoEntry, half), half: half}
}

func (c *memo) get(token string) (memoEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.cur[token]; ok {
		return e, true
	}
	e, ok := c.prev[token]
	if ok {
		delete(c.prev, token)
		c.putLocked(token, e)
	}
	return e, ok
}

func (c *memo) put(token string, payload []byte, kid string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(token, memoEntry{payload: payload, kid: kid})
}

func (c *memo) putLocked(token string, e memoEntry) {
	if len(c.cur) >= c.half {
		c.prev, c.cur = c.cur, make(map[string]memoEntry, c.half)
	}
	c.cur[token] = e
}
