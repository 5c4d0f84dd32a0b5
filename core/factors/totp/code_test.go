package totp

import (
	"encoding/base32"
	"errors"
	"strings"
	"testing"
	"time"
)

func b32(s string) string { return secretEncoding.EncodeToString([]byte(s)) }

// RFC 6238 Appendix B. The SHA256 and SHA512 seeds are the RFC's reference implementation
// seeds, 32 and 64 bytes long.
var (
	rfcSeed1   = b32("12345678901234567890")
	rfcSeed256 = b32("12345678901234567890123456789012")
	rfcSeed512 = b32("1234567890123456789012345678901234567890123456789012345678901234")
)

func TestVerifyAcceptsTheRFC6238TestVectors(t *testing.T) {
	vectors := []struct {
		unix                 int64
		sha1, sha256, sha512 string
	}{
		{59, "94287082", "46119246", "90693936"},
		{1111111109, "07081804", "68084774", "25091201"},
		{1111111111, "14050471", "67062674", "99943326"},
		{1234567890, "89005924", "91819424", "93441116"},
		{2000000000, "69279037", "90698825", "38618901"},
		{20000000000, "65353130", "77737706", "47863826"},
	}
	for _, v := range vectors {
		for _, alg := range []struct {
			alg    Algorithm
			secret string
			code   string
		}{{SHA1, rfcSeed1, v.sha1}, {SHA256, rfcSeed256, v.sha256}, {SHA512, rfcSeed512, v.sha512}} {
			cfg := Config{Issuer: "RFC", Digits: 8, Period: 30 * time.Second, Skew: 0, Algorithm: alg.alg}
			now := time.Unix(v.unix, 0)
			got, err := cfg.Code(alg.secret, now)
			if err != nil || got != alg.code {
				t.Errorf("%s at %d: Code = %q, %v; want %q", alg.alg, v.unix, got, err, alg.code)
			}
			step, err := cfg.Verify(alg.secret, alg.code, now, 0)
			if err != nil || step != v.unix/30 {
				t.Errorf("%s at %d: Verify = %d, %v; want step %d", alg.alg, v.unix, step, err, v.unix/30)
			}
		}
	}
}

func TestVerify(t *testing.T) {
	cfg := DefaultConfig()
	secret := rfcSeed1
	// now is in the middle of step 50,000,000.
	now := time.Unix(50_000_000*30+15, 0)
	step := cfg.Step(now)
	code := func(s int64) string {
		t.Helper()
		c, err := cfg.codeAt(secret, s)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	tests := []struct {
		name     string
		code     string
		lastUsed int64
		wantStep int64
		wantErr  error
	}{
		{name: "the current code is accepted and its step returned", code: code(step), wantStep: step},
		{name: "the previous step's code is accepted within a skew of one", code: code(step - 1), wantStep: step - 1},
		{name: "the next step's code is accepted within a skew of one", code: code(step + 1), wantStep: step + 1},
		{name: "a code two steps old is refused", code: code(step - 2), wantErr: ErrInvalidCode},
		{name: "a code two steps ahead is refused", code: code(step + 2), wantErr: ErrInvalidCode},
		{name: "a code whose step was already used is refused as a replay", code: code(step), lastUsed: step, wantErr: ErrReplayedCode},
		{name: "an older code after a newer one was used is refused as a replay", code: code(step - 1), lastUsed: step, wantErr: ErrReplayedCode},
		{name: "a newer code after an older one was used is accepted", code: code(step + 1), lastUsed: step, wantStep: step + 1},
		{name: "surrounding spaces are ignored", code: " " + code(step) + " ", wantStep: step},
		{name: "a five digit code is malformed", code: code(step)[:5], wantErr: ErrMalformedCode},
		{name: "a seven digit code is malformed", code: code(step) + "1", wantErr: ErrMalformedCode},
		{name: "an empty code is malformed", code: "", wantErr: ErrMalformedCode},
		{name: "a code with a letter is malformed", code: "12a456", wantErr: ErrMalformedCode},
		{name: "a code with an inner space is malformed", code: "123 456", wantErr: ErrMalformedCode},
		{name: "a code with non-ASCII digits is malformed", code: "١٢٣٤٥٦", wantErr: ErrMalformedCode},
		{name: "a wrong code is refused", code: wrong(code(step-1), code(step), code(step+1)), wantErr: ErrInvalidCode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := cfg.Verify(secret, tt.code, now, tt.lastUsed)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify error = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr != nil && !errors.Is(err, ErrInvalidCode) {
				t.Errorf("error %v does not wrap ErrInvalidCode", err)
			}
			if got != tt.wantStep {
				t.Errorf("Verify step = %d, want %d", got, tt.wantStep)
			}
		})
	}
}

