package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/twofold-dev/twofold/core/store"
)

// FindUsers implements store.UserAdmin.
func (s *Store) FindUsers(ctx context.Context, q store.UserQuery) (store.UserPage, error) {
	var where string
	var arg []any
	switch {
	case q.Email != "":
		where, arg = "lower(lm.email) = lower($2)", []any{q.Email}
	case q.PhoneNumber != "":
		where, arg = "lm.phone_number = $2", []any{q.PhoneNumber}
	case q.UserID != "":
		where, arg = "(lm.recipe_user_id = $2 OR lm.user_id = $2)", []any{q.UserID}
	default:
		where, arg = "lm.third_party_id = $2 AND lm.third_party_user_id = $3", []any{q.ThirdPartyID, q.ThirdPartyUserID}
	}
	limit := min(max(q.Limit, 1), store.MaxUserPage)
	n := len(arg) + 2
	args := append([]any{q.TenantID}, arg...)
	args = append(args, q.After, limit+1)
	ctx, cancel := bound(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, fmt.Sprintf(`SELECT DISTINCT lm.user_id FROM login_methods lm
		WHERE lm.tenant_id = $1 AND %s AND lm.user_id > $%d ORDER BY lm.user_id LIMIT $%d`, where, n, n+1), args...)
	if err != nil {
		return store.UserPage{}, fmt.Errorf("postgres: find users: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return store.UserPage{}, fmt.Errorf("postgres: find users: %w", err)
	}
	var page store.UserPage
	if len(ids) > limit {
		ids, page.Next = ids[:limit], ids[limit-1]
	}
	for _, id := range ids {
		u, err := loadUser(ctx, s.pool, id)
		if errors.Is(err, store.ErrNotFound) {
			continue // erased meanwhile
		}
		if err != nil {
			return store.UserPage{}, fmt.Errorf("postgres: find users: %w", err)
		}
		page.Users = append(page.Users, u)
	}
	return page, nil
}

// primaryID resolves a primary or recipe user id to the primary user id.
func primaryID(ctx context.Context, q querier, userID string) (string, error) {
	var id string
	err := q.QueryRow(ctx, `SELECT id FROM users
		WHERE id = (SELECT coalesce((SELECT user_id FROM login_methods WHERE recipe_user_id = $1), $1))`, userID).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("user %q: %w", userID, store.ErrNotFound)
	}
	return id, err
}

