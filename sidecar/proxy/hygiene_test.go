package proxy_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/sidecar/fakecore"
	"github.com/twofold-dev/twofold/sidecar/proxy"
)

// spoofedIdentity are identity headers spelled the ways CGI, WSGI, Rack and some proxies
// read as X-Twofold-*: underscores for dashes, any case.
var spoofedIdentity = []string{
	"X_Twofold_User_Id", "mallory",
	"x_twofold_tenant_id", "other",
	"X-Twofold_Session", "stolen",
	"X_TWOFOLD-FACTORS", "totp,webauthn",
	"X_twofold_role", "root",
}

// identityLike returns the header names in h that a CGI-style server would read as
// X-Twofold-*.
func identityLike(h http.Header) []string {
	var names []string
	for k := range h {
		n := strings.ToLower(strings.ReplaceAll(k, "_", "-"))
		if strings.HasPrefix(n, "x-twofold-") {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	return names
}

func TestIdentityHeadersSpelledWithUnderscoresNeverReachTheApp(t *testing.T) {
	e := newEnv(t)
	e.refresh()
	tests := []struct {
		name string
		path string
		auth bool
		want []string // identity-like headers the app may see
	}{
		{
			name: "on a protected path only the verified identity reaches the app",
			path: "/orders", auth: true,
			want: []string{"X-Twofold-Factors", "X-Twofold-Session", "X-Twofold-Tenant-Id", "X-Twofold-User-Id"},
		},
		{
			name: "on a public path no identity-like header reaches the app",
			path: "/healthz",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := e.request("GET", tc.path)
			for i := 0; i < len(spoofedIdentity); i += 2 {
				// Set directly: http.Header.Set would canonicalise the spelling away.
				req.Header[spoofedIdentity[i]] = []string{spoofedIdentity[i+1]}
			}
			if tc.auth {
				req.Header.Set("Authorization", "Bearer "+e.token())
			}
			r := e.do(req)
			if r.status != 200 {
				t.Fatalf("%d %s", r.status, r.body)
			}
			h := r.seen(t).Headers
			if got := identityLike(h); !slices.Equal(got, tc.want) {
				t.Errorf("identity-like headers at the app = %q, want %q", got, tc.want)
			}
			if tc.auth && (h.Get("X-Twofold-User-Id") != "user-1" || h.Get("X-Twofold-Factors") != "emailpassword") {
				t.Errorf("identity at the app: %v", h)
			}
		})
	}
	t.Run("requests to the core carry no identity-like header either", func(t *testing.T) {
		req := e.request("GET", "/auth/signin")
		for i := 0; i < len(spoofedIdentity); i += 2 {
			req.Header[spoofedIdentity[i]] = []string{spoofedIdentity[i+1]}
		}
		if r := e.do(req); r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		// The one X-Twofold header the core receives is the sidecar's own list of the tenants
		// its origin serves, never a client's.
		h := *e.core.LastOtherHeaders.Load()
		if got := identityLike(h); !slices.Equal(got, []string{contract.HeaderServedTenants}) || h.Get(contract.HeaderServedTenants) != testTenant {
			t.Errorf("identity-like headers at the core: %q (served tenants %q)", got, h.Get(contract.HeaderServedTenants))
		}
	})
}

func TestPathTricksMeetTheRulesOfThePathTheAppReads(t *testing.T) {
	e := newEnv(t)
	if err := e.core.Update(func(en *contract.Enforcement) {
		en.MFA.Routes = []contract.Route{
			{PathPrefix: "/admin", Methods: []string{"POST"}, Requirement: mfa.Requirement{{Factor: mfa.TOTP}}},
			{PathPrefix: "/billing/", Requirement: mfa.Requirement{{Factor: mfa.TOTP}}},
		}
	}); err != nil {
		t.Fatal(err)
	}
	e.refresh()
	password := e.token()
	tests := []struct {
		name, method, rawPath string
		status                int
	}{
		{"a \";\" parameter on the rule's own path is still the rule's path", "POST", "/admin;x=1", 403},
		{"a \";\" parameter in a folder segment is still under the folder", "GET", "/billing;jsessionid=1/invoices", 403},
		{"a percent-encoded \";\" is read as a parameter too", "GET", "/billing%3Bx/invoices", 403},
		{"a double-encoded path is read as the app that decodes twice reads it", "POST", "/%2561dmin/users", 403},
		{"a lower-case method meets the rule for its upper-case name", "post", "/admin/users", 403},
		{"a lower-case head meets the rule for GET", "head", "/billing/invoices", 403},
		{"a rule for a folder covers the folder itself", "GET", "/billing", 403},
		{"a rule for a folder does not cover a longer sibling", "GET", "/billingx", 200},
		{"a rule covers the paths below it", "POST", "/admin/users", 403},
		{"a rule does not cover a longer name", "POST", "/administrator", 200},
		{"a method the rule does not name passes with the tenant requirement", "GET", "/admin;x=1", 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := e.request(tc.method, "/", bearer(password)...)
			req.URL.Opaque = tc.rawPath
			if r := e.do(req); r.status != tc.status {
				t.Fatalf("%s %s: status %d, want %d", tc.method, tc.rawPath, r.status, tc.status)
			}
		})
	}
}

