package server_test

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

// oidcProvider is an in-process OpenID Connect provider speaking the real protocol:
// discovery, authorization endpoint with PKCE (S256), token endpoint with client
// authentication, RS256-signed ID tokens, JWKS and userinfo.
type oidcProvider struct {
	t        *testing.T
	srv      *httptest.Server
	key      *rsa.PrivateKey
	clientID string
	secret   string
	now      func() time.Time

	mu    sync.Mutex
	codes map[string]authRequest
	// Knobs for misbehaving providers.
	audience string        // overrides the ID token's aud
	expIn    time.Duration // ID token lifetime
	email    string        // the user's email; empty sends none
	sub      string
}

type authRequest struct{ challenge, redirectURI string }

func newOIDCProvider(t *testing.T, now func() time.Time) *oidcProvider {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := &oidcProvider{t: t, key: key, clientID: "twofold-client", secret: "provider-secret", now: now,
		codes: map[string]authRequest{}, expIn: 5 * time.Minute, email: "Person@Example.com", sub: "idp-user-1"}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", p.discovery)
	mux.HandleFunc("GET /authorize", p.authorize)
	mux.HandleFunc("POST /token", p.token)
	mux.HandleFunc("GET /jwks", p.jwks)
	mux.HandleFunc("GET /userinfo", p.userinfo)
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

func (p *oidcProvider) discovery(w http.ResponseWriter, r *http.Request) {
	u := p.srv.URL
	json.NewEncoder(w).Encode(map[string]any{
		"issuer": u, "authorization_endpoint": u + "/authorize", "token_endpoint": u + "/token",
		"jwks_uri": u + "/jwks", "userinfo_endpoint": u + "/userinfo",
		"response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"}, "code_challenge_methods_supported": []string{"S256"},
	})
}

func (p *oidcProvider) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != p.clientID || q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" {
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

func (p *oidcProvider) token(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	id, secret, ok := r.BasicAuth()
	if ok {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != p.clientID || secret != p.secret {
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
	aud := p.clientID
	if p.audience != "" {
		aud = p.audience
	}
	now := p.now()
	claims := map[string]any{"iss": p.srv.URL, "sub": p.sub, "aud": aud, "iat": now.Unix(), "exp": now.Add(p.expIn).Unix()}
	if p.email != "" {
		claims["email"], claims["email_verified"] = p.email, true
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
	json.NewEncoder(w).Encode(map[string]any{"access_token": "at-" + p.sub, "token_type": "Bearer", "expires_in": 300, "id_token": idToken})
}

func (p *oidcProvider) jwks(w http.ResponseWriter, r *http.Request) {
	json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &p.key.PublicKey, KeyID: "idp-key", Algorithm: "RS256", Use: "sig"}}})
}

func (p *oidcProvider) userinfo(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer at-"+p.sub {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	info := map[string]any{"sub": p.sub}
	if p.email != "" {
		info["email"], info["email_verified"] = p.email, true
	}
	json.NewEncoder(w).Encode(info)
}

const redirectURI = "https://app.example/auth/callback/idp"

