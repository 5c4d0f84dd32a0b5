package proxy

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
)

// Reasons a token is refused. They are wrapped into the errors verify returns, so callers
// branch with errors.Is and logs carry the reason.
var (
	// ErrMalformedToken is a token that is not three base64url parts of JSON.
	ErrMalformedToken = errors.New("malformed token")
	// ErrAlgorithm is a token whose header names anything but RS256 (none, HS256, ...).
	ErrAlgorithm = errors.New("algorithm not allowed")
	// ErrUnknownKey is a token whose kid is missing or absent from the core's JWKS.
	ErrUnknownKey = errors.New("unknown signing key")
	// ErrSignature is a token whose RS256 signature does not verify.
	ErrSignature = errors.New("bad signature")
	// ErrIssuer is a validly signed token from another issuer.
	ErrIssuer = errors.New("wrong issuer")
	// ErrTenant is a validly signed token of another tenant.
	ErrTenant = errors.New("wrong tenant")
	// ErrExpired is a validly signed token past its exp: the client should refresh.
	ErrExpired = errors.New("token expired")
)

// minRSABits refuses toy keys in the JWKS.
const minRSABits = 2048

var b64 = base64.RawURLEncoding

// jwtHeader is the part of the JOSE header the sidecar looks at.
type jwtHeader struct {
	Alg  string   `json:"alg"`
	Kid  string   `json:"kid"`
	Crit []string `json:"crit"`
}

// jwtClaims is the part of a SuperTokens v5 access-token payload the sidecar enforces.
type jwtClaims struct {
	Sub           string                           `json:"sub"`
	TenantID      string                           `json:"tId"`
	SessionHandle string                           `json:"sessionHandle"`
	Iss           string                           `json:"iss"`
	Exp           *int64                           `json:"exp"`
	MFA           *mfa.Claim                       `json:"st-mfa"`
	EV            *contract.EmailVerificationClaim `json:"st-ev"`
}

// parsedToken is a token whose header and payload decoded and whose signature verified.
type parsedToken struct {
	kid    string
	claims jwtClaims
}

// splitToken returns the header, payload and signature parts of a compact JWS.
func splitToken(tok string) (h, p, s string, err error) {
	i := strings.IndexByte(tok, '.')
	if i < 0 {
		return "", "", "", fmt.Errorf("%w: want three parts", ErrMalformedToken)
	}
	j := strings.IndexByte(tok[i+1:], '.')
	if j < 0 {
		return "", "", "", fmt.Errorf("%w: want three parts", ErrMalformedToken)
	}
	j += i + 1
	if strings.IndexByte(tok[j+1:], '.') >= 0 {
		return "", "", "", fmt.Errorf("%w: want three parts", ErrMalformedToken)
	}
	return tok[:i], tok[i+1 : j], tok[j+1:], nil
}

// decodeJSONPart decodes one base64url part into v, refusing trailing data.
func decodeJSONPart(part string, v any) error {
	raw, err := b64.DecodeString(part)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrMalformedToken, err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformedToken, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: trailing data", ErrMalformedToken)
	}
	return nil
}

// parseHeader decodes the JOSE header and applies the algorithm policy: RS256 only, a kid
// required, no critical extensions. Everything else (none, HS256 with the public key as the
// HMAC secret, PS256, ES256, ...) is refused before any key is looked at.
func parseHeader(h string) (jwtHeader, error) {
	var hdr jwtHeader
	if err := decodeJSONPart(h, &hdr); err != nil {
		return hdr, err
	}
	if hdr.Alg != "RS256" {
		return hdr, fmt.Errorf("%w: %q", ErrAlgorithm, hdr.Alg)
	}
	if len(hdr.Crit) > 0 {
		return hdr, fmt.Errorf("%w: critical header extensions %v", ErrMalformedToken, hdr.Crit)
	}
	if hdr.Kid == "" {
		return hdr, fmt.Errorf("%w: no kid in the header", ErrUnknownKey)
	}
	return hdr, nil
}

// verifyRS256 checks the PKCS#1 v1.5 SHA-256 signature of header.payload with key.
func verifyRS256(key *rsa.PublicKey, h, p, s string) error {
	sig, err := b64.DecodeString(s)
	if err != nil {
		return fmt.Errorf("%w: signature: %w", ErrMalformedToken, err)
	}
	hasher := sha256.New()
	hasher.Write([]byte(h))
	hasher.Write([]byte{'.'})
	hasher.Write([]byte(p))
	var sum [sha256.Size]byte
	if err := rsa.VerifyPKCS1v15(key, crypto.SHA256, hasher.Sum(sum[:0]), sig); err != nil {
		return fmt.Errorf("%w: %w", ErrSignature, err)
	}
	return nil
}

// jwk is one RSA key of a JWKS document.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
}

// parseJWKS decodes a JWKS document into RSA public keys by kid. Keys that are not RSA
// signing keys for RS256 are skipped; a document with no usable key is an error, so a broken
// answer from the core never replaces keys that work.
func parseJWKS(body []byte) (map[string]*rsa.PublicKey, error) {
	var doc struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("decoding JWKS: %w", err)
	}
	keys := make(map[string]*rsa.PublicKey, len(doc.Keys))
	for _, k := range doc.Keys {
		if k.Kty != "RSA" || k.Kid == "" || (k.Use != "" && k.Use != "sig") || (k.Alg != "" && k.Alg != "RS256") {
			continue
		}
		nb, err := b64.DecodeString(strings.TrimRight(k.N, "="))
		if err != nil {
			return nil, fmt.Errorf("decoding JWKS key %q modulus: %w", k.Kid, err)
		}
		eb, err := b64.DecodeString(strings.TrimRight(k.E, "="))
		if err != nil {
			return nil, fmt.Errorf("decoding JWKS key %q exponent: %w", k.Kid, err)
		}
		n := new(big.Int).SetBytes(nb)
		e := new(big.Int).SetBytes(eb)
		if n.BitLen() < minRSABits {
			return nil, fmt.Errorf("JWKS key %q has %d bits, want at least %d", k.Kid, n.BitLen(), minRSABits)
		}
		if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 || e.Bit(0) == 0 {
			return nil, fmt.Errorf("JWKS key %q has an unusable exponent", k.Kid)
		}
		keys[k.Kid] = &rsa.PublicKey{N: n, E: int(e.Int64())}
	}
	if len(keys) == 0 {
		return nil, errors.New("JWKS has no RS256 signing key")
	}
	return keys, nil
}
