package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/twofold-dev/twofold/core/store"
)

// ReserveSend implements store.SendLimiter. A transaction-scoped advisory lock per budget key
// (taken in a fixed order) makes reservations of one key, on any replica, apply one after the
// other: no row exists to lock before the first message.
func (s *Store) ReserveSend(ctx context.Context, tenantID string, budgets []store.SendBudget, window time.Duration, now time.Time) (time.Time, error) {
	var refused time.Time
	err := s.tx(ctx, pgx.ReadCommitted, func(tx pgx.Tx) error {
		refused = time.Time{}
		for _, b := range sortedBudgets(budgets) {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, "code_sends/"+tenantID+"/"+b.Key); err != nil {
				return err
			}
		}
		for _, b := range budgets {
			rows, err := tx.Query(ctx, `SELECT sent_at FROM code_sends WHERE tenant_id = $1 AND send_key = $2 AND sent_at > $3 ORDER BY sent_at`,
				tenantID, b.Key, now.Add(-window))
			if err != nil {
				return err
			}
			sent, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
			if err != nil {
				return err
			}
			if until := store.SendRefusedUntil(sent, b.Max, window); !until.IsZero() {
				refused = until
				return nil
			}
		}
		var writes pgx.Batch
		for _, b := range budgets {
			writes.Queue(`INSERT INTO code_sends (tenant_id, send_key, sent_at) VALUES ($1, $2, $3)`, tenantID, b.Key, now)
		}
		return tx.SendBatch(ctx, &writes).Close()
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("postgres: reserve a send: %w", err)
	}
	return refused, nil
}

// sortedBudgets returns the budgets ordered by key, the order their locks are taken in.
func sortedBudgets(budgets []store.SendBudget) []store.SendBudget {
	out := slices.Clone(budgets)
	slices.SortFunc(out, func(a, b store.SendBudget) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// DeleteSendsBefore implements store.SendLimiter.
func (s *Store) DeleteSendsBefore(ctx context.Context, t time.Time) (int, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `DELETE FROM code_sends WHERE sent_at < $1`, t)
	if err != nil {
		return 0, fmt.Errorf("postgres: delete old sends: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// UpdateAttemptLimit implements store.MFA. The user's row is locked first, as in VerifyTOTP,
// so updates and verifications of one user on any replica apply one after the other.
func (s *Store) UpdateAttemptLimit(ctx context.Context, userID string, update func(store.AttemptLimit) store.AttemptLimit) (store.AttemptLimit, error) {
	var out store.AttemptLimit
	err := s.tx(ctx, pgx.ReadCommitted, func(tx pgx.Tx) error {
		var old store.AttemptLimit
		var reads pgx.Batch
		queueLockAndLimit(&reads, userID, &old)
		if err := tx.SendBatch(ctx, &reads).Close(); err != nil {
			return err
		}
		out = update(old)
		var writes pgx.Batch
		queueWriteLimit(&writes, userID, old, out)
		return sendWrites(ctx, tx, &writes, userID)
	})
	if err != nil {
		return store.AttemptLimit{}, fmt.Errorf("postgres: update attempt limit: %w", err)
	}
	return out, nil
}
