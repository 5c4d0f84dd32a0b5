package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/twofold-dev/twofold/core/store"
)

// ReserveSend implements store.SendLimiter. SQLite runs one writer at a time, so concurrent
// reservations are decided one after the other.
func (s *Store) ReserveSend(ctx context.Context, tenantID string, budgets []store.SendBudget, window time.Duration, now time.Time) (time.Time, error) {
	var refused time.Time
	err := s.tx(ctx, func(tx txn) error {
		refused = time.Time{}
		for _, b := range budgets {
			rows, err := tx.QueryContext(ctx, `SELECT sent_at FROM code_sends WHERE tenant_id = ? AND send_key = ? AND sent_at > ? ORDER BY sent_at`,
				tenantID, b.Key, ms(now.Add(-window)))
			if err != nil {
				return err
			}
			var sent []time.Time
			for rows.Next() {
				var at int64
				if err := rows.Scan(&at); err != nil {
					rows.Close()
					return err
				}
				sent = append(sent, fromMS(at))
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			if until := store.SendRefusedUntil(sent, b.Max, window); !until.IsZero() {
				refused = until
				return nil
			}
		}
		for _, b := range budgets {
			if _, err := tx.ExecContext(ctx, `INSERT INTO code_sends (tenant_id, send_key, sent_at) VALUES (?, ?, ?)`, tenantID, b.Key, ms(now)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("sqlite: reserve a send: %w", err)
	}
	return refused, nil
}

// DeleteSendsBefore implements store.SendLimiter.
func (s *Store) DeleteSendsBefore(ctx context.Context, t time.Time) (int, error) {
	var n int64
	err := s.tx(ctx, func(tx txn) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM code_sends WHERE sent_at < ?`, ms(t))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete old sends: %w", err)
	}
	return int(n), nil
}

// UpdateAttemptLimit implements store.MFA.
func (s *Store) UpdateAttemptLimit(ctx context.Context, userID string, update func(store.AttemptLimit) store.AttemptLimit) (store.AttemptLimit, error) {
	var out store.AttemptLimit
	err := s.tx(ctx, func(tx txn) error {
		old, err := readLimit(ctx, tx, userID)
		if err != nil {
			return err
		}
		out = update(old)
		return writeLimit(ctx, tx, userID, old, out)
	})
	if err != nil {
		return store.AttemptLimit{}, fmt.Errorf("sqlite: update attempt limit: %w", err)
	}
	return out, nil
}
