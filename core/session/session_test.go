package session_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/coretest"
	"github.com/twofold-dev/twofold/core/session"
	"github.com/twofold-dev/twofold/core/store"
)

func TestRefreshRotatesTokensInHeaderMode(t *testing.T) {
	h := coretest.New(t)
	r := h.SignUp("", "a@example.com", "secret123")
	coretest.MustStatus(t, r, 200, "OK")
	access, refresh := r.Header.Get("st-access-token"), r.Header.Get("st-refresh-token")

	h.Clock.Advance(2 * time.Hour) // the access token has expired
	if _, err := h.Srv.Sessions.Verify(context.Background(), access, session.VerifyOptions{}); !errors.Is(err, session.ErrTryRefreshToken) {
		t.Fatalf("an expired access token verified: %v", err)
	}
	r2 := h.Do("POST", "/auth/session/refresh", nil, "Authorization", "Bearer "+refresh)
	if r2.Status != 200 || strings.TrimSpace(string(r2.Body)) != "{}" {
		t.Fatalf("refresh = %d %s", r2.Status, r2.Body)
	}
	access2, refresh2 := r2.Header.Get("st-access-token"), r2.Header.Get("st-refresh-token")
	if access2 == "" || refresh2 == "" || refresh2 == refresh || r2.Header.Get("front-token") == "" {
		t.Fatalf("refresh did not rotate the tokens: %v", r2.Header)
	}
	p1, p2 := coretest.PayloadOf(t, access), coretest.PayloadOf(t, access2)
	if p1["sessionHandle"] != p2["sessionHandle"] || p2["parentRefreshTokenHash1"] != p1["refreshTokenHash1"] {
		t.Fatalf("the refreshed token does not chain to the first: %v / %v", p1, p2)
	}
	if p2["st-mfa"] == nil {
		t.Fatalf("the refreshed token lost the st-mfa claim: %v", p2)
	}
	if _, err := h.Srv.Sessions.Verify(context.Background(), access2, session.VerifyOptions{CheckDatabase: true}); err != nil {
		t.Fatalf("the refreshed access token does not verify: %v", err)
	}
}

func TestRefreshInCookieModeAnswersWithCookies(t *testing.T) {
	h := coretest.New(t)
	r := h.SignUp("", "a@example.com", "secret123", "st-auth-mode", "cookie")
	rt := r.Cookie("sRefreshToken")
	r2 := h.Do("POST", "/auth/session/refresh", nil, "Cookie", "sRefreshToken="+rt.Value, "rid", "session")
	if r2.Status != 200 {
		t.Fatalf("refresh = %d %s", r2.Status, r2.Body)
	}
	if c := r2.Cookie("sRefreshToken"); c == nil || c.Value == rt.Value || r2.Cookie("sAccessToken") == nil {
		t.Fatalf("cookie refresh did not set new cookies: %v", r2.Header["Set-Cookie"])
	}
	if r2.Header.Get("st-access-token") != "" {
		t.Fatalf("cookie refresh answered in headers")
	}
	// An application's own Authorization header does not hide the refresh cookie.
	r3 := h.Do("POST", "/auth/session/refresh", nil, "Cookie", "sRefreshToken="+r2.Cookie("sRefreshToken").Value, "Authorization", "Bearer app-api-key")
	if r3.Status != 200 || r3.Cookie("sRefreshToken") == nil {
		t.Fatalf("refresh with a foreign Authorization header = %d %s", r3.Status, r3.Body)
	}
}

