package thirdparty_test

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/core/coretest"
	"github.com/twofold-dev/twofold/test/oidcprovider"
)

func TestThirdPartySignInWithOIDC(t *testing.T) {
	h := coretest.New(t)
	idp := oidcprovider.New(t, h.Clock.Now)
	h.PutTenantJSON("acme", fmt.Sprintf(`{"firstFactors":["emailpassword","thirdparty"],"thirdPartyProviders":[
		{"id":"idp","name":"Corporate SSO","type":"oidc","issuer":%q,"clientId":%q,"clientSecret":%q}]}`, idp.URL(), idp.ClientID, idp.Secret))

	// authorise runs the browser's part: ask the core for the URL, visit the provider, and
	// return the query the provider redirected back with, and the PKCE verifier.
	authorise := func(t *testing.T) (map[string]string, string) {
		t.Helper()
		r := h.Do("GET", "/auth/acme/authorisationurl?thirdPartyId=idp&redirectURIOnProviderDashboard="+url.QueryEscape(coretest.RedirectURI), nil)
		m := coretest.MustStatus(t, r, 200, "OK")
		authURL, verifier := m["urlWithQueryParams"].(string), m["pkceCodeVerifier"].(string)
		u, _ := url.Parse(authURL)
		sum := sha256.Sum256([]byte(verifier))
		if !strings.HasPrefix(authURL, idp.URL()+"/authorize?") || u.Query().Get("code_challenge") != base64.RawURLEncoding.EncodeToString(sum[:]) ||
			u.Query().Get("redirect_uri") != coretest.RedirectURI || !strings.Contains(u.Query().Get("scope"), "openid") {
			t.Fatalf("authorisation URL %s does not carry the PKCE challenge of %q", authURL, verifier)
		}
		resp, err := h.HTTP.Get(authURL)
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
	signInUp := func(q map[string]string, verifier string) coretest.Response {
		return h.Do("POST", "/auth/acme/signinup", map[string]any{"thirdPartyId": "idp", "redirectURIInfo": map[string]any{
			"redirectURIOnProviderDashboard": coretest.RedirectURI, "redirectURIQueryParams": q, "pkceCodeVerifier": verifier}})
	}

	var userID string
	t.Run("the first sign-in creates a user and a session", func(t *testing.T) {
		q, verifier := authorise(t)
		r := signInUp(q, verifier)
		m := coretest.MustStatus(t, r, 200, "OK")
		user := m["user"].(map[string]any)
		userID = user["id"].(string)
		tp := user["thirdParty"].([]any)[0].(map[string]any)
		if m["createdNewRecipeUser"] != true || tp["id"] != "idp" || tp["userId"] != "idp-user-1" || user["emails"].([]any)[0] != "person@example.com" {
			t.Fatalf("body = %s", r.Body)
		}
		if user["loginMethods"].([]any)[0].(map[string]any)["verified"] != true {
			t.Fatalf("the provider's verified email is not marked verified")
		}
		c := coretest.FrontToken(t, r)["up"].(map[string]any)["st-mfa"].(map[string]any)["c"].(map[string]any)
		if c["thirdparty"] == nil || r.Header.Get("st-access-token") == "" {
			t.Fatalf("no session with the thirdparty factor: %v", c)
		}
	})
	t.Run("the next sign-in finds the same user", func(t *testing.T) {
		q, verifier := authorise(t)
		m := coretest.MustStatus(t, signInUp(q, verifier), 200, "OK")
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
		{"an ID token for another client is refused", func() { idp.Audience = "someone-else" }, nil, "GENERAL_ERROR", "ID token"},
		{"an expired ID token is refused", func() { idp.ExpiresIn = -time.Minute }, nil, "GENERAL_ERROR", "ID token"},
		{"a provider that gives no email is refused", func() { idp.Email = ""; idp.Subject = "idp-user-2" }, nil, "NO_EMAIL_GIVEN_BY_PROVIDER", ""},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			idp.Audience, idp.ExpiresIn, idp.Email, idp.Subject = "", 5*time.Minute, "person@example.com", "idp-user-1"
			if tt.setup != nil {
				tt.setup()
			}
			q, verifier := authorise(t)
			if tt.mangle != nil {
				q, verifier = tt.mangle(q, verifier)
			}
			before := h.Snapshot()
			r := signInUp(q, verifier)
			m := coretest.MustStatus(t, r, 200, tt.status)
			if tt.message != "" && !strings.Contains(m["message"].(string), tt.message) {
				t.Fatalf("message = %q, want it to mention %q", m["message"], tt.message)
			}
			if r.Header.Get("st-access-token") != "" || h.Snapshot() != before {
				t.Fatalf("a refused third-party sign-in issued tokens or changed the store")
			}
		})
	}
	t.Run("a replayed code is refused", func(t *testing.T) {
		idp.Audience, idp.ExpiresIn, idp.Email, idp.Subject = "", 5*time.Minute, "person@example.com", "idp-user-1"
		q, verifier := authorise(t)
		coretest.MustStatus(t, signInUp(q, verifier), 200, "OK")
		coretest.MustStatus(t, signInUp(q, verifier), 200, "GENERAL_ERROR")
	})
	badRequests := []struct{ name, path, body, message string }{
		{"an unknown provider is a bad request", "/auth/acme/signinup", `{"thirdPartyId":"nope","redirectURIInfo":{"redirectURIOnProviderDashboard":"https://x/cb","redirectURIQueryParams":{"code":"c"}}}`, "could not be found"},
		{"a missing thirdPartyId is a bad request", "/auth/acme/signinup", `{"redirectURIInfo":{}}`, "thirdPartyId"},
		{"missing redirect info is a bad request", "/auth/acme/signinup", `{"thirdPartyId":"idp"}`, "redirectURIInfo"},
		{"query params that are not an object are a bad request", "/auth/acme/signinup", `{"thirdPartyId":"idp","redirectURIInfo":{"redirectURIOnProviderDashboard":"https://x/cb","redirectURIQueryParams":"code=1"}}`, "must be an object"},
	}
	for _, tt := range badRequests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.Snapshot()
			r := h.Do("POST", tt.path, tt.body)
			if r.Status != 400 || !strings.Contains(r.JSON(t)["message"].(string), tt.message) {
				t.Fatalf("got %d %s", r.Status, r.Body)
			}
			if h.Snapshot() != before {
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
			r := h.Do("GET", path, nil)
			if r.Status != 400 || !strings.Contains(r.JSON(t)["message"].(string), msg) {
				t.Fatalf("%s = %d %s", path, r.Status, r.Body)
			}
		}
	})
}

