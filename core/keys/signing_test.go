package keys_test

import (
	"encoding/base64"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/core/coretest"
	"github.com/twofold-dev/twofold/core/keys"
	"github.com/twofold-dev/twofold/core/server"
)

func withSigningAlgorithm(alg jose.SignatureAlgorithm) coretest.ServerOption {
	return func(o *server.Options) { o.Keys.Algorithm = alg }
}

func TestEverySigningAlgorithmWorksFromSignUpToTheApp(t *testing.T) {
	for _, alg := range keys.Algorithms {
		t.Run(string(alg)+" tokens are issued, refreshed, verified by the core and by the sidecar", func(t *testing.T) {
			h := coretest.New(t, withSigningAlgorithm(alg))
			sc, _ := h.ViaSidecar(contract.PublicTenantID)
			r := h.SignUp("", "a@example.com", "secret123")
			access := coretest.MustStatusHeader(t, r, "st-access-token")
			if got := coretest.HeaderOf(t, access)["alg"]; got != string(alg) {
				t.Fatalf("the access token is signed with %v, want %s", got, alg)
			}
			if r := sc.Do("GET", "/orders", nil, "Authorization", "Bearer "+access); r.Status != 200 {
				t.Fatalf("through the sidecar: %d %s", r.Status, r.Body)
			}
			refreshed := h.Do("POST", "/auth/session/refresh", nil, "Authorization", "Bearer "+r.Header.Get("st-refresh-token"), "st-auth-mode", "header")
			next := refreshed.Header.Get("st-access-token")
			if refreshed.Status != 200 || next == "" {
				t.Fatalf("refresh: %d %s", refreshed.Status, refreshed.Body)
			}
			if r := h.Do("PUT", "/auth/mfa/info", nil, "Authorization", "Bearer "+next); r.Status != 200 {
				t.Fatalf("the core refuses its own refreshed %s token: %d %s", alg, r.Status, r.Body)
			}
			conf := h.Do("GET", "/auth/.well-known/openid-configuration", nil).JSON(t)
			if algs, _ := conf["id_token_signing_alg_values_supported"].([]any); len(algs) != 1 || algs[0] != string(alg) {
				t.Fatalf("openid-configuration lists %v, want [%s]", conf["id_token_signing_alg_values_supported"], alg)
			}
		})
	}
}

func TestASidecarVerifiesATokenOnlyWithItsKeysAlgorithm(t *testing.T) {
	h := coretest.New(t, withSigningAlgorithm(jose.ES256))
	sc, _ := h.ViaSidecar(contract.PublicTenantID)
	access := coretest.MustStatusHeader(t, h.SignUp("", "a@example.com", "secret123"), "st-access-token")
	parts := strings.Split(access, ".")
	hdr := coretest.HeaderOf(t, access)
	enc := base64.RawURLEncoding
	tests := []struct {
		name   string
		header string
	}{
		{"the ES256 signature under a header that says EdDSA", `{"alg":"EdDSA","kid":"` + hdr["kid"].(string) + `"}`},
		{"the ES256 signature under a header that says RS256", `{"alg":"RS256","kid":"` + hdr["kid"].(string) + `"}`},
		{"the ES256 signature under a header that says HS256", `{"alg":"HS256","kid":"` + hdr["kid"].(string) + `"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			forged := enc.EncodeToString([]byte(tc.header)) + "." + parts[1] + "." + parts[2]
			if r := sc.Do("GET", "/orders", nil, "Authorization", "Bearer "+forged); r.Status != 401 {
				t.Fatalf("the sidecar answered %d %s", r.Status, r.Body)
			}
			if r := h.Do("PUT", "/auth/mfa/info", nil, "Authorization", "Bearer "+forged); r.Status != 401 {
				t.Fatalf("the core answered %d %s", r.Status, r.Body)
			}
		})
	}
}