func TestThirdPartySignInWithOIDC(t *testing.T) {
	h := newHarness(t)
	idp := newOIDCProvider(t, h.clock.Now)
	h.putTenant("acme", fmt.Sprintf(`{"firstFactors":["emailpassword","thirdparty"],"thirdPartyProviders":[
		{"id":"idp","name":"Corporate SSO","type":"oidc","issuer":%q,"clientId":%q,"clientSecret":%q}]}`, idp.srv.URL, idp.clientID, idp.secret))

	// authorise runs the browser's part: ask the core for the URL, visit the provider, and
	// return the query the provider redirected back with, and the PKCE verifier.
	authorise := func(t *testing.T) (map[string]string, string) {
		t.Helper()
		r := h.do("GET", "/auth/acme/authorisationurl?thirdPartyId=idp&redirectURIOnProviderDashboard="+url.QueryEscape(redirectURI), nil)
		m := mustStatus(t, r, 200, "OK")
		authURL, verifier := m["urlWithQueryParams"].(string), m["pkceCodeVerifier"].(string)
		u, _ := url.Parse(authURL)
		sum := sha256.Sum256([]byte(verifier))
		if !strings.HasPrefix(authURL, idp.srv.URL+"/authorize?") || u.Query().Get("code_challenge") != base64.RawURLEncoding.EncodeToString(sum[:]) ||
			u.Query().Get("redirect_uri") != redirectURI || !strings.Contains(u.Query().Get("scope"), "openid") {
			t.Fatalf("authorisation URL %s does not carry the PKCE challenge of %q", authURL, verifier)
		}
		resp, err := h.client.Get(authURL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, err := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || err != nil {
			t.Fatalf("provider answered %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		q := map[string]string{}
		for k := range loc.Query() {
			q[k] = loc.Query().Get(k)
		}
		return q, verifier
	}
	signInUp := func(q map[string]string, verifier string) response {
		return h.do("POST", "/auth/acme/signinup", map[string]any{"thirdPartyId": "idp", "redirectURIInfo": map[string]any{
			"redirectURIOnProviderDashboard": redirectURI, "redirectURIQueryParams": q, "pkceCodeVerifier": verifier}})
	}

	var userID string
	t.Run("the first sign-in creates a user and a session", func(t *testing.T) {
		q, verifier := authorise(t)
		r := signInUp(q, verifier)
		m := mustStatus(t, r, 200, "OK")
		user := m["user"].(map[string]any)
		userID = user["id"].(string)
		tp := user["thirdParty"].([]any)[0].(map[string]any)
		if m["createdNewRecipeUser"] != true || tp["id"] != "idp" || tp["userId"] != "idp-user-1" || user["emails"].([]any)[0] != "person@example.com" {
			t.Fatalf("body = %s", r.Body)
		}
		if user["loginMethods"].([]any)[0].(map[string]any)["verified"] != true {
			t.Fatalf("the provider's verified email is not marked verified")
		}
		c := frontToken(t, r)["up"].(map[string]any)["st-mfa"].(map[string]any)["c"].(map[string]any)
		if c["thirdparty"] == nil || r.Header.Get("st-access-token") == "" {
			t.Fatalf("no session with the thirdparty factor: %v", c)
		}
	})
	t.Run("the next sign-in finds the same user", func(t *testing.T) {
		q, verifier := authorise(t)
		m := mustStatus(t, signInUp(q, verifier), 200, "OK")
		if m["createdNewRecipeUser"] != false || m["user"].(map[string]any)["id"] != userID {
			t.Fatalf("body = %v", m)
		}
	})

	refusals := []struct {
		name    string
		setup   func()
		mangle  func(q map[string]string, verifier string) (map[string]string, string)
		status  string
		message string
	}{
		{"a wrong PKCE verifier is refused by the provider", nil,
			func(q map[string]string, v string) (map[string]string, string) { return q, v + "x" }, "GENERAL_ERROR", "did not accept the authorization code"},
		{"a missing code is refused", nil,
			func(q map[string]string, v string) (map[string]string, string) {
				return map[string]string{"state": "s"}, v
			}, "GENERAL_ERROR", "no authorization code"},
		{"a provider error in the redirect is refused", nil,
			func(q map[string]string, v string) (map[string]string, string) {
				return map[string]string{"error": "access_denied"}, v
			}, "GENERAL_ERROR", "access_denied"},
		{"an ID token for another client is refused", func() { idp.audience = "someone-else" }, nil, "GENERAL_ERROR", "ID token"},
		{"an expired ID token is refused", func() { idp.expIn = -time.Minute }, nil, "GENERAL_ERROR", "ID token"},
		{"a provider that gives no email is refused", func() { idp.email = ""; idp.sub = "idp-user-2" }, nil, "NO_EMAIL_GIVEN_BY_PROVIDER", ""},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			idp.audience, idp.expIn, idp.email, idp.sub = "", 5*time.Minute, "person@example.com", "idp-user-1"
			if tt.setup != nil {
				tt.setup()
			}
			q, verifier := authorise(t)
			if tt.mangle != nil {
				q, verifier = tt.mangle(q, verifier)
			}
			before := h.snapshot()
			r := signInUp(q, verifier)
			m := mustStatus(t, r, 200, tt.status)
			if tt.message != "" && !strings.Contains(m["message"].(string), tt.message) {
				t.Fatalf("message = %q, want it to mention %q", m["message"], tt.message)
			}
			if r.Header.Get("st-access-token") != "" || h.snapshot() != before {
				t.Fatalf("a refused third-party sign-in issued tokens or changed the store")
			}
		})
	}
	t.Run("a replayed code is refused", func(t *testing.T) {
		idp.audience, idp.expIn, idp.email, idp.sub = "", 5*time.Minute, "person@example.com", "idp-user-1"
		q, verifier := authorise(t)
		mustStatus(t, signInUp(q, verifier), 200, "OK")
		mustStatus(t, signInUp(q, verifier), 200, "GENERAL_ERROR")
	})
	badRequests := []struct{ name, path, body, message string }{
		{"an unknown provider is a bad request", "/auth/acme/signinup", `{"thirdPartyId":"nope","redirectURIInfo":{"redirectURIOnProviderDashboard":"https://x/cb","redirectURIQueryParams":{"code":"c"}}}`, "could not be found"},
		{"a missing thirdPartyId is a bad request", "/auth/acme/signinup", `{"redirectURIInfo":{}}`, "thirdPartyId"},
		{"missing redirect info is a bad request", "/auth/acme/signinup", `{"thirdPartyId":"idp"}`, "redirectURIInfo"},
		{"query params that are not an object are a bad request", "/auth/acme/signinup", `{"thirdPartyId":"idp","redirectURIInfo":{"redirectURIOnProviderDashboard":"https://x/cb","redirectURIQueryParams":"code=1"}}`, "must be an object"},
	}
	for _, tt := range badRequests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.snapshot()
			r := h.do("POST", tt.path, tt.body)
			if r.Status != 400 || !strings.Contains(r.json(t)["message"].(string), tt.message) {
				t.Fatalf("got %d %s", r.Status, r.Body)
			}
			if h.snapshot() != before {
				t.Fatalf("a bad request changed the store")
			}
		})
	}
	t.Run("authorisationurl needs both parameters and a known provider", func(t *testing.T) {
		for path, msg := range map[string]string{
			"/auth/acme/authorisationurl?redirectURIOnProviderDashboard=x":                "thirdPartyId",
			"/auth/acme/authorisationurl?thirdPartyId=idp":                                "redirectURIOnProviderDashboard",
			"/auth/acme/authorisationurl?thirdPartyId=x&redirectURIOnProviderDashboard=y": "could not be found",
		} {
			r := h.do("GET", path, nil)
			if r.Status != 400 || !strings.Contains(r.json(t)["message"].(string), msg) {
				t.Fatalf("%s = %d %s", path, r.Status, r.Body)
			}
		}
	})
}

