package emailpassword

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/twofold-dev/twofold/core/store/sqlite"
)

func TestDefaultParamsAreOWASPs(t *testing.T) {
	if DefaultParams.MemoryKiB != 19456 || DefaultParams.Iterations != 2 || DefaultParams.Parallelism != 1 {
		t.Fatalf("DefaultParams = %+v, want m=19456 KiB, t=2, p=1", DefaultParams)
	}
	h, err := DefaultParams.Hash("secret123")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash = %q", h)
	}
}

func TestVerify(t *testing.T) {
	p := Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}
	h, _ := p.Hash("right password 1")
	h2, _ := p.Hash("right password 1")
	if h == h2 {
		t.Fatalf("two hashes of one password are equal: the salt is not random")
	}
	tests := []struct {
		name, hash, password string
		ok                   bool
		err                  error
	}{
		{"the right password matches", h, "right password 1", true, nil},
		{"a wrong password does not match", h, "right password 2", false, nil},
		{"a hash with other parameters still verifies", func() string {
			s, _ := (Params{MemoryKiB: 128, Iterations: 2, Parallelism: 1, SaltLen: 8, KeyLen: 16}).Hash("x1234567")
			return s
		}(), "x1234567", true, nil},
		{"a bcrypt hash is malformed", "$2a$10$abcdefghijklmnopqrstuu", "x", false, ErrMalformedHash},
		{"a truncated hash is malformed", "$argon2id$v=19$m=64,t=1,p=1$c2FsdA", "x", false, ErrMalformedHash},
		{"another argon2 version is malformed", strings.Replace(h, "v=19", "v=16", 1), "right password 1", false, ErrMalformedHash},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := Verify(tt.hash, tt.password)
			if ok != tt.ok || !errors.Is(err, tt.err) {
				t.Fatalf("Verify = %v, %v; want %v, %v", ok, err, tt.ok, tt.err)
			}
		})
	}
}

func TestValidation(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"a plain address is valid", "a@example.com", ""},
		{"a plus address is valid", "a+tag@mail.example.co", ""},
		{"a missing domain dot is invalid", "a@example", MsgEmailInvalid},
		{"a missing at sign is invalid", "example.com", MsgEmailInvalid},
		{"an empty email is required", "", MsgFieldRequired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidateEmail(tt.in); got != tt.want {
				t.Fatalf("ValidateEmail(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	if got := NormaliseEmail("  Mixed@Example.COM "); got != "mixed@example.com" {
		t.Fatalf("NormaliseEmail = %q", got)
	}
	if got := ValidatePassword("ünïcödé1"); got != "" {
		t.Fatalf("an 8-character unicode password with a letter and a digit was refused: %q", got)
	}
}

// TestSignInOnAnUnknownEmailStillSpendsAHash guards against telling accounts apart by time.
func TestSignInOnAnUnknownEmailStillSpendsAHash(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ep.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var n atomic.Int64
	r, err := New(Options{Store: st, Params: Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32},
		NewID: func() string { return fmt.Sprintf("u%d", n.Add(1)) }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.SignUp(ctx, "public", "known@example.com", "secret123"); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, email, password string }{
		{"an unknown email", "unknown@example.com", "secret123"},
		{"a known email with a wrong password", "known@example.com", "secret124"},
	} {
		t.Run(tt.name+" costs one hash and is wrong credentials", func(t *testing.T) {
			before := hashes.Load()
			_, err := r.SignIn(ctx, "public", tt.email, tt.password)
			if !errors.Is(err, ErrWrongCredentials) {
				t.Fatalf("SignIn = %v", err)
			}
			if got := hashes.Load() - before; got != 1 {
				t.Fatalf("SignIn computed %d hashes, want 1", got)
			}
		})
	}
}