// wrong returns a six-digit code different from all of codes.
func wrong(codes ...string) string {
	for _, c := range []string{"000000", "111111", "222222"} {
		if !strings.Contains(strings.Join(codes, ","), c) {
			return c
		}
	}
	panic("unreachable")
}

func TestVerifyWithZeroSkewAcceptsOnlyTheCurrentStep(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Skew = 0
	now := time.Unix(1_700_000_010, 0)
	prev, _ := cfg.Code(rfcSeed1, now.Add(-30*time.Second))
	cur, _ := cfg.Code(rfcSeed1, now)
	if _, err := cfg.Verify(rfcSeed1, prev, now, 0); !errors.Is(err, ErrInvalidCode) || prev == cur {
		t.Errorf("previous code: err = %v, want ErrInvalidCode", err)
	}
	if _, err := cfg.Verify(rfcSeed1, cur, now, 0); err != nil {
		t.Errorf("current code: %v", err)
	}
}

func TestVerifySkewEdges(t *testing.T) {
	cfg := DefaultConfig()
	// The code of step s is accepted from the first second of step s-1 to the last of s+1.
	const s = 56_666_667
	code, err := cfg.codeAt(rfcSeed1, s)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Unix(s*30, 0)
	tests := []struct {
		name   string
		now    time.Time
		accept bool
	}{
		{name: "one second before the window opens the code is refused", now: start.Add(-31 * time.Second), accept: false},
		{name: "at the first second of the window the code is accepted", now: start.Add(-30 * time.Second), accept: true},
		{name: "at the last second of the window the code is accepted", now: start.Add(59*time.Second + 999*time.Millisecond), accept: true},
		{name: "one second after the window closes the code is refused", now: start.Add(60 * time.Second), accept: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			step, err := cfg.Verify(rfcSeed1, code, tt.now, 0)
			if tt.accept && (err != nil || step != s) {
				t.Errorf("Verify = %d, %v; want step %d", step, err, s)
			}
			if !tt.accept && !errors.Is(err, ErrInvalidCode) {
				t.Errorf("Verify = %d, %v; want ErrInvalidCode", step, err)
			}
		})
	}
}

