package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// db is a database handle whose statements are prepared once and reused. SQLite parses a
// statement in about as long as it runs a small one, and the hot paths (refresh, TOTP verify,
// code consume) run the same few statements over and over. Every query of this package is a
// constant, so the cache is bounded by the package's text.
type db struct {
	*sql.DB
	mu    sync.Mutex
	stmts map[string]*sql.Stmt
	// wanted are queries a transaction ran unprepared: preparing needs a free connection, and
	// the writer's only one belongs to the transaction until it ends (prepareWanted).
	wanted map[string]bool
}

func newDB(d *sql.DB) *db {
	return &db{DB: d, stmts: map[string]*sql.Stmt{}, wanted: map[string]bool{}}
}

// prepared returns query's statement when it is prepared, and otherwise asks for it to be.
func (d *db) prepared(query string) *sql.Stmt {
	d.mu.Lock()
	defer d.mu.Unlock()
	st, ok := d.stmts[query]
	if !ok && d.stmts != nil {
		d.wanted[query] = true
	}
	return st
}

// prepareWanted prepares the queries transactions ran unprepared; call it with no transaction
// open on d by this goroutine. A query that does not prepare stays unprepared and is not tried
// again.
func (d *db) prepareWanted(ctx context.Context) {
	d.mu.Lock()
	var queries []string
	for query := range d.wanted {
		queries = append(queries, query)
		delete(d.wanted, query)
	}
	d.mu.Unlock()
	for _, query := range queries {
		if st, err := d.DB.PrepareContext(ctx, query); err == nil {
			d.keep(query, st)
		}
	}
}

// stmt returns query prepared on d. It never holds d.mu while it waits for a connection: a
// caller holding one may be waiting for d.mu.
func (d *db) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	d.mu.Lock()
	st, ok := d.stmts[query]
	d.mu.Unlock()
	if ok {
		return st, nil
	}
	st, err := d.DB.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if st = d.keep(query, st); st == nil {
		return nil, errors.New("sqlite: store closed")
	}
	return st, nil
}

// keep caches st for query, or closes it when another caller cached one first (or d closed).
func (d *db) keep(query string, st *sql.Stmt) *sql.Stmt {
	d.mu.Lock()
	defer d.mu.Unlock()
	if old, ok := d.stmts[query]; ok || d.stmts == nil {
		st.Close()
		if ok {
			return old
		}
		return nil
	}
	d.stmts[query] = st
	return st
}

// QueryContext runs a prepared query.
func (d *db) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := d.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// QueryRowContext runs a prepared query for one row; a query that does not prepare reports
// its error from Scan.
func (d *db) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := d.stmt(ctx, query)
	if err != nil {
		return d.DB.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// ExecContext runs a prepared statement.
func (d *db) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := d.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

// Close closes the prepared statements and the handle.
func (d *db) Close() error {
	d.mu.Lock()
	var errs []error
	for _, st := range d.stmts {
		errs = append(errs, st.Close())
	}
	d.stmts, d.wanted = nil, nil
	d.mu.Unlock()
	return errors.Join(append(errs, d.DB.Close())...)
}

// txn is a write transaction that runs the writer's prepared statements, and each other
// statement unprepared the first time.
type txn struct {
	tx *sql.Tx
	db *db
}

// ExecContext runs a statement in the transaction.
func (t txn) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := t.db.prepared(query); st != nil {
		return t.tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return t.tx.ExecContext(ctx, query, args...)
}

// QueryContext runs a query in the transaction.
func (t txn) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := t.db.prepared(query); st != nil {
		return t.tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return t.tx.QueryContext(ctx, query, args...)
}

// QueryRowContext runs a query for one row in the transaction.
func (t txn) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := t.db.prepared(query); st != nil {
		return t.tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, query, args...)
}