func TestReusingARotatedRefreshTokenIsTheft(t *testing.T) {
	h := coretest.New(t)
	r := h.SignUp("", "a@example.com", "secret123")
	first := r.Header.Get("st-refresh-token")
	handle := coretest.PayloadOf(t, r.Header.Get("st-access-token"))["sessionHandle"].(string)

	second := h.Do("POST", "/auth/session/refresh", nil, "Authorization", "Bearer "+first).Header.Get("st-refresh-token")
	third := h.Do("POST", "/auth/session/refresh", nil, "Authorization", "Bearer "+second)
	if third.Status != 200 {
		t.Fatalf("using the child token failed: %d %s", third.Status, third.Body)
	}

	// An attacker replays the first token after the legitimate client moved on.
	stolen := h.Do("POST", "/auth/session/refresh", nil, "Authorization", "Bearer "+first)
	if stolen.Status != 401 || stolen.JSON(t)["message"] != "token theft detected" {
		t.Fatalf("replayed token = %d %s", stolen.Status, stolen.Body)
	}
	if stolen.Header.Get("front-token") != "remove" {
		t.Fatalf("theft did not clear the tokens: %v", stolen.Header)
	}
	// The whole session is gone, for the thief and the victim alike.
	after := h.Do("POST", "/auth/session/refresh", nil, "Authorization", "Bearer "+third.Header.Get("st-refresh-token"))
	if after.Status != 401 || after.JSON(t)["message"] != "unauthorised" {
		t.Fatalf("the victim's token after theft = %d %s", after.Status, after.Body)
	}
	if _, err := h.Srv.Sessions.Verify(context.Background(), third.Header.Get("st-access-token"), session.VerifyOptions{CheckDatabase: true}); !errors.Is(err, session.ErrUnauthorised) {
		t.Fatalf("an access token of the stolen session still verifies against the store: %v", err)
	}
	feed := h.Do("GET", "/auth/public/enforcement", nil).JSON(t)
	revoked := feed["revokedSessions"].([]any)
	if len(revoked) != 1 || revoked[0].(map[string]any)["handleHash"] != contract.SessionHandleHash(handle) {
		t.Fatalf("the enforcement feed does not list the stolen session: %v", revoked)
	}
}

func TestRefreshRefusals(t *testing.T) {
	h := coretest.New(t)
	tests := []struct {
		name    string
		headers []string
	}{
		{"no refresh token is unauthorised", nil},
		{"an unknown refresh token is unauthorised", []string{"Authorization", "Bearer made-up"}},
		{"an unknown refresh cookie is unauthorised", []string{"Cookie", "sRefreshToken=made-up"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.Do("POST", "/auth/session/refresh", nil, tt.headers...)
			if r.Status != 401 || r.JSON(t)["message"] != "unauthorised" {
				t.Fatalf("got %d %s", r.Status, r.Body)
			}
		})
	}
	t.Run("a session refreshed within its lifetime lives on past the first expiry", func(t *testing.T) {
		h.PutTenantJSON("sliding", `{"session":{"accessTokenLifetimeSeconds":60,"refreshTokenLifetimeSeconds":120}}`)
		token := h.SignUp("/sliding", "s@example.com", "secret123").Header.Get("st-refresh-token")
		for i := range 3 {
			h.Clock.Advance(100 * time.Second)
			r := h.Do("POST", "/auth/session/refresh", nil, "Authorization", "Bearer "+token)
			if r.Status != 200 {
				t.Fatalf("refresh %d, %d s after the previous one = %d %s", i, 100, r.Status, r.Body)
			}
			token = r.Header.Get("st-refresh-token")
		}
	})
	t.Run("a refresh token past the session lifetime is unauthorised", func(t *testing.T) {
		h.PutTenantJSON("short", `{"session":{"accessTokenLifetimeSeconds":60,"refreshTokenLifetimeSeconds":120}}`)
		r := h.SignUp("/short", "s@example.com", "secret123")
		h.Clock.Advance(121 * time.Second)
		r2 := h.Do("POST", "/auth/session/refresh", nil, "Authorization", "Bearer "+r.Header.Get("st-refresh-token"))
		if r2.Status != 401 || r2.JSON(t)["message"] != "unauthorised" {
			t.Fatalf("got %d %s", r2.Status, r2.Body)
		}
	})
}

