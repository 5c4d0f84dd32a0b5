package proxy_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/sidecar/fakecore"
	"github.com/twofold-dev/twofold/sidecar/proxy"
)

func TestMaxFactorAgeRefusesFactorsThatGrewOld(t *testing.T) {
	e := newEnv(t)
	if err := e.core.Update(func(en *contract.Enforcement) {
		en.MFA.Requirement = mfa.Requirement{{Factor: mfa.TOTP}}
		en.MFA.MaxFactorAgeSeconds = 300
	}); err != nil {
		t.Fatal(err)
	}
	e.refresh()
	tok := e.token(func(tk *fakecore.Token) { tk.MFA.C[mfa.TOTP] = e.clock.Now().Unix() })
	if r := e.get("/", bearer(tok)...); r.status != 200 {
		t.Fatalf("fresh totp: %d %s", r.status, r.body)
	}
	e.clock.Advance(301 * time.Second)
	r := e.get("/", bearer(tok)...)
	if r.status != 403 || !strings.Contains(r.body, `"nextFactors":["totp"]`) {
		t.Fatalf("totp 301 s old: %d %s", r.status, r.body)
	}
	if !strings.Contains(e.logs.String(), "older than the maximum factor age") {
		t.Errorf("log does not say the factor is too old:\n%s", e.logs.String())
	}
}

