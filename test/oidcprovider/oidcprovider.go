// Package oidcprovider is an in-process OpenID Connect provider for tests: discovery, an
// authorization endpoint that requires PKCE (S256) and redirects straight back with a code, a
// token endpoint that authenticates the client, checks the verifier and the redirect URI and
// signs an ID token, its JWKS and a userinfo endpoint. It speaks the real protocol over HTTP;
// the exported fields change what it says about the user.
package oidcprovider

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
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Provider is an in-process OpenID Connect provider speaking the real protocol:
// discovery, authorization endpoint with PKCE (S256), token endpoint with client
// authentication, RS256-signed ID tokens, JWKS and userinfo.
type Provider struct {
	t        testing.TB
	Server   *httptest.Server
	key      *rsa.PrivateKey
	ClientID string
	Secret   string
	now      func() time.Time

	mu    sync.Mutex
	codes map[string]authRequest
	// Knobs for misbehaving providers.
	Audience  string        // overrides the ID token's aud
	ExpiresIn time.Duration // ID token lifetime
	Email     string        // the user's email; empty sends none
	Subject   string
}

type authRequest struct{ challenge, redirectURI string }

// New starts a provider whose client is "twofold-client" with secret "provider-secret" and
// whose user is idp-user-1 with a verified email; now is its clock. It stops when the test
// ends.
func New(t testing.TB, now func() time.Time) *Provider {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := &Provider{t: t, key: key, ClientID: "twofold-client", Secret: "provider-secret", now: now,
		codes: map[string]authRequest{}, ExpiresIn: 5 * time.Minute, Email: "Person@Example.com", Subject: "idp-user-1"}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", p.discovery)
	mux.HandleFunc("GET /authorize", p.authorize)
	mux.HandleFunc("POST /token", p.token)
	mux.HandleFunc("GET /jwks", p.jwks)
	mux.HandleFunc("GET /userinfo", p.userinfo)
	p.Server = httptest.NewServer(mux)
	t.Cleanup(p.Server.Close)
	return p
}

func (p *Provider) discovery(w http.ResponseWriter, r *http.Request) {
	u := p.Server.URL
	json.NewEncoder(w).Encode(map[string]any{
		"issuer": u, "authorization_endpoint": u + "/authorize", "token_endpoint": u + "/token",
		"jwks_uri": u + "/jwks", "userinfo_endpoint": u + "/userinfo",
		"response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"}, "code_challenge_methods_supported": []string{"S256"},
	})
}

func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != p.ClientID || q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" {
		http.Error(w, "bad authorization request", http.StatusBadRequest)
		return
	}
	code := fmt.Sprintf("code-%d", len(p.codes)+1)
	p.mu.Lock()
	p.codes[code] = authRequest{challenge: q.Get("code_challenge"), redirectURI: q.Get("redirect_uri")}
	p.mu.Unlock()
	target, _ := url.Parse(q.Get("redirect_uri"))
	tq := target.Query()
	tq.Set("code", code)
	if s := q.Get("state"); s != "" {
		tq.Set("state", s)
	}
	target.RawQuery = tq.Encode()
	http.Redirect(w, r, target.String(), http.StatusFound)
}

func oauthError(w http.ResponseWriter, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	id, secret, ok := r.BasicAuth()
	if ok {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != p.ClientID || secret != p.Secret {
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client"})
		return
	}
	p.mu.Lock()
	req, found := p.codes[r.PostForm.Get("code")]
	delete(p.codes, r.PostForm.Get("code")) // codes are single use
	p.mu.Unlock()
	if r.PostForm.Get("grant_type") != "authorization_code" || !found {
		oauthError(w, "invalid_grant", "unknown or used code")
		return
	}
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	if base64.RawURLEncoding.EncodeToString(sum[:]) != req.challenge {
		oauthError(w, "invalid_grant", "PKCE verification failed")
		return
	}
	if r.PostForm.Get("redirect_uri") != req.redirectURI {
		oauthError(w, "invalid_grant", "redirect_uri mismatch")
		return
	}
	aud := p.ClientID
	if p.Audience != "" {
		aud = p.Audience
	}
	now := p.now()
	claims := map[string]any{"iss": p.Server.URL, "sub": p.Subject, "aud": aud, "iat": now.Unix(), "exp": now.Add(p.ExpiresIn).Unix()}
	if p.Email != "" {
		claims["email"], claims["email_verified"] = p.Email, true
	}
	body, _ := json.Marshal(claims)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: p.key, KeyID: "idp-key"}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		p.t.Error(err)
		return
	}
	jws, _ := signer.Sign(body)
	idToken, _ := jws.CompactSerialize()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"access_token": "at-" + p.Subject, "token_type": "Bearer", "expires_in": 300, "id_token": idToken})
}

func (p *Provider) jwks(w http.ResponseWriter, r *http.Request) {
	json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &p.key.PublicKey, KeyID: "idp-key", Algorithm: "RS256", Use: "sig"}}})
}

func (p *Provider) userinfo(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer at-"+p.Subject {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	info := map[string]any{"sub": p.Subject}
	if p.Email != "" {
		info["email"], info["email_verified"] = p.Email, true
	}
	json.NewEncoder(w).Encode(info)
}

// URL is the provider's issuer URL.
func (p *Provider) URL() string { return p.Server.URL }