func TestSignOutRevokesTheSession(t *testing.T) {
	h := coretest.New(t)
	t.Run("in header mode", func(t *testing.T) {
		r := h.SignUp("", "a@example.com", "secret123")
		out := h.Do("POST", "/auth/signout", nil, "Authorization", "Bearer "+r.Header.Get("st-access-token"))
		coretest.MustStatus(t, out, 200, "OK")
		if out.Header.Get("front-token") != "remove" {
			t.Fatalf("sign-out did not clear the front token")
		}
		again := h.Do("POST", "/auth/session/refresh", nil, "Authorization", "Bearer "+r.Header.Get("st-refresh-token"))
		if again.Status != 401 {
			t.Fatalf("refresh after sign-out = %d", again.Status)
		}
	})
	t.Run("in cookie mode the cookies are cleared", func(t *testing.T) {
		r := h.Do("POST", "/auth/signin", coretest.Form("a@example.com", "secret123"), "st-auth-mode", "cookie")
		out := h.Do("POST", "/auth/signout", nil, "Cookie", "sAccessToken="+r.Cookie("sAccessToken").Value)
		coretest.MustStatus(t, out, 200, "OK")
		if c := out.Cookie("sAccessToken"); c == nil || c.MaxAge >= 0 && c.Value != "" {
			t.Fatalf("sign-out did not clear the access cookie: %v", out.Header["Set-Cookie"])
		}
	})
	t.Run("without a session it is OK", func(t *testing.T) {
		coretest.MustStatus(t, h.Do("POST", "/auth/signout", nil), 200, "OK")
	})
	t.Run("with an expired access token it asks for a refresh", func(t *testing.T) {
		r := h.SignUp("", "b@example.com", "secret123")
		h.Clock.Advance(2 * time.Hour)
		out := h.Do("POST", "/auth/signout", nil, "Authorization", "Bearer "+r.Header.Get("st-access-token"))
		if out.Status != 401 || out.JSON(t)["message"] != "try refresh token" {
			t.Fatalf("got %d %s", out.Status, out.Body)
		}
	})
}

