package coretest

import (
	"context"
	"database/sql"
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

// StoreEnv is the store switch: TWOFOLD_TEST_STORE=postgres runs the HTTP tests on PostgreSQL (a
// throw-away cluster that test/pgtest starts, a fresh schema per core) instead of a SQLite
// file per core. A package whose tests use it calls pgtest.Main from its TestMain, which stops
// the cluster.
const StoreEnv = "TWOFOLD_TEST_STORE"

// OnPostgres reports whether the store switch picks PostgreSQL.
func OnPostgres() bool { return os.Getenv(StoreEnv) == "postgres" }

// Database returns a new, empty database for a core: a SQLite file path, or with
// TWOFOLD_TEST_STORE=postgres the DSN of a fresh PostgreSQL schema.
func Database(t testing.TB) string {
	t.Helper()
	switch v := os.Getenv(StoreEnv); v {
	case "", "sqlite":
		return filepath.Join(t.TempDir(), "twofold.db")
	case "postgres":
		return pgtest.Schema(t)
	default:
		t.Fatalf("%s=%q: use sqlite or postgres", StoreEnv, v)
		return ""
	}
}

// IsDSN reports whether db, a database Database returned, is a PostgreSQL DSN.
func IsDSN(db string) bool { return strings.HasPrefix(db, "postgres://") }

// OpenStore opens the store of a database Database returned.
func OpenStore(ctx context.Context, db string) (store.Store, error) {
	if IsDSN(db) {
		return postgres.Open(ctx, db)
	}
	return sqlite.Open(ctx, db)
}

// DBCPU is the CPU time the test cluster has used (zero on SQLite, whose work is in-process).
func DBCPU(tb testing.TB) time.Duration {
	tb.Helper()
	if !OnPostgres() {
		return 0
	}
	d, err := pgtest.ServerCPU()
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

// snapshotPostgres is Snapshot on PostgreSQL: every table of the schema.
func snapshotPostgres(t testing.TB, dsn string) string {
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

// Snapshot dumps every table of the database db (a SQLite file or a PostgreSQL DSN), one
// sorted line per row.
func Snapshot(t testing.TB, db string) string {
	t.Helper()
	if IsDSN(db) {
		return snapshotPostgres(t, db)
	}
	return snapshotSQLite(t, db)
}

// snapshotSQLite is Snapshot on SQLite.
func snapshotSQLite(t testing.TB, path string) string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
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
			t.Fatal(err)
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