func TestThirdPartyRefusalsThatDependOnTheTenant(t *testing.T) {
	h := newHarness(t)
	idp := newOIDCProvider(t, h.clock.Now)
	// Providers are configured, but thirdparty is not a first factor of this tenant.
	h.putTenant("pwonly", fmt.Sprintf(`{"firstFactors":["emailpassword"],"thirdPartyProviders":[
		{"id":"idp","type":"oidc","issuer":%q,"clientId":%q,"clientSecret":%q}]}`, idp.srv.URL, idp.clientID, idp.secret))
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	h.putTenant("down", fmt.Sprintf(`{"firstFactors":["thirdparty"],"thirdPartyProviders":[
		{"id":"idp","type":"oidc","issuer":%q,"clientId":"c"}]}`, down.URL))
	h.putTenant("tponly", fmt.Sprintf(`{"firstFactors":["thirdparty"],"thirdPartyProviders":[
		{"id":"idp","type":"oidc","issuer":%q,"clientId":"c"}]}`, idp.srv.URL))

	t.Run("third-party sign-in on a tenant without the thirdparty first factor is not allowed", func(t *testing.T) {
		before := h.snapshot()
		r := h.do("POST", "/auth/pwonly/signinup", map[string]any{"thirdPartyId": "idp", "redirectURIInfo": map[string]any{
			"redirectURIOnProviderDashboard": redirectURI, "redirectURIQueryParams": map[string]string{"code": "c"}}})
		m := mustStatus(t, r, 200, "SIGN_IN_UP_NOT_ALLOWED")
		if !strings.Contains(m["reason"].(string), "thirdparty is not a first factor") || h.snapshot() != before {
			t.Fatalf("reason = %v, or the store changed", m["reason"])
		}
	})
	t.Run("emailpassword sign-in on a third-party-only tenant is not allowed", func(t *testing.T) {
		m := mustStatus(t, h.do("POST", "/auth/tponly/signin", form("a@example.com", "secret123")), 200, "SIGN_IN_NOT_ALLOWED")
		if !strings.Contains(m["reason"].(string), "emailpassword is not a first factor") {
			t.Fatalf("reason = %v", m["reason"])
		}
	})
	t.Run("the Google preset asks for offline access and discovers from its issuer", func(t *testing.T) {
		h.putTenant("g", fmt.Sprintf(`{"firstFactors":["thirdparty"],"thirdPartyProviders":[
			{"id":"google","type":"google","issuer":%q,"clientId":%q,"clientSecret":%q}]}`, idp.srv.URL, idp.clientID, idp.secret))
		m := mustStatus(t, h.do("GET", "/auth/g/authorisationurl?thirdPartyId=google&redirectURIOnProviderDashboard="+url.QueryEscape(redirectURI), nil), 200, "OK")
		u, _ := url.Parse(m["urlWithQueryParams"].(string))
		q := u.Query()
		if !strings.HasPrefix(u.String(), idp.srv.URL+"/authorize") || q.Get("access_type") != "offline" || q.Get("include_granted_scopes") != "true" ||
			q.Get("scope") != "openid email profile" || q.Get("code_challenge_method") != "S256" {
			t.Fatalf("Google authorisation URL = %s", u)
		}
	})
	t.Run("an unreachable provider is a general error naming it", func(t *testing.T) {
		r := h.do("GET", "/auth/down/authorisationurl?thirdPartyId=idp&redirectURIOnProviderDashboard="+url.QueryEscape(redirectURI), nil)
		m := mustStatus(t, r, 200, "GENERAL_ERROR")
		if m["message"] != "the provider idp cannot be reached" {
			t.Fatalf("message = %v", m["message"])
		}
	})
}
