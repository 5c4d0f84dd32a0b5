// Package passwordless implements the codes behind Twofold's otp-email, otp-phone, link-email
// and link-phone factors, with SuperTokens' passwordless semantics: a device (one sign-in
// attempt started with POST /signinup/code) holds one or more codes, each usable as a six-digit
// user input code, a magic link, or both; a code lives 15 minutes; the fifth wrong input ends
// the device and the client must restart the flow.
//
// Nothing secret is stored in clear. The device id handed to the client is a 256-bit secret;
// the store sees only its SHA-256, which is the preAuthSessionId. A user input code is stored
// as HMAC-SHA256 keyed with the device id, so a leaked database does not reveal the codes even
// though there are only a million of them. A link code is 256 random bits and is stored as its
// SHA-256.
//
// The package keeps no state. The store persists a Device (keyed by PreAuthSessionID) and its
// Codes (keyed by ID), and applies each Consume as one transaction: load the device with a row
// lock (SELECT ... FOR UPDATE on PostgreSQL), call Consume, then delete the device and its codes
// when Outcome.Done reports it, or save FailedAttempts otherwise. Codes are checked against the
// clock passed in, so the store never needs a background job for correctness; it may delete
// devices for which Expired reports true.
package passwordless

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"math/big"
)

// Sizes of the generated secrets.
const (
	// UserInputCodeLength is the number of digits of a user input code.
	UserInputCodeLength = 6
	// secretBytes is the size of device ids and link codes: 256 bits.
	secretBytes = 32
	// codeIDBytes is the size of a code id, which is not secret.
	codeIDBytes = 16
)

var b64 = base64.RawURLEncoding

// randomToken returns n random bytes, base64url-encoded without padding, safe in URLs.
func randomToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("read random bytes: %w", err)
	}
	return b64.EncodeToString(b), nil
}

var million = big.NewInt(1_000_000)

// newUserInputCode returns six uniformly random digits; leading zeros are kept.
func newUserInputCode() (string, error) {
	n, err := rand.Int(rand.Reader, million)
	if err != nil {
		return "", fmt.Errorf("read random code: %w", err)
	}
	return fmt.Sprintf("%06d", n.Int64()), nil
}

// PreAuthSessionID derives the preAuthSessionId from a device id: its SHA-256, base64url.
func PreAuthSessionID(deviceID string) string {
	sum := sha256.Sum256([]byte(deviceID))
	return b64.EncodeToString(sum[:])
}

// hashUserInputCode keys the HMAC with the device id, which only the client holds.
func hashUserInputCode(deviceID, code string) string {
	mac := hmac.New(sha256.New, []byte(deviceID))
	mac.Write([]byte("twofold/passwordless/user-input-code\x00"))
	mac.Write([]byte(code))
	return b64.EncodeToString(mac.Sum(nil))
}

// hashLinkCode needs no key: a link code has 256 bits of entropy.
func hashLinkCode(linkCode string) string {
	h := sha256.New()
	h.Write([]byte("twofold/passwordless/link-code\x00"))
	h.Write([]byte(linkCode))
	return b64.EncodeToString(h.Sum(nil))
}

func equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