// SetUserDisabled implements store.UserAdmin.
func (s *Store) SetUserDisabled(ctx context.Context, userID string, disabled bool, now time.Time) (store.User, error) {
	var u store.User
	err := s.tx(ctx, pgx.ReadCommitted, func(tx pgx.Tx) error {
		id, err := primaryID(ctx, tx, userID)
		if err != nil {
			return err
		}
		if disabled {
			_, err = tx.Exec(ctx, `UPDATE users SET disabled_at = coalesce(disabled_at, $1) WHERE id = $2`, now.UTC(), id)
		} else {
			_, err = tx.Exec(ctx, `UPDATE users SET disabled_at = NULL WHERE id = $1`, id)
		}
		if err != nil {
			return err
		}
		u, err = loadUser(ctx, tx, id)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, err
	}
	if err != nil {
		return store.User{}, fmt.Errorf("postgres: set user disabled: %w", err)
	}
	return u, nil
}

// ResetMFA implements store.UserAdmin.
func (s *Store) ResetMFA(ctx context.Context, userID string, factors []string) (store.MFAReset, error) {
	var out store.MFAReset
	err := s.tx(ctx, pgx.ReadCommitted, func(tx pgx.Tx) error {
		out = store.MFAReset{}
		id, err := primaryID(ctx, tx, userID)
		if err != nil {
			return err
		}
		count := func(query string, args ...any) (int, error) {
			tag, err := tx.Exec(ctx, query, args...)
			return int(tag.RowsAffected()), err
		}
		if store.WantsFactor(factors, store.FactorTOTP) {
			if out.TOTPDevices, err = count(`DELETE FROM totp_devices WHERE user_id = $1`, id); err != nil {
				return err
			}
		}
		if store.WantsFactor(factors, store.FactorRecoveryCode) {
			if out.RecoveryCodes, err = count(`DELETE FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL`, id); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `DELETE FROM recovery_codes WHERE user_id = $1`, id); err != nil {
				return err
			}
		}
		// The lockout the removed factors shared would stop the user enrolling new ones.
		if _, err := tx.Exec(ctx, `DELETE FROM mfa_attempt_limits WHERE user_id = $1`, id); err != nil {
			return err
		}
		var recipes []string
		if store.WantsFactor(factors, store.FactorWebAuthn) {
			if out.WebAuthnCredentials, err = count(`DELETE FROM webauthn_credentials WHERE recipe_user_id IN
				(SELECT recipe_user_id FROM login_methods WHERE user_id = $1 AND recipe_id = 'webauthn')`, id); err != nil {
				return err
			}
			recipes = append(recipes, `recipe_id = 'webauthn'`)
		}
		if store.WantsFactor(factors, store.FactorOTPEmail) || store.WantsFactor(factors, store.FactorLinkEmail) {
			recipes = append(recipes, `(recipe_id = 'passwordless' AND email IS NOT NULL)`)
		}
		if store.WantsFactor(factors, store.FactorOTPPhone) || store.WantsFactor(factors, store.FactorLinkPhone) {
			recipes = append(recipes, `(recipe_id = 'passwordless' AND phone_number IS NOT NULL)`)
		}
		if len(recipes) > 0 {
			rows, err := tx.Query(ctx, `DELETE FROM login_methods WHERE user_id = $1 AND recipe_user_id <> user_id AND (`+
				strings.Join(recipes, " OR ")+`) RETURNING recipe_user_id`, id)
			if err != nil {
				return err
			}
			removed, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return err
			}
			if len(removed) > 0 {
				slices.Sort(removed)
				out.LoginMethods = removed
			}
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return store.MFAReset{}, err
	}
	if err != nil {
		return store.MFAReset{}, fmt.Errorf("postgres: reset mfa: %w", err)
	}
	return out, nil
}

func readLockouts(ctx context.Context, q querier, id string) (store.Lockouts, error) {
	var l store.Lockouts
	var locked *time.Time
	err := q.QueryRow(ctx, `SELECT failures, locked_until FROM mfa_attempt_limits WHERE user_id = $1`, id).Scan(&l.SecondFactor.Failures, &locked)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return l, err
	}
	l.SecondFactor.LockedUntil = fromNull(locked)
	rows, err := q.Query(ctx, `SELECT f.tenant_id, f.account, f.failures, f.locked_until FROM signin_failures f
		JOIN login_methods lm ON lm.tenant_id = f.tenant_id AND lm.email = f.account
		WHERE lm.user_id = $1 AND lm.recipe_id = 'emailpassword' ORDER BY f.tenant_id, f.account`, id)
	if err != nil {
		return l, err
	}
	defer rows.Close()
	for rows.Next() {
		var sl store.SignInLockout
		var until int64
		if err := rows.Scan(&sl.TenantID, &sl.Account, &sl.Failures, &until); err != nil {
			return l, err
		}
		if until != 0 {
			sl.LockedUntil = time.UnixMilli(until).UTC()
		}
		l.SignIn = append(l.SignIn, sl)
	}
	return l, rows.Err()
}

// UserLockouts implements store.UserAdmin.
func (s *Store) UserLockouts(ctx context.Context, userID string) (store.Lockouts, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	id, err := primaryID(ctx, s.pool, userID)
	if err != nil {
		return store.Lockouts{}, err
	}
	l, err := readLockouts(ctx, s.pool, id)
	if err != nil {
		return store.Lockouts{}, fmt.Errorf("postgres: user lockouts: %w", err)
	}
	return l, nil
}

