package hostedui_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// oidcProvider is an in-process OpenID Connect provider: discovery, an authorization
// endpoint that requires PKCE (S256) and redirects straight back with a code, a token
// endpoint that checks the verifier and signs an ID token, and its JWKS.
type oidcProvider struct {
	t   *testing.T
	srv *httptest.Server
	key *rsa.PrivateKey
	now func() time.Time

	mu    sync.Mutex
	codes map[string]string // code -> PKCE challenge
}

func newOIDCProvider(t *testing.T, now func() time.Time) *oidcProvider {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := &oidcProvider{t: t, key: key, now: now, codes: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		u := p.srv.URL
		json.NewEncoder(w).Encode(map[string]any{"issuer": u, "authorization_endpoint": u + "/authorize", "token_endpoint": u + "/token",
			"jwks_uri": u + "/jwks", "response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"}})
	})
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("client_id") != "hosted-client" || q.Get("code_challenge_method") != "S256" {
			http.Error(w, "bad authorization request", http.StatusBadRequest)
			return
		}
		p.mu.Lock()
		code := fmt.Sprintf("code-%d", len(p.codes)+1)
		p.codes[code] = q.Get("code_challenge")
		p.mu.Unlock()
		back, _ := url.Parse(q.Get("redirect_uri"))
		bq := back.Query()
		bq.Set("code", code)
		bq.Set("state", q.Get("state"))
		back.RawQuery = bq.Encode()
		http.Redirect(w, r, back.String(), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		p.mu.Lock()
		challenge, ok := p.codes[r.PostForm.Get("code")]
		delete(p.codes, r.PostForm.Get("code"))
		p.mu.Unlock()
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		if !ok || base64.RawURLEncoding.EncodeToString(sum[:]) != challenge {
			w.WriteHeader(http.StatusBadRequest)
			json.NewEncoder(w).Encode(map[string]string{"error": "invalid_grant"})
			return
		}
		now := p.now()
		body, _ := json.Marshal(map[string]any{"iss": p.srv.URL, "sub": "idp-user-1", "aud": "hosted-client", "iat": now.Unix(),
			"exp": now.Add(5 * time.Minute).Unix(), "email": "sso@example.com", "email_verified": true})
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: p.key, KeyID: "idp-key"}}, nil)
		if err != nil {
			p.t.Error(err)
			return
		}
		jws, _ := signer.Sign(body)
		idToken, _ := jws.CompactSerialize()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 300, "id_token": idToken})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &p.key.PublicKey, KeyID: "idp-key", Algorithm: "RS256", Use: "sig"}}})
	})
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

// getURL GETs an absolute URL (the provider's) with the browser's cookies.
func (b *browser) getURL(raw string) page {
	b.h.t.Helper()
	req, err := http.NewRequest(http.MethodGet, raw, nil)
	if err != nil {
		b.h.t.Fatal(err)
	}
	return b.do(req)
}

func TestAnOIDCProviderButtonSignsInThroughTheHostedCallback(t *testing.T) {
	h := newHarness(t, tenantConfig(t, `{"firstFactors":["emailpassword"]}`))
	idp := newOIDCProvider(t, h.clock.Now)
	h.putTenant("acme", tenantConfig(t, fmt.Sprintf(`{"firstFactors":["emailpassword","thirdparty"],"thirdPartyProviders":[
		{"id":"corp","name":"Corp SSO","type":"oidc","issuer":%q,"clientId":"hosted-client","clientSecret":"s3cret","scopes":["openid","email"]}]}`, idp.srv.URL)))

	// start follows the button to the provider and returns where the provider sends back to.
	start := func(b *browser) string {
		t.Helper()
		p := b.get("/auth/acme/signin?redirectToPath=%2Fdashboard")
		mustContain(t, p.body, "Continue with Corp SSO", `href="/auth/ui/thirdparty/start?provider=corp&amp;tenantId=acme&amp;redirectToPath=%2fdashboard"`)
		p = b.get("/auth/ui/thirdparty/start?provider=corp&tenantId=acme&redirectToPath=%2Fdashboard")
		if p.code != http.StatusSeeOther || !strings.HasPrefix(p.location, idp.srv.URL+"/authorize?") {
			t.Fatalf("the button answered %d to %q", p.code, p.location)
		}
		auth, _ := url.Parse(p.location)
		if want := h.ts.URL + "/auth/ui/callback/corp"; auth.Query().Get("redirect_uri") != want || auth.Query().Get("state") == "" {
			t.Fatalf("authorisation URL %s: want redirect_uri %s and a state", p.location, want)
		}
		back := b.getURL(p.location)
		if back.code != http.StatusFound {
			t.Fatalf("provider answered %d", back.code)
		}
		return strings.TrimPrefix(back.location, h.ts.URL)
	}

	t.Run("the provider's answer signs the browser in and returns it", func(t *testing.T) {
		b := h.browser()
		wantRedirect(t, b.get(start(b)), "/dashboard")
		if p := b.get("/auth/account"); p.code != http.StatusOK || !strings.Contains(p.body, "sso@example.com") {
			t.Fatalf("the account page answered %d:\n%s", p.code, p.body)
		}
	})
	t.Run("a callback with another state is refused", func(t *testing.T) {
		b := h.browser()
		cb, _ := url.Parse(start(b))
		q := cb.Query()
		q.Set("state", "forged")
		cb.RawQuery = q.Encode()
		p := b.get(cb.String())
		if p.code != http.StatusBadRequest || strings.Contains(p.header.Get("Set-Cookie"), "sAccessToken=ey") {
			t.Fatalf("answered %d with cookies %q", p.code, p.header.Values("Set-Cookie"))
		}
	})
	t.Run("a callback in a browser that did not start the sign-in is refused", func(t *testing.T) {
		cb := start(h.browser())
		p := h.browser().get(cb)
		if p.code != http.StatusBadRequest || strings.Contains(p.header.Get("Set-Cookie"), "sAccessToken=ey") {
			t.Fatalf("answered %d with cookies %q", p.code, p.header.Values("Set-Cookie"))
		}
		mustContain(t, p.body, "Sign-in could not be finished")
	})
}
