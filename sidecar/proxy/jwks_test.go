package proxy

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"
)

func TestTheJWKSTakesKeysOfTheThreeAlgorithmsAndRefusesBrokenOnes(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecPoint, err := ec.PublicKey.Bytes() // 0x04 || x || y
	if err != nil {
		t.Fatal(err)
	}
	x, y := b64.EncodeToString(ecPoint[1:33]), b64.EncodeToString(ecPoint[33:])
	offCurve := b64.EncodeToString(append([]byte{ecPoint[33] ^ 1}, ecPoint[34:]...))
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ed := b64.EncodeToString(edPub)
	doc := func(keys ...map[string]string) []byte {
		b, _ := json.Marshal(map[string]any{"keys": keys})
		return b
	}
	tests := []struct {
		name string
		body []byte
		want map[string]string // kid -> algorithm
		err  string
	}{
		{"a P-256 key verifies ES256 and an Ed25519 key EdDSA",
			doc(map[string]string{"kty": "EC", "crv": "P-256", "kid": "e", "alg": "ES256", "x": x, "y": y},
				map[string]string{"kty": "OKP", "crv": "Ed25519", "kid": "d", "alg": "EdDSA", "x": ed}),
			map[string]string{"e": algES256, "d": algEdDSA}, ""},
		{"a point off the curve is refused", doc(map[string]string{"kty": "EC", "crv": "P-256", "kid": "e", "x": x, "y": offCurve}), nil, `JWKS key "e"`},
		{"a short coordinate is refused", doc(map[string]string{"kty": "EC", "crv": "P-256", "kid": "e", "x": x[:40], "y": y}), nil, "32 bytes each"},
		{"an Ed25519 key of the wrong size is refused", doc(map[string]string{"kty": "OKP", "crv": "Ed25519", "kid": "d", "x": ed[:20]}), nil, "an Ed25519 key is 32 bytes"},
		{"an EC key published for another algorithm is skipped", doc(map[string]string{"kty": "EC", "crv": "P-256", "kid": "e", "alg": "RS256", "x": x, "y": y}), nil, "no RS256, ES256 or EdDSA signing key"},
		{"another curve is skipped", doc(map[string]string{"kty": "EC", "crv": "P-384", "kid": "e", "x": x, "y": y}), nil, "no RS256, ES256 or EdDSA signing key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			keys, err := parseJWKS(tc.body)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("parseJWKS = %v, %v; want an error mentioning %q", keys, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) != len(tc.want) {
				t.Fatalf("got %d keys, want %d", len(keys), len(tc.want))
			}
			for kid, alg := range tc.want {
				if keys[kid] == nil || keys[kid].alg != alg {
					t.Errorf("key %s = %+v, want algorithm %s", kid, keys[kid], alg)
				}
			}
		})
	}
}
