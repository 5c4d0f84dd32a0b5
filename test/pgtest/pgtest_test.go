package pgtest_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/twofold-dev/twofold/test/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func TestSchemasAreSeparate(t *testing.T) {
	ctx := context.Background()
	a, b := connect(t, pgtest.Schema(t)), connect(t, pgtest.Schema(t))
	if _, err := a.Exec(ctx, `CREATE TABLE things (id int)`); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Exec(ctx, `CREATE TABLE things (id int)`); err != nil {
		t.Fatalf("the second schema saw the first one's table: %v", err)
	}
	if _, err := a.Exec(ctx, `INSERT INTO things VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := b.QueryRow(ctx, `SELECT count(*) FROM things`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("the second schema has %d rows (%v), want 0", n, err)
	}
}

func TestDatabaseIsFreshAndDropped(t *testing.T) {
	ctx := context.Background()
	var name string
	t.Run("use", func(t *testing.T) {
		conn := connect(t, pgtest.Database(t))
		if err := conn.QueryRow(ctx, `SELECT current_database()`).Scan(&name); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, `CREATE TABLE things (id int)`); err != nil {
			t.Fatal(err)
		}
	})
	var exists bool
	if err := connect(t, pgtest.AdminDSN(t)).QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil || exists {
		t.Fatalf("database %q still exists after its test (%v)", name, err)
	}
}

func TestServerCPUCountsTheClustersWork(t *testing.T) {
	ctx := context.Background()
	conn := connect(t, pgtest.Schema(t))
	before, err := pgtest.ServerCPU()
	if err != nil {
		t.Fatal(err)
	}
	// About 50 ms of CPU in the backend.
	if _, err := conn.Exec(ctx, `SELECT count(*) FROM generate_series(1, 3000000)`); err != nil {
		t.Fatal(err)
	}
	after, err := pgtest.ServerCPU()
	if err != nil || after-before < 10*time.Millisecond {
		t.Fatalf("ServerCPU moved from %v to %v (%v) over a query that works the server", before, after, err)
	}
}

// TestFailsNamingThePackageWhenPostgreSQLIsMissing runs this test binary again with PG_BIN
// pointing at nothing: the test that asks for a database must fail, not skip, and say which
// package to install.
func TestFailsNamingThePackageWhenPostgreSQLIsMissing(t *testing.T) {
	if os.Getenv("PGTEST_CHILD") == "1" {
		pgtest.Schema(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFailsNamingThePackageWhenPostgreSQLIsMissing$", "-test.v")
	cmd.Env = append(os.Environ(), "PGTEST_CHILD=1", "PG_BIN="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), `install the Debian package "postgresql"`) || strings.Contains(string(out), "--- SKIP") {
		t.Fatalf("without PostgreSQL the test run ended with %v and said:\n%s", err, out)
	}
}
