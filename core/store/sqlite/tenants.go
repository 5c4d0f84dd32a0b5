package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/twofold-dev/twofold/core/store"
)

const tenantColumns = `id, config, config_hash, version, created_at, updated_at, owner`

type scanner interface{ Scan(dest ...any) error }

func scanTenant(row scanner) (store.Tenant, error) {
	var t store.Tenant
	var cfg string
	var created, updated int64
	if err := row.Scan(&t.ID, &cfg, &t.Hash, &t.Version, &created, &updated, &t.Owner); err != nil {
		return store.Tenant{}, err
	}
	t.Config = json.RawMessage(cfg)
	t.CreatedAt, t.UpdatedAt = fromMS(created), fromMS(updated)
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
// that another owner holds.
func (s *Store) putTenant(ctx context.Context, id string, cfg json.RawMessage, hash string, owner *string, now time.Time) (store.Tenant, bool, error) {
	var out store.Tenant
	var created bool
	err := s.tx(ctx, func(tx txn) error {
		cur, err := scanTenant(tx.QueryRowContext(ctx, `SELECT `+tenantColumns+` FROM tenants WHERE id = ?`, id))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			created = true
			newOwner := ""
			if owner != nil {
				newOwner = *owner
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO tenants (`+tenantColumns+`) VALUES (?, ?, ?, 1, ?, ?, ?)`, id, string(cfg), hash, ms(now), ms(now), newOwner)
			if err != nil {
				return err
			}
			out = store.Tenant{ID: id, Config: cfg, Hash: hash, Version: 1, CreatedAt: fromMS(ms(now)), UpdatedAt: fromMS(ms(now)), Owner: newOwner}
			return nil
		case err != nil:
			return err
		}
		out = cur
		if owner != nil {
			if cur.Owner != "" && cur.Owner != *owner {
				return &store.ClaimedError{TenantID: id, Owner: cur.Owner}
			}
			if cur.Owner != *owner {
				if _, err := tx.ExecContext(ctx, `UPDATE tenants SET owner = ? WHERE id = ?`, *owner, id); err != nil {
					return err
				}
				out.Owner = *owner
			}
		}
		if cur.Hash == hash {
			return nil
		}
		_, err = tx.ExecContext(ctx, `UPDATE tenants SET config = ?, config_hash = ?, version = version + 1, updated_at = ? WHERE id = ?`, string(cfg), hash, ms(now), id)
		if err != nil {
			return err
		}
		out.Config, out.Hash, out.Version, out.UpdatedAt = cfg, hash, cur.Version+1, fromMS(ms(now))
		return nil
	})
	if errors.Is(err, store.ErrClaimed) {
		return store.Tenant{}, false, err
	}
	if err != nil {
		return store.Tenant{}, false, fmt.Errorf("sqlite: put tenant %q: %w", id, err)
	}
	return out, created, nil
}

// ReleaseTenant implements store.TenantOwnership.
func (s *Store) ReleaseTenant(ctx context.Context, id, owner string) (store.Tenant, error) {
	var out store.Tenant
	err := s.tx(ctx, func(tx txn) error {
		cur, err := scanTenant(tx.QueryRowContext(ctx, `SELECT `+tenantColumns+` FROM tenants WHERE id = ?`, id))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("tenant %q: %w", id, store.ErrNotFound)
		case err != nil:
			return err
		case cur.Owner == "":
			out = cur
			return nil
		case owner != "" && cur.Owner != owner:
			return &store.ClaimedError{TenantID: id, Owner: cur.Owner}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE tenants SET owner = '' WHERE id = ?`, id); err != nil {
			return err
		}
		out = cur
		out.Owner = ""
		return nil
	})
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrClaimed) {
		return store.Tenant{}, err
	}
	if err != nil {
		return store.Tenant{}, fmt.Errorf("sqlite: release tenant %q: %w", id, err)
	}
	return out, nil
}

// GetTenant implements store.Tenants.
func (s *Store) GetTenant(ctx context.Context, id string) (store.Tenant, error) {
	t, err := scanTenant(s.r.QueryRowContext(ctx, `SELECT `+tenantColumns+` FROM tenants WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Tenant{}, fmt.Errorf("tenant %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.Tenant{}, fmt.Errorf("sqlite: get tenant %q: %w", id, err)
	}
	return t, nil
}

// ListTenants implements store.Tenants.
func (s *Store) ListTenants(ctx context.Context) ([]store.Tenant, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+tenantColumns+` FROM tenants ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list tenants: %w", err)
	}
	defer rows.Close()
	out := []store.Tenant{}
	for rows.Next() {
		t, err := scanTenant(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list tenants: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list tenants: %w", err)
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
	err := s.tx(ctx, func(tx txn) error {
		if owner != nil {
			var have string
			err := tx.QueryRowContext(ctx, `SELECT owner FROM tenants WHERE id = ?`, id).Scan(&have)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("tenant %q: %w", id, store.ErrNotFound)
			}
			if err != nil {
				return err
			}
			if have != *owner {
				return &store.ClaimedError{TenantID: id, Owner: have}
			}
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM tenants WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("tenant %q: %w", id, store.ErrNotFound)
		}
		if !deleteUsers {
			return nil
		}
		stmts := []string{
			`DELETE FROM sessions WHERE tenant_id = ?`,
			`DELETE FROM login_methods WHERE tenant_id = ?`,
			`DELETE FROM users WHERE NOT EXISTS (SELECT 1 FROM login_methods lm WHERE lm.user_id = users.id)`,
		}
		for i, q := range stmts {
			args := []any{id}
			if i == 2 {
				args = nil
			}
			if _, err := tx.ExecContext(ctx, q, args...); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrClaimed) {
		return err
	}
	if err != nil {
		return fmt.Errorf("sqlite: delete tenant %q: %w", id, err)
	}
	return nil
}
