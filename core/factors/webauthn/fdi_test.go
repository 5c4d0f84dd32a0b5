package webauthn_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/factors/factortest"
	"github.com/twofold-dev/twofold/core/factors/webauthn/softauthn"
	"github.com/twofold-dev/twofold/test/mailbox"
)

var base64URL = base64.RawURLEncoding

// client calls the core's FDI through HTTP with header-based sessions, as the SDKs do.
type client struct {
	t      *testing.T
	base   string
	access string
}

func (c *client) call(method, path string, body any) (int, map[string]json.RawMessage, []byte) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.base+path, rd)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(contract.HeaderAuthMode, "header")
	if c.access != "" {
		req.Header.Set("Authorization", "Bearer "+c.access)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if tok := resp.Header.Get(contract.HeaderAccessToken); tok != "" {
		c.access = tok
	}
	var out map[string]json.RawMessage
	json.Unmarshal(raw, &out)
	return resp.StatusCode, out, raw
}

func statusOf(body map[string]json.RawMessage) string {
	var s string
	json.Unmarshal(body["status"], &s)
	return s
}

func TestTheFDISpeaksSuperTokensWebAuthnRecipe(t *testing.T) {
	c := newCore(t, nil)
	srv := httptest.NewServer(c.Srv)
	t.Cleanup(srv.Close)
	api := &client{t: t, base: srv.URL}
	a := softauthn.New(origin)

	code, opts, raw := api.call("POST", "/auth/webauthn/options/register", map[string]string{"email": " Grace@Example.com "})
	if code != 200 || statusOf(opts) != "OK" {
		t.Fatalf("register options = %d %s", code, raw)
	}
	for _, field := range []string{"webauthnGeneratedOptionsId", "createdAt", "expiresAt", "rp", "user", "challenge", "timeout",
		"excludeCredentials", "attestation", "pubKeyCredParams", "authenticatorSelection"} {
		if _, ok := opts[field]; !ok {
			t.Errorf("register options lack %q: %s", field, raw)
		}
	}
	if !strings.Contains(string(opts["user"]), `"name":"grace@example.com"`) || !strings.Contains(string(opts["rp"]), `"id":"app.example.test"`) ||
		!strings.Contains(string(opts["authenticatorSelection"]), `"userVerification":"required"`) {
		t.Fatalf("register options = %s", raw)
	}
	answer, cred, err := a.Create(raw)
	if err != nil {
		t.Fatal(err)
	}
	var id string
	json.Unmarshal(opts["webauthnGeneratedOptionsId"], &id)
	code, up, raw := api.call("POST", "/auth/webauthn/signup", map[string]any{"webauthnGeneratedOptionsId": id, "credential": answer})
	if code != 200 || statusOf(up) != "OK" || api.access == "" || !strings.Contains(string(up["user"]), `"recipeId":"webauthn"`) ||
		!strings.Contains(string(up["user"]), `"credentialIds":["`) {
		t.Fatalf("signup = %d %s", code, raw)
	}
	if code, _, raw := api.call("POST", "/auth/webauthn/signup", map[string]any{"webauthnGeneratedOptionsId": id, "credential": answer}); code != 200 || !strings.Contains(string(raw), contract.StatusOptionsNotFound) {
		t.Fatalf("the same signup again = %d %s, want OPTIONS_NOT_FOUND_ERROR", code, raw)
	}

	code, list, raw := api.call("GET", "/auth/webauthn/credential/list", nil)
	if code != 200 || statusOf(list) != "OK" || !strings.Contains(string(list["credentials"]), `"relyingPartyId":"app.example.test"`) {
		t.Fatalf("credential list = %d %s", code, raw)
	}

	anonymous := &client{t: t, base: srv.URL}
	code, in, raw := anonymous.call("POST", "/auth/webauthn/options/signin", map[string]any{})
	if code != 200 || statusOf(in) != "OK" || !strings.Contains(string(in["rpId"]), "app.example.test") {
		t.Fatalf("signin options = %d %s", code, raw)
	}
	json.Unmarshal(in["webauthnGeneratedOptionsId"], &id)
	assertion, err := a.Get(raw, cred)
	if err != nil {
		t.Fatal(err)
	}
	code, signedIn, raw := anonymous.call("POST", "/auth/webauthn/signin", map[string]any{"webauthnGeneratedOptionsId": id, "credential": assertion})
	if code != 200 || statusOf(signedIn) != "OK" || anonymous.access == "" {
		t.Fatalf("signin = %d %s", code, raw)
	}
	if code, _, raw := anonymous.call("POST", "/auth/webauthn/signin", map[string]any{"webauthnGeneratedOptionsId": id, "credential": assertion}); !strings.Contains(string(raw), contract.StatusInvalidCredentials) {
		t.Fatalf("the replayed signin = %d %s, want INVALID_CREDENTIALS_ERROR", code, raw)
	}

	refusals := []struct {
		name string
		path string
		body any
		want string
	}{
		{"a sign-up without options is a bad request", "/auth/webauthn/signup", map[string]any{"credential": answer}, "webauthnGeneratedOptionsId is required"},
		{"a sign-in without a credential is a bad request", "/auth/webauthn/signin", map[string]any{"webauthnGeneratedOptionsId": "x"}, "credential is required"},
		{"register options without an email or a token are a bad request", "/auth/webauthn/options/register", map[string]any{}, "Please provide the email"},
		{"an invalid email gets INVALID_EMAIL_ERROR", "/auth/webauthn/options/register", map[string]any{"email": "not-an-email"}, contract.StatusInvalidEmail},
		{"a credential that is not JSON of a credential is refused", "/auth/webauthn/signin", map[string]any{"webauthnGeneratedOptionsId": "x", "credential": map[string]any{"id": 1}}, contract.StatusInvalidCredentials},
		{"an unknown tenant is refused", "/auth/nosuchtenant/webauthn/options/signin", map[string]any{}, "unknown tenant"},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			_, _, raw := anonymous.call("POST", tt.path, tt.body)
			if !strings.Contains(string(raw), tt.want) {
				t.Fatalf("answer = %s, want it to mention %q", raw, tt.want)
			}
		})
	}
	if _, exists, _ := anonymous.call("GET", "/auth/webauthn/email/exists?email=grace@example.com", nil); string(exists["exists"]) != "true" {
		t.Fatalf("email exists = %v", exists)
	}
}