func TestPathParametersAreNeverPublic(t *testing.T) {
	e := newEnv(t) // public paths /healthz and /static/
	e.refresh()
	for _, raw := range []string{"/healthz;x", "/static;x/app.js", "/%2568ealthz"} {
		req := e.request("GET", "/")
		req.URL.Opaque = raw
		if r := e.do(req); r.status != 401 {
			t.Errorf("%s without a session: %d %s, want 401", raw, r.status, r.body)
		}
	}
	if r := e.get("/static"); r.status != 200 {
		t.Errorf("the public folder /static/ itself: %d %s", r.status, r.body)
	}
}

func TestAuthRequestsWhileTheCoreIsUnreachableGetA503WithAJSONMessage(t *testing.T) {
	e := newEnv(t)
	e.refresh()
	e.coreSrv.Close()
	for _, method := range []string{"GET", "POST"} {
		r := e.do(e.request(method, "/auth/session/refresh"))
		if r.status != 503 {
			t.Fatalf("%s with the core down: %d %q, want 503", method, r.status, r.body)
		}
		if ct := r.header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q, want application/json", ct)
		}
		var body map[string]string
		if err := json.Unmarshal([]byte(r.body), &body); err != nil || body["message"] == "" {
			t.Errorf("body %q is not {\"message\":...}: %v", r.body, err)
		}
		if r.header.Get("Retry-After") == "" {
			t.Error("no Retry-After")
		}
	}
}

func TestOnlyARefreshThatCouldHelpIsAskedFor(t *testing.T) {
	attacker, err := fakecore.NewKey("not-published")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		// play returns the request to judge; it may change the core or the clock first.
		play func(t *testing.T, e *env) *http.Request
		body string
	}{
		{
			name: "an expired token of another issuer is unauthorised",
			play: func(t *testing.T, e *env) *http.Request {
				return e.request("GET", "/", bearer(e.token(func(tk *fakecore.Token) {
					tk.Iss = "https://evil.test/auth"
					tk.Exp = e.clock.Now().Unix() - 1
				}))...)
			},
			body: wantUnauthorised,
		},
		{
			name: "an expired token of another tenant is unauthorised",
			play: func(t *testing.T, e *env) *http.Request {
				return e.request("GET", "/", bearer(e.token(func(tk *fakecore.Token) {
					tk.TenantID = "public"
					tk.Exp = e.clock.Now().Unix() - 1
				}))...)
			},
			body: wantUnauthorised,
		},
		{
			name: "a cached token whose issuer the feed no longer names is unauthorised once expired",
			play: func(t *testing.T, e *env) *http.Request {
				tok := e.token()
				if r := e.get("/", bearer(tok)...); r.status != 200 {
					t.Fatalf("before the issuer changed: %d %s", r.status, r.body)
				}
				if err := e.core.Update(func(en *contract.Enforcement) { en.Issuer = "https://core.moved/auth" }); err != nil {
					t.Fatal(err)
				}
				e.refresh()
				e.clock.Advance(2 * time.Hour)
				return e.request("GET", "/", bearer(tok)...)
			},
			body: wantUnauthorised,
		},
		{
			name: "an expired token that is otherwise valid asks for a refresh",
			play: func(t *testing.T, e *env) *http.Request {
				return e.request("GET", "/", bearer(e.token(func(tk *fakecore.Token) { tk.Exp = e.clock.Now().Unix() - 1 }))...)
			},
			body: wantTryRefresh,
		},
		{
			name: "an unknown kid while the JWKS refetch is rate-limited asks for a refresh",
			play: func(t *testing.T, e *env) *http.Request {
				return e.request("GET", "/", bearer(fakecore.Sign(attacker.Private, attacker.Kid, e.payload()))...)
			},
			body: wantTryRefresh,
		},
		{
			name: "an unknown kid that a fresh JWKS does not have either is unauthorised",
			play: func(t *testing.T, e *env) *http.Request {
				e.clock.Advance(proxy.DefaultJWKSMinRefetch)
				return e.request("GET", "/", bearer(fakecore.Sign(attacker.Private, attacker.Kid, e.payload()))...)
			},
			body: wantUnauthorised,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.refresh()
			r := e.do(tc.play(t, e))
			if r.status != 401 || r.body != tc.body {
				t.Fatalf("got %d %s, want 401 %s", r.status, r.body, tc.body)
			}
		})
	}
}

