package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/twofold-dev/twofold/core/store"
)

// SignInLockedUntil implements store.SignInThrottle.
func (s *Store) SignInLockedUntil(ctx context.Context, tenantID, account string, now time.Time) (time.Time, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	var until int64
	err := s.pool.QueryRow(ctx, `SELECT locked_until FROM signin_failures WHERE tenant_id = $1 AND account = $2`, tenantID, account).Scan(&until)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("postgres: read sign-in lock: %w", err)
	}
	return store.SignInLockEnd(until, now), nil
}

// RecordSignInFailure implements store.SignInThrottle. The account's row is locked while it
// is counted, so failures sent to different replicas at once are all counted.
func (s *Store) RecordSignInFailure(ctx context.Context, tenantID, account string, now time.Time, max int, lock time.Duration) (time.Time, error) {
	var out time.Time
	err := s.tx(ctx, pgx.ReadCommitted, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO signin_failures (tenant_id, account, failures, locked_until) VALUES ($1, $2, 0, 0)
			ON CONFLICT (tenant_id, account) DO NOTHING`, tenantID, account); err != nil {
			return err
		}
		var failures int
		var until int64
		if err := tx.QueryRow(ctx, `SELECT failures, locked_until FROM signin_failures WHERE tenant_id = $1 AND account = $2 FOR UPDATE`,
			tenantID, account).Scan(&failures, &until); err != nil {
			return err
		}
		failures, until = store.NextSignInFailure(failures, until, now, max, lock)
		out = store.SignInLockEnd(until, now)
		_, err := tx.Exec(ctx, `UPDATE signin_failures SET failures = $3, locked_until = $4 WHERE tenant_id = $1 AND account = $2`,
			tenantID, account, failures, until)
		return err
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("postgres: record sign-in failure: %w", err)
	}
	return out, nil
}

// ResetSignInFailures implements store.SignInThrottle.
func (s *Store) ResetSignInFailures(ctx context.Context, tenantID, account string) error {
	ctx, cancel := bound(ctx)
	defer cancel()
	if _, err := s.pool.Exec(ctx, `DELETE FROM signin_failures WHERE tenant_id = $1 AND account = $2`, tenantID, account); err != nil {
		return fmt.Errorf("postgres: reset sign-in failures: %w", err)
	}
	return nil
}