func TestTheFDICompletesThePasskeySecondFactor(t *testing.T) {
	c := newCore(t, mfa.Requirement{{Factor: mfa.WebAuthn}})
	srv := httptest.NewServer(c.Srv)
	t.Cleanup(srv.Close)
	api := &client{t: t, base: srv.URL}
	if code, _, raw := api.call("POST", "/auth/signin", map[string]any{"formFields": []map[string]string{
		{"id": "email", "value": factortest.Email}, {"id": "password", "value": factortest.Password}}}); code != 200 || api.access == "" {
		t.Fatalf("password sign-in = %d %s", code, raw)
	}
	_, opts, raw := api.call("POST", "/auth/webauthn/options/register", map[string]string{"email": factortest.Email})
	answer, _, err := softauthn.New(origin).Create(raw)
	if err != nil {
		t.Fatal(err)
	}
	var id string
	json.Unmarshal(opts["webauthnGeneratedOptionsId"], &id)
	before := api.access
	code, _, raw := api.call("POST", "/auth/webauthn/signup", map[string]any{"webauthnGeneratedOptionsId": id, "credential": answer, "shouldTryLinkingWithSessionUser": true})
	if code != 200 || api.access == before {
		t.Fatalf("passkey set-up as the second factor = %d %s, want OK with a new access token", code, raw)
	}
	_, info, raw := api.call("PUT", "/auth/mfa/info", map[string]any{})
	if !strings.Contains(string(info["factors"]), `"alreadySetup":["webauthn"]`) && !strings.Contains(string(raw), `"webauthn"`) {
		t.Fatalf("mfa/info after the set-up = %s, want webauthn set up", raw)
	}
	payload := strings.Split(api.access, ".")[1]
	if !strings.Contains(decodeSegment(t, payload), `"webauthn":`) || !strings.Contains(decodeSegment(t, payload), `"v":true`) {
		t.Fatalf("access token payload = %s, want c.webauthn and v true", decodeSegment(t, payload))
	}
}

