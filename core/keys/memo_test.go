package keys

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/core/store/sqlite"
)

func TestTheTokenMemoIsBoundedAndLearnsFromSigningAndVerifying(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "keys.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	opts := Options{Clock: func() time.Time { return now }, MemoSize: 16}
	signer, verifier := New(st, opts), New(st, opts)
	if _, err := signer.Rotate(ctx); err != nil {
		t.Fatal(err)
	}

	t.Run("a token signed here is remembered, and one verified elsewhere once", func(t *testing.T) {
		tok, err := signer.Sign(ctx, []byte(`{"n":0}`))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := signer.memo.get(tok); !ok {
			t.Fatal("the signer did not remember its token")
		}
		if _, ok := verifier.memo.get(tok); ok {
			t.Fatal("another replica remembered a token it never saw")
		}
		if _, _, err := verifier.Verify(ctx, tok); err != nil {
			t.Fatal(err)
		}
		if e, ok := verifier.memo.get(tok); !ok || string(e.payload) != `{"n":0}` {
			t.Fatalf("after verifying, the memo has %+v, %v", e, ok)
		}
	})
	t.Run("a token that does not verify is not remembered", func(t *testing.T) {
		tok, _ := signer.Sign(ctx, []byte(`{"n":1}`))
		forged := tok[:len(tok)-4] + "AAAA"
		if _, _, err := verifier.Verify(ctx, forged); err == nil {
			t.Fatal("a forged signature verified")
		}
		if _, ok := verifier.memo.get(forged); ok {
			t.Fatal("a forged token was remembered")
		}
	})
	t.Run("the oldest tokens are forgotten first, and one presented again is kept", func(t *testing.T) {
		m := newMemo(16)
		m.put("presented", nil, "k")
		m.put("forgotten", nil, "k")
		for i := range 14 {
			m.put(fmt.Sprint("filler", i), nil, "k")
			if _, ok := m.get("presented"); !ok {
				t.Fatalf("after %d more tokens the presented one is forgotten", i+1)
			}
		}
		if _, ok := m.get("forgotten"); ok {
			t.Fatal("a token never presented outlived 14 newer ones in a memo of 16")
		}
		for i := range 8 {
			m.put(fmt.Sprint("newer", i), nil, "k")
		}
		if _, ok := m.get("filler0"); ok {
			t.Fatal("the oldest filler outlived 8 newer tokens after its generation was dropped")
		}
		if _, ok := m.get("newer7"); !ok {
			t.Fatal("the newest token is forgotten")
		}
	})
	t.Run("signing many tokens keeps the memo within its size", func(t *testing.T) {
		for i := range 100 {
			if _, err := signer.Sign(ctx, []byte(fmt.Sprintf(`{"n":%d}`, i))); err != nil {
				t.Fatal(err)
			}
			if n := signer.memo.len(); n > 16 {
				t.Fatalf("after %d tokens the memo holds %d, more than 16", i+1, n)
			}
		}
	})
}

// len counts the tokens the memo holds.
func (c *memo) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.cur) + len(c.prev)
}
