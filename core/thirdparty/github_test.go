package thirdparty_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/twofold-dev/twofold/core/coretest"
)

// fakeGitHub speaks GitHub's OAuth web flow and REST user API: GitHub issues no ID token, so
// the core reads /user and /user/emails with the access token.
func fakeGitHub(t *testing.T) *httptest.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login/oauth/authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("client_id") != "gh-client" || q.Get("code_challenge") == "" {
			http.Error(w, "bad request", 400)
			return
		}
		http.Redirect(w, r, q.Get("redirect_uri")+"?code=gh-code", http.StatusFound)
	})
	mux.HandleFunc("POST /login/oauth/access_token", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		if r.PostForm.Get("client_id") != "gh-client" || r.PostForm.Get("client_secret") != "gh-secret" || r.PostForm.Get("code") != "gh-code" || r.PostForm.Get("code_verifier") == "" {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]string{"error": "bad_verification_code"})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"access_token": "gho_token", "token_type": "bearer", "scope": "read:user,user:email"})
	})
	mux.HandleFunc("GET /user", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer gho_token" {
			w.WriteHeader(401)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"id": 583231, "login": "octocat", "email": nil})
	})
	mux.HandleFunc("GET /user/emails", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer gho_token" {
			w.WriteHeader(401)
			return
		}
		json.NewEncoder(w).Encode([]map[string]any{
			{"email": "old@example.com", "primary": false, "verified": true},
			{"email": "Octo@Example.com", "primary": true, "verified": true},
		})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestThirdPartySignInWithTheGitHubPreset(t *testing.T) {
	h := coretest.New(t)
	gh := fakeGitHub(t)
	h.PutTenantJSON("acme", fmt.Sprintf(`{"firstFactors":["thirdparty"],"thirdPartyProviders":[{"id":"github","type":"github",
		"clientId":"gh-client","clientSecret":"gh-secret","authorizationEndpoint":%q,"tokenEndpoint":%q,"userInfoEndpoint":%q}]}`,
		gh.URL+"/login/oauth/authorize", gh.URL+"/login/oauth/access_token", gh.URL+"/user"))
	m := coretest.MustStatus(t, h.Do("GET", "/auth/acme/authorisationurl?thirdPartyId=github&redirectURIOnProviderDashboard="+url.QueryEscape(coretest.RedirectURI), nil), 200, "OK")
	resp, err := h.HTTP.Get(m["urlWithQueryParams"].(string))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	r := h.Do("POST", "/auth/acme/signinup", map[string]any{"thirdPartyId": "github", "redirectURIInfo": map[string]any{
		"redirectURIOnProviderDashboard": coretest.RedirectURI, "redirectURIQueryParams": map[string]string{"code": loc.Query().Get("code")},
		"pkceCodeVerifier": m["pkceCodeVerifier"]}})
	body := coretest.MustStatus(t, r, 200, "OK")
	user := body["user"].(map[string]any)
	lm := user["loginMethods"].([]any)[0].(map[string]any)
	if lm["email"] != "octo@example.com" || lm["verified"] != true || lm["thirdParty"].(map[string]any)["userId"] != "583231" {
		t.Fatalf("GitHub user = %s", r.Body)
	}
}
