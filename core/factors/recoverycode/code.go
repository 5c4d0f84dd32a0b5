package recoverycode

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
)

const (
	// Count is the number of codes in a set.
	Count = 10
	// groups of groupLen characters, joined by dashes: xxxx-xxxx-xxxx.
	groups   = 3
	groupLen = 4
	codeLen  = groups * groupLen
	// alphabet is Crockford's base32 in lower case: no i, l, o or u, so nothing reads as
	// something else once Normalise maps o to 0 and i and l to 1. 32 symbols give exactly 5
	// bits per character, so 12 characters are 60 bits, drawn without bias.
	alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
)

// Errors callers branch on.
var (
	// ErrNoMatch means the code is well formed but matches no unused code of the user.
	ErrNoMatch = errors.New("recovery code does not match")
	// ErrMalformedCode means the input cannot be a recovery code at all.
	ErrMalformedCode = errors.New("malformed recovery code")
	// ErrInvalidUser means the user id is empty; hashes are bound to it.
	ErrInvalidUser = errors.New("recovery codes need a user id")
)

// Set is a newly generated set: Codes to show the user once, and Hashes to store, in the
// same order.
type Set struct {
	Codes  []string
	Hashes [][]byte
}

// Generate returns a new set of Count codes for userID.
func Generate(userID string) (Set, error) {
	if userID == "" {
		return Set{}, ErrInvalidUser
	}
	s := Set{Codes: make([]string, 0, Count), Hashes: make([][]byte, 0, Count)}
	seen := make(map[string]bool, Count)
	for len(s.Codes) < Count {
		code, err := newCode()
		if err != nil {
			return Set{}, err
		}
		if seen[code] {
			continue
		}
		seen[code] = true
		s.Codes = append(s.Codes, code)
		s.Hashes = append(s.Hashes, hash(userID, strings.ReplaceAll(code, "-", "")))
	}
	return s, nil
}

func newCode() (string, error) {
	raw := make([]byte, codeLen)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("read random recovery code: %w", err)
	}
	var b strings.Builder
	for i, r := range raw {
		if i > 0 && i%groupLen == 0 {
			b.WriteByte('-')
		}
		// 256 is a multiple of 32, so the low five bits are uniform.
		b.WriteByte(alphabet[r&31])
	}
	return b.String(), nil
}

// Normalise turns what a user typed into the canonical 12 characters: it lower-cases, drops
// spaces and dashes, and reads o as 0 and i and l as 1.
func Normalise(input string) (string, error) {
	var b strings.Builder
	for _, r := range strings.ToLower(input) {
		switch r {
		case ' ', '\t', '\n', '\r', '-':
			continue
		case 'o':
			r = '0'
		case 'i', 'l':
			r = '1'
		}
		if r > 127 || strings.IndexByte(alphabet, byte(r)) < 0 {
			return "", fmt.Errorf("%w: %q is not a recovery code character", ErrMalformedCode, r)
		}
		b.WriteRune(r)
		if b.Len() > codeLen {
			break
		}
	}
	if b.Len() != codeLen {
		return "", fmt.Errorf("%w: want %d characters, like xxxx-xxxx-xxxx", ErrMalformedCode, codeLen)
	}
	return b.String(), nil
}

// hash is SHA-256 over a domain tag, the user id and the canonical code. A fast hash is
// appropriate because the codes are random with 60 bits each: an offline search for any one
// of a user's ten codes needs about 2^56 hashes, months of a fast GPU, whereas passwords need
// a slow hash because people choose guessable ones. Binding the user id in stops one search
// from covering every user's codes at once. A slow hash (argon2id, ~20 ms) would cost as much
// per attempt as a sign-in and buy little: whoever reads the table also reads TOTP secrets.
func hash(userID, canonical string) []byte {
	h := sha256.New()
	h.Write([]byte("twofold/recovery-code\x00"))
	h.Write([]byte(userID))
	h.Write([]byte{0})
	h.Write([]byte(canonical))
	return h.Sum(nil)
}

// Hash returns the stored form of a code for userID, after Normalise.
func Hash(userID, code string) ([]byte, error) {
	if userID == "" {
		return nil, ErrInvalidUser
	}
	canonical, err := Normalise(code)
	if err != nil {
		return nil, err
	}
	return hash(userID, canonical), nil
}

// Verify normalises input and compares its hash with every one of hashes (the user's unused
// codes) in constant time, and returns the index of the hash that matched, for the store to
// mark used.
func Verify(userID, input string, hashes [][]byte) (int, error) {
	want, err := Hash(userID, input)
	if err != nil {
		return -1, err
	}
	match := -1
	for i, h := range hashes {
		if subtle.ConstantTimeCompare(h, want) == 1 && match < 0 {
			match = i
		}
	}
	if match < 0 {
		return -1, ErrNoMatch
	}
	return match, nil
}
