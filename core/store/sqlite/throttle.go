package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/twofold-dev/twofold/core/store"
)

// ReserveSignIn implements store.SignInThrottle. The decision and the count are one write
// transaction, and SQLite runs one writer at a time, so concurrent attempts are decided one
// after the other.
func (s *Store) ReserveSignIn(ctx context.Context, a store.SignInAttempt) (store.SignInReservation, error) {
	var out store.SignInReservation
	err := s.tx(ctx, func(tx txn) error {
		out = store.SignInReservation{}
		var failures int
		var until int64
		err := tx.QueryRowContext(ctx, `SELECT failures, locked_until FROM signin_failures WHERE tenant_id = ? AND account = ?`,
			a.TenantID, a.Account).Scan(&failures, &until)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		failures, until, refused, locks := store.AccountAttempt(failures, until, a.Now, a.Limits.MaxAccountFailures, a.Limits.AccountLock)
		if !refused.IsZero() {
			out.RefusedUntil = refused
			return nil
		}
		if a.Client != "" {
			var start int64
			var attempts int
			err := tx.QueryRowContext(ctx, `SELECT window_start, attempts FROM signin_clients WHERE client = ?`, a.Client).Scan(&start, &attempts)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			start, attempts, refused := store.ClientAttempt(start, attempts, a.Now, a.Limits.MaxClientAttempts, a.Limits.ClientWindow)
			if !refused.IsZero() {
				out.RefusedUntil, out.ClientRefused = refused, true
				return nil
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO signin_clients (client, window_start, attempts) VALUES (?, ?, ?)
				ON CONFLICT (client) DO UPDATE SET window_start = excluded.window_start, attempts = excluded.attempts`,
				a.Client, start, attempts); err != nil {
				return err
			}
		}
		out.LocksAccount = locks
		_, err = tx.ExecContext(ctx, `INSERT INTO signin_failures (tenant_id, account, failures, locked_until) VALUES (?, ?, ?, ?)
			ON CONFLICT (tenant_id, account) DO UPDATE SET failures = excluded.failures, locked_until = excluded.locked_until`,
			a.TenantID, a.Account, failures, until)
		return err
	})
	if err != nil {
		return store.SignInReservation{}, fmt.Errorf("sqlite: reserve sign-in attempt: %w", err)
	}
	return out, nil
}

// SignInSucceeded implements store.SignInThrottle.
func (s *Store) SignInSucceeded(ctx context.Context, tenantID, account, client string) error {
	err := s.tx(ctx, func(tx txn) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM signin_failures WHERE tenant_id = ? AND account = ?`, tenantID, account); err != nil {
			return err
		}
		if client == "" {
			return nil
		}
		_, err := tx.ExecContext(ctx, `UPDATE signin_clients SET attempts = attempts - 1 WHERE client = ? AND attempts > 0`, client)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: record successful sign-in: %w", err)
	}
	return nil
}
