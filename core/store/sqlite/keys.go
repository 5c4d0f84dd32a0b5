package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/twofold-dev/twofold/core/store"
)

// CreateSigningKeyIfNone implements store.Keys.
func (s *Store) CreateSigningKeyIfNone(ctx context.Context, k store.SigningKey, notBefore time.Time) (bool, error) {
	created := false
	err := s.tx(ctx, func(tx txn) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM signing_keys WHERE created_at > ? AND algorithm = ?`,
			ms(notBefore), store.KeyAlgorithm(k)).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO signing_keys (kid, algorithm, private_der, created_at) VALUES (?, ?, ?, ?)`,
			k.KID, store.KeyAlgorithm(k), k.PrivateDER, ms(k.CreatedAt)); err != nil {
			return err
		}
		created = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("sqlite: create signing key: %w", err)
	}
	return created, nil
}

// ListSigningKeys implements store.Keys.
func (s *Store) ListSigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT kid, algorithm, private_der, created_at FROM signing_keys ORDER BY created_at DESC, kid`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list signing keys: %w", err)
	}
	defer rows.Close()
	var out []store.SigningKey
	for rows.Next() {
		var k store.SigningKey
		var created int64
		if err := rows.Scan(&k.KID, &k.Algorithm, &k.PrivateDER, &created); err != nil {
			return nil, fmt.Errorf("sqlite: list signing keys: %w", err)
		}
		k.CreatedAt = fromMS(created)
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list signing keys: %w", err)
	}
	return out, nil
}

// DeleteSigningKeysSupersededBefore implements store.Keys.
func (s *Store) DeleteSigningKeysSupersededBefore(ctx context.Context, t time.Time) (int, error) {
	var n int64
	err := s.tx(ctx, func(tx txn) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM signing_keys WHERE EXISTS (SELECT 1 FROM signing_keys newer
			WHERE newer.created_at > signing_keys.created_at AND newer.created_at < ?)`, ms(t))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete old signing keys: %w", err)
	}
	return int(n), nil
}