// TestAccessTokenVerifiesAgainstTheJWKSAsAStrangerWould checks the token with go-jose and
// nothing but what the core publishes over HTTP.
func TestAccessTokenVerifiesAgainstTheJWKSAsAStrangerWould(t *testing.T) {
	h := coretest.New(t)
	h.PutTenantJSON("acme", `{"mfa":{"requirement":["totp"]}}`)
	r := h.SignUp("/acme", "a@example.com", "secret123")
	token := r.Header.Get("st-access-token")

	for _, path := range []string{"/.well-known/openid-configuration", "/auth/.well-known/openid-configuration"} {
		oc := h.Do("GET", path, nil).JSON(t)
		if oc["issuer"] != h.Srv.Sessions.Issuer() || oc["jwks_uri"] != h.Srv.Sessions.Issuer()+"/jwt/jwks.json" {
			t.Fatalf("%s = %v", path, oc)
		}
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(h.Do("GET", "/auth/jwt/jwks.json", nil).Body, &set); err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	hdr := jws.Signatures[0].Header
	if hdr.Algorithm != "RS256" || hdr.ExtraHeaders["typ"] != "JWT" || hdr.ExtraHeaders["version"] != "5" {
		t.Fatalf("header = %+v", hdr)
	}
	keys := set.Key(hdr.KeyID)
	if len(keys) != 1 || keys[0].Use != "sig" || keys[0].Algorithm != "RS256" {
		t.Fatalf("the JWKS has no usable key %q: %+v", hdr.KeyID, set)
	}
	body, err := jws.Verify(keys[0].Key)
	if err != nil {
		t.Fatalf("the token does not verify against the published key: %v", err)
	}
	var p map[string]any
	json.Unmarshal(body, &p)
	for _, k := range []string{"sub", "rsub", "tId", "sessionHandle", "refreshTokenHash1", "parentRefreshTokenHash1", "antiCsrfToken", "iat", "exp", "iss", "st-mfa"} {
		if _, ok := p[k]; !ok {
			t.Fatalf("payload lacks %s: %v", k, p)
		}
	}
	if p["tId"] != "acme" || p["iss"] != h.Srv.Sessions.Issuer() || int64(p["exp"].(float64)) != h.Clock.Now().Add(time.Hour).Unix() {
		t.Fatalf("payload = %v", p)
	}
	claim := p["st-mfa"].(map[string]any)
	if claim["v"] != false {
		t.Fatalf("a tenant requiring totp gave v = %v after the first factor", claim["v"])
	}
}

func TestForgedAndStaleAccessTokensAreRefused(t *testing.T) {
	h := coretest.New(t)
	r := h.SignUp("", "a@example.com", "secret123")
	good := r.Header.Get("st-access-token")
	parts := strings.Split(good, ".")
	payload := coretest.PayloadOf(t, good)

	signWith := func(alg jose.SignatureAlgorithm, key any, kid string, p map[string]any) string {
		b, _ := json.Marshal(p)
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, (&jose.SignerOptions{}).WithType("JWT"))
		if err != nil {
			t.Fatal(err)
		}
		obj, err := s.Sign(b)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := obj.CompactSerialize()
		return out
	}
	kid := payloadKid(t, good)
	otherKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	wrongIssuer := clone(payload)
	wrongIssuer["iss"] = "https://evil.example/auth"
	wrongIssuerSigned := signWithCore(t, h, wrongIssuer)
	elevated := clone(payload)
	elevated["st-mfa"] = map[string]any{"c": map[string]any{"totp": 1}, "v": true}

	tests := []struct {
		name, token string
		want        error
	}{
		{"alg none is refused", `eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.` + parts[1] + `.`, session.ErrTryRefreshToken},
		{"HS256 keyed with anything is refused", signWith(jose.HS256, []byte("a-shared-secret-of-32-bytes!!!!!"), kid, payload), session.ErrTryRefreshToken},
		{"a key the core never published is refused", signWith(jose.RS256, otherKey, kid, payload), session.ErrTryRefreshToken},
		{"an unknown kid is refused", signWith(jose.RS256, otherKey, "s-unknown", payload), session.ErrTryRefreshToken},
		{"a payload changed after signing is refused", parts[0] + "." + encodeSegment(t, elevated) + "." + parts[2], session.ErrTryRefreshToken},
		{"another issuer is unauthorised: a refresh cannot fix it", wrongIssuerSigned, session.ErrUnauthorised},
		{"garbage is refused", "not.a.token", session.ErrTryRefreshToken},
		{"no token is unauthorised", "", session.ErrUnauthorised},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.Srv.Sessions.Verify(context.Background(), tt.token, session.VerifyOptions{})
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
	t.Run("the genuine token verifies", func(t *testing.T) {
		if _, err := h.Srv.Sessions.Verify(context.Background(), good, session.VerifyOptions{CheckDatabase: true}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("a token of a revoked session is refused when the store is checked", func(t *testing.T) {
		if _, err := h.Srv.Sessions.Revoke(context.Background(), payload["sessionHandle"].(string)); err != nil {
			t.Fatal(err)
		}
		if _, err := h.Srv.Sessions.Verify(context.Background(), good, session.VerifyOptions{CheckDatabase: true}); !errors.Is(err, session.ErrUnauthorised) {
			t.Fatalf("Verify = %v, want ErrUnauthorised", err)
		}
	})
}

func clone(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func encodeSegment(t *testing.T, v any) string {
	t.Helper()
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

func payloadKid(t *testing.T, token string) string {
	t.Helper()
	jws, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	return jws.Signatures[0].Header.KeyID
}

// signWithCore signs an arbitrary payload with the core's own key, to isolate claim checks.
func signWithCore(t *testing.T, h *coretest.Core, p map[string]any) string {
	t.Helper()
	b, _ := json.Marshal(p)
	tok, err := h.Srv.Keys.Sign(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestRequireProtectsAnEndpoint(t *testing.T) {
	h := coretest.New(t)
	h.PutTenantJSON("strict", `{"session":{"cookieSameSite":"none","cookieSecure":true}}`)
	protected := httptest.NewServer(h.Srv.Sessions.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := session.FromContext(r.Context())
		w.Write([]byte(s.UserID))
	})))
	defer protected.Close()
	call := func(method string, headers ...string) (int, string) {
		req, _ := http.NewRequest(method, protected.URL, nil)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 512)
		n, _ := resp.Body.Read(buf)
		b.Write(buf[:n])
		return resp.StatusCode, b.String()
	}
	r := h.SignUp("", "a@example.com", "secret123")
	user := r.JSON(t)["user"].(map[string]any)["id"].(string)
	strict := h.SignUp("/strict", "b@example.com", "secret123", "st-auth-mode", "cookie")
	strictCookie := "sAccessToken=" + strict.Cookie("sAccessToken").Value

	tests := []struct {
		name    string
		method  string
		headers []string
		status  int
		body    string
	}{
		{"a bearer token passes", "GET", []string{"Authorization", "Bearer " + r.Header.Get("st-access-token")}, 200, user},
		{"a bearer token wins over a bad cookie", "GET", []string{"Authorization", "Bearer " + r.Header.Get("st-access-token"), "Cookie", "sAccessToken=junk"}, 200, user},
		{"no token is unauthorised", "GET", nil, 401, `{"message":"unauthorised"}`},
		{"a bad token asks for a refresh", "GET", []string{"Cookie", "sAccessToken=junk"}, 401, `{"message":"try refresh token"}`},
		{"a SameSite=none cookie on a POST without rid is refused", "POST", []string{"Cookie", strictCookie}, 401, `{"message":"unauthorised"}`},
		{"a SameSite=none cookie on a POST with rid passes", "POST", []string{"Cookie", strictCookie, "rid", "anti-csrf"}, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := call(tt.method, tt.headers...)
			if status != tt.status || (tt.body != "" && strings.TrimSpace(body) != tt.body) {
				t.Fatalf("got %d %q, want %d %q", status, body, tt.status, tt.body)
			}
		})
	}
	t.Run("an expired token asks for a refresh", func(t *testing.T) {
		h.Clock.Advance(time.Hour + time.Second)
		status, body := call("GET", "Authorization", "Bearer "+r.Header.Get("st-access-token"))
		if status != 401 || strings.TrimSpace(body) != `{"message":"try refresh token"}` {
			t.Fatalf("got %d %s", status, body)
		}
	})
}

func TestUpdateClaimsReissuesTheAccessTokenOfTheSameSession(t *testing.T) {
	h := coretest.New(t)
	h.PutTenantJSON("acme", `{"mfa":{"requirement":["totp"]}}`)
	r := h.SignUp("/acme", "a@example.com", "secret123")
	sess, err := h.Srv.Sessions.Verify(context.Background(), r.Header.Get("st-access-token"), session.VerifyOptions{CheckDatabase: true})
	if err != nil {
		t.Fatal(err)
	}
	claim, _ := sess.MFA()
	if claim.V || claim.C[mfa.EmailPassword] == 0 {
		t.Fatalf("initial claim = %+v", claim)
	}
	h.Clock.Advance(time.Minute)
	updated, tokens, err := h.Srv.Sessions.UpdateClaims(context.Background(), sess.Handle, func(c map[string]json.RawMessage) error {
		cl := mfa.Claim{C: mfa.Completed{mfa.EmailPassword: claim.C[mfa.EmailPassword], mfa.TOTP: h.Clock.Now().Unix()}, V: true}
		b, err := json.Marshal(cl)
		c[mfa.ClaimKey] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if updated.Handle != sess.Handle || tokens.RefreshToken != "" {
		t.Fatalf("UpdateClaims made a new session or refresh token: %+v", tokens)
	}
	again, err := h.Srv.Sessions.Verify(context.Background(), tokens.AccessToken, session.VerifyOptions{CheckDatabase: true})
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := again.MFA(); !c.V || c.C[mfa.TOTP] != h.Clock.Now().Unix() {
		t.Fatalf("updated claim = %+v", c)
	}
	// The claim is stored with the session: a refresh keeps it.
	r2 := h.Do("POST", "/auth/session/refresh", nil, "Authorization", "Bearer "+r.Header.Get("st-refresh-token"))
	if p := coretest.PayloadOf(t, r2.Header.Get("st-access-token")); p["st-mfa"].(map[string]any)["v"] != true {
		t.Fatalf("refresh lost the updated claim: %v", p["st-mfa"])
	}
	if _, _, err := h.Srv.Sessions.UpdateClaims(context.Background(), sess.Handle, func(c map[string]json.RawMessage) error {
		c["sub"] = json.RawMessage(`"someone-else"`)
		return nil
	}); !errors.Is(err, session.ErrReservedClaim) {
		t.Fatalf("overwriting sub through claims = %v, want ErrReservedClaim", err)
	}
}

func TestJWKSRevalidatesWithItsETag(t *testing.T) {
	h := coretest.New(t)
	r := h.Do("GET", "/auth/jwt/jwks.json", nil)
	etag := r.Header.Get("ETag")
	if r.Status != 200 || etag == "" || r.Header.Get("Cache-Control") != "max-age=60, must-revalidate" {
		t.Fatalf("jwks = %d %v", r.Status, r.Header)
	}
	if again := h.Do("GET", "/auth/jwt/jwks.json", nil, "If-None-Match", etag); again.Status != 304 || len(again.Body) != 0 {
		t.Fatalf("revalidation = %d %q", again.Status, again.Body)
	}
	h.Clock.Advance(8 * 24 * time.Hour)
	if err := h.Srv.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if rotated := h.Do("GET", "/auth/jwt/jwks.json", nil, "If-None-Match", etag); rotated.Status != 200 || rotated.Header.Get("ETag") == etag {
		t.Fatalf("after rotation = %d, ETag %q", rotated.Status, rotated.Header.Get("ETag"))
	}
}

// TestAStolenRefreshTokenEndsTheSessionWhoeverUsesItFirst plays a thief who copied a
// refresh token against its owner, in every order: whichever of the two uses a token of the
// session after the other has moved on, the session is revoked for both and the refresh is
// answered 401 "token theft detected".
func TestAStolenRefreshTokenEndsTheSessionWhoeverUsesItFirst(t *testing.T) {
	refresh := func(h *coretest.Core, token string) coretest.Response {
		return h.Do("POST", "/auth/session/refresh", nil, "Authorization", "Bearer "+token)
	}
	child := func(t *testing.T, r coretest.Response) string {
		t.Helper()
		if r.Status != 200 {
			t.Fatalf("refresh = %d %s", r.Status, r.Body)
		}
		return r.Header.Get("st-refresh-token")
	}
	tests := []struct {
		name string
		// play runs the interleaving from the stolen token and returns the refresh answers
		// that must be theft and the tokens that must be refused afterwards.
		play func(t *testing.T, h *coretest.Core, stolen string) (theft []coretest.Response, dead []string)
	}{
		{"the victim moves on first and the thief replays the stolen token", func(t *testing.T, h *coretest.Core, stolen string) ([]coretest.Response, []string) {
			v := child(t, refresh(h, stolen))
			v2 := child(t, refresh(h, v))
			return []coretest.Response{refresh(h, stolen)}, []string{v2}
		}},
		{"the thief mints a child first and uses it before the victim uses hers", func(t *testing.T, h *coretest.Core, stolen string) ([]coretest.Response, []string) {
			v := child(t, refresh(h, stolen))
			th := child(t, refresh(h, stolen))
			th2 := child(t, refresh(h, th))
			return []coretest.Response{refresh(h, v)}, []string{th2}
		}},
		{"the thief moves on first and the victim refreshes with her old token", func(t *testing.T, h *coretest.Core, stolen string) ([]coretest.Response, []string) {
			th := child(t, refresh(h, stolen))
			th2 := child(t, refresh(h, th))
			return []coretest.Response{refresh(h, stolen)}, []string{th2}
		}},
		{"both use a child of the stolen token at the same moment", func(t *testing.T, h *coretest.Core, stolen string) ([]coretest.Response, []string) {
			v, th := child(t, refresh(h, stolen)), child(t, refresh(h, stolen))
			answers := make(chan coretest.Response, 2)
			for _, tok := range []string{v, th} {
				go func() { answers <- refresh(h, tok) }()
			}
			a, b := <-answers, <-answers
			if a.Status == 200 {
				return []coretest.Response{b}, []string{a.Header.Get("st-refresh-token")}
			}
			return []coretest.Response{a}, []string{b.Header.Get("st-refresh-token")}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := coretest.New(t)
			r := h.SignUp("", "victim@example.com", "secret123")
			stolen := r.Header.Get("st-refresh-token")
			access := r.Header.Get("st-access-token")
			theft, dead := tt.play(t, h, stolen)
			for _, a := range theft {
				if a.Status != 401 || a.JSON(t)["message"] != "token theft detected" {
					t.Fatalf("the second holder's refresh = %d %s, want 401 token theft detected", a.Status, a.Body)
				}
			}
			for _, tok := range dead {
				if a := refresh(h, tok); a.Status != 401 || a.JSON(t)["message"] != "unauthorised" {
					t.Fatalf("a token of the revoked session refreshed: %d %s", a.Status, a.Body)
				}
			}
			if _, err := h.Srv.Sessions.Verify(context.Background(), access, session.VerifyOptions{CheckDatabase: true}); !errors.Is(err, session.ErrUnauthorised) {
				t.Fatalf("the stolen session still verifies against the store: %v", err)
			}
			if n := len(h.Do("GET", "/auth/public/enforcement", nil).JSON(t)["revokedSessions"].([]any)); n != 1 {
				t.Fatalf("the enforcement feed lists %d revoked sessions, want 1", n)
			}
		})
	}
}

func TestATokenPresentedAgainAndAgainMintsABoundedNumberOfChildren(t *testing.T) {
	h := coretest.New(t)
	token := h.SignUp("", "a@example.com", "secret123").Header.Get("st-refresh-token")
	var last coretest.Response
	for range store.MaxUnusedRefreshChildren + 1 {
		last = h.Do("POST", "/auth/session/refresh", nil, "Authorization", "Bearer "+token)
	}
	if last.Status != 401 || last.JSON(t)["message"] != "unauthorised" {
		t.Fatalf("refresh number %d = %d %s, want 401 unauthorised", store.MaxUnusedRefreshChildren+1, last.Status, last.Body)
	}
}

func TestATokenFromAnotherIssuerIsUnauthorisedNotTryRefresh(t *testing.T) {
	// Two replicas on one database with different issuers (each defaults to its own address):
	// b knows a's keys, so only the issuer is wrong, and a refresh cannot fix that.
	a := coretest.New(t)
	b := coretest.StartOn(t, a.Clock, a.Database)
	access := a.SignUp("", "a@example.com", "secret123").Header.Get("st-access-token")
	_, err := b.Srv.Sessions.Verify(context.Background(), access, session.VerifyOptions{})
	if !errors.Is(err, session.ErrUnauthorised) || errors.Is(err, session.ErrTryRefreshToken) {
		t.Fatalf("a token of another issuer = %v, want unauthorised", err)
	}
}
