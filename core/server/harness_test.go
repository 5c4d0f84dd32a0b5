package server_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/core/coretest"
	"github.com/twofold-dev/twofold/core/outbound"
	"github.com/twofold-dev/twofold/core/server"
)

const adminKey = coretest.AdminKey

// cheapHashes keep the HTTP tests fast on shared machines (coretest.CheapHashes).
var cheapHashes = coretest.CheapHashes

// fakeClock is the injected clock: tests move time instead of sleeping.
type fakeClock = coretest.Clock

type harness struct {
	t      *testing.T
	srv    *server.Server
	ts     *httptest.Server
	clock  *fakeClock
	dbPath string
	client *http.Client
}

type harnessOption func(*server.Options)

func withoutAdminKey() harnessOption { return func(o *server.Options) { o.AdminKey = "" } }

// withOutbound replaces the harness's outbound policy, which lets the core reach the tests'
// fake providers on loopback.
func withOutbound(p outbound.Policy) harnessOption {
	return func(o *server.Options) { o.Outbound = p }
}

// loopbackAllowed is the allow-list an operator would give a core whose providers run on the
// same machine: the harness's fake OIDC provider, Twilio and webhook listen on 127.0.0.1.
var loopbackAllowed = outbound.Policy{Allow: outbound.MustParseAllowList("127.0.0.1/32,::1/128")}

// newHarness starts the real core handler on an httptest server over a SQLite file, or a
// PostgreSQL schema with TWOFOLD_TEST_STORE=postgres (store_switch_test.go).
func newHarness(t *testing.T, opts ...harnessOption) *harness {
	t.Helper()
	return startHarness(t, coretest.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)), testDatabase(t), opts...)
}

func startHarness(t *testing.T, clock *fakeClock, dbPath string, opts ...harnessOption) *harness {
	t.Helper()
	st, err := openTestStore(context.Background(), dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	core := coretest.Start(t, coretest.Options{Store: st, Clock: clock, Server: func(o *server.Options) {
		o.Outbound = loopbackAllowed
		for _, opt := range opts {
			opt(o)
		}
	}})
	return &harness{t: t, srv: core.Srv, ts: core.TS, clock: clock, dbPath: dbPath,
		client: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("response %d is not a JSON object: %q", r.Status, r.Body)
	}
	return m
}

func (r response) cookie(name string) *http.Cookie {
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// do sends a request; body is sent as is when it is a string or []byte, as JSON otherwise.
func (h *harness) do(method, path string, body any, headers ...string) response {
	h.t.Helper()
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
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, h.ts.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := h.client.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

func (h *harness) admin(method, path string, body any) response {
	h.t.Helper()
	return h.do(method, path, body, "Authorization", "Bearer "+adminKey)
}

func form(email, password string) map[string]any {
	return map[string]any{"formFields": []map[string]any{{"id": "email", "value": email}, {"id": "password", "value": password}}}
}

// signUp signs a user up in header mode and returns the response.
func (h *harness) signUp(tenantPath, email, password string, headers ...string) response {
	h.t.Helper()
	return h.do("POST", "/auth"+tenantPath+"/signup", form(email, password), headers...)
}

func mustStatus(t *testing.T, r response, status int, okStatus string) map[string]any {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status = %d, want %d; body %s", r.Status, status, r.Body)
	}
	m := r.json(t)
	if okStatus != "" && m["status"] != okStatus {
		t.Fatalf("status field = %v, want %s; body %s", m["status"], okStatus, r.Body)
	}
	return m
}

// putTenant creates or replaces a tenant through the admin API.
func (h *harness) putTenant(id, cfg string) map[string]any {
	h.t.Helper()
	r := h.admin("PUT", "/admin/v1/tenants/"+id, cfg)
	if r.Status != http.StatusOK && r.Status != http.StatusCreated {
		h.t.Fatalf("PUT tenant %s = %d %s", id, r.Status, r.Body)
	}
	return r.json(h.t)
}

// snapshotWithout is snapshot without the named tables, for requests that are refused but
// still record something on purpose (a failed password sign-in counts toward the lock).
func (h *harness) snapshotWithout(tables ...string) string {
	h.t.Helper()
	var out []string
	skip := false
	for _, line := range strings.Split(h.snapshot(), "\n") {
		if name, rest, ok := strings.Cut(line, ": "); ok && strings.HasSuffix(rest, " rows") && !strings.Contains(name, " ") {
			skip = slices.Contains(tables, name)
		}
		if !skip {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// snapshot dumps every table of the database, to show that a refused request changed nothing.
func (h *harness) snapshot() string {
	h.t.Helper()
	if isDSN(h.dbPath) {
		return snapshotPostgres(h.t, h.dbPath)
	}
	db, err := sql.Open("sqlite", "file:"+h.dbPath+"?mode=ro")
	if err != nil {
		h.t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
	if err != nil {
		h.t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		tables = append(tables, n)
	}
	rows.Close()
	var out strings.Builder
	for _, table := range tables {
		rows, err := db.Query(`SELECT * FROM ` + table)
		if err != nil {
			h.t.Fatal(err)
		}
		cols, _ := rows.Columns()
		var lines []string
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			rows.Scan(ptrs...)
			lines = append(lines, fmt.Sprint(vals...))
		}
		rows.Close()
		sort.Strings(lines)
		fmt.Fprintf(&out, "%s: %d rows\n%s\n", table, len(lines), strings.Join(lines, "\n"))
	}
	return out.String()
}

// frontToken decodes the front-token header.
func frontToken(t *testing.T, r response) map[string]any {
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

// payloadOf decodes an access token's payload without verifying it.
func payloadOf(t *testing.T, token string) map[string]any {
	t.Helper()
	return jwsPart(t, token, 1)
}

// headerOf decodes an access token's JOSE header.
func headerOf(t *testing.T, token string) map[string]any {
	t.Helper()
	return jwsPart(t, token, 0)
}

// jwsPart decodes part i (0 the header, 1 the payload) of a compact JWS as a JSON object.
func jwsPart(t *testing.T, token string, i int) map[string]any {
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
