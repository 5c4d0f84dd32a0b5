// This file holds the factor's rules: secrets, codes and their verification (RFC 6238 on top
// of github.com/pquerna/otp). It keeps no state; the operations apply it in the store's
// transactions.

package totp

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
)

// Algorithm is the HMAC hash of the one-time password.
type Algorithm string

// Algorithms understood by authenticator apps. SHA1 is what nearly every app supports.
const (
	SHA1   Algorithm = "SHA1"
	SHA256 Algorithm = "SHA256"
	SHA512 Algorithm = "SHA512"
)

// Defaults, as SuperTokens and Google Authenticator use them.
const (
	DefaultIssuer    = "Twofold"
	DefaultDigits    = 6
	DefaultPeriod    = 30 * time.Second
	DefaultSkew      = 1
	DefaultAlgorithm = SHA1
	// SecretSize is the size of a new secret in bytes: 160 bits, as RFC 4226 recommends.
	SecretSize = 20
	// maxSkew bounds the window: each extra step multiplies an attacker's odds per guess.
	maxSkew   = 10
	maxPeriod = 10 * time.Minute
)

// Errors callers branch on. ErrMalformedCode and ErrReplayedCode wrap ErrInvalidCode, so a
// caller that only needs "the code was not accepted" checks errors.Is(err, ErrInvalidCode).
var (
	// ErrInvalidCode means the code matches no time step in the window.
	ErrInvalidCode = errors.New("invalid TOTP code")
	// ErrMalformedCode means the code has the wrong length or contains a non-digit.
	ErrMalformedCode = fmt.Errorf("%w: malformed", ErrInvalidCode)
	// ErrReplayedCode means the code matches only time steps at or before the last used one.
	ErrReplayedCode = fmt.Errorf("%w: already used", ErrInvalidCode)
	// ErrInvalidSecret means the secret is not valid base32 or is empty.
	ErrInvalidSecret = errors.New("invalid TOTP secret")
	// ErrInvalidConfig is wrapped by every Config validation error.
	ErrInvalidConfig = errors.New("invalid TOTP configuration")
)

// Config holds a tenant's TOTP settings.
type Config struct {
	// Issuer names the service in authenticator apps; it may not contain a colon.
	Issuer string
	// Digits is the code length, 6 to 8.
	Digits int
	// Period is the length of a time step, in whole seconds.
	Period time.Duration
	// Skew is how many time steps before and after the current one are accepted.
	// Zero accepts the current step only; WithDefaults leaves it as it is.
	Skew int
	// Algorithm is the HMAC hash.
	Algorithm Algorithm
}

// DefaultConfig returns the defaults: issuer Twofold, 6 digits, 30 s, skew 1, SHA1.
func DefaultConfig() Config {
	return Config{Issuer: DefaultIssuer, Digits: DefaultDigits, Period: DefaultPeriod, Skew: DefaultSkew, Algorithm: DefaultAlgorithm}
}

// WithDefaults returns c with an empty Issuer, Digits, Period or Algorithm replaced by its
// default. Skew is kept, because zero is a meaningful skew; start from DefaultConfig when the
// tenant did not set one.
func (c Config) WithDefaults() Config {
	if c.Issuer == "" {
		c.Issuer = DefaultIssuer
	}
	if c.Digits == 0 {
		c.Digits = DefaultDigits
	}
	if c.Period == 0 {
		c.Period = DefaultPeriod
	}
	if c.Algorithm == "" {
		c.Algorithm = DefaultAlgorithm
	}
	return c
}

// Validate reports the first invalid setting, wrapped in ErrInvalidConfig.
func (c Config) Validate() error {
	switch {
	case strings.TrimSpace(c.Issuer) == "":
		return fmt.Errorf("%w: issuer is empty", ErrInvalidConfig)
	case strings.Contains(c.Issuer, ":"):
		return fmt.Errorf("%w: issuer %q contains a colon, which separates it from the account in the otpauth label", ErrInvalidConfig, c.Issuer)
	case c.Digits < 6 || c.Digits > 8:
		return fmt.Errorf("%w: digits must be 6, 7 or 8, got %d", ErrInvalidConfig, c.Digits)
	case c.Period <= 0 || c.Period > maxPeriod || c.Period%time.Second != 0:
		return fmt.Errorf("%w: period must be whole seconds between 1s and %s, got %s", ErrInvalidConfig, maxPeriod, c.Period)
	case c.Skew < 0 || c.Skew > maxSkew:
		return fmt.Errorf("%w: skew must be between 0 and %d, got %d", ErrInvalidConfig, maxSkew, c.Skew)
	}
	if _, err := c.Algorithm.otp(); err != nil {
		return err
	}
	return nil
}