func TestAConcurrentFloodOfUnknownKidsCausesOneJWKSFetch(t *testing.T) {
	e := newEnv(t, func(o *proxy.Options) { o.JWKSMinRefetch = 10 * time.Second })
	e.refresh()
	e.clock.Advance(10 * time.Second) // the start-up fetch no longer holds the next one back
	attacker, err := fakecore.NewKey("made-up")
	if err != nil {
		t.Fatal(err)
	}
	const flood = 64
	tokens := make([]string, flood)
	for i := range tokens {
		p := e.payload()
		p.SessionHandle = fmt.Sprint("h", i)
		tokens[i] = fakecore.Sign(attacker.Private, fmt.Sprint("kid-", i), p)
	}
	before := e.core.JWKSRequests.Load()
	var wg sync.WaitGroup
	statuses := make([]int, flood)
	for i, tok := range tokens {
		wg.Go(func() {
			req, err := http.NewRequest("GET", e.srv.URL+"/", nil)
			if err != nil {
				t.Error(err)
				return
			}
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		})
	}
	wg.Wait()
	for i, s := range statuses {
		if s != 401 {
			t.Fatalf("unknown kid %d: status %d", i, s)
		}
	}
	if n := e.core.JWKSRequests.Load() - before; n != 1 {
		t.Errorf("%d concurrent requests with unknown kids caused %d JWKS requests, want 1", flood, n)
	}
}

// echoUpgrades is an app that accepts any authenticated upgrade and echoes lines until the
// connection closes.
func echoUpgrades(t *testing.T) *httptest.Server {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" || r.Header.Get("X-Twofold-Session") == "" {
			http.Error(w, "want an authenticated websocket upgrade", http.StatusBadRequest)
			return
		}
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		_, _ = rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		_ = rw.Flush()
		for {
			line, err := rw.ReadString('\n')
			if err != nil {
				return
			}
			_, _ = rw.WriteString("echo " + line)
			_ = rw.Flush()
		}
	}))
	t.Cleanup(app.Close)
	return app
}

// wsConn is a client's upgraded connection through the sidecar.
type wsConn struct {
	conn net.Conn
	br   *bufio.Reader
}

func (e *env) upgrade(tok string) *wsConn {
	e.t.Helper()
	conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.Close() })
	// Bounds the waits below; the sidecar is expected to act well before.
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer %s\r\n\r\n", tok)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		e.t.Fatalf("upgrade: status %d", resp.StatusCode)
	}
	return &wsConn{conn: conn, br: br}
}

// echoes reports whether a line sent comes back.
func (c *wsConn) echoes(t *testing.T) bool {
	t.Helper()
	if _, err := fmt.Fprint(c.conn, "ping\n"); err != nil {
		return false
	}
	got, err := c.br.ReadString('\n')
	return err == nil && got == "echo ping\n"
}

// closed waits for the sidecar to close the connection: a read ends with EOF or a reset,
// not with the test's own deadline.
func (c *wsConn) closed(t *testing.T) bool {
	t.Helper()
	_, err := io.Copy(io.Discard, c.br)
	return !errors.Is(err, os.ErrDeadlineExceeded)
}

