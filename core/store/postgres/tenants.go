package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/twofold-dev/twofold/core/store"
)

const tenantColumns = `id, config::text, config_hash, version, created_at, updated_at, owner`

func scanTenant(row scanner) (store.Tenant, error) {
	var t store.Tenant
	var cfg string
	if err := row.Scan(&t.ID, &cfg, &t.Hash, &t.Version, &t.CreatedAt, &t.UpdatedAt, &t.Owner); err != nil {
		return store.Tenant{}, err
	}
	t.Config = json.RawMessage(cfg)
	t.CreatedAt, t.UpdatedAt = utc(t.CreatedAt), utc(t.UpdatedAt)
	return t, nil
}

// PutTenant implements store.Tenants.
func (s *Store) PutTenant(ctx context.Context, id string, cfg json.RawMessage, hash string, now time.Time) (store.Tenant, bool, error) {
	return s.putTenant(ctx, id, cfg, hash, nil, now)
}

// PutTenantOwned implements store.TenantOwnership.
func (s *Store) PutTenantOwned(ctx context.Context, id string, cfg json.RawMessage, hash, owner string, now time.Time) (store.Tenant, bool, error) {
	return s.putTenant(ctx, id, cfg, hash, &owner, now)
}

// putTenant creates or updates a tenant; with an owner it claims the tenant, refusing one
// that another owner holds. An insert that finds the tenant already there (perhaps created
// by another replica a moment ago) falls back to a locked read and update, so two replicas
// claiming one new tenant at once give it to exactly one owner.
func (s *Store) putTenant(ctx context.Context, id string, cfg json.RawMessage, hash string, owner *string, now time.Time) (store.Tenant, bool, error) {
	var out store.Tenant
	var created bool
	newOwner := ""
	if owner != nil {
		newOwner = *owner
	}
	err := s.tx(ctx, pgx.ReadCommitted, func(tx pgx.Tx) error {
		created = false
		var err error
		out, err = scanTenant(tx.QueryRow(ctx, `INSERT INTO tenants (id, config, config_hash, version, created_at, updated_at, owner)
			VALUES ($1, CAST($2::text AS json), $3, 1, $4, $4, $5) ON CONFLICT (id) DO NOTHING RETURNING `+tenantColumns, id, string(cfg), hash, now, newOwner))
		if err == nil {
			created = true
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		cur, err := scanTenant(tx.QueryRow(ctx, `SELECT `+tenantColumns+` FROM tenants WHERE id = $1 FOR UPDATE`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return errRetry // deleted between the insert and the read
		}
		if err != nil {
			return err
		}
		out = cur
		if owner != nil {
			if cur.Owner != "" && cur.Owner != *owner {
				return &store.ClaimedError{TenantID: id, Owner: cur.Owner}
			}
			if cur.Owner != *owner {
				if _, err := tx.Exec(ctx, `UPDATE tenants SET owner = $2 WHERE id = $1`, id, *owner); err != nil {
					return err
				}
				out.Owner = *owner
			}
		}
		if cur.Hash == hash {
			return nil
		}
		out, err = scanTenant(tx.QueryRow(ctx, `UPDATE tenants SET config = CAST($2::text AS json), config_hash = $3, version = version + 1, updated_at = $4
			WHERE id = $1 RETURNING `+tenantColumns, id, string(cfg), hash, now))
		return err
	})
	if errors.Is(err, store.ErrClaimed) {
		return store.Tenant{}, false, err
	}
	if err != nil {
		return store.Tenant{}, false, fmt.Errorf("postgres: put tenant %q: %w", id, err)
	}
	return out, created, nil
}

// ReleaseTenant implements store.TenantOwnership.
func (s *Store) ReleaseTenant(ctx context.Context, id, owner string) (store.Tenant, error) {
	var out store.Tenant
	err := s.tx(ctx, pgx.ReadCommitted, func(tx pgx.Tx) error {
		cur, err := scanTenant(tx.QueryRow(ctx, `SELECT `+tenantColumns+` FROM tenants WHERE id = $1 FOR UPDATE`, id))
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return fmt.Errorf("tenant %q: %w", id, store.ErrNotFound)
		case err != nil:
			return err
		case cur.Owner == "":
			out = cur
			return nil
		case owner != "" && cur.Owner != owner:
			return &store.ClaimedError{TenantID: id, Owner: cur.Owner}
		}
		out, err = scanTenant(tx.QueryRow(ctx, `UPDATE tenants SET owner = '' WHERE id = $1 RETURNING `+tenantColumns, id))
		return err
	})
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrClaimed) {
		return store.Tenant{}, err
	}
	if err != nil {
		return store.Tenant{}, fmt.Errorf("postgres: release tenant %q: %w", id, err)
	}
	return out, nil
}

// GetTenant implements store.Tenants.
func (s *Store) GetTenant(ctx context.Context, id string) (store.Tenant, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	t, err := scanTenant(s.pool.QueryRow(ctx, `SELECT `+tenantColumns+` FROM tenants WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Tenant{}, fmt.Errorf("tenant %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Tenant{}, fmt.Errorf("postgres: get tenant %q: %w", id, err)
	}
	return t, nil
}

// ListTenants implements store.Tenants.
func (s *Store) ListTenants(ctx context.Context) ([]store.Tenant, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT `+tenantColumns+` FROM tenants ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("postgres: list tenants: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Tenant, error) { return scanTenant(r) })
	if err != nil {
		return nil, fmt.Errorf("postgres: list tenants: %w", err)
	}
	if out == nil {
		out = []store.Tenant{}
	}
	return out, nil
}

// DeleteTenant implements store.Tenants.
func (s *Store) DeleteTenant(ctx context.Context, id string, deleteUsers bool) error {
	return s.deleteTenant(ctx, id, nil, deleteUsers)
}

// DeleteTenantOwned implements store.TenantOwnership.
func (s *Store) DeleteTenantOwned(ctx context.Context, id, owner string, deleteUsers bool) error {
	return s.deleteTenant(ctx, id, &owner, deleteUsers)
}

func (s *Store) deleteTenant(ctx context.Context, id string, owner *string, deleteUsers bool) error {
	err := s.tx(ctx, pgx.ReadCommitted, func(tx pgx.Tx) error {
		if owner != nil {
			var have string
			err := tx.QueryRow(ctx, `SELECT owner FROM tenants WHERE id = $1 FOR UPDATE`, id).Scan(&have)
			if errors.Is(err, pgx.ErrNoRows) {
				return fmt.Errorf("tenant %q: %w", id, store.ErrNotFound)
			}
			if err != nil {
				return err
			}
			if have != *owner {
				return &store.ClaimedError{TenantID: id, Owner: have}
			}
		}
		tag, err := tx.Exec(ctx, `DELETE FROM tenants WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("tenant %q: %w", id, store.ErrNotFound)
		}
		if !deleteUsers {
			return nil
		}
		if _, err := tx.Exec(ctx, `DELETE FROM sessions WHERE tenant_id = $1`, id); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `DELETE FROM login_methods WHERE tenant_id = $1 RETURNING user_id`, id)
		if err != nil {
			return err
		}
		owners, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM users WHERE id = ANY($1)
			AND NOT EXISTS (SELECT 1 FROM login_methods lm WHERE lm.user_id = users.id)`, owners)
		return err
	})
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrClaimed) {
		return err
	}
	if err != nil {
		return fmt.Errorf("postgres: delete tenant %q: %w", id, err)
	}
	return nil
}
