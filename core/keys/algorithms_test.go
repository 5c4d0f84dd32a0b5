package keys_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/twofold-dev/twofold/core/keys"
)

func TestEachSigningAlgorithmSignsVerifiesAndPublishes(t *testing.T) {
	tests := []struct {
		name      string
		algorithm jose.SignatureAlgorithm
		kty       string
	}{
		{"RS256 (the default) publishes an RSA key", jose.RS256, "RSA"},
		{"ES256 publishes a P-256 key", jose.ES256, "EC"},
		{"EdDSA publishes an Ed25519 key", jose.EdDSA, "OKP"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			m := keys.New(open(t), keys.Options{Algorithm: tc.algorithm})
			if _, err := m.Rotate(ctx); err != nil {
				t.Fatal(err)
			}
			tok, err := m.Sign(ctx, []byte(`{"sub":"u1"}`))
			if err != nil {
				t.Fatal(err)
			}
			payload, kid, err := m.Verify(ctx, tok)
			if err != nil || string(payload) != `{"sub":"u1"}` {
				t.Fatalf("Verify = %s, %v", payload, err)
			}
			jws, _ := jose.ParseSigned(tok, keys.Algorithms)
			if got := jws.Signatures[0].Header.Algorithm; got != string(tc.algorithm) {
				t.Fatalf("the token says alg %q, want %q", got, tc.algorithm)
			}
			set, _ := m.JWKS(ctx)
			b, _ := json.Marshal(set.Keys[0])
			var jwk map[string]any
			json.Unmarshal(b, &jwk)
			if jwk["kty"] != tc.kty || jwk["alg"] != string(tc.algorithm) || jwk["kid"] != kid || jwk["use"] != "sig" {
				t.Fatalf("JWKS key = %s", b)
			}
			if _, ok := jwk["d"]; ok {
				t.Fatalf("the JWKS publishes the private key: %s", b)
			}
		})
	}
}

func TestTheSigningAlgorithmSettingIsChecked(t *testing.T) {
	tests := []struct {
		name, setting string
		want          jose.SignatureAlgorithm
		err           string
	}{
		{"empty is RS256", "", jose.RS256, ""},
		{"ES256 is taken", "ES256", jose.ES256, ""},
		{"EdDSA is taken", "EdDSA", jose.EdDSA, ""},
		{"an unknown name lists the choices", "HS256", "", `signing algorithm "HS256": want one of RS256, ES256, EdDSA`},
		{"names are exact", "es256", "", `signing algorithm "es256": want one of RS256, ES256, EdDSA`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := keys.ParseAlgorithm(tc.setting)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("ParseAlgorithm(%q) = %v, want %q", tc.setting, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseAlgorithm(%q) = %q, %v", tc.setting, got, err)
			}
		})
	}
}

