package server_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/twofold-dev/twofold/core/store"
	"github.com/twofold-dev/twofold/core/store/postgres"
	"github.com/twofold-dev/twofold/core/store/sqlite"
	"github.com/twofold-dev/twofold/test/pgtest"
)

// TWOFOLD_TEST_STORE=postgres runs the HTTP tests on PostgreSQL (a throw-away cluster that
// test/pgtest starts, a fresh schema per harness) instead of a SQLite file per harness.
const storeEnv = "TWOFOLD_TEST_STORE"

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func onPostgres() bool { return os.Getenv(storeEnv) == "postgres" }

// testDatabase returns a new, empty database for a harness: a SQLite file path, or with
// TWOFOLD_TEST_STORE=postgres the DSN of a fresh PostgreSQL schema.
func testDatabase(t testing.TB) string {
	t.Helper()
	switch v := os.Getenv(storeEnv); v {
	case "", "sqlite":
		return filepath.Join(t.TempDir(), "twofold.db")
	case "postgres":
		return pgtest.Schema(t)
	default:
		t.Fatalf("%s=%q: use sqlite or postgres", storeEnv, v)
		return ""
	}
}

func isDSN(db string) bool { return strings.HasPrefix(db, "postgres://") }

// openTestStore opens the store of a database testDatabase returned.
func openTestStore(ctx context.Context, db string) (store.Store, error) {
	if isDSN(db) {
		return postgres.Open(ctx, db)
	}
	return sqlite.Open(ctx, db)
}

// dbCPU is the CPU time the test cluster has used (zero on SQLite, whose work is in-process).
func dbCPU(tb testing.TB) time.Duration {
	tb.Helper()
	if !onPostgres() {
		return 0
	}
	d, err := pgtest.ServerCPU()
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

// snapshotPostgres dumps every table of the schema, like snapshot does for SQLite.
func snapshotPostgres(t *testing.T, dsn string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for _, table := range tables {
		rows, err := conn.Query(ctx, `SELECT * FROM `+pgx.Identifier{table}.Sanitize())
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for rows.Next() {
			vals, err := rows.Values()
			if err != nil {
				t.Fatal(err)
			}
			lines = append(lines, fmt.Sprint(vals...))
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		sort.Strings(lines)
		fmt.Fprintf(&out, "%s: %d rows\n%s\n", table, len(lines), strings.Join(lines, "\n"))
	}
	return out.String()
}
