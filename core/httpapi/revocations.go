package httpapi

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/core/store"
)

// revocationCache keeps each tenant's revocations of the last access-token lifetime in memory,
// with their feed entries (handle hashes) computed once. A poll reads only the tenant's
// revocation cursor from the store; the revoked sessions themselves are read once per change
// and replica, however many sidecars poll. Every replica follows the same cursor in the
// database, so a sidecar may poll any of them.
type revocationCache struct {
	mu      sync.Mutex
	tenants map[string]*tenantRevocations
}

type tenantRevocations struct {
	mu      sync.Mutex
	cursor  int64              // the cursor entries are complete up to
	entries []cachedRevocation // in cursor order
}

type cachedRevocation struct {
	seq   int64
	entry contract.RevokedSession
}

func (c *revocationCache) tenant(id string) *tenantRevocations {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tenants == nil {
		c.tenants = map[string]*tenantRevocations{}
	}
	t := c.tenants[id]
	if t == nil {
		t = &tenantRevocations{}
		c.tenants[id] = t
	}
	return t
}

// since answers a sidecar that holds the tenant's revocations up to cursor since: the
// revocations after it (all of them, full, when since is 0 or a cursor this tenant never
// reached), at or after notBefore, and the cursor they bring it to.
func (c *revocationCache) since(ctx context.Context, s store.Store, tenantID string, since int64, notBefore time.Time) ([]contract.RevokedSession, int64, bool, error) {
	t := c.tenant(tenantID)
	cursor, err := s.RevocationCursor(ctx, tenantID)
	if err != nil {
		return nil, 0, false, err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if cursor != t.cursor {
		revs, err := s.RevocationsSince(ctx, tenantID, t.cursor, notBefore)
		if err != nil {
			return nil, 0, false, err
		}
		if revs.Full {
			t.entries = t.entries[:0:0]
		}
		for _, r := range revs.Sessions {
			t.entries = append(t.entries, cachedRevocation{seq: r.Seq,
				entry: contract.RevokedSession{HandleHash: contract.SessionHandleHash(r.Handle), RevokedAt: r.RevokedAt.Unix()}})
		}
		t.cursor = revs.Cursor
	}
	// Drop what no valid token can need any more. Cursor order is commit order, close to
	// revocation time order, so the old ones are at the front.
	old := 0
	for old < len(t.entries) && t.entries[old].entry.RevokedAt < notBefore.Unix() {
		old++
	}
	t.entries = t.entries[old:]
	full := since <= 0 || since > t.cursor
	from := 0
	if !full {
		from = sort.Search(len(t.entries), func(i int) bool { return t.entries[i].seq > since })
	}
	out := make([]contract.RevokedSession, 0, len(t.entries)-from)
	for _, e := range t.entries[from:] {
		if e.entry.RevokedAt >= notBefore.Unix() {
			out = append(out, e.entry)
		}
	}
	return out, t.cursor, full, nil
}
