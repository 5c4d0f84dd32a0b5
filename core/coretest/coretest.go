// Package coretest runs the whole auth core in process for tests, as core/store/storetest runs
// the store's conformance suite for every store: a real server.Server behind an httptest
// server, on a store the test chooses, with a clock the test moves instead of sleeping, cheap
// password hashes and a known admin key. The operation tests of the factor packages use
// core/factors/factortest, which needs no HTTP.
//
// The HTTP tests of the core's packages (core/httpapi, core/accountapi, core/mfaapi, the
// factors, ...) start it with New, which puts it on the store TWOFOLD_TEST_STORE picks
// (Database: a SQLite file, or a fresh PostgreSQL schema with TWOFOLD_TEST_STORE=postgres; a
// package whose tests use it runs `os.Exit(pgtest.Main(m))` in its TestMain and is listed in
// the Makefile's test-core-postgres), and talk to it with Core.Do and the helpers beside it:
// MFAUser for a signed-in client going through MFA, StartSMTP, StartTwilio and StartWebhook for
// fake delivery providers, Snapshot to show that a refused request changed nothing.
package coretest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/core/adminclient"
	"github.com/twofold-dev/twofold/core/emailpassword"
	"github.com/twofold-dev/twofold/core/server"
	"github.com/twofold-dev/twofold/core/store"
	"github.com/twofold-dev/twofold/core/store/sqlite"
)

// AdminKey is the admin API key of every core Start runs.
const AdminKey = "test-admin-key"

// CheapHashes keep tests fast on shared machines; the default parameters are checked in
// package emailpassword and measured by the benchmarks.
var CheapHashes = emailpassword.Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1, SaltLen: 16, KeyLen: 32}

// Clock is the injected clock: tests move time instead of sleeping. It is safe for
// concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock that reads t until it is moved.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// SQLite opens a store on a new SQLite file in the test's temporary directory, closed when
// the test ends.
func SQLite(t testing.TB) store.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "twofold.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// Options are what a test chooses about the core.
type Options struct {
	// Store holds the core's data. When it is nil, Start opens Database, or a new SQLite file
	// when Database is empty too, and closes it when the test ends.
	Store store.Store
	// Database is a SQLite file or a PostgreSQL DSN (Database returns one) for Start to open
	// when Store is nil.
	Database string
	// Clock is the core's clock; one reading 2026-03-01 12:00 UTC when nil.
	Clock *Clock
	// Server edits the core's options after the defaults are set (the issuer, the admin key,
	// the outbound policy, a logger, ...), before the core is built.
	Server func(*server.Options)
}

// Core is a whole core in process, serving on TS.
type Core struct {
	T     testing.TB
	Srv   *server.Server
	TS    *httptest.Server
	Clock *Clock
	// Admin is a client of the core's admin API.
	Admin *adminclient.Client
	// Database is the SQLite file or PostgreSQL DSN Start opened the store on; empty when the
	// test gave the store.
	Database string
	// HTTP sends the requests of Do. It does not follow redirects, so tests see each answer.
	HTTP *http.Client
}

// Start builds the core and serves it until the test ends. Its issuer is the httptest
// server's http://<address>/auth.
func Start(t testing.TB, opts Options) *Core {
	t.Helper()
	if opts.Store == nil {
		if opts.Database == "" {
			opts.Database = filepath.Join(t.TempDir(), "twofold.db")
		}
		st, err := OpenStore(context.Background(), opts.Database)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		opts.Store = st
	}
	if opts.Clock == nil {
		opts.Clock = NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	}
	c := &Core{T: t, Clock: opts.Clock, TS: httptest.NewUnstartedServer(nil), Database: opts.Database,
		HTTP: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	o := server.Options{Store: opts.Store, Issuer: "http://" + c.TS.Listener.Addr().String() + "/auth", AdminKey: AdminKey,
		Clock: opts.Clock.Now, PasswordParams: CheapHashes}
	if opts.Server != nil {
		opts.Server(&o)
	}
	var err error
	c.Srv, err = server.New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	c.TS.Config.Handler = c.Srv
	c.TS.Start()
	t.Cleanup(c.TS.Close)
	c.Admin = adminclient.New(c.TS.URL, func() (string, error) { return AdminKey, nil }, nil)
	return c
}

// PutTenant puts cfg as tenant id's configuration through the admin API, and moves the clock
// past the tenant cache (a second), so every request after it sees the new configuration.
func (c *Core) PutTenant(id string, cfg contract.TenantConfig) {
	c.T.Helper()
	if _, err := c.Admin.PutTenant(context.Background(), id, cfg); err != nil {
		c.T.Fatalf("put tenant %s: %v", id, err)
	}
	c.Clock.Advance(2 * time.Second)
}

// Logs keeps every log line of a core (a funcr sink's output function), for tests that read
// the logs.
type Logs struct {
	mu sync.Mutex
	b  strings.Builder
}

// Add appends one line; it is funcr's output function.
func (l *Logs) Add(prefix, args string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.WriteString(prefix + " " + args + "\n")
}

// String returns every line so far.
func (l *Logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