func TestUpgradedConnectionsEndWithTheirSession(t *testing.T) {
	tests := []struct {
		name string
		end  func(t *testing.T, e *env)
	}{
		{
			name: "a tunnel is closed once its access token has expired",
			end:  func(t *testing.T, e *env) { e.clock.Advance(time.Hour) },
		},
		{
			name: "a tunnel is closed once the feed lists its session as revoked",
			end: func(t *testing.T, e *env) {
				if err := e.core.Update(func(en *contract.Enforcement) {
					en.RevokedSessions = []contract.RevokedSession{{HandleHash: contract.SessionHandleHash("handle-1"), RevokedAt: e.clock.Now().Unix()}}
				}); err != nil {
					t.Fatal(err)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			app := echoUpgrades(t)
			e := newEnv(t, func(o *proxy.Options) { o.Upstream = app.URL })
			e.refresh()
			ended := e.upgrade(e.token())
			other := e.upgrade(e.token(func(tk *fakecore.Token) {
				tk.SessionHandle = "handle-2"
				tk.Exp = e.clock.Now().Unix() + 7200
			}))
			if !ended.echoes(t) || !other.echoes(t) {
				t.Fatal("the tunnels do not echo")
			}
			e.refresh() // nothing ended yet: both stay open
			if !ended.echoes(t) {
				t.Fatal("a tunnel of a live session was closed")
			}

			tc.end(t, e)
			e.refresh()
			if !ended.closed(t) {
				t.Fatal("the tunnel of the ended session is still open")
			}
			if !other.echoes(t) {
				t.Error("the tunnel of another session was closed too")
			}
			if !strings.Contains(e.logs.String(), `"msg":"Closed upgraded connection"`) {
				t.Errorf("closing not logged:\n%s", e.logs.String())
			}
		})
	}
}

func TestAnUpgradedConnectionOutlivesTheServersReadTimeout(t *testing.T) {
	app := echoUpgrades(t)
	e := newEnv(t, func(o *proxy.Options) { o.Upstream = app.URL })
	e.refresh()
	// A server whose read timeout has passed by the time any handler runs: the deadline
	// bounds reading a request, and must not end a tunnel that outlives it.
	e.srv.Close()
	e.srv = httptest.NewUnstartedServer(e.proxy)
	e.srv.Config.ReadHeaderTimeout = 10 * time.Second
	e.srv.Config.ReadTimeout = time.Nanosecond
	e.srv.Start()
	t.Cleanup(e.srv.Close)
	c := e.upgrade(e.token())
	for range 3 {
		if !c.echoes(t) {
			t.Fatal("the read timeout ended the tunnel")
		}
	}
}

func TestAuthPathsReachTheSidecarsOwnTenant(t *testing.T) {
	e := newEnv(t, func(o *proxy.Options) { o.ExtraAuthTenants = []string{"beta"} }) // tenant acme
	tests := []struct {
		name, method, path string
		status             int
		corePath           string // the path the core saw, when it was reached
	}{
		{"a tenant-less sign-up goes to the sidecar's tenant", "POST", "/auth/signup", 200, "/auth/acme/signup"},
		{"a tenant-less hosted sign-in page goes to the sidecar's tenant", "GET", "/auth/signin?tenantId=other", 200, "/auth/acme/signin"},
		{"a tenant-less passwordless code goes to the sidecar's tenant", "POST", "/auth/signinup/code/consume", 200, "/auth/acme/signinup/code/consume"},
		{"a tenant-less email verification goes to the sidecar's tenant", "POST", "/auth/user/email/verify", 200, "/auth/acme/user/email/verify"},
		{"a tenant-less passkey sign-up goes to the sidecar's tenant", "POST", "/auth/webauthn/signup", 200, "/auth/acme/webauthn/signup"},
		{"a tenant-less passkey list goes to the sidecar's tenant", "GET", "/auth/webauthn/credential/list", 200, "/auth/acme/webauthn/credential/list"},
		{"another tenant's passkey sign-in is refused", "POST", "/auth/other/webauthn/signin", 404, ""},
		{"the sidecar's own tenant segment passes unchanged", "POST", "/auth/acme/signin", 200, "/auth/acme/signin"},
		{"an extra tenant's segment passes unchanged", "POST", "/auth/beta/signup", 200, "/auth/beta/signup"},
		{"another tenant's sign-up is refused", "POST", "/auth/other/signup", 404, ""},
		{"the public tenant's sign-in is refused on another tenant's origin", "POST", "/auth/public/signin", 404, ""},
		{"another tenant's password reset is refused", "POST", "/auth/other/user/password/reset/token", 404, ""},
		{"session refresh is not tenant-scoped", "POST", "/auth/session/refresh", 200, "/auth/session/refresh"},
		{"the JWKS is not tenant-scoped", "GET", "/auth/jwt/jwks.json", 200, ""},
		{"the MFA endpoints are not tenant-scoped", "PUT", "/auth/mfa/info", 200, "/auth/mfa/info"},
		{"the user's MFA settings are not mistaken for a tenant", "GET", "/auth/user/mfa", 200, "/auth/user/mfa"},
		{"the hosted UI's assets are not tenant-scoped", "GET", "/auth/ui/static/app.css", 200, "/auth/ui/static/app.css"},
		{"another tenant's enforcement feed is not a sign-in path", "GET", "/auth/other/enforcement", 200, "/auth/other/enforcement"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := e.core.OtherRequests.Load()
			r := e.do(e.request(tc.method, tc.path))
			if r.status != tc.status {
				t.Fatalf("status %d, want %d (%s)", r.status, tc.status, r.body)
			}
			if tc.status == 404 {
				var body map[string]string
				if err := json.Unmarshal([]byte(r.body), &body); err != nil || !strings.Contains(body["message"], "acme") {
					t.Errorf("refusal body %q, want a JSON message naming the served tenant", r.body)
				}
				if n := e.core.OtherRequests.Load(); n != before {
					t.Error("the refused request reached the core")
				}
				return
			}
			if tc.corePath != "" {
				var got struct {
					Path string `json:"path"`
				}
				if err := json.Unmarshal([]byte(r.body), &got); err != nil || got.Path != tc.corePath {
					t.Errorf("the core saw %s, want path %s", r.body, tc.corePath)
				}
			}
		})
	}
}