func (a Algorithm) otp() (otp.Algorithm, error) {
	switch a {
	case SHA1:
		return otp.AlgorithmSHA1, nil
	case SHA256:
		return otp.AlgorithmSHA256, nil
	case SHA512:
		return otp.AlgorithmSHA512, nil
	}
	return 0, fmt.Errorf("%w: algorithm must be SHA1, SHA256 or SHA512, got %q", ErrInvalidConfig, string(a))
}

var secretEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewSecret returns a new random 160-bit secret, base32-encoded without padding.
func NewSecret() (string, error) {
	b := make([]byte, SecretSize)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("read random secret: %w", err)
	}
	return secretEncoding.EncodeToString(b), nil
}

// decodeSecret accepts the forms authenticator apps show: upper or lower case, with or
// without padding and spaces.
func decodeSecret(secret string) ([]byte, error) {
	s := strings.ToUpper(strings.ReplaceAll(secret, " ", ""))
	s = strings.TrimRight(s, "=")
	if s == "" {
		return nil, fmt.Errorf("%w: empty", ErrInvalidSecret)
	}
	b, err := secretEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidSecret, err)
	}
	return b, nil
}

// Step returns the time step that contains t.
func (c Config) Step(t time.Time) int64 {
	return floorDiv(t.Unix(), int64(c.Period/time.Second))
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// Code returns the code for the time step that contains t. Authenticator apps compute the
// same; the core uses it in tests and nowhere else.
func (c Config) Code(secret string, t time.Time) (string, error) {
	if err := c.Validate(); err != nil {
		return "", err
	}
	key, err := decodeSecret(secret)
	if err != nil {
		return "", err
	}
	return c.codeAt(secretEncoding.EncodeToString(key), c.Step(t))
}

func (c Config) codeAt(secret string, step int64) (string, error) {
	alg, _ := c.Algorithm.otp()
	code, err := hotp.GenerateCodeCustom(secret, uint64(step), hotp.ValidateOpts{Digits: otp.Digits(c.Digits), Algorithm: alg})
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrInvalidSecret, err)
	}
	return code, nil
}

// Verify checks code against the time steps within Skew of now and returns the step it
// matched, which the caller stores as the device's new last used step. A code is accepted
// only for a step after lastUsedStep (pass 0 for a device never used), so a code can never be
// used twice and no earlier code is accepted after a later one. Every step of the window is
// computed and compared in constant time, so the answer's timing says nothing about which
// step matched. Surrounding spaces are ignored.
func (c Config) Verify(secret, code string, now time.Time, lastUsedStep int64) (int64, error) {
	if err := c.Validate(); err != nil {
		return 0, err
	}
	code = strings.TrimSpace(code)
	if len(code) != c.Digits {
		return 0, fmt.Errorf("%w: want %d digits, got %d characters", ErrMalformedCode, c.Digits, len(code))
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return 0, fmt.Errorf("%w: contains a non-digit", ErrMalformedCode)
		}
	}
	key, err := decodeSecret(secret)
	if err != nil {
		return 0, err
	}
	canonical := secretEncoding.EncodeToString(key)
	current := c.Step(now)
	var (
		matched         int64
		found, replayed bool
	)
	for step := current - int64(c.Skew); step <= current+int64(c.Skew); step++ {
		want, err := c.codeAt(canonical, step)
		if err != nil {
			return 0, err
		}
		eq := subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1
		switch {
		case eq && step > lastUsedStep && !found:
			matched, found = step, true
		case eq && step <= lastUsedStep:
			replayed = true
		}
	}
	if found {
		return matched, nil
	}
	if replayed {
		return 0, ErrReplayedCode
	}
	return 0, ErrInvalidCode
}
