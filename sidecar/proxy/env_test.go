package proxy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/sidecar/fakecore"
	"github.com/twofold-dev/twofold/sidecar/proxy"
)

const (
	testTenant = "acme"
	testIssuer = "https://core.test/auth"
)

// clock is a settable clock for the proxy under test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// syncBuffer collects log output written from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// appSeen is what the test app received.
type appSeen struct {
	Path    string      `json:"path"`
	Method  string      `json:"method"`
	Headers http.Header `json:"headers"`
}

// env is a sidecar between a real test app and a fake core, all over real HTTP.
type env struct {
	t       *testing.T
	clock   *clock
	core    *fakecore.Core
	coreSrv *httptest.Server
	app     *httptest.Server
	proxy   *proxy.Proxy
	srv     *httptest.Server
	logs    *syncBuffer
}

func newEnv(t *testing.T, tweak ...func(*proxy.Options)) *env {
	t.Helper()
	core, err := fakecore.New(testTenant, testIssuer)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, clock: &clock{t: time.Unix(1_800_000_000, 0)}, core: core, logs: &syncBuffer{}}
	e.coreSrv = httptest.NewServer(core)
	t.Cleanup(e.coreSrv.Close)
	e.app = httptest.NewServer(http.HandlerFunc(testApp))
	t.Cleanup(e.app.Close)
	opts := proxy.Options{
		CoreURL:     e.coreSrv.URL,
		Tenant:      testTenant,
		Upstream:    e.app.URL,
		PublicPaths: []string{"/healthz", "/static/"},
		Now:         e.clock.Now,
		Logger:      slog.New(slog.NewJSONHandler(e.logs, nil)),
	}
	for _, f := range tweak {
		f(&opts)
	}
	p, err := proxy.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	e.proxy = p
	e.srv = httptest.NewServer(p)
	t.Cleanup(e.srv.Close)
	return e
}

// testApp echoes what it received as JSON; /stream and /ws are handled by the streaming and
// WebSocket tests.
func testApp(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(appSeen{Path: r.URL.Path, Method: r.Method, Headers: r.Header})
}

// refresh applies the core's current keys and feed synchronously.
func (e *env) refresh() {
	e.t.Helper()
	if err := e.proxy.Refresh(context.Background()); err != nil {
		e.t.Fatalf("Refresh: %v", err)
	}
}

// token mints a token valid for an hour that completed emailpassword now and has v true.
func (e *env) token(change ...func(*fakecore.Token)) string {
	now := e.clock.Now().Unix()
	tok := fakecore.Token{
		Sub: "user-1", TenantID: testTenant, SessionHandle: "handle-1", Iss: testIssuer,
		Iat: now, Exp: now + 3600,
		MFA: mfa.Claim{C: mfa.Completed{mfa.EmailPassword: now}, V: true},
	}
	for _, f := range change {
		f(&tok)
	}
	return e.core.Mint(tok)
}

// response is a finished round trip through the sidecar.
type response struct {
	status int
	header http.Header
	body   string
}

func (r response) seen(t *testing.T) appSeen {
	t.Helper()
	var s appSeen
	if err := json.Unmarshal([]byte(r.body), &s); err != nil {
		t.Fatalf("app answer %q: %v", r.body, err)
	}
	return s
}

func (e *env) do(req *http.Request) response {
	e.t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: strings.TrimSpace(string(b))}
}

func (e *env) request(method, path string, header ...string) *http.Request {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	return req
}

func (e *env) get(path string, header ...string) response {
	e.t.Helper()
	return e.do(e.request(http.MethodGet, path, header...))
}

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

// eventually polls cond until it holds or the bound passes.
func eventually(t *testing.T, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

const (
	wantUnauthorised = `{"message":"unauthorised"}`
	wantTryRefresh   = `{"message":"try refresh token"}`
	wantInvalidClaim = `{"message":"invalid claim","claimValidationErrors":[{"id":"st-mfa","reason":{"message":"MFA requirement for auth is not satisfied"}}]}`
)
