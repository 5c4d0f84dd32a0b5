package proxy_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/sidecar/fakecore"
	"github.com/twofold-dev/twofold/sidecar/proxy"
)

var b64 = base64.RawURLEncoding

// payload is a valid token payload for forging attacks.
func (e *env) payload() fakecore.Token {
	now := e.clock.Now().Unix()
	return fakecore.Token{
		Sub: "user-1", TenantID: testTenant, SessionHandle: "handle-1", Iss: testIssuer,
		Iat: now, Exp: now + 3600, MFA: mfa.Claim{C: mfa.Completed{mfa.EmailPassword: now}, V: true},
	}
}

func hs256WithPublicKey(t *testing.T, e *env) string {
	der, err := x509.MarshalPKIXPublicKey(&e.core.SigningKey().Private.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	in := fakecore.SigningInput(map[string]any{"alg": "HS256", "typ": "JWT", "kid": "k1"}, e.payload())
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(in))
	return in + "." + b64.EncodeToString(m.Sum(nil))
}

func TestRequestsAreDecided(t *testing.T) {
	tests := []struct {
		name   string
		req    func(t *testing.T, e *env) *http.Request
		status int
		body   string // exact, when set
		reason string // in the decision log, when set
		check  func(t *testing.T, e *env, r response)
	}{
		{
			name: "a valid session in the cookie reaches the app with identity headers",
			req: func(t *testing.T, e *env) *http.Request {
				return e.request("GET", "/orders", "Cookie", "theme=dark; sAccessToken="+e.token())
			},
			status: 200,
			check: func(t *testing.T, e *env, r response) {
				h := r.seen(t).Headers
				want := map[string]string{"X-Twofold-User-Id": "user-1", "X-Twofold-Tenant-Id": testTenant, "X-Twofold-Session": "handle-1", "X-Twofold-Factors": "emailpassword"}
				for k, v := range want {
					if got := h[k]; !slices.Equal(got, []string{v}) {
						t.Errorf("%s = %q, want %q", k, got, v)
					}
				}
				if h.Get("X-Forwarded-For") == "" {
					t.Error("X-Forwarded-For not set")
				}
			},
		},
		{
			name: "completed factors are forwarded sorted and comma-separated",
			req: func(t *testing.T, e *env) *http.Request {
				now := e.clock.Now().Unix()
				tok := e.token(func(tk *fakecore.Token) {
					tk.MFA.C = mfa.Completed{mfa.TOTP: now, mfa.EmailPassword: now, mfa.OTPEmail: now}
				})
				return e.request("GET", "/", bearer(tok)...)
			},
			status: 200,
			check: func(t *testing.T, e *env, r response) {
				if got := r.seen(t).Headers.Get("X-Twofold-Factors"); got != "emailpassword,otp-email,totp" {
					t.Errorf("factors %q", got)
				}
			},
		},
		{
			name: "spoofed X-Twofold headers are stripped and replaced by the verified identity",
			req: func(t *testing.T, e *env) *http.Request {
				return e.request("GET", "/orders", append(bearer(e.token()),
					"X-Twofold-User-Id", "admin", "X-Twofold-Factors", "totp", "X-Twofold-Role", "root",
					"Connection", "X-Twofold-User-Id")...)
			},
			status: 200,
			check: func(t *testing.T, e *env, r response) {
				h := r.seen(t).Headers
				if got := h["X-Twofold-User-Id"]; !slices.Equal(got, []string{"user-1"}) {
					t.Errorf("user id %q", got)
				}
				if got := h["X-Twofold-Factors"]; !slices.Equal(got, []string{"emailpassword"}) {
					t.Errorf("factors %q", got)
				}
				if _, ok := h["X-Twofold-Role"]; ok {
					t.Error("unknown X-Twofold-Role reached the app")
				}
			},
		},
		{
			name: "a bearer token wins over the cookie",
			req: func(t *testing.T, e *env) *http.Request {
				other := e.token(func(tk *fakecore.Token) { tk.Sub = "user-2"; tk.SessionHandle = "handle-2" })
				return e.request("GET", "/", append(bearer(other), "Cookie", "sAccessToken="+e.token())...)
			},
			status: 200,
			check: func(t *testing.T, e *env, r response) {
				if got := r.seen(t).Headers.Get("X-Twofold-User-Id"); got != "user-2" {
					t.Errorf("user %q, want the bearer token's user-2", got)
				}
			},
		},
		{
			name:   "a request without a token is refused as unauthorised",
			reason: "no access token",
			req:    func(t *testing.T, e *env) *http.Request { return e.request("GET", "/orders") },
			status: 401, body: wantUnauthorised,
		},
		{
			name:   "a token that is not a JWT is refused",
			reason: "malformed token",
			req:    func(t *testing.T, e *env) *http.Request { return e.request("GET", "/", bearer("not.a-jwt")...) },
			status: 401, body: wantUnauthorised,
		},
		{
			name:   "a token whose payload was changed after signing is refused",
			reason: "bad signature",
			req: func(t *testing.T, e *env) *http.Request {
				parts := strings.Split(e.token(), ".")
				p := e.payload()
				p.Sub = "admin"
				forged := strings.Split(fakecore.SigningInput(map[string]any{}, p), ".")[1]
				return e.request("GET", "/", bearer(parts[0]+"."+forged+"."+parts[2])...)
			},
			status: 401, body: wantUnauthorised,
		},
		{
			name:   "a token signed by another key under the core's kid is refused",
			reason: "bad signature",
			req: func(t *testing.T, e *env) *http.Request {
				k, err := fakecore.NewKey("k1")
				if err != nil {
					t.Fatal(err)
				}
				return e.request("GET", "/", bearer(fakecore.Sign(k.Private, "k1", e.payload()))...)
			},
			status: 401, body: wantUnauthorised,
		},
		{
			name:   "a token signed by an unknown key is refused",
			reason: "unknown signing key",
			req: func(t *testing.T, e *env) *http.Request {
				e.clock.Advance(proxy.DefaultJWKSMinRefetch) // the kid is looked up, and not found
				k, err := fakecore.NewKey("attacker")
				if err != nil {
					t.Fatal(err)
				}
				return e.request("GET", "/", bearer(fakecore.Sign(k.Private, k.Kid, e.payload()))...)
			},
			status: 401, body: wantUnauthorised,
		},
		{
			name:   "a token with alg none is refused",
			reason: "algorithm not allowed",
			req: func(t *testing.T, e *env) *http.Request {
				in := fakecore.SigningInput(map[string]any{"alg": "none", "typ": "JWT", "kid": "k1"}, e.payload())
				return e.request("GET", "/", bearer(in+".")...)
			},
			status: 401, body: wantUnauthorised,
		},
		{
			name:   "a token with alg None and an RS256 signature is refused",
			reason: "algorithm not allowed",
			req: func(t *testing.T, e *env) *http.Request {
				parts := strings.Split(e.token(), ".")
				h := b64.EncodeToString([]byte(`{"alg":"None","kid":"k1"}`))
				return e.request("GET", "/", bearer(h+"."+parts[1]+"."+parts[2])...)
			},
			status: 401, body: wantUnauthorised,
		},
		{
			name:   "a token signed with HS256 using the public key as the HMAC secret is refused",
			reason: "algorithm not allowed",
			req: func(t *testing.T, e *env) *http.Request {
				return e.request("GET", "/", bearer(hs256WithPublicKey(t, e))...)
			},
			status: 401, body: wantUnauthorised,
		},
		{
			name:   "a token claiming PS256 over a valid RS256 signature is refused",
			reason: "algorithm not allowed",
			req: func(t *testing.T, e *env) *http.Request {
				parts := strings.Split(e.token(), ".")
				h := b64.EncodeToString([]byte(`{"alg":"PS256","kid":"k1"}`))
				return e.request("GET", "/", bearer(h+"."+parts[1]+"."+parts[2])...)
			},
			status: 401, body: wantUnauthorised,
		},
		{
			name:   "a token without a kid is refused",
			reason: "unknown signing key: no kid",
			req: func(t *testing.T, e *env) *http.Request {
				parts := strings.Split(e.token(), ".")
				h := b64.EncodeToString([]byte(`{"alg":"RS256","typ":"JWT"}`))
				return e.request("GET", "/", bearer(h+"."+parts[1]+"."+parts[2])...)
			},
			status: 401, body: wantUnauthorised,
		},
		{
			name:   "an expired token asks the client to refresh",
			reason: "token expired",
			req: func(t *testing.T, e *env) *http.Request {
				return e.request("GET", "/", bearer(e.token(func(tk *fakecore.Token) { tk.Exp = e.clock.Now().Unix() - 1 }))...)
			},
			status: 401, body: wantTryRefresh,
		},
		{
			name:   "an expired token with a forged signature is unauthorised, not refreshable",
			reason: "bad signature",
			req: func(t *testing.T, e *env) *http.Request {
				k, err := fakecore.NewKey("k1")
				if err != nil {
					t.Fatal(err)
				}
				p := e.payload()
				p.Exp = e.clock.Now().Unix() - 1
				return e.request("GET", "/", bearer(fakecore.Sign(k.Private, "k1", p))...)
			},
			status: 401, body: wantUnauthorised,
		},
		{
			name:   "a token of another issuer is refused",
			reason: "wrong issuer",
			req: func(t *testing.T, e *env) *http.Request {
				return e.request("GET", "/", bearer(e.token(func(tk *fakecore.Token) { tk.Iss = "https://evil.test/auth" }))...)
			},
			status: 401, body: wantUnauthorised,
		},
		{
			name:   "a token of another tenant is refused",
			reason: "wrong tenant",
			req: func(t *testing.T, e *env) *http.Request {
				return e.request("GET", "/", bearer(e.token(func(tk *fakecore.Token) { tk.TenantID = "public" }))...)
			},
			status: 401, body: wantUnauthorised,
		},
		{
			name:   "a session whose st-mfa.v is false gets the exact invalid-claim body",
			reason: "st-mfa.v is false",
			req: func(t *testing.T, e *env) *http.Request {
				return e.request("GET", "/", bearer(e.token(func(tk *fakecore.Token) { tk.MFA.V = false }))...)
			},
			status: 403, body: wantInvalidClaim,
		},
		{
			name: "a token without an st-mfa claim is treated as MFA incomplete",
			req: func(t *testing.T, e *env) *http.Request {
				in := fakecore.SigningInput(map[string]any{"alg": "RS256", "kid": "k1"}, map[string]any{
					"sub": "user-1", "tId": testTenant, "sessionHandle": "h", "iss": testIssuer, "exp": e.clock.Now().Unix() + 60,
				})
				return e.request("GET", "/", bearer(fakecore.SignInput(e.core.SigningKey().Private, in))...)
			},
			status: 403, body: wantInvalidClaim,
		},
		{
			name:   "a public path passes without a token",
			req:    func(t *testing.T, e *env) *http.Request { return e.request("GET", "/healthz") },
			status: 200,
		},
		{
			name:   "a public prefix ending in a slash covers what is below it",
			req:    func(t *testing.T, e *env) *http.Request { return e.request("GET", "/static/app.js") },
			status: 200,
		},
		{
			name: "a public path forwards no identity, spoofed or real",
			req: func(t *testing.T, e *env) *http.Request {
				return e.request("GET", "/healthz", append(bearer(e.token()), "X-Twofold-User-Id", "admin")...)
			},
			status: 200,
			check: func(t *testing.T, e *env, r response) {
				for k := range r.seen(t).Headers {
					if strings.HasPrefix(k, "X-Twofold-") {
						t.Errorf("%s reached the app on a public path", k)
					}
				}
			},
		},
		{
			name:   "a public path does not cover a longer sibling",
			req:    func(t *testing.T, e *env) *http.Request { return e.request("GET", "/healthzadmin") },
			status: 401, body: wantUnauthorised,
		},
		{
			name: "dot segments cannot turn a public prefix into a protected path",
			req: func(t *testing.T, e *env) *http.Request {
				req := e.request("GET", "/")
				req.URL.Opaque = "/healthz/../admin"
				return req
			},
			status: 401, body: wantUnauthorised,
		},
		{
			name: "an encoded slash cannot turn a public prefix into a protected path",
			req: func(t *testing.T, e *env) *http.Request {
				req := e.request("GET", "/")
				req.URL.Opaque = "/healthz%2F..%2Fadmin"
				return req
			},
			status: 401, body: wantUnauthorised,
		},
		{
			name: "a browser without a session is redirected to sign-in with its return path",
			req: func(t *testing.T, e *env) *http.Request {
				return e.request("GET", "/orders?page=2", "Accept", "text/html,*/*")
			},
			status: 302,
			check: func(t *testing.T, e *env, r response) {
				if got, want := r.header.Get("Location"), "/auth/signin?redirectToPath="+url.QueryEscape("/orders?page=2"); got != want {
					t.Errorf("Location %q, want %q", got, want)
				}
			},
		},
		{
			name: "a browser with MFA incomplete is redirected to the MFA page",
			req: func(t *testing.T, e *env) *http.Request {
				return e.request("GET", "/orders", "Accept", "text/html", "Cookie", "sAccessToken="+e.token(func(tk *fakecore.Token) { tk.MFA.V = false }))
			},
			status: 302,
			check: func(t *testing.T, e *env, r response) {
				if got := r.header.Get("Location"); got != "/auth/mfa?redirectToPath=%2Forders" {
					t.Errorf("Location %q", got)
				}
			},
		},
		{
			name:   "a POST from a browser gets JSON, not a redirect",
			req:    func(t *testing.T, e *env) *http.Request { return e.request("POST", "/orders", "Accept", "text/html") },
			status: 401, body: wantUnauthorised,
		},
		{
			name: "requests under /auth/ go to the core with X-Twofold headers stripped",
			req: func(t *testing.T, e *env) *http.Request {
				return e.request("POST", "/auth/session/refresh", "X-Twofold-User-Id", "admin", "x-twofold-session", "s")
			},
			status: 200,
			check: func(t *testing.T, e *env, r response) {
				var got struct {
					Core           bool     `json:"core"`
					Path           string   `json:"path"`
					TwofoldHeaders []string `json:"twofoldHeaders"`
				}
				if err := json.Unmarshal([]byte(r.body), &got); err != nil {
					t.Fatal(err)
				}
				// Only the sidecar's own served-tenants header reaches the core.
				if !got.Core || got.Path != "/auth/session/refresh" || !slices.Equal(got.TwofoldHeaders, []string{contract.HeaderServedTenants}) {
					t.Errorf("core saw %+v", got)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.refresh()
			r := e.do(tc.req(t, e))
			if r.status != tc.status {
				t.Fatalf("status %d, want %d (body %s)", r.status, tc.status, r.body)
			}
			if tc.body != "" && r.body != tc.body {
				t.Errorf("body\n got %s\nwant %s", r.body, tc.body)
			}
			if tc.reason != "" && !strings.Contains(e.logs.String(), `"reason":"`+tc.reason) {
				t.Errorf("decision log lacks reason %q:\n%s", tc.reason, e.logs.String())
			}
			if tc.check != nil {
				tc.check(t, e, r)
			}
		})
	}
}

func TestPolicyTightenedInTheFeedRefusesExistingTokensOnTheNextPoll(t *testing.T) {
	e := newEnv(t)
	e.refresh()
	tok := e.token()
	if r := e.get("/", bearer(tok)...); r.status != 200 {
		t.Fatalf("before the change: %d %s", r.status, r.body)
	}
	e.refresh() // unchanged: answered 304
	if n := e.core.FeedNotModified.Load(); n != 1 {
		t.Errorf("unchanged poll: %d 304s, want 1", n)
	}
	if err := e.core.Update(func(en *contract.Enforcement) { en.MFA.Requirement = mfa.Requirement{{Factor: mfa.TOTP}} }); err != nil {
		t.Fatal(err)
	}
	e.refresh()
	r := e.get("/", bearer(tok)...)
	want := `{"message":"invalid claim","claimValidationErrors":[{"id":"st-mfa","reason":{"message":"MFA requirement for auth is not satisfied","nextFactors":["totp"]}}]}`
	if r.status != 403 || r.body != want {
		t.Fatalf("after the change: %d %s", r.status, r.body)
	}
	withTOTP := e.token(func(tk *fakecore.Token) { tk.MFA.C[mfa.TOTP] = e.clock.Now().Unix() })
	if r := e.get("/", bearer(withTOTP)...); r.status != 200 {
		t.Errorf("a session with totp: %d %s", r.status, r.body)
	}
}

func TestUserOptInEnforcementLeavesTheRequirementToTheToken(t *testing.T) {
	e := newEnv(t)
	if err := e.core.Update(func(en *contract.Enforcement) {
		en.MFA.Requirement = mfa.Requirement{{Factor: mfa.TOTP}}
		en.MFA.Enforcement = contract.EnforcementUserOptIn
	}); err != nil {
		t.Fatal(err)
	}
	e.refresh()
	if r := e.get("/", bearer(e.token())...); r.status != 200 {
		t.Errorf("opted-out user with v true: %d %s", r.status, r.body)
	}
	if r := e.get("/", bearer(e.token(func(tk *fakecore.Token) { tk.MFA.V = false }))...); r.status != 403 {
		t.Errorf("opted-in user with v false: %d %s", r.status, r.body)
	}
}

func TestRunPollsTheFeedAndAppliesChanges(t *testing.T) {
	e := newEnv(t, func(o *proxy.Options) { o.PollInterval = 10 * time.Millisecond })
	ctx := t.Context()
	go e.proxy.Run(ctx)
	eventually(t, 5*time.Second, func() bool { return e.proxy.Ready() == nil })
	tok := e.token()
	if r := e.get("/", bearer(tok)...); r.status != 200 {
		t.Fatalf("before revocation: %d %s", r.status, r.body)
	}
	eventually(t, 5*time.Second, func() bool { return e.core.FeedNotModified.Load() >= 2 })
	if err := e.core.Update(func(en *contract.Enforcement) {
		en.RevokedSessions = append(en.RevokedSessions, contract.RevokedSession{HandleHash: contract.SessionHandleHash("handle-1"), RevokedAt: e.clock.Now().Unix()})
	}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() bool { return e.get("/", bearer(tok)...).status == 401 })
}
