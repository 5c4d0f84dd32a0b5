// Package postgres is the store for several core replicas: PostgreSQL through pgx's connection
// pool (github.com/jackc/pgx/v5/pgxpool).
//
// Every replica opens the same database. Migrations are embedded and versioned like SQLite's
// (a schema_migrations table), and applied in one transaction under an advisory lock, so
// replicas that start together migrate once. Writes that read before they decide take row
// locks (SELECT ... FOR UPDATE on the session, the passwordless device or the user) or run
// under SERIALIZABLE, so attempt counters, one-time codes and refresh-token rotation hold when
// two replicas serve the same user at once; signing-key rotation takes an advisory lock.
// Transactions that fail with a serialization failure (40001) or a deadlock (40P01) are
// retried with a short random backoff.
//
// The DSN is a libpq URL or keyword string. Besides libpq's own settings it accepts pgxpool's
// pool_max_conns (default: the greater of 10 and 4 per CPU), pool_min_conns,
// pool_max_conn_lifetime, pool_max_conn_idle_time and pool_health_check_period, and any
// server setting as a parameter: statement_timeout (default 5s here) and
// idle_in_transaction_session_timeout (default 30s here) among them; search_path picks the
// schema.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/twofold-dev/twofold/core/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Defaults applied when the DSN does not set them.
const (
	// DefaultStatementTimeout bounds every statement on the server.
	DefaultStatementTimeout = 5 * time.Second
	// DefaultIdleInTransactionTimeout ends a session that holds a transaction open without
	// using it (a replica that hung or lost its network): its locks are released.
	DefaultIdleInTransactionTimeout = 30 * time.Second
	// DefaultOperationTimeout bounds one store call whose context has no deadline, retries
	// included.
	DefaultOperationTimeout = 15 * time.Second
	// MigrationTimeout bounds Open's migrations (and the wait for another replica's) when
	// its context has no deadline: a migration may rewrite a large table.
	MigrationTimeout = 10 * time.Minute
	// maxAttempts is how often a transaction is tried when it fails with a serialization
	// failure or a deadlock.
	maxAttempts = 8
)

// Store is the PostgreSQL implementation of store.Store.
type Store struct {
	pool *pgxpool.Pool
}

var _ store.Store = (*Store)(nil)

// Open connects to the database named by dsn, applies pending migrations and returns the
// store. The DSN's settings are described in the package documentation.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse DSN: %w", err)
	}
	if !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = int32(max(10, 4*runtime.GOMAXPROCS(0)))
	}
	params := cfg.ConnConfig.RuntimeParams
	setDefault := func(k, v string) {
		if _, ok := params[k]; !ok {
			params[k] = v
		}
	}
	setDefault("statement_timeout", strconv.FormatInt(DefaultStatementTimeout.Milliseconds(), 10))
	setDefault("idle_in_transaction_session_timeout", strconv.FormatInt(DefaultIdleInTransactionTimeout.Milliseconds(), 10))
	setDefault("application_name", "twofold-core")
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	s := &Store{pool: pool}
	mctx, cancel := ctx, context.CancelFunc(func() {})
	if _, ok := ctx.Deadline(); !ok {
		mctx, cancel = context.WithTimeout(ctx, MigrationTimeout)
	}
	defer cancel()
	if err := s.migrate(mctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the pool, waiting for connections in use to be returned.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Ping checks that the database answers a query.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := bound(ctx)
	defer cancel()
	var one int
	if err := s.pool.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// Pool returns the connection pool, for tests and metrics.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// bound gives ctx the default operation timeout when it has no deadline.
func bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, DefaultOperationTimeout)
}

// lockKey is the advisory-lock key of a purpose within the current schema, so two
// deployments in different schemas of one database do not wait for each other.
const lockKey = `hashtextextended('twofold:' || $1 || ':' || current_schema(), 0)`

type migration struct {
	version int
	name    string
	body    string
}

