package proxy

import (
	"fmt"
	"maps"
	"time"

	"github.com/twofold-dev/twofold/contract"
)

// revocationMargin is how much longer than the access-token lifetime a revocation is kept: a
// token may be checked a little after it expired by the core's clock when the clocks differ.
const revocationMargin = time.Minute

// minRecent is the size below which additions never fold into the large map.
const minRecent = 256

// revokedSet is an immutable set of revoked sessions: contract.SessionHandleHash -> unix second
// of the revocation. A poll that brings new revocations makes a new set: they go into a small
// map beside the large one, which is rebuilt only once the small one has grown to a quarter of
// it, so an addition costs O(1) amortised, and a lookup is two map reads without locks.
type revokedSet struct {
	base, recent map[string]int64
}

// has reports whether the session with this handle hash is revoked.
func (s *revokedSet) has(handleHash string) bool {
	if _, ok := s.base[handleHash]; ok {
		return true
	}
	_, ok := s.recent[handleHash]
	return ok
}

// size is the number of sessions in the set.
func (s *revokedSet) size() int { return len(s.base) + len(s.recent) }

// with returns the set with add, or only add when full. The core lists only revocations
// within the access-token lifetime; those made before notBefore (unix seconds) are dropped when
// the small map folds into the large one. It refuses an entry without a handle hash.
func (s *revokedSet) with(add []contract.RevokedSession, full bool, notBefore int64) (*revokedSet, error) {
	for i, r := range add {
		if r.HandleHash == "" {
			return nil, fmt.Errorf("%w: revoked session %d has no handleHash", ErrFeed, i)
		}
	}
	if full {
		base := make(map[string]int64, len(add))
		addTo(base, add)
		return &revokedSet{base: base}, nil
	}
	if len(add) == 0 {
		return s, nil
	}
	recent := make(map[string]int64, len(s.recent)+len(add))
	maps.Copy(recent, s.recent)
	addTo(recent, add)
	if len(recent) <= max(minRecent, len(s.base)/4) {
		return &revokedSet{base: s.base, recent: recent}, nil
	}
	// Fold the small map into a new large one, dropping what no valid token can need.
	base := make(map[string]int64, len(s.base)+len(recent))
	for _, m := range []map[string]int64{s.base, recent} {
		for h, at := range m {
			if at >= notBefore {
				base[h] = at
			}
		}
	}
	return &revokedSet{base: base}, nil
}

func addTo(m map[string]int64, add []contract.RevokedSession) {
	for _, r := range add {
		m[r.HandleHash] = r.RevokedAt
	}
}
