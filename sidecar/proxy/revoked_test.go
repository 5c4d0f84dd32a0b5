package proxy

import (
	"errors"
	"fmt"
	"testing"

	"github.com/twofold-dev/twofold/contract"
)

func revokedAt(at int64, names ...string) []contract.RevokedSession {
	out := make([]contract.RevokedSession, 0, len(names))
	for _, n := range names {
		out = append(out, contract.RevokedSession{HandleHash: n, RevokedAt: at})
	}
	return out
}

func manyRevoked(prefix string, n int, at int64) []contract.RevokedSession {
	out := make([]contract.RevokedSession, n)
	for i := range out {
		out[i] = contract.RevokedSession{HandleHash: fmt.Sprintf("%s%d", prefix, i), RevokedAt: at}
	}
	return out
}

func TestTheRevokedSetKeepsEverySessionTheFeedListed(t *testing.T) {
	t.Run("changes add to what a full answer listed", func(t *testing.T) {
		s, err := (&revokedSet{}).with(revokedAt(100, "a", "b"), true, 0)
		if err != nil {
			t.Fatal(err)
		}
		s2, err := s.with(revokedAt(200, "c"), false, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range []string{"a", "b", "c"} {
			if !s2.has(h) {
				t.Errorf("%s is not revoked after the change", h)
			}
		}
		if s.has("c") {
			t.Error("the change altered the set it was applied to")
		}
	})
	t.Run("a full answer replaces the set", func(t *testing.T) {
		s, _ := (&revokedSet{}).with(revokedAt(100, "a"), true, 0)
		s, _ = s.with(revokedAt(100, "b"), true, 0)
		if s.has("a") || !s.has("b") {
			t.Errorf("after a second full answer: a %t, b %t; want only b", s.has("a"), s.has("b"))
		}
	})
	t.Run("many changes fold together without losing one", func(t *testing.T) {
		s, _ := (&revokedSet{}).with(manyRevoked("base", 1000, 100), true, 0)
		for round := range 50 {
			var err error
			if s, err = s.with(manyRevoked(fmt.Sprintf("r%d-", round), 20, 100), false, 0); err != nil {
				t.Fatal(err)
			}
		}
		if s.size() != 2000 {
			t.Fatalf("size = %d, want 2000", s.size())
		}
		for _, h := range []string{"base0", "base999", "r0-0", "r25-19", "r49-19"} {
			if !s.has(h) {
				t.Errorf("%s is missing after folding", h)
			}
		}
		if len(s.recent) > max(minRecent, len(s.base)/4) {
			t.Errorf("the small map holds %d of %d: it never folded", len(s.recent), s.size())
		}
	})
	t.Run("folding drops revocations no valid token can need", func(t *testing.T) {
		s, _ := (&revokedSet{}).with(revokedAt(100, "old"), true, 0)
		s, _ = s.with(manyRevoked("new", minRecent+1, 5000), false, 1000)
		if s.has("old") || !s.has("new0") {
			t.Errorf("after folding with notBefore 1000: old %t, new0 %t; want only new0", s.has("old"), s.has("new0"))
		}
	})
	t.Run("an entry without a hash is refused", func(t *testing.T) {
		if _, err := (&revokedSet{}).with([]contract.RevokedSession{{RevokedAt: 1}}, false, 0); !errors.Is(err, ErrFeed) {
			t.Fatalf("err = %v, want ErrFeed", err)
		}
	})
}