func TestStepUpRulesApplyByLongestPrefixAndMethod(t *testing.T) {
	e := newEnv(t)
	if err := e.core.Update(func(en *contract.Enforcement) {
		en.MFA.Routes = []contract.Route{
			{PathPrefix: "/admin", Methods: []string{"post", "DELETE"}, Requirement: mfa.Requirement{{Factor: mfa.TOTP}}, MaxFactorAgeSeconds: 300},
			{PathPrefix: "/admin/status", Public: true},
			{PathPrefix: "/admin/keys", Requirement: mfa.Requirement{{AllOfInAnyOrder: []string{mfa.TOTP, mfa.OTPEmail}}}},
		}
	}); err != nil {
		t.Fatal(err)
	}
	e.refresh()
	now := e.clock.Now().Unix()
	password := e.token()
	totp := e.token(func(tk *fakecore.Token) { tk.MFA.C[mfa.TOTP] = now })
	oldTOTP := e.token(func(tk *fakecore.Token) { tk.MFA.C[mfa.TOTP] = now - 600 })
	both := e.token(func(tk *fakecore.Token) { tk.MFA.C[mfa.TOTP] = now; tk.MFA.C[mfa.OTPEmail] = now })
	tests := []struct {
		name, method, path, token string
		status                    int
		next                      string
	}{
		{"a GET under a POST-only rule needs only the tenant requirement", "GET", "/admin/users", password, 200, ""},
		{"a POST under the rule needs totp", "POST", "/admin/users", password, 403, `["totp"]`},
		{"a DELETE on the prefix itself needs totp", "DELETE", "/admin", password, 403, `["totp"]`},
		{"a POST with a fresh totp passes", "POST", "/admin/users", totp, 200, ""},
		{"a POST with a totp older than the rule's max age is refused", "POST", "/admin/users", oldTOTP, 403, `["totp"]`},
		{"a POST to a longer sibling path is not covered by the rule", "POST", "/administrator", password, 200, ""},
		{"the longest prefix wins: a public rule below a step-up rule", "POST", "/admin/status", "", 200, ""},
		{"the longest prefix wins: a stricter rule for every method", "GET", "/admin/keys/1", totp, 403, `["otp-email"]`},
		{"the stricter rule is met with both factors", "GET", "/admin/keys/1", both, 200, ""},
		{"dot segments are resolved before matching", "POST", "/public/../admin/x", password, 403, `["totp"]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := e.request(tc.method, "/")
			req.URL.Opaque = tc.path
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			r := e.do(req)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d (%s)", r.status, tc.status, r.body)
			}
			if tc.next != "" && !strings.Contains(r.body, `"nextFactors":`+tc.next) {
				t.Errorf("body %s lacks nextFactors %s", r.body, tc.next)
			}
		})
	}
}

func TestRevokedSessionIsRefusedOnceTheFeedListsIt(t *testing.T) {
	e := newEnv(t)
	e.refresh()
	tok := e.token()
	if r := e.get("/", bearer(tok)...); r.status != 200 {
		t.Fatalf("before revocation: %d %s", r.status, r.body)
	}
	if err := e.core.Update(func(en *contract.Enforcement) {
		en.RevokedSessions = []contract.RevokedSession{{HandleHash: contract.SessionHandleHash("handle-1"), RevokedAt: e.clock.Now().Unix()}}
	}); err != nil {
		t.Fatal(err)
	}
	e.refresh()
	if r := e.get("/", bearer(tok)...); r.status != 401 || r.body != wantUnauthorised {
		t.Fatalf("after revocation: %d %s", r.status, r.body)
	}
	other := e.token(func(tk *fakecore.Token) { tk.SessionHandle = "handle-2" })
	if r := e.get("/", bearer(other)...); r.status != 200 {
		t.Errorf("another session of the user: %d %s", r.status, r.body)
	}
	if !strings.Contains(e.logs.String(), `"outcome":"revoked"`) || !strings.Contains(e.logs.String(), `"session":"handle-1"`) {
		t.Errorf("revocation not logged with the handle:\n%s", e.logs.String())
	}
}

func TestCoreDownAfterKeysWereFetchedKeepsServing(t *testing.T) {
	e := newEnv(t)
	e.refresh()
	tok := e.token()
	if r := e.get("/", bearer(tok)...); r.status != 200 {
		t.Fatalf("core up: %d %s", r.status, r.body)
	}
	e.coreSrv.Close()
	if err := e.proxy.Refresh(context.Background()); err == nil {
		t.Fatal("Refresh against a closed core succeeded")
	}
	// A token never seen before still verifies on the cached keys.
	fresh := e.token(func(tk *fakecore.Token) { tk.SessionHandle = "handle-9" })
	for _, tk := range []string{tok, fresh} {
		if r := e.get("/", bearer(tk)...); r.status != 200 {
			t.Errorf("core down: %d %s", r.status, r.body)
		}
	}
	if err := e.proxy.Ready(); err != nil {
		t.Errorf("not ready on cached keys and feed: %v", err)
	}
}

func TestNeverHavingKeysRefusesEveryProtectedRequest(t *testing.T) {
	e := newEnv(t)
	e.core.SetDown(true)
	if err := e.proxy.Refresh(context.Background()); err == nil {
		t.Fatal("Refresh against a down core succeeded")
	}
	for _, path := range []string{"/", "/orders", "/admin"} {
		r := e.get(path, bearer(e.token())...)
		if r.status != 503 || r.body != `{"message":"authentication unavailable"}` {
			t.Errorf("%s: %d %s, want 503", path, r.status, r.body)
		}
		if r := e.get(path, "Accept", "text/html"); r.status != 503 {
			t.Errorf("%s from a browser: %d, want 503 (no redirect loop)", path, r.status)
		}
	}
	if r := e.get("/healthz"); r.status != 200 {
		t.Errorf("public path while the core was never reached: %d", r.status)
	}
	if err := e.proxy.Ready(); err == nil {
		t.Error("ready without keys")
	}
}

func TestFeedWithoutKeysStillRefuses(t *testing.T) {
	e := newEnv(t)
	// The JWKS fails, the feed works: no keys, so nothing protected is served.
	e.core.SetKeys() // an empty JWKS is not a usable key set
	if err := e.proxy.Refresh(context.Background()); err == nil {
		t.Fatal("Refresh with an empty JWKS succeeded")
	}
	if r := e.get("/", bearer("x.y.z")...); r.status != 503 {
		t.Errorf("%d %s, want 503", r.status, r.body)
	}
}

func TestUnknownKidRefetchesTheJWKSAtMostOncePerInterval(t *testing.T) {
	e := newEnv(t, func(o *proxy.Options) { o.JWKSMinRefetch = 10 * time.Second })
	e.refresh()
	if n := e.core.JWKSRequests.Load(); n != 1 {
		t.Fatalf("JWKS requests after start-up: %d", n)
	}
	// The start-up fetch counts as the last attempt.
	e.clock.Advance(10 * time.Second)
	attacker, err := fakecore.NewKey("made-up")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		p := e.payload()
		p.SessionHandle = fmt.Sprint("h", i)
		if r := e.get("/", bearer(fakecore.Sign(attacker.Private, fmt.Sprint("kid-", i), p))...); r.status != 401 {
			t.Fatalf("unknown kid: %d", r.status)
		}
	}
	if n := e.core.JWKSRequests.Load(); n != 2 {
		t.Errorf("20 unknown kids within the interval caused %d JWKS requests, want 1 refetch (2 total)", n)
	}

	// The core rotates to a new key. Within the interval a token with the new kid is
	// refused; after it, the first such token triggers a refetch and passes.
	k2, err := fakecore.NewKey("k2")
	if err != nil {
		t.Fatal(err)
	}
	e.core.SetKeys(k2, e.core.SigningKey())
	rotated := e.token()
	if r := e.get("/", bearer(rotated)...); r.status != 401 {
		t.Errorf("new kid within the rate limit: %d", r.status)
	}
	e.clock.Advance(10 * time.Second)
	if r := e.get("/", bearer(rotated)...); r.status != 200 {
		t.Errorf("new kid after the rate limit: %d %s", r.status, r.body)
	}
	if n := e.core.JWKSRequests.Load(); n != 3 {
		t.Errorf("JWKS requests: %d, want 3", n)
	}
}

func TestAKeyRemovedFromTheJWKSNoLongerVerifiesCachedTokens(t *testing.T) {
	e := newEnv(t)
	e.refresh()
	old := e.token()
	if r := e.get("/", bearer(old)...); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	k2, err := fakecore.NewKey("k2")
	if err != nil {
		t.Fatal(err)
	}
	e.core.SetKeys(k2)
	if err := e.proxy.RefreshKeys(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r := e.get("/", bearer(old)...); r.status != 401 {
		t.Errorf("token of a retired key: %d", r.status)
	}
}

func TestBrowserReturnPathsCannotRedirectOffTheOrigin(t *testing.T) {
	e := newEnv(t)
	e.refresh()
	attempts := []struct{ name, opaque, want string }{
		{"a plain path is kept", "/orders/7?tab=items", "/orders/7?tab=items"},
		{"a scheme-relative URL falls back to the root", "//evil.example/x", "/"},
		{"a backslash authority falls back to the root", "/\\evil.example", "/"},
		{"an encoded slash pair falls back to the root", "/%2F%2Fevil.example", "/"},
		{"a double-encoded slash pair falls back to the root", "/%252F%252Fevil.example", "/"},
		{"an encoded backslash falls back to the root", "/%5Cevil.example", "/"},
		{"an absolute URL in the query is kept inside the path", "/go?next=https://evil.example", "/go?next=https://evil.example"},
	}
	for _, tc := range attempts {
		t.Run(tc.name, func(t *testing.T) {
			r := rawGet(t, e.srv, tc.opaque, "Accept: text/html")
			if r.StatusCode != 302 {
				t.Fatalf("status %d", r.StatusCode)
			}
			loc, err := url.Parse(r.Header.Get("Location"))
			if err != nil {
				t.Fatal(err)
			}
			if loc.Host != "" || loc.Scheme != "" || loc.Path != "/auth/signin" {
				t.Fatalf("Location %q leaves the sign-in page", r.Header.Get("Location"))
			}
			if got := loc.Query().Get("redirectToPath"); got != tc.want {
				t.Errorf("redirectToPath %q, want %q", got, tc.want)
			}
		})
	}
}

// rawGet sends a request line exactly as given, bypassing the client's URL handling.
func rawGet(t *testing.T, srv *httptest.Server, requestURI string, headers ...string) *http.Response {
	t.Helper()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET " + requestURI + " HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n"
	for _, h := range headers {
		req += h + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestHostedUIFromTheFeedIsUsedOnlyWhenItIsAPath(t *testing.T) {
	e := newEnv(t)
	if err := e.core.Update(func(en *contract.Enforcement) {
		en.HostedUI = contract.HostedUI{SignIn: "/login?app=1", MFA: "https://evil.example/mfa"}
	}); err != nil {
		t.Fatal(err)
	}
	e.refresh()
	if got := e.get("/x", "Accept", "text/html").header.Get("Location"); got != "/login?app=1&redirectToPath=%2Fx" {
		t.Errorf("sign-in Location %q", got)
	}
	tok := e.token(func(tk *fakecore.Token) { tk.MFA.V = false })
	if got := e.get("/x", "Accept", "text/html", "Cookie", "sAccessToken="+tok).header.Get("Location"); got != "/auth/mfa?redirectToPath=%2Fx" {
		t.Errorf("MFA Location %q, want the default page", got)
	}
}

func TestWebSocketUpgradePassesThrough(t *testing.T) {
	e := newEnv(t, func(o *proxy.Options) {})
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" || r.Header.Get("X-Twofold-User-Id") != "user-1" {
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
		line, err := rw.ReadString('\n')
		if err != nil {
			return
		}
		_, _ = rw.WriteString("echo " + line)
		_ = rw.Flush()
	}))
	defer app.Close()
	p, err := proxy.New(proxy.Options{CoreURL: e.coreSrv.URL, Tenant: testTenant, Upstream: app.URL, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	defer srv.Close()

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: app\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nCookie: sAccessToken=%s\r\n\r\n", e.token())
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d %s", resp.StatusCode, b)
	}
	fmt.Fprint(conn, "hello\n")
	got, err := br.ReadString('\n')
	if err != nil || got != "echo hello\n" {
		t.Fatalf("echo %q, %v", got, err)
	}

	// Without a session the upgrade never reaches the app.
	r := e.do(func() *http.Request {
		req, _ := http.NewRequest("GET", srv.URL+"/ws", nil)
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		return req
	}())
	if r.status != 401 {
		t.Errorf("upgrade without a session: %d", r.status)
	}
}

func TestStreamingResponsesAreFlushedAsTheyAreWritten(t *testing.T) {
	firstRead := make(chan struct{})
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: one\n\n")
		http.NewResponseController(w).Flush()
		select {
		case <-firstRead: // the client got the first event before the response ended
		case <-time.After(10 * time.Second):
		}
		_, _ = io.WriteString(w, "data: two\n\n")
	}))
	defer app.Close()
	e := newEnv(t)
	p, err := proxy.New(proxy.Options{CoreURL: e.coreSrv.URL, Tenant: testTenant, Upstream: app.URL, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+e.token())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "data: one\n" {
		t.Fatalf("first event %q, %v", line, err)
	}
	close(firstRead)
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "\ndata: two\n\n" {
		t.Fatalf("rest %q, %v", rest, err)
	}
}

func TestRefusalsAreLoggedOnceWithoutTheToken(t *testing.T) {
	e := newEnv(t)
	e.refresh()
	tok := e.token(func(tk *fakecore.Token) { tk.TenantID = "other" })
	e.get("/secret", bearer(tok)...)
	e.get("/healthz")
	e.get("/ok", bearer(e.token())...)
	logs := e.logs.String()
	if strings.Contains(logs, tok) || strings.Contains(logs, strings.Split(tok, ".")[2]) {
		t.Fatal("the decision log contains the token")
	}
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(logs), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["msg"] == "Refused request" {
			lines = append(lines, m)
		}
	}
	if len(lines) != 1 {
		t.Fatalf("%d refusal lines, want 1:\n%s", len(lines), logs)
	}
	want := map[string]any{"outcome": "unauthorised", "path": "/secret", "tenant": testTenant, "method": "GET"}
	for k, v := range want {
		if lines[0][k] != v {
			t.Errorf("%s = %v, want %v", k, lines[0][k], v)
		}
	}
	if r, _ := lines[0]["reason"].(string); !strings.HasPrefix(r, "wrong tenant") {
		t.Errorf("reason %q", r)
	}
}

func TestAdminEndpointsReportHealthReadinessAndDecisions(t *testing.T) {
	e := newEnv(t)
	admin := httptest.NewServer(e.proxy.AdminHandler())
	defer admin.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(admin.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("healthz %d", code)
	}
	if code, _ := get("/readyz"); code != 503 {
		t.Errorf("readyz before the core was reached: %d", code)
	}
	e.refresh()
	if code, _ := get("/readyz"); code != 200 {
		t.Errorf("readyz with keys and feed: %d", code)
	}
	e.get("/", bearer(e.token())...)
	e.get("/")
	e.get("/healthz")
	_, body := get("/metrics")
	for _, want := range []string{
		`twofold_sidecar_decisions_total{outcome="allowed"} 1`,
		`twofold_sidecar_decisions_total{outcome="unauthorised"} 1`,
		`twofold_sidecar_decisions_total{outcome="public"} 1`,
		`twofold_sidecar_decision_duration_seconds_count 3`,
		`twofold_sidecar_jwks_keys 1`,
		`twofold_sidecar_token_cache_entries 1`,
		`twofold_sidecar_feed_config_version 1`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("metrics lack %q:\n%s", want, body)
		}
	}
}

func TestEmailVerificationIsRequiredOnlyWhenTheFeedSaysSo(t *testing.T) {
	yes, no := true, false
	verified := &contract.EmailVerificationClaim{V: &yes, T: 1}
	unverified := &contract.EmailVerificationClaim{V: &no, T: 1}
	tests := []struct {
		name     string
		required bool
		ev       *contract.EmailVerificationClaim
		accept   string
		status   int
		body     string
		location string
	}{
		{"a verified session passes when verification is required", true, verified, "", 200, "", ""},
		{"an unverified session gets SuperTokens' st-ev error", true, unverified, "", 403,
			`{"message":"invalid claim","claimValidationErrors":[{"id":"st-ev","reason":{"message":"wrong value","expectedValue":true,"actualValue":false}}]}`, ""},
		{"a session without st-ev gets the value-does-not-exist error", true, nil, "", 403,
			`{"message":"invalid claim","claimValidationErrors":[{"id":"st-ev","reason":{"message":"value does not exist","expectedValue":true}}]}`, ""},
		{"a browser with an unverified session is sent to the hosted verify-email page", true, unverified, "text/html", 302, "", "/auth/verify-email?redirectToPath=%2F"},
		{"a session without st-ev passes when verification is not required", false, nil, "", 200, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			if err := e.core.Update(func(en *contract.Enforcement) { en.EmailVerificationRequired = tc.required }); err != nil {
				t.Fatal(err)
			}
			e.refresh()
			header := bearer(e.token(func(tk *fakecore.Token) { tk.EV = tc.ev }))
			if tc.accept != "" {
				header = append(header, "Accept", tc.accept)
			}
			r := e.get("/", header...)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d (%s)", r.status, tc.status, r.body)
			}
			if tc.body != "" && r.body != tc.body {
				t.Errorf("body\n got %s\nwant %s", r.body, tc.body)
			}
			if got := r.header.Get("Location"); got != tc.location {
				t.Errorf("Location %q, want %q", got, tc.location)
			}
		})
	}
}

func TestCORSPreflightPassesOnlyWhenEnabled(t *testing.T) {
	preflight := []string{"Origin", "https://web.example", "Access-Control-Request-Method", "POST"}
	tests := []struct {
		name    string
		enabled bool
		method  string
		header  []string
		status  int
	}{
		{"a preflight is refused by default", false, "OPTIONS", preflight, 401},
		{"a preflight passes when enabled", true, "OPTIONS", preflight, 200},
		{"an OPTIONS without the preflight headers still needs a session", true, "OPTIONS", []string{"Origin", "https://web.example"}, 401},
		{"a cross-origin GET still needs a session", true, "GET", preflight, 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(o *proxy.Options) { o.SkipAuthPreflight = tc.enabled })
			e.refresh()
			r := e.do(e.request(tc.method, "/api/orders", tc.header...))
			if r.status != tc.status {
				t.Fatalf("status %d, want %d", r.status, tc.status)
			}
			if tc.status == 200 && r.seen(t).Headers.Get("X-Twofold-User-Id") != "" {
				t.Error("a preflight carried an identity")
			}
		})
	}
}

func TestNewRefusesBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opts proxy.Options
	}{
		{"a missing core URL is refused", proxy.Options{Upstream: "http://127.0.0.1:1"}},
		{"a missing upstream is refused", proxy.Options{CoreURL: "http://core"}},
		{"an upstream with a path is refused", proxy.Options{CoreURL: "http://core", Upstream: "http://127.0.0.1:1/app"}},
		{"a core URL without a scheme is refused", proxy.Options{CoreURL: "core:3567", Upstream: "http://127.0.0.1:1"}},
		{"a relative public path is refused", proxy.Options{CoreURL: "http://core", Upstream: "http://127.0.0.1:1", PublicPaths: []string{"healthz"}}},
		{"a public path over /auth is refused", proxy.Options{CoreURL: "http://core", Upstream: "http://127.0.0.1:1", PublicPaths: []string{"/"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := proxy.New(tc.opts); err == nil {
				t.Error("New accepted the options")
			}
		})
	}
}

func TestTheSidecarBinaryHasNoKubernetesDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/twofold-dev/twofold/cmd/sidecar").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list returned too little to judge: %q", out)
	}
	for _, d := range deps {
		if strings.HasPrefix(d, "k8s.io/") || strings.HasPrefix(d, "sigs.k8s.io/") {
			t.Errorf("cmd/sidecar depends on %s", d)
		}
	}
}

func TestARecoveryCodeStandsInForALostFactorButNotForStepUp(t *testing.T) {
	e := newEnv(t)
	if err := e.core.Update(func(en *contract.Enforcement) {
		en.MFA.Requirement = mfa.Requirement{{Factor: mfa.TOTP}}
		en.MFA.Routes = []contract.Route{{PathPrefix: "/admin", Requirement: mfa.Requirement{{Factor: mfa.TOTP}}}}
	}); err != nil {
		t.Fatal(err)
	}
	e.refresh()
	recovered := e.token(func(tk *fakecore.Token) { tk.MFA.C[mfa.RecoveryCode] = e.clock.Now().Unix() })
	tests := []struct {
		name, path string
		status     int
	}{
		{"a session completed with a recovery code meets the tenant's TOTP requirement, as the core said", "/", 200},
		{"a step-up route still asks for the real factor", "/admin/users", 403},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if r := e.get(tc.path, bearer(recovered)...); r.status != tc.status {
				t.Fatalf("status %d, want %d (%s)", r.status, tc.status, r.body)
			}
		})
	}
}

func TestBrowsersThatMustReverifyAreSentToTheFactorToComplete(t *testing.T) {
	e := newEnv(t)
	if err := e.core.Update(func(en *contract.Enforcement) {
		en.MFA.Requirement = mfa.Requirement{{Factor: mfa.TOTP}}
		en.MFA.Routes = []contract.Route{
			{PathPrefix: "/admin", Requirement: mfa.Requirement{{Factor: mfa.TOTP}}, MaxFactorAgeSeconds: 300},
			{PathPrefix: "/keys", Requirement: mfa.Requirement{{OneOf: []string{mfa.TOTP, mfa.OTPEmail}}}, MaxFactorAgeSeconds: 60},
		}
	}); err != nil {
		t.Fatal(err)
	}
	e.refresh()
	now := e.clock.Now().Unix()
	staleTOTP := e.token(func(tk *fakecore.Token) { tk.MFA.C[mfa.TOTP] = now - 600 })
	incomplete := e.token(func(tk *fakecore.Token) { tk.MFA.V = false })
	tests := []struct {
		name, path, token, location string
	}{
		{"a step-up route with one stale factor sends the browser to that factor's page", "/admin/users", staleTOTP, "/auth/mfa/totp?redirectToPath=%2Fadmin%2Fusers"},
		{"a step-up route with several possible factors sends the browser to the chooser", "/keys", staleTOTP, "/auth/mfa?choose=1&redirectToPath=%2Fkeys"},
		{"a session that has not completed MFA goes to the MFA page, which decides", "/", incomplete, "/auth/mfa?redirectToPath=%2F"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.get(tc.path, "Accept", "text/html", "Cookie", "sAccessToken="+tc.token)
			if r.status != 302 || r.header.Get("Location") != tc.location {
				t.Fatalf("status %d Location %q, want 302 %q", r.status, r.header.Get("Location"), tc.location)
			}
		})
	}
}