func TestSwitchingTheAlgorithmRotatesWithAnOverlap(t *testing.T) {
	ctx := context.Background()
	st := open(t)
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	opts := keys.Options{Clock: c.Now, RotationInterval: interval, ActivationDelay: activation, MaxTokenLifetime: lifetime}
	rsaCore := keys.New(st, opts)
	if _, err := rsaCore.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Hour)
	before, _ := rsaCore.Sign(ctx, []byte(`{}`))

	opts.Algorithm = jose.ES256
	ecCore := keys.New(st, opts)
	created, err := ecCore.Rotate(ctx)
	if err != nil || !created {
		t.Fatalf("Rotate with ES256 beside a young RS256 key = %v, %v; want a new key at once", created, err)
	}
	t.Run("both keys are published and the old one signs until the new one activates", func(t *testing.T) {
		if got := kids(t, ecCore); len(got) != 2 {
			t.Fatalf("JWKS = %v, want both keys", got)
		}
		tok, _ := ecCore.Sign(ctx, []byte(`{}`))
		if jws, _ := jose.ParseSigned(tok, keys.Algorithms); jws.Signatures[0].Header.Algorithm != "RS256" {
			t.Fatalf("signed with %s before the new key activated", jws.Signatures[0].Header.Algorithm)
		}
	})
	t.Run("after the activation delay the new algorithm signs", func(t *testing.T) {
		c.Advance(activation)
		tok, _ := ecCore.Sign(ctx, []byte(`{}`))
		if jws, _ := jose.ParseSigned(tok, keys.Algorithms); jws.Signatures[0].Header.Algorithm != "ES256" {
			t.Fatalf("signed with %s after the ES256 key activated", jws.Signatures[0].Header.Algorithm)
		}
		if again, _ := ecCore.Rotate(ctx); again {
			t.Fatal("a second ES256 key was created within the rotation interval")
		}
	})
	t.Run("tokens of the old key verify until they have all expired", func(t *testing.T) {
		if _, _, err := ecCore.Verify(ctx, before); err != nil {
			t.Fatalf("an RS256 token signed before the switch: %v", err)
		}
		c.Advance(lifetime + time.Minute)
		ecCore.Rotate(ctx)
		if _, _, err := ecCore.Verify(ctx, before); !errors.Is(err, keys.ErrUnknownKey) {
			t.Fatalf("after the old tokens expired: %v, want the old key gone", err)
		}
	})
}

func TestATokenIsVerifiedWithItsKeysAlgorithmOnly(t *testing.T) {
	ctx := context.Background()
	m := keys.New(open(t), keys.Options{})
	if _, err := m.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	ec := keys.New(open(t), keys.Options{Algorithm: jose.ES256})
	if _, err := ec.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	good, _ := m.Sign(ctx, []byte(`{"sub":"u1"}`))
	_, kid, _ := m.Verify(ctx, good)
	set, _ := m.JWKS(ctx)
	pubDER, _ := x509.MarshalPKIXPublicKey(set.Keys[0].Key)
	ecTok, _ := ec.Sign(ctx, []byte(`{"sub":"u1"}`))
	enc := base64.RawURLEncoding
	forge := func(header string, sign func(input string) []byte) string {
		input := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(`{"sub":"admin"}`))
		return input + "." + enc.EncodeToString(sign(input))
	}
	hs := func(secret []byte) func(string) []byte {
		return func(input string) []byte {
			h := hmac.New(sha256.New, secret)
			h.Write([]byte(input))
			return h.Sum(nil)
		}
	}
	parts := strings.Split(ecTok, ".")
	tests := []struct {
		name  string
		token string
	}{
		{"HS256 with the RSA public key as the HMAC secret", forge(`{"alg":"HS256","kid":"`+kid+`"}`, hs(pubDER))},
		{"alg none", forge(`{"alg":"none","kid":"`+kid+`"}`, func(string) []byte { return nil })},
		{"a header that says ES256 for the RSA key", forge(`{"alg":"ES256","kid":"`+kid+`"}`, hs(pubDER))},
		{"a valid ES256 token of another core with its kid", strings.Join(parts, ".")},
		{"an ES256 signature under a header naming the RSA kid", enc.EncodeToString([]byte(`{"alg":"ES256","kid":"`+kid+`"}`)) + "." + parts[1] + "." + parts[2]},
		{"a token without a kid", forge(`{"alg":"RS256"}`, hs(pubDER))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if payload, _, err := m.Verify(ctx, tc.token); err == nil {
				t.Fatalf("Verify accepted %s", payload)
			}
		})
	}
	t.Run("a header naming another algorithm than the key's is refused as such", func(t *testing.T) {
		tok := enc.EncodeToString([]byte(`{"alg":"ES256","kid":"`+kid+`"}`)) + "." + parts[1] + "." + parts[2]
		if _, _, err := m.Verify(ctx, tok); !errors.Is(err, keys.ErrAlgorithm) {
			t.Fatalf("Verify = %v, want ErrAlgorithm", err)
		}
	})
}