// ClearLockouts implements store.UserAdmin.
func (s *Store) ClearLockouts(ctx context.Context, userID string) (store.Lockouts, error) {
	var l store.Lockouts
	err := s.tx(ctx, pgx.ReadCommitted, func(tx pgx.Tx) error {
		id, err := primaryID(ctx, tx, userID)
		if err != nil {
			return err
		}
		if l, err = readLockouts(ctx, tx, id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM mfa_attempt_limits WHERE user_id = $1`, id); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM signin_failures f USING login_methods lm
			WHERE lm.user_id = $1 AND lm.recipe_id = 'emailpassword' AND lm.tenant_id = f.tenant_id AND lm.email = f.account`, id)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return store.Lockouts{}, err
	}
	if err != nil {
		return store.Lockouts{}, fmt.Errorf("postgres: clear lockouts: %w", err)
	}
	return l, nil
}

// DeleteUser implements store.UserAdmin.
func (s *Store) DeleteUser(ctx context.Context, userID string) (store.User, error) {
	var u store.User
	err := s.tx(ctx, pgx.ReadCommitted, func(tx pgx.Tx) error {
		var err error
		if u, err = loadUser(ctx, tx, userID); err != nil {
			return err
		}
		type stmt struct {
			q    string
			args []any
		}
		for _, lm := range u.LoginMethods {
			stmts := []stmt{
				{`DELETE FROM account_tokens WHERE recipe_user_id = $1`, []any{lm.RecipeUserID}},
				{`DELETE FROM webauthn_options WHERE recipe_user_id = $1 OR (tenant_id = $2 AND email = $3 AND email <> '')`, []any{lm.RecipeUserID, lm.TenantID, lm.Email}},
			}
			if lm.RecipeID == store.RecipeEmailPassword {
				stmts = append(stmts, stmt{`DELETE FROM signin_failures WHERE tenant_id = $1 AND account = $2`, []any{lm.TenantID, lm.Email}})
			}
			if lm.Email != "" {
				stmts = append(stmts, stmt{`DELETE FROM passwordless_devices WHERE tenant_id = $1 AND email = $2`, []any{lm.TenantID, lm.Email}})
			}
			if lm.PhoneNumber != "" {
				stmts = append(stmts, stmt{`DELETE FROM passwordless_devices WHERE tenant_id = $1 AND phone_number = $2`, []any{lm.TenantID, lm.PhoneNumber}})
			}
			for _, st := range stmts {
				if _, err := tx.Exec(ctx, st.q, st.args...); err != nil {
					return err
				}
			}
		}
		// Most rows go with the user (ON DELETE CASCADE); the explicit deletes keep the
		// erasure complete should a cascade ever be missing.
		for _, q := range []string{
			`DELETE FROM refresh_tokens WHERE session_handle IN (SELECT handle FROM sessions WHERE user_id = $1)`,
			`DELETE FROM sessions WHERE user_id = $1`,
			`DELETE FROM webauthn_credentials WHERE recipe_user_id IN (SELECT recipe_user_id FROM login_methods WHERE user_id = $1)`,
			`DELETE FROM login_methods WHERE user_id = $1`,
			`DELETE FROM users WHERE id = $1`,
		} {
			if _, err := tx.Exec(ctx, q, u.ID); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, err
	}
	if err != nil {
		return store.User{}, fmt.Errorf("postgres: delete user: %w", err)
	}
	return u, nil
}

// CreateAdminKey implements store.AdminKeys.
func (s *Store) CreateAdminKey(ctx context.Context, k store.AdminKey) error {
	ctx, cancel := bound(ctx)
	defer cancel()
	_, err := s.pool.Exec(ctx, `INSERT INTO admin_keys (name, hash, created_at) VALUES ($1, $2, $3)`, k.Name, k.Hash, k.CreatedAt.UTC())
	if pgCode(err) == uniqueViolation {
		return fmt.Errorf("admin key %q: %w", k.Name, store.ErrAdminKeyExists)
	}
	if err != nil {
		return fmt.Errorf("postgres: create admin key: %w", err)
	}
	return nil
}

const adminKeyColumns = `name, hash, created_at, revoked_at`

func scanAdminKey(row pgx.Row) (store.AdminKey, error) {
	var k store.AdminKey
	var revoked *time.Time
	if err := row.Scan(&k.Name, &k.Hash, &k.CreatedAt, &revoked); err != nil {
		return k, err
	}
	k.CreatedAt, k.RevokedAt = k.CreatedAt.UTC(), fromNull(revoked)
	return k, nil
}

// ListAdminKeys implements store.AdminKeys.
func (s *Store) ListAdminKeys(ctx context.Context) ([]store.AdminKey, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT `+adminKeyColumns+` FROM admin_keys ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("postgres: list admin keys: %w", err)
	}
	defer rows.Close()
	out := []store.AdminKey{}
	for rows.Next() {
		k, err := scanAdminKey(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: list admin keys: %w", err)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// RevokeAdminKey implements store.AdminKeys.
func (s *Store) RevokeAdminKey(ctx context.Context, name string, now time.Time) (store.AdminKey, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	k, err := scanAdminKey(s.pool.QueryRow(ctx, `UPDATE admin_keys SET revoked_at = coalesce(revoked_at, $1) WHERE name = $2
		RETURNING `+adminKeyColumns, now.UTC(), name))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.AdminKey{}, fmt.Errorf("admin key %q: %w", name, store.ErrNotFound)
	}
	if err != nil {
		return store.AdminKey{}, fmt.Errorf("postgres: revoke admin key: %w", err)
	}
	return k, nil
}

// AdminKeyByHash implements store.AdminKeys.
func (s *Store) AdminKeyByHash(ctx context.Context, hash string) (store.AdminKey, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	k, err := scanAdminKey(s.pool.QueryRow(ctx, `SELECT `+adminKeyColumns+` FROM admin_keys WHERE hash = $1 AND revoked_at IS NULL`, hash))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.AdminKey{}, fmt.Errorf("admin key: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.AdminKey{}, fmt.Errorf("postgres: admin key by hash: %w", err)
	}
	return k, nil
}
