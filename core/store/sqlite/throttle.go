package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/twofold-dev/twofold/core/store"
)

// SignInLockedUntil implements store.SignInThrottle.
func (s *Store) SignInLockedUntil(ctx context.Context, tenantID, account string, now time.Time) (time.Time, error) {
	var until int64
	err := s.r.QueryRowContext(ctx, `SELECT locked_until FROM signin_failures WHERE tenant_id = ? AND account = ?`, tenantID, account).Scan(&until)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("sqlite: read sign-in lock: %w", err)
	}
	return store.SignInLockEnd(until, now), nil
}

// RecordSignInFailure implements store.SignInThrottle. The count is read and written in one
// write transaction, so concurrent failures are all counted.
func (s *Store) RecordSignInFailure(ctx context.Context, tenantID, account string, now time.Time, max int, lock time.Duration) (time.Time, error) {
	var out time.Time
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var failures int
		var until int64
		err := tx.QueryRowContext(ctx, `SELECT failures, locked_until FROM signin_failures WHERE tenant_id = ? AND account = ?`, tenantID, account).Scan(&failures, &until)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		failures, until = store.NextSignInFailure(failures, until, now, max, lock)
		out = store.SignInLockEnd(until, now)
		_, err = tx.ExecContext(ctx, `INSERT INTO signin_failures (tenant_id, account, failures, locked_until) VALUES (?, ?, ?, ?)
			ON CONFLICT (tenant_id, account) DO UPDATE SET failures = excluded.failures, locked_until = excluded.locked_until`,
			tenantID, account, failures, until)
		return err
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("sqlite: record sign-in failure: %w", err)
	}
	return out, nil
}

// ResetSignInFailures implements store.SignInThrottle.
func (s *Store) ResetSignInFailures(ctx context.Context, tenantID, account string) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM signin_failures WHERE tenant_id = ? AND account = ?`, tenantID, account)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: reset sign-in failures: %w", err)
	}
	return nil
}
