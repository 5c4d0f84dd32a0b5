package coretest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/core/outbound"
	"github.com/twofold-dev/twofold/core/server"
)

// ServerOption edits the options of the core New starts.
type ServerOption func(*server.Options)

// WithoutAdminKey starts the core with its admin API off.
func WithoutAdminKey() ServerOption { return func(o *server.Options) { o.AdminKey = "" } }

// WithOutbound replaces the core's outbound policy (LoopbackAllowed by default), which lets
// the core reach the tests' fake providers on loopback.
func WithOutbound(p outbound.Policy) ServerOption {
	return func(o *server.Options) { o.Outbound = p }
}

// LoopbackAllowed is the allow-list an operator would give a core whose providers run on the
// same machine: the tests' fake OIDC provider, Twilio and webhook listen on 127.0.0.1.
var LoopbackAllowed = outbound.Policy{Allow: outbound.MustParseAllowList("127.0.0.1/32,::1/128")}

// New starts the core as the HTTP tests use it, on a new database of the store
// TWOFOLD_TEST_STORE picks (Database), with a clock reading 2026-03-01 12:00 UTC, allowed to
// reach loopback (LoopbackAllowed), and edited by opts.
func New(t testing.TB, opts ...ServerOption) *Core {
	t.Helper()
	return StartOn(t, NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)), Database(t), opts...)
}

// StartOn is New on a given clock and database (a SQLite file or a PostgreSQL DSN): several
// cores on one database are replicas.
func StartOn(t testing.TB, clock *Clock, db string, opts ...ServerOption) *Core {
	t.Helper()
	return Start(t, Options{Database: db, Clock: clock, Server: func(o *server.Options) {
		o.Outbound = LoopbackAllowed
		for _, opt := range opts {
			opt(o)
		}
	}})
}

// Response is one answer of the core.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body as a JSON object, failing the test when it is not one.
func (r Response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("response %d is not a JSON object: %q", r.Status, r.Body)
	}
	return m
}

// Cookie returns the cookie name the answer sets, nil when it sets none.
func (r Response) Cookie(name string) *http.Cookie {
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Do sends a request to the core (path from the root, e.g. /auth/signin); body is sent as is
// when it is a string or []byte, as JSON otherwise; headers are name, value pairs.
func (c *Core) Do(method, path string, body any, headers ...string) Response {
	c.T.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			c.T.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, c.TS.URL+path, rd)
	if err != nil {
		c.T.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		c.T.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.T.Fatal(err)
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// AdminDo is Do with the admin API key.
func (c *Core) AdminDo(method, path string, body any) Response {
	c.T.Helper()
	return c.Do(method, path, body, "Authorization", "Bearer "+AdminKey)
}

// Form is the formFields body of an email and password sign-up or sign-in.
func Form(email, password string) map[string]any {
	return map[string]any{"formFields": []map[string]any{{"id": "email", "value": email}, {"id": "password", "value": password}}}
}

// SignUp signs a user up in header mode and returns the response.
func (c *Core) SignUp(tenantPath, email, password string, headers ...string) Response {
	c.T.Helper()
	return c.Do("POST", "/auth"+tenantPath+"/signup", Form(email, password), headers...)
}

// MustStatus checks the answer's HTTP status and, unless okStatus is empty, its status field,
// and returns the body as a JSON object.
func MustStatus(t testing.TB, r Response, status int, okStatus string) map[string]any {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status = %d, want %d; body %s", r.Status, status, r.Body)
	}
	m := r.JSON(t)
	if okStatus != "" && m["status"] != okStatus {
		t.Fatalf("status field = %v, want %s; body %s", m["status"], okStatus, r.Body)
	}
	return m
}

// PutTenantJSON creates or replaces a tenant through the admin API with the configuration
// cfg (JSON), and returns the answer. Unlike PutTenant it does not move the clock.
func (c *Core) PutTenantJSON(id, cfg string) map[string]any {
	c.T.Helper()
	r := c.AdminDo("PUT", "/admin/v1/tenants/"+id, cfg)
	if r.Status != http.StatusOK && r.Status != http.StatusCreated {
		c.T.Fatalf("PUT tenant %s = %d %s", id, r.Status, r.Body)
	}
	return r.JSON(c.T)
}

// SnapshotWithout is Snapshot without the named tables, for requests that are refused but
// still record something on purpose (a failed password sign-in counts toward the lock).
func (c *Core) SnapshotWithout(tables ...string) string {
	c.T.Helper()
	var out []string
	skip := false
	for _, line := range strings.Split(c.Snapshot(), "\n") {
		if name, rest, ok := strings.Cut(line, ": "); ok && strings.HasSuffix(rest, " rows") && !strings.Contains(name, " ") {
			skip = slices.Contains(tables, name)
		}
		if !skip {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// Snapshot dumps every table of the core's database (Snapshot), to show that a refused
// request changed nothing.
func (c *Core) Snapshot() string {
	c.T.Helper()
	return Snapshot(c.T, c.Database)
}

// FrontToken decodes the front-token header.
func FrontToken(t testing.TB, r Response) map[string]any {
	t.Helper()
	raw := r.Header.Get("front-token")
	b, err := base64.StdEncoding.DecodeString(raw)
	if err != nil {
		t.Fatalf("front-token %q is not base64: %v", raw, err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("front-token is not JSON: %s", b)
	}
	return m
}

// PayloadOf decodes an access token's payload without verifying it.
func PayloadOf(t testing.TB, token string) map[string]any {
	t.Helper()
	return jwsPart(t, token, 1)
}

// HeaderOf decodes an access token's JOSE header.
func HeaderOf(t testing.TB, token string) map[string]any {
	t.Helper()
	return jwsPart(t, token, 0)
}

// jwsPart decodes part i (0 the header, 1 the payload) of a compact JWS as a JSON object.
func jwsPart(t testing.TB, token string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("access token %q is not a compact JWS", token)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// MustStatusHeader checks a 200 OK answer and returns its header, failing the test when the
// answer does not carry it.
func MustStatusHeader(t testing.TB, r Response, header string) string {
	t.Helper()
	MustStatus(t, r, 200, "OK")
	v := r.Header.Get(header)
	if v == "" {
		t.Fatalf("no %s header in %s", header, r.Body)
	}
	return v
}