func loadMigrations() ([]migration, error) {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return nil, fmt.Errorf("postgres: list migrations: %w", err)
	}
	sort.Strings(names)
	out := make([]migration, 0, len(names))
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		version, err := strconv.Atoi(strings.SplitN(base, "_", 2)[0])
		if err != nil {
			return nil, fmt.Errorf("postgres: migration %s has no numeric version prefix", base)
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("postgres: read migration %s: %w", base, err)
		}
		out = append(out, migration{version: version, name: base, body: string(body)})
	}
	return out, nil
}

// migrate applies the embedded migrations not yet recorded in schema_migrations. It holds a
// transaction-scoped advisory lock throughout, so replicas starting at once apply each
// migration once: the others wait, then find them recorded. DDL is transactional in
// PostgreSQL, so the migrations pending at start apply together or not at all.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	err = pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{}, func(tx pgx.Tx) error {
		// Migrations may rewrite large tables: the per-statement bound does not apply.
		if _, err := tx.Exec(ctx, `SET LOCAL statement_timeout = 0`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(`+lockKey+`)`, "migrate"); err != nil {
			return fmt.Errorf("take the migration lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		applied := map[int]bool{}
		rows, err := tx.Query(ctx, `SELECT version FROM schema_migrations`)
		if err != nil {
			return err
		}
		versions, err := pgx.CollectRows(rows, pgx.RowTo[int])
		if err != nil {
			return err
		}
		for _, v := range versions {
			applied[v] = true
		}
		for _, m := range ms {
			if applied[m.version] {
				continue
			}
			// The simple protocol runs a file of several statements in one round trip.
			if _, err := tx.Conn().PgConn().Exec(ctx, m.body).ReadAll(); err != nil {
				return fmt.Errorf("apply migration %s: %w", m.name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, m.version); err != nil {
				return fmt.Errorf("record migration %s: %w", m.name, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	return nil
}

// SchemaVersion returns the highest applied migration version.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	var v *int
	if err := s.pool.QueryRow(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("postgres: read schema version: %w", err)
	}
	if v == nil {
		return 0, nil
	}
	return *v, nil
}

// errRetry asks tx to run the transaction again: it lost a race that a fresh snapshot
// resolves (such as two replicas inserting the same unique row).
var errRetry = errors.New("retry the transaction")

// retryable reports whether a transaction that failed with err may succeed when run again.
func retryable(err error) bool {
	if errors.Is(err, errRetry) {
		return true
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// tx runs fn in a transaction with the given isolation level and commits when it returns nil.
// A serialization failure, a deadlock or errRetry rolls back and runs fn again, up to
// maxAttempts times, so fn must set every result it reports from scratch on each run.
func (s *Store) tx(ctx context.Context, iso pgx.TxIsoLevel, fn func(pgx.Tx) error) error {
	ctx, cancel := bound(ctx)
	defer cancel()
	for attempt := 1; ; attempt++ {
		err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: iso}, fn)
		if err == nil || !retryable(err) {
			return err
		}
		if attempt == maxAttempts {
			return fmt.Errorf("gave up after %d attempts: %w", attempt, err)
		}
		// Random backoff: 1-2 ms, doubling, so racing replicas spread out.
		d := time.Duration(1<<min(attempt-1, 6)) * time.Millisecond
		d += rand.N(d)
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		}
	}
}

// Codes of the errors the store maps to sentinels.
const (
	uniqueViolation     = "23505"
	foreignKeyViolation = "23503"
)

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// constraint returns the name of the constraint or index a unique or foreign-key violation
// is about.
func constraint(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.ConstraintName
	}
	return ""
}

func utc(t time.Time) time.Time { return t.UTC() }

// nullTime is the SQL value of an optional time: NULL for the zero time.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func fromNull(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// nullable is the SQL value of an optional string: NULL for "".
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// querier is what reads need: the pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// execQuerier is a querier that also runs statements: the pool, or a transaction.
type execQuerier interface {
	querier
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

type scanner interface{ Scan(dest ...any) error }

// errDecided marks an error returned by a caller's callback, so it is returned unwrapped.
type errDecided struct{ err error }

func (e errDecided) Error() string { return e.err.Error() }

func unwrapDecided(err error) (error, bool) {
	var d errDecided
	if errors.As(err, &d) {
		return d.err, true
	}
	return err, false
}
