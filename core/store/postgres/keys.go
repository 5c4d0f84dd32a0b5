package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/twofold-dev/twofold/core/store"
)

// CreateSigningKeyIfNone implements store.Keys. The transaction takes an advisory lock first,
// so replicas rotating at the same moment check and insert one after the other: the first
// stores its key, the others find it and store nothing.
func (s *Store) CreateSigningKeyIfNone(ctx context.Context, k store.SigningKey, notBefore time.Time) (bool, error) {
	created := false
	err := s.tx(ctx, pgx.ReadCommitted, func(tx pgx.Tx) error {
		created = false
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(`+lockKey+`)`, "signing-keys"); err != nil {
			return err
		}
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM signing_keys WHERE created_at > $1 AND algorithm = $2)`,
			notBefore, store.KeyAlgorithm(k)).Scan(&exists); err != nil {
			return err
		}
		if exists {
			return nil
		}
		if _, err := tx.Exec(ctx, `INSERT INTO signing_keys (kid, algorithm, private_der, created_at) VALUES ($1, $2, $3, $4)`,
			k.KID, store.KeyAlgorithm(k), k.PrivateDER, k.CreatedAt); err != nil {
			return err
		}
		created = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("postgres: create signing key: %w", err)
	}
	return created, nil
}

// ListSigningKeys implements store.Keys.
func (s *Store) ListSigningKeys(ctx context.Context) ([]store.SigningKey, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT kid, algorithm, private_der, created_at FROM signing_keys ORDER BY created_at DESC, kid`)
	if err != nil {
		return nil, fmt.Errorf("postgres: list signing keys: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.SigningKey, error) {
		var k store.SigningKey
		err := r.Scan(&k.KID, &k.Algorithm, &k.PrivateDER, &k.CreatedAt)
		k.CreatedAt = utc(k.CreatedAt)
		return k, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list signing keys: %w", err)
	}
	return out, nil
}

// DeleteSigningKeysSupersededBefore implements store.Keys.
func (s *Store) DeleteSigningKeysSupersededBefore(ctx context.Context, t time.Time) (int, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `DELETE FROM signing_keys WHERE EXISTS (SELECT 1 FROM signing_keys newer
		WHERE newer.created_at > signing_keys.created_at AND newer.created_at < $1)`, t)
	if err != nil {
		return 0, fmt.Errorf("postgres: delete old signing keys: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
