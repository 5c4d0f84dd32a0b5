package proxy

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
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
	// ErrAlgorithm is a token whose header names an algorithm the core does not sign with
	// (none, HS256, ...), or another than the algorithm of the key its kid names.
	ErrAlgorithm = errors.New("algorithm not allowed")
	// ErrUnknownKey is a token whose kid is missing or absent from the core's JWKS.
	ErrUnknownKey = errors.New("unknown signing key")
	// ErrSignature is a token whose signature does not verify.
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

// Algorithms the core signs access tokens with.
const (
	algRS256 = "RS256"
	algES256 = "ES256"
	algEdDSA = "EdDSA"
)

// parseHeader decodes the JOSE header and applies the algorithm policy: RS256, ES256 or EdDSA,
// a kid required, no critical extensions. Everything else (none, HS256 with the public key as
// the HMAC secret, PS256, ...) is refused before any key is looked at; the algorithm must then
// also be the one of the key the kid names (publicKey.check).
func parseHeader(h string) (jwtHeader, error) {
	var hdr jwtHeader
	if err := decodeJSONPart(h, &hdr); err != nil {
		return hdr, err
	}
	if hdr.Alg != algRS256 && hdr.Alg != algES256 && hdr.Alg != algEdDSA {
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

// publicKey is one signing key of the core's JWKS and the one algorithm it verifies.
type publicKey struct {
	alg string
	rsa *rsa.PublicKey
	ec  *ecdsa.PublicKey
	ed  ed25519.PublicKey
}

// verify checks the signature s of header.payload by the key's own algorithm. The header's
// alg must name that algorithm: a token never chooses how it is verified.
func (k *publicKey) verify(alg, h, p, s string) error {
	if alg != k.alg {
		return fmt.Errorf("%w: the header says %q, the key signs %s", ErrAlgorithm, alg, k.alg)
	}
	sig, err := b64.DecodeString(s)
	if err != nil {
		return fmt.Errorf("%w: signature: %w", ErrMalformedToken, err)
	}
	var ok bool
	switch k.alg {
	case algEdDSA:
		input := make([]byte, 0, len(h)+1+len(p))
		input = append(append(append(input, h...), '.'), p...)
		ok = ed25519.Verify(k.ed, input, sig)
	default:
		hasher := sha256.New()
		hasher.Write([]byte(h))
		hasher.Write([]byte{'.'})
		hasher.Write([]byte(p))
		var sum [sha256.Size]byte
		digest := hasher.Sum(sum[:0])
		if k.alg == algRS256 {
			ok = rsa.VerifyPKCS1v15(k.rsa, crypto.SHA256, digest, sig) == nil
		} else if len(sig) == 64 {
			// JWS carries ES256 signatures as r || s, 32 bytes each.
			r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
			ok = ecdsa.Verify(k.ec, digest, r, s)
		}
	}
	if !ok {
		return fmt.Errorf("%w: %s", ErrSignature, k.alg)
	}
	return nil
}

// jwk is one key of a JWKS document.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// parseJWKS decodes a JWKS document into public keys by kid: RSA keys for RS256, P-256 keys
// for ES256, Ed25519 keys for EdDSA. Other keys are skipped; a document with no usable key is
// an error, so a broken answer from the core never replaces keys that work.
func parseJWKS(body []byte) (map[string]*publicKey, error) {
	var doc struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("decoding JWKS: %w", err)
	}
	keys := make(map[string]*publicKey, len(doc.Keys))
	for _, k := range doc.Keys {
		if k.Kid == "" || (k.Use != "" && k.Use != "sig") {
			continue
		}
		var key *publicKey
		var err error
		switch {
		case k.Kty == "RSA" && (k.Alg == "" || k.Alg == algRS256):
			key, err = parseRSAKey(k)
		case k.Kty == "EC" && k.Crv == "P-256" && (k.Alg == "" || k.Alg == algES256):
			key, err = parseECKey(k)
		case k.Kty == "OKP" && k.Crv == "Ed25519" && (k.Alg == "" || k.Alg == algEdDSA):
			key, err = parseEd25519Key(k)
		default:
			continue
		}
		if err != nil {
			return nil, err
		}
		keys[k.Kid] = key
	}
	if len(keys) == 0 {
		return nil, errors.New("JWKS has no RS256, ES256 or EdDSA signing key")
	}
	return keys, nil
}

func decodeKeyPart(k jwk, name, v string) ([]byte, error) {
	b, err := b64.DecodeString(strings.TrimRight(v, "="))
	if err != nil {
		return nil, fmt.Errorf("decoding JWKS key %q %s: %w", k.Kid, name, err)
	}
	return b, nil
}

func parseRSAKey(k jwk) (*publicKey, error) {
	nb, err := decodeKeyPart(k, "modulus", k.N)
	if err != nil {
		return nil, err
	}
	eb, err := decodeKeyPart(k, "exponent", k.E)
	if err != nil {
		return nil, err
	}
	n := new(big.Int).SetBytes(nb)
	e := new(big.Int).SetBytes(eb)
	if n.BitLen() < minRSABits {
		return nil, fmt.Errorf("JWKS key %q has %d bits, want at least %d", k.Kid, n.BitLen(), minRSABits)
	}
	if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 || e.Bit(0) == 0 {
		return nil, fmt.Errorf("JWKS key %q has an unusable exponent", k.Kid)
	}
	return &publicKey{alg: algRS256, rsa: &rsa.PublicKey{N: n, E: int(e.Int64())}}, nil
}

func parseECKey(k jwk) (*publicKey, error) {
	x, err := decodeKeyPart(k, "x", k.X)
	if err != nil {
		return nil, err
	}
	y, err := decodeKeyPart(k, "y", k.Y)
	if err != nil {
		return nil, err
	}
	if len(x) != 32 || len(y) != 32 {
		return nil, fmt.Errorf("JWKS key %q: P-256 coordinates must be 32 bytes each", k.Kid)
	}
	// Parsing the uncompressed point checks that it lies on the curve.
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
	if err != nil {
		return nil, fmt.Errorf("JWKS key %q: %w", k.Kid, err)
	}
	return &publicKey{alg: algES256, ec: pub}, nil
}

func parseEd25519Key(k jwk) (*publicKey, error) {
	x, err := decodeKeyPart(k, "x", k.X)
	if err != nil {
		return nil, err
	}
	if len(x) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("JWKS key %q: an Ed25519 key is %d bytes", k.Kid, ed25519.PublicKeySize)
	}
	return &publicKey{alg: algEdDSA, ed: ed25519.PublicKey(x)}, nil
}
