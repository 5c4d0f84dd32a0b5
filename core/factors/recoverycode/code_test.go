package recoverycode

import (
	"bytes"
	"encoding/hex"
	"errors"
	"regexp"
	"strings"
	"testing"
)

func TestGenerate(t *testing.T) {
	set, err := Generate("user-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Codes) != Count || len(set.Hashes) != Count {
		t.Fatalf("got %d codes and %d hashes, want %d", len(set.Codes), len(set.Hashes), Count)
	}
	shape := regexp.MustCompile(`^[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}$`)
	seen := map[string]bool{}
	for i, c := range set.Codes {
		if !shape.MatchString(c) {
			t.Errorf("code %q is not xxxx-xxxx-xxxx from the alphabet", c)
		}
		if seen[c] {
			t.Errorf("code %q appears twice", c)
		}
		seen[c] = true
		if bytes.Contains(set.Hashes[i], []byte(c)) || len(set.Hashes[i]) != 32 {
			t.Errorf("hash %x is not a SHA-256 digest", set.Hashes[i])
		}
		if got, err := Verify("user-1", c, set.Hashes); err != nil || got != i {
			t.Errorf("Verify(code %d) = %d, %v", i, got, err)
		}
	}
}

func TestGenerateUsesEveryCharacterOfTheAlphabet(t *testing.T) {
	counts := map[rune]int{}
	for range 100 {
		set, err := Generate("u")
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range set.Codes {
			for _, r := range strings.ReplaceAll(c, "-", "") {
				counts[r]++
			}
		}
	}
	// 12,000 characters over 32 symbols: about 375 each.
	for _, r := range alphabet {
		if counts[r] < 250 || counts[r] > 500 {
			t.Errorf("%q appeared %d times, want about 375", r, counts[r])
		}
	}
	if len(counts) != len(alphabet) {
		t.Errorf("%d distinct characters, want %d", len(counts), len(alphabet))
	}
}

func TestVerify(t *testing.T) {
	set, err := Generate("user-1")
	if err != nil {
		t.Fatal(err)
	}
	code := set.Codes[3]
	plain := strings.ReplaceAll(code, "-", "")
	tests := []struct {
		name    string
		user    string
		input   string
		hashes  [][]byte
		want    int
		wantErr error
	}{
		{name: "the code as shown matches its hash", user: "user-1", input: code, hashes: set.Hashes, want: 3},
		{name: "upper case matches", user: "user-1", input: strings.ToUpper(code), hashes: set.Hashes, want: 3},
		{name: "without dashes it matches", user: "user-1", input: plain, hashes: set.Hashes, want: 3},
		{name: "with spaces instead of dashes it matches", user: "user-1", input: " " + plain[:4] + " " + plain[4:8] + " " + plain[8:] + " ", hashes: set.Hashes, want: 3},
		{name: "o typed for zero and l or i typed for one match", user: "user-1", input: strings.NewReplacer("0", "O", "1", "l").Replace(code), hashes: set.Hashes, want: 3},
		{name: "a used code that the store no longer passes does not match", user: "user-1", input: code, hashes: append(append([][]byte{}, set.Hashes[:3]...), set.Hashes[4:]...), wantErr: ErrNoMatch},
		{name: "another user's code does not match", user: "user-2", input: code, hashes: set.Hashes, wantErr: ErrNoMatch},
		{name: "no stored codes means no match", user: "user-1", input: code, wantErr: ErrNoMatch},
		{name: "a code with one character changed does not match", user: "user-1", input: flip(code), hashes: set.Hashes, wantErr: ErrNoMatch},
		{name: "a short code is malformed", user: "user-1", input: code[:13], hashes: set.Hashes, wantErr: ErrMalformedCode},
		{name: "a long code is malformed", user: "user-1", input: code + "a", hashes: set.Hashes, wantErr: ErrMalformedCode},
		{name: "a code with u is malformed", user: "user-1", input: "uuuu-uuuu-uuuu", hashes: set.Hashes, wantErr: ErrMalformedCode},
		{name: "a code with punctuation is malformed", user: "user-1", input: "abcd_efgh_jkmn", hashes: set.Hashes, wantErr: ErrMalformedCode},
		{name: "a code with non-ASCII letters is malformed", user: "user-1", input: "abcd-efgh-jkmñ", hashes: set.Hashes, wantErr: ErrMalformedCode},
		{name: "an empty user id is refused", user: "", input: code, hashes: set.Hashes, wantErr: ErrInvalidUser},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Verify(tt.user, tt.input, tt.hashes)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify error = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil && got != tt.want {
				t.Errorf("Verify = %d, want %d", got, tt.want)
			}
			if tt.wantErr != nil && got != -1 {
				t.Errorf("Verify = %d on error, want -1", got)
			}
		})
	}
}

func flip(code string) string {
	b := []byte(code)
	if b[0] == 'a' {
		b[0] = 'b'
	} else {
		b[0] = 'a'
	}
	return string(b)
}

func TestHashIsStableSoStoredHashesKeepWorking(t *testing.T) {
	// A change to the hash construction would lock every user out of their recovery codes.
	// want is printf 'twofold/recovery-code\0user-1\0abcdefghjkmn' | sha256sum.
	h, err := Hash("user-1", "abcd-efgh-jkmn")
	if err != nil {
		t.Fatal(err)
	}
	const want = "20174cd4883131a29127148d216243e1deb1b0e9a789a71b7b14a485ef46b284"
	if got := hex.EncodeToString(h); got != want {
		t.Errorf("Hash = %s, want %s", got, want)
	}
}
