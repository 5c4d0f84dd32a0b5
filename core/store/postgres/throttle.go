package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/twofold-dev/twofold/core/store"
)

// ReserveSignIn implements store.SignInThrottle. The account's row, then the client's, are
// locked while the attempt is decided and counted, so attempts sent to different replicas
// at once are decided one after the other (always in that order, so two never deadlock).
func (s *Store) ReserveSignIn(ctx context.Context, a store.SignInAttempt) (store.SignInReservation, error) {
	var out store.SignInReservation
	err := s.tx(ctx, pgx.ReadCommitted, func(tx pgx.Tx) error {
		out = store.SignInReservation{}
		if _, err := tx.Exec(ctx, `INSERT INTO signin_failures (tenant_id, account, failures, locked_until) VALUES ($1, $2, 0, 0)
			ON CONFLICT (tenant_id, account) DO NOTHING`, a.TenantID, a.Account); err != nil {
			return err
		}
		var failures int
		var until int64
		if err := tx.QueryRow(ctx, `SELECT failures, locked_until FROM signin_failures WHERE tenant_id = $1 AND account = $2 FOR UPDATE`,
			a.TenantID, a.Account).Scan(&failures, &until); err != nil {
			return err
		}
		failures, until, refused, locks := store.AccountAttempt(failures, until, a.Now, a.Limits.MaxAccountFailures, a.Limits.AccountLock)
		if !refused.IsZero() {
			out.RefusedUntil = refused
			return nil
		}
		var writes pgx.Batch
		if a.Client != "" {
			if _, err := tx.Exec(ctx, `INSERT INTO signin_clients (client, window_start, attempts) VALUES ($1, 0, 0)
				ON CONFLICT (client) DO NOTHING`, a.Client); err != nil {
				return err
			}
			var start int64
			var attempts int
			if err := tx.QueryRow(ctx, `SELECT window_start, attempts FROM signin_clients WHERE client = $1 FOR UPDATE`,
				a.Client).Scan(&start, &attempts); err != nil {
				return err
			}
			start, attempts, refused := store.ClientAttempt(start, attempts, a.Now, a.Limits.MaxClientAttempts, a.Limits.ClientWindow)
			if !refused.IsZero() {
				out.RefusedUntil, out.ClientRefused = refused, true
				return nil
			}
			writes.Queue(`UPDATE signin_clients SET window_start = $2, attempts = $3 WHERE client = $1`, a.Client, start, attempts)
		}
		out.LocksAccount = locks
		writes.Queue(`UPDATE signin_failures SET failures = $3, locked_until = $4 WHERE tenant_id = $1 AND account = $2`,
			a.TenantID, a.Account, failures, until)
		return tx.SendBatch(ctx, &writes).Close()
	})
	if err != nil {
		return store.SignInReservation{}, fmt.Errorf("postgres: reserve sign-in attempt: %w", err)
	}
	return out, nil
}

// SignInSucceeded implements store.SignInThrottle.
func (s *Store) SignInSucceeded(ctx context.Context, tenantID, account, client string) error {
	err := s.tx(ctx, pgx.ReadCommitted, func(tx pgx.Tx) error {
		var writes pgx.Batch
		writes.Queue(`DELETE FROM signin_failures WHERE tenant_id = $1 AND account = $2`, tenantID, account)
		if client != "" {
			writes.Queue(`UPDATE signin_clients SET attempts = attempts - 1 WHERE client = $1 AND attempts > 0`, client)
		}
		return tx.SendBatch(ctx, &writes).Close()
	})
	if err != nil {
		return fmt.Errorf("postgres: record successful sign-in: %w", err)
	}
	return nil
}