func decodeSegment(t *testing.T, s string) string {
	t.Helper()
	b, err := base64URL.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestTheFDIAddsAndRemovesPasskeysOfTheSessionUser(t *testing.T) {
	c := newCore(t, nil)
	srv := httptest.NewServer(c.Srv)
	t.Cleanup(srv.Close)
	api := &client{t: t, base: srv.URL}
	_, opts, raw := api.call("POST", "/auth/webauthn/options/register", map[string]string{"email": "ines@example.com"})
	answer, _, _ := softauthn.New(origin).Create(raw)
	var id string
	json.Unmarshal(opts["webauthnGeneratedOptionsId"], &id)
	_, up, _ := api.call("POST", "/auth/webauthn/signup", map[string]any{"webauthnGeneratedOptionsId": id, "credential": answer})
	var user struct {
		LoginMethods []struct {
			RecipeUserID string `json:"recipeUserId"`
		} `json:"loginMethods"`
	}
	json.Unmarshal(up["user"], &user)

	// A second device: register options for the same email exclude the first passkey, and the
	// new one is added to the same login method.
	_, opts, raw = api.call("POST", "/auth/webauthn/options/register", map[string]string{"email": "ines@example.com"})
	if !strings.Contains(string(opts["excludeCredentials"]), `"id":"`) {
		t.Fatalf("register options for an email with a passkey exclude nothing: %s", raw)
	}
	second, _, _ := softauthn.New(origin).Create(raw)
	json.Unmarshal(opts["webauthnGeneratedOptionsId"], &id)
	if code, _, raw := api.call("POST", "/auth/webauthn/credential", map[string]any{"recipeUserId": user.LoginMethods[0].RecipeUserID,
		"webauthnGeneratedOptionsId": id, "credential": second}); code != 200 || !strings.Contains(string(raw), `"status":"OK"`) {
		t.Fatalf("adding a passkey = %d %s", code, raw)
	}
	_, list, _ := api.call("GET", "/auth/webauthn/credential/list", nil)
	var creds []struct {
		ID string `json:"webauthnCredentialId"`
	}
	json.Unmarshal(list["credentials"], &creds)
	if len(creds) != 2 {
		t.Fatalf("credentials after adding one = %s, want two", list["credentials"])
	}

	if _, _, raw := api.call("POST", "/auth/webauthn/credential/remove", map[string]any{"webauthnCredentialId": "no-such-credential"}); !strings.Contains(string(raw), contract.StatusCredentialNotFound) {
		t.Fatalf("removing an unknown passkey = %s", raw)
	}
	if _, _, raw := api.call("POST", "/auth/webauthn/credential/remove", map[string]any{"webauthnCredentialId": creds[0].ID}); !strings.Contains(string(raw), `"status":"OK"`) {
		t.Fatalf("removing a passkey = %s", raw)
	}
	_, list, _ = api.call("GET", "/auth/webauthn/credential/list", nil)
	if json.Unmarshal(list["credentials"], &creds); len(creds) != 1 {
		t.Fatalf("credentials after removing one = %s, want one", list["credentials"])
	}
	anonymous := &client{t: t, base: srv.URL}
	if code, _, _ := anonymous.call("GET", "/auth/webauthn/credential/list", nil); code != 401 {
		t.Fatalf("listing passkeys without a session answered %d, want 401", code)
	}
}

func TestALostPasskeyIsReplacedFromAnEmailedLink(t *testing.T) {
	c := newCore(t, nil)
	box := mailbox.Start(t)
	c.configure(contract.TenantConfig{FirstFactors: []string{mfa.EmailPassword, mfa.WebAuthn}, WebsiteDomain: origin,
		Email: &contract.Email{SMTP: &contract.SMTP{Host: "127.0.0.1", Port: box.Port, From: "Keys <no-reply@keys.test>", TLS: "none"}}})
	srv := httptest.NewServer(c.Srv)
	t.Cleanup(srv.Close)
	api := &client{t: t, base: srv.URL}
	lost := softauthn.New(origin)
	_, opts, raw := api.call("POST", "/auth/webauthn/options/register", map[string]string{"email": "rosa@example.com"})
	answer, _, _ := lost.Create(raw)
	var id string
	json.Unmarshal(opts["webauthnGeneratedOptionsId"], &id)
	_, up, _ := api.call("POST", "/auth/webauthn/signup", map[string]any{"webauthnGeneratedOptionsId": id, "credential": answer})
	var user struct {
		ID string `json:"id"`
	}
	json.Unmarshal(up["user"], &user)

	anonymous := &client{t: t, base: srv.URL}
	if _, _, raw := anonymous.call("POST", "/auth/user/webauthn/reset/token", map[string]string{"email": "rosa@example.com"}); !strings.Contains(string(raw), `"status":"OK"`) {
		t.Fatalf("asking for a recovery email = %s", raw)
	}
	link := regexp.MustCompile(`https?://\S+`).FindString(box.Next(t))
	u, err := url.Parse(link)
	if err != nil || u.Path != "/auth/webauthn/recover" || u.Query().Get("token") == "" {
		t.Fatalf("the recovery email's link is %q, want {websiteDomain}/auth/webauthn/recover?token=...", link)
	}
	token := u.Query().Get("token")

	if _, _, raw := anonymous.call("POST", "/auth/webauthn/options/register", map[string]string{"recoverAccountToken": "not-a-token"}); !strings.Contains(string(raw), contract.StatusRecoverAccountTokenInvalid) {
		t.Fatalf("register options for an unknown token = %s", raw)
	}
	_, opts, raw = anonymous.call("POST", "/auth/webauthn/options/register", map[string]string{"recoverAccountToken": token})
	if !strings.Contains(string(opts["user"]), `"name":"rosa@example.com"`) || !strings.Contains(string(opts["excludeCredentials"]), `"id":"`) {
		t.Fatalf("register options for the token = %s, want the account's email and its old passkey excluded", raw)
	}
	found := softauthn.New(origin)
	replacement, cred, _ := found.Create(raw)
	json.Unmarshal(opts["webauthnGeneratedOptionsId"], &id)
	if _, _, raw := anonymous.call("POST", "/auth/user/webauthn/reset", map[string]any{"token": token, "webauthnGeneratedOptionsId": id, "credential": replacement}); !strings.Contains(string(raw), `"status":"OK"`) {
		t.Fatalf("recovering the account = %s", raw)
	}
	if _, _, raw := anonymous.call("POST", "/auth/user/webauthn/reset", map[string]any{"token": token, "webauthnGeneratedOptionsId": id, "credential": replacement}); !strings.Contains(string(raw), contract.StatusRecoverAccountTokenInvalid) {
		t.Fatalf("the same link again = %s, want RECOVER_ACCOUNT_TOKEN_INVALID_ERROR", raw)
	}

	res, err := c.signIn(found, cred, nil)
	if err != nil || res.User.ID != user.ID {
		t.Fatalf("signing in with the new passkey = %v, %v; want user %s", res.User.ID, err, user.ID)
	}
	for _, lm := range res.User.LoginMethods {
		if lm.RecipeID == "webauthn" && (!lm.Verified || len(lm.WebAuthnCredentialIDs) != 2) {
			t.Fatalf("login method after recovery = %+v, want the email verified and both passkeys", lm)
		}
	}
}