func TestAUsedCodeIsNeverAcceptedAgain(t *testing.T) {
	cfg := DefaultConfig()
	now := time.Unix(1_700_000_000, 0)
	code, _ := cfg.Code(rfcSeed1, now)
	last, err := cfg.Verify(rfcSeed1, code, now, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Try the same code every second for the whole window and beyond.
	for d := time.Duration(0); d <= 3*cfg.Period; d += time.Second {
		if _, err := cfg.Verify(rfcSeed1, code, now.Add(d), last); !errors.Is(err, ErrInvalidCode) {
			t.Fatalf("%s later the used code was accepted (err %v)", d, err)
		}
	}
}

func TestVerifyRefusesBadSecretsAndConfig(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	tests := []struct {
		name    string
		cfg     Config
		secret  string
		wantErr error
	}{
		{name: "an empty secret is invalid", cfg: DefaultConfig(), secret: "", wantErr: ErrInvalidSecret},
		{name: "a secret with characters outside base32 is invalid", cfg: DefaultConfig(), secret: "GEZDGNBV1Y3TQOJQ", wantErr: ErrInvalidSecret},
		{name: "a config with four digits is invalid", cfg: Config{Issuer: "A", Digits: 4, Period: 30 * time.Second, Algorithm: SHA1}, secret: rfcSeed1, wantErr: ErrInvalidConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.cfg.Verify(tt.secret, "123456", now, 0); !errors.Is(err, tt.wantErr) {
				t.Errorf("Verify error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestVerifyAcceptsSecretsAsAppsShowThem(t *testing.T) {
	cfg := DefaultConfig()
	now := time.Unix(1_700_000_000, 0)
	code, _ := cfg.Code(rfcSeed1, now)
	spaced := strings.ToLower(rfcSeed1[:4] + " " + rfcSeed1[4:])
	if _, err := cfg.Verify(spaced, code, now, 0); err != nil {
		t.Errorf("lower-case secret with a space: %v", err)
	}
}

func TestNewSecretIs160RandomBitsInUnpaddedBase32(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		s, err := NewSecret()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(s, "=") || len(s) != 32 {
			t.Fatalf("secret %q: want 32 base32 characters without padding", s)
		}
		b, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(s)
		if err != nil || len(b) != 20 {
			t.Fatalf("secret %q decodes to %d bytes, %v", s, len(b), err)
		}
		if seen[s] {
			t.Fatalf("secret %q generated twice", s)
		}
		seen[s] = true
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "the defaults are valid", cfg: DefaultConfig()},
		{name: "an empty config with defaults applied is valid", cfg: Config{}.WithDefaults()},
		{name: "eight digits with SHA512 and a 60 second period is valid", cfg: Config{Issuer: "A", Digits: 8, Period: time.Minute, Skew: 2, Algorithm: SHA512}},
		{name: "an empty issuer is refused", cfg: Config{Digits: 6, Period: 30 * time.Second, Algorithm: SHA1}, wantErr: "issuer is empty"},
		{name: "an issuer with a colon is refused", cfg: Config{Issuer: "Acme:Prod", Digits: 6, Period: 30 * time.Second, Algorithm: SHA1}, wantErr: "contains a colon"},
		{name: "nine digits are refused", cfg: Config{Issuer: "A", Digits: 9, Period: 30 * time.Second, Algorithm: SHA1}, wantErr: "digits must be"},
		{name: "a fractional period is refused", cfg: Config{Issuer: "A", Digits: 6, Period: 1500 * time.Millisecond, Algorithm: SHA1}, wantErr: "whole seconds"},
		{name: "a zero period is refused", cfg: Config{Issuer: "A", Digits: 6, Algorithm: SHA1}, wantErr: "whole seconds"},
		{name: "a negative skew is refused", cfg: Config{Issuer: "A", Digits: 6, Period: 30 * time.Second, Skew: -1, Algorithm: SHA1}, wantErr: "skew"},
		{name: "a huge skew is refused", cfg: Config{Issuer: "A", Digits: 6, Period: 30 * time.Second, Skew: 11, Algorithm: SHA1}, wantErr: "skew"},
		{name: "an unknown algorithm is refused", cfg: Config{Issuer: "A", Digits: 6, Period: 30 * time.Second, Algorithm: "MD5"}, wantErr: "algorithm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Validate = %v, want ErrInvalidConfig mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestWithDefaultsFillsEmptyFieldsButKeepsSkew(t *testing.T) {
	got := Config{Issuer: "Acme", Digits: 8}.WithDefaults()
	want := Config{Issuer: "Acme", Digits: 8, Period: 30 * time.Second, Skew: 0, Algorithm: SHA1}
	if got != want {
		t.Errorf("WithDefaults = %+v, want %+v", got, want)
	}
}