func TestThirdPartyRefusalsThatDependOnTheTenant(t *testing.T) {
	h := coretest.New(t)
	idp := oidcprovider.New(t, h.Clock.Now)
	// Providers are configured, but thirdparty is not a first factor of this tenant.
	h.PutTenantJSON("pwonly", fmt.Sprintf(`{"firstFactors":["emailpassword"],"thirdPartyProviders":[
		{"id":"idp","type":"oidc","issuer":%q,"clientId":%q,"clientSecret":%q}]}`, idp.URL(), idp.ClientID, idp.Secret))
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()
	h.PutTenantJSON("down", fmt.Sprintf(`{"firstFactors":["thirdparty"],"thirdPartyProviders":[
		{"id":"idp","type":"oidc","issuer":%q,"clientId":"c"}]}`, down.URL))
	h.PutTenantJSON("tponly", fmt.Sprintf(`{"firstFactors":["thirdparty"],"thirdPartyProviders":[
		{"id":"idp","type":"oidc","issuer":%q,"clientId":"c"}]}`, idp.URL()))

	t.Run("third-party sign-in on a tenant without the thirdparty first factor is not allowed", func(t *testing.T) {
		before := h.Snapshot()
		r := h.Do("POST", "/auth/pwonly/signinup", map[string]any{"thirdPartyId": "idp", "redirectURIInfo": map[string]any{
			"redirectURIOnProviderDashboard": coretest.RedirectURI, "redirectURIQueryParams": map[string]string{"code": "c"}}})
		m := coretest.MustStatus(t, r, 200, "SIGN_IN_UP_NOT_ALLOWED")
		if !strings.Contains(m["reason"].(string), "thirdparty is not a first factor") || h.Snapshot() != before {
			t.Fatalf("reason = %v, or the store changed", m["reason"])
		}
	})
	t.Run("emailpassword sign-in on a third-party-only tenant is not allowed", func(t *testing.T) {
		m := coretest.MustStatus(t, h.Do("POST", "/auth/tponly/signin", coretest.Form("a@example.com", "secret123")), 200, "SIGN_IN_NOT_ALLOWED")
		if !strings.Contains(m["reason"].(string), "emailpassword is not a first factor") {
			t.Fatalf("reason = %v", m["reason"])
		}
	})
	t.Run("the Google preset asks for offline access and discovers from its issuer", func(t *testing.T) {
		h.PutTenantJSON("g", fmt.Sprintf(`{"firstFactors":["thirdparty"],"thirdPartyProviders":[
			{"id":"google","type":"google","issuer":%q,"clientId":%q,"clientSecret":%q}]}`, idp.URL(), idp.ClientID, idp.Secret))
		m := coretest.MustStatus(t, h.Do("GET", "/auth/g/authorisationurl?thirdPartyId=google&redirectURIOnProviderDashboard="+url.QueryEscape(coretest.RedirectURI), nil), 200, "OK")
		u, _ := url.Parse(m["urlWithQueryParams"].(string))
		q := u.Query()
		if !strings.HasPrefix(u.String(), idp.URL()+"/authorize") || q.Get("access_type") != "offline" || q.Get("include_granted_scopes") != "true" ||
			q.Get("scope") != "openid email profile" || q.Get("code_challenge_method") != "S256" {
			t.Fatalf("Google authorisation URL = %s", u)
		}
	})
	t.Run("an unreachable provider is a general error naming it", func(t *testing.T) {
		r := h.Do("GET", "/auth/down/authorisationurl?thirdPartyId=idp&redirectURIOnProviderDashboard="+url.QueryEscape(coretest.RedirectURI), nil)
		m := coretest.MustStatus(t, r, 200, "GENERAL_ERROR")
		if m["message"] != "the provider idp cannot be reached" {
			t.Fatalf("message = %v", m["message"])
		}
	})
}
