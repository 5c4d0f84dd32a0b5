// Package pgtest gives tests a real PostgreSQL server: one throw-away cluster per test binary,
// started on a free loopback port by hack/postgres.sh (which installs Debian's postgresql when
// it is missing) the first time a test asks for a database, and stopped when the binary ends.
//
// A package that uses it runs its tests through Main:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
// Each test then takes a fresh, empty place to work in: Schema (a new schema, selected through
// the DSN's search_path; well under a millisecond) or Database (a new database; about a quarter
// of a second, for tests that need a database of their own). When PostgreSQL cannot be
// installed or started the test fails with a message naming the package to install: it never
// skips.
package pgtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Package is the Debian package that provides the server.
const Package = "postgresql"

var (
	mu       sync.Mutex
	started  bool
	dir      string // the cluster's folder; empty until started
	adminDSN string
	startErr error
	seq      atomic.Int64
)

// Main runs the tests and stops the cluster, if one was started, when they are done.
func Main(m *testing.M) int {
	code := m.Run()
	if err := stop(); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

func script() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "hack", "postgres.sh")
}

// start starts the cluster once per process; a failure is remembered and reported to every
// test that asks.
func start() (string, error) {
	mu.Lock()
	defer mu.Unlock()
	if started {
		return adminDSN, startErr
	}
	started = true
	adminDSN, startErr = startCluster()
	return adminDSN, startErr
}

func startCluster() (string, error) {
	d, err := os.MkdirTemp("", "twofold-pg-")
	if err != nil {
		return "", fmt.Errorf("make the cluster's folder: %w", err)
	}
	var lastErr error
	for range 3 { // a free port can be taken between our probe and the server's bind
		port, err := freePort()
		if err != nil {
			return "", err
		}
		var stdout, stderr bytes.Buffer
		cmd := exec.Command("bash", script(), "start", d, strconv.Itoa(port), strconv.Itoa(os.Getpid()))
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			lastErr = fmt.Errorf("hack/postgres.sh start: %w: %s", err, strings.TrimSpace(stderr.String()))
			continue
		}
		lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
		dir = d
		dsn := lines[len(lines)-1]
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return "", fmt.Errorf("connect to the test cluster: %w", err)
		}
		conn.Close(ctx)
		return dsn, nil
	}
	os.RemoveAll(d)
	return "", lastErr
}

func stop() error {
	mu.Lock()
	defer mu.Unlock()
	if dir == "" {
		return nil
	}
	out, err := exec.Command("bash", script(), "stop", dir).CombinedOutput()
	dir = ""
	if err != nil {
		return fmt.Errorf("hack/postgres.sh stop: %w: %s", err, out)
	}
	return nil
}

// Restart restarts the test cluster with a fast shutdown, as a database restart or failover
// would: every open connection is closed. Tests of a binary share the cluster, so only a test
// that runs alone (not in parallel) may call it.
func Restart(t testing.TB) {
	t.Helper()
	admin(t)
	mu.Lock()
	d := dir
	mu.Unlock()
	if out, err := exec.Command("bash", script(), "restart", d).CombinedOutput(); err != nil {
		t.Fatalf("hack/postgres.sh restart: %v: %s", err, out)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// admin returns the cluster's superuser DSN, starting the cluster if needed; it fails the test
// when PostgreSQL is not available.
func admin(t testing.TB) string {
	t.Helper()
	dsn, err := start()
	if err != nil {
		t.Fatalf("PostgreSQL is needed for this test and could not be started (install the Debian package %q: apt-get install %s): %v",
			Package, Package, err)
	}
	return dsn
}

func exec1(t testing.TB, dsn, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("pgtest: %s: %v", sql, err)
	}
}

func name(prefix string) string {
	return fmt.Sprintf("%s_%d_%d", prefix, os.Getpid(), seq.Add(1))
}

func withParam(dsn, key, value string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		panic(fmt.Sprintf("pgtest: the cluster's DSN does not parse: %v", err))
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

func withDatabase(dsn, db string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		panic(fmt.Sprintf("pgtest: the cluster's DSN does not parse: %v", err))
	}
	u.Path = "/" + db
	return u.String()
}

// AdminDSN returns the superuser DSN of the cluster's postgres database.
func AdminDSN(t testing.TB) string {
	t.Helper()
	return admin(t)
}

// Schema creates an empty schema for the test and returns a DSN whose connections use it
// (search_path), so unqualified table names land in it. It is dropped when the test ends.
func Schema(t testing.TB) string {
	t.Helper()
	dsn := admin(t)
	s := name("t")
	exec1(t, dsn, "CREATE SCHEMA "+s)
	t.Cleanup(func() { exec1(t, dsn, "DROP SCHEMA "+s+" CASCADE") })
	return withParam(dsn, "search_path", s)
}

// Database creates an empty database for the test and returns its DSN. It is dropped, with
// any connection left to it, when the test ends.
func Database(t testing.TB) string {
	t.Helper()
	dsn := admin(t)
	db := name("db")
	exec1(t, dsn, "CREATE DATABASE "+db)
	t.Cleanup(func() { exec1(t, dsn, "DROP DATABASE "+db+" WITH (FORCE)") })
	return withDatabase(dsn, db)
}

// ServerCPU returns the CPU time the test cluster's processes have used so far: the
// postmaster with the children it has reaped, and the backends still running. Benchmarks
// report it per operation, as the database's share of a request's cost. It is zero before
// the cluster starts.
func ServerCPU() (time.Duration, error) {
	mu.Lock()
	d := dir
	mu.Unlock()
	if d == "" {
		return 0, nil
	}
	pidFile, err := os.ReadFile(filepath.Join(d, "data", "postmaster.pid"))
	if err != nil {
		return 0, fmt.Errorf("read the postmaster's pid: %w", err)
	}
	postmaster := strings.SplitN(string(pidFile), "\n", 2)[0]
	procs, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		return 0, err
	}
	var ticks int64
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // the process ended
		}
		// Fields after the command name, which is in parentheses and may hold spaces:
		// state ppid ... utime(14) stime(15) cutime(16) cstime(17), numbered from pid = 1.
		s := string(b)
		end := strings.LastIndexByte(s, ')')
		if end < 0 {
			continue
		}
		pid := strings.Fields(s[:strings.IndexByte(s, ' ')])[0]
		f := strings.Fields(s[end+1:])
		if len(f) < 15 {
			continue
		}
		n := func(i int) int64 { v, _ := strconv.ParseInt(f[i-3], 10, 64); return v }
		switch {
		case pid == postmaster:
			ticks += n(14) + n(15) + n(16) + n(17)
		case f[1] == postmaster: // ppid
			ticks += n(14) + n(15)
		}
	}
	const userHZ = 100 // clock ticks per second in /proc on Linux
	return time.Duration(ticks) * time.Second / userHZ, nil
}