func TestAFeedOfAnotherVersionOrWithoutHashesIsRefusedAndTheLastOneKept(t *testing.T) {
	tests := []struct {
		name   string
		change func(en *contract.Enforcement)
		want   string
	}{
		{"a version 1 feed of an older core is refused", func(en *contract.Enforcement) { en.V = 1 }, "version 1"},
		{"a revoked session without a hash is refused", func(en *contract.Enforcement) {
			en.RevokedSessions = []contract.RevokedSession{{RevokedAt: 1}}
		}, "no handleHash"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.revokeInFeed("handle-1")
			if err := e.core.Update(tc.change); err != nil {
				t.Fatal(err)
			}
			if err := e.proxy.Refresh(t.Context()); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Refresh: %v, want an error mentioning %q", err, tc.want)
			}
			if r := e.get("/", bearer(e.token())...); r.status != 401 {
				t.Errorf("the revocation of the last good feed no longer holds: %d %s", r.status, r.body)
			}
		})
	}
}

func TestAnIncrementalAnswerTheSidecarCannotApplyIsRefusedAndEverythingAskedForAgain(t *testing.T) {
	tests := []struct {
		name   string
		answer string
		want   string
	}{
		{"an answer for another tenant", `{"v":3,"tenantId":"other","configVersion":2,"cursor":5,"full":false,"revokedSessions":[]}`, `tenant "other"`},
		{"changes without the policy of a version the sidecar does not hold", `{"v":3,"tenantId":"acme","configVersion":9,"cursor":5,"full":false,"revokedSessions":[]}`, "no policy for configuration version 9"},
		{"a revoked session without a hash", `{"v":3,"tenantId":"acme","configVersion":2,"cursor":5,"full":false,"revokedSessions":[{"revokedAt":1}]}`, "no handleHash"},
		{"a negative cursor", `{"v":3,"tenantId":"acme","configVersion":2,"cursor":-1,"full":false,"revokedSessions":[]}`, "negative revocation cursor"},
		{"a version this sidecar does not know", `{"v":4,"tenantId":"acme"}`, "version 4"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.revokeInFeed("handle-1")
			e.core.SetFeedAnswer([]byte(tc.answer))
			if err := e.proxy.Refresh(t.Context()); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Refresh: %v, want an error mentioning %q", err, tc.want)
			}
			if r := e.get("/", bearer(e.token())...); r.status != 401 {
				t.Errorf("the revocation of the last good feed no longer holds: %d %s", r.status, r.body)
			}
			e.core.SetFeedAnswer(nil)
			e.refresh()
			if q := *e.core.LastFeedQuery.Load(); q != "v=3&since=0" {
				t.Errorf("after the refused answer the sidecar asked with %q, want everything again (v=3&since=0)", q)
			}
		})
	}
}

// revokeInFeed lists the session handle as revoked in the fake core's feed and has the sidecar
// take it.
func (e *env) revokeInFeed(handle string) {
	e.t.Helper()
	if err := e.core.Update(func(en *contract.Enforcement) {
		en.RevokedSessions = []contract.RevokedSession{{HandleHash: contract.SessionHandleHash(handle), RevokedAt: 1}}
	}); err != nil {
		e.t.Fatal(err)
	}
	e.refresh()
}
