package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twofold-dev/twofold/core/store"
)

// strings1 reads the first column of every row of a query.
func strings1(ctx context.Context, q querier, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// FindUsers implements store.UserAdmin.
func (s *Store) FindUsers(ctx context.Context, q store.UserQuery) (store.UserPage, error) {
	where, arg := "", []any{}
	switch {
	case q.Email != "":
		where, arg = "lower(lm.email) = lower(?)", []any{q.Email}
	case q.PhoneNumber != "":
		where, arg = "lm.phone_number = ?", []any{q.PhoneNumber}
	case q.UserID != "":
		where, arg = "(lm.recipe_user_id = ? OR lm.user_id = ?)", []any{q.UserID, q.UserID}
	default:
		where, arg = "lm.third_party_id = ? AND lm.third_party_user_id = ?", []any{q.ThirdPartyID, q.ThirdPartyUserID}
	}
	limit := min(max(q.Limit, 1), store.MaxUserPage)
	args := append([]any{q.TenantID}, arg...)
	args = append(args, q.After, limit+1)
	ids, err := strings1(ctx, s.r, `SELECT DISTINCT lm.user_id FROM login_methods lm
		WHERE lm.tenant_id = ? AND `+where+` AND lm.user_id > ? ORDER BY lm.user_id LIMIT ?`, args...)
	if err != nil {
		return store.UserPage{}, fmt.Errorf("sqlite: find users: %w", err)
	}
	var page store.UserPage
	if len(ids) > limit {
		ids, page.Next = ids[:limit], ids[limit-1]
	}
	for _, id := range ids {
		u, err := loadUser(ctx, s.r, id)
		if errors.Is(err, store.ErrNotFound) {
			continue // erased meanwhile
		}
		if err != nil {
			return store.UserPage{}, fmt.Errorf("sqlite: find users: %w", err)
		}
		page.Users = append(page.Users, u)
	}
	return page, nil
}

// primaryID resolves a primary or recipe user id to the primary user id.
func primaryID(ctx context.Context, q querier, userID string) (string, error) {
	var id string
	err := q.QueryRowContext(ctx, `SELECT id FROM users
		WHERE id = ? OR id = (SELECT user_id FROM login_methods WHERE recipe_user_id = ?)`, userID, userID).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("user %q: %w", userID, store.ErrNotFound)
	}
	return id, err
}

// SetUserDisabled implements store.UserAdmin.
func (s *Store) SetUserDisabled(ctx context.Context, userID string, disabled bool, now time.Time) (store.User, error) {
	var u store.User
	err := s.tx(ctx, func(tx txn) error {
		id, err := primaryID(ctx, tx, userID)
		if err != nil {
			return err
		}
		if disabled {
			_, err = tx.ExecContext(ctx, `UPDATE users SET disabled_at = coalesce(disabled_at, ?) WHERE id = ?`, ms(now), id)
		} else {
			_, err = tx.ExecContext(ctx, `UPDATE users SET disabled_at = NULL WHERE id = ?`, id)
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
		return store.User{}, fmt.Errorf("sqlite: set user disabled: %w", err)
	}
	return u, nil
}

// ResetMFA implements store.UserAdmin.
func (s *Store) ResetMFA(ctx context.Context, userID string, factors []string) (store.MFAReset, error) {
	var out store.MFAReset
	err := s.tx(ctx, func(tx txn) error {
		out = store.MFAReset{}
		id, err := primaryID(ctx, tx, userID)
		if err != nil {
			return err
		}
		count := func(query string, args ...any) (int, error) {
			res, err := tx.ExecContext(ctx, query, args...)
			if err != nil {
				return 0, err
			}
			n, err := res.RowsAffected()
			return int(n), err
		}
		if store.WantsFactor(factors, store.FactorTOTP) {
			if out.TOTPDevices, err = count(`DELETE FROM totp_devices WHERE user_id = ?`, id); err != nil {
				return err
			}
		}
		if store.WantsFactor(factors, store.FactorRecoveryCode) {
			if out.RecoveryCodes, err = count(`DELETE FROM recovery_codes WHERE user_id = ? AND used_at IS NULL`, id); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM recovery_codes WHERE user_id = ?`, id); err != nil {
				return err
			}
		}
		// The lockout the removed factors shared would stop the user enrolling new ones.
		if _, err := tx.ExecContext(ctx, `DELETE FROM mfa_attempt_limits WHERE user_id = ?`, id); err != nil {
			return err
		}
		var recipes []string
		if store.WantsFactor(factors, store.FactorWebAuthn) {
			if out.WebAuthnCredentials, err = count(`DELETE FROM webauthn_credentials WHERE recipe_user_id IN
				(SELECT recipe_user_id FROM login_methods WHERE user_id = ? AND recipe_id = 'webauthn')`, id); err != nil {
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
			cond := `user_id = ? AND recipe_user_id <> user_id AND (` + strings.Join(recipes, " OR ") + `)`
			if out.LoginMethods, err = strings1(ctx, tx, `SELECT recipe_user_id FROM login_methods WHERE `+cond+` ORDER BY recipe_user_id`, id); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM login_methods WHERE `+cond, id); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return store.MFAReset{}, err
	}
	if err != nil {
		return store.MFAReset{}, fmt.Errorf("sqlite: reset mfa: %w", err)
	}
	return out, nil
}

func readLockouts(ctx context.Context, q querier, id string) (store.Lockouts, error) {
	var l store.Lockouts
	var locked sql.NullInt64
	err := q.QueryRowContext(ctx, `SELECT failures, locked_until FROM mfa_attempt_limits WHERE user_id = ?`, id).Scan(&l.SecondFactor.Failures, &locked)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return l, err
	}
	l.SecondFactor.LockedUntil = nullMS(locked)
	rows, err := q.QueryContext(ctx, `SELECT f.tenant_id, f.account, f.failures, f.locked_until FROM signin_failures f
		JOIN login_methods lm ON lm.tenant_id = f.tenant_id AND lm.email = f.account
		WHERE lm.user_id = ? AND lm.recipe_id = 'emailpassword' ORDER BY f.tenant_id, f.account`, id)
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
			sl.LockedUntil = fromMS(until)
		}
		l.SignIn = append(l.SignIn, sl)
	}
	return l, rows.Err()
}

// UserLockouts implements store.UserAdmin.
func (s *Store) UserLockouts(ctx context.Context, userID string) (store.Lockouts, error) {
	id, err := primaryID(ctx, s.r, userID)
	if err != nil {
		return store.Lockouts{}, err
	}
	l, err := readLockouts(ctx, s.r, id)
	if err != nil {
		return store.Lockouts{}, fmt.Errorf("sqlite: user lockouts: %w", err)
	}
	return l, nil
}

// ClearLockouts implements store.UserAdmin.
func (s *Store) ClearLockouts(ctx context.Context, userID string) (store.Lockouts, error) {
	var l store.Lockouts
	err := s.tx(ctx, func(tx txn) error {
		id, err := primaryID(ctx, tx, userID)
		if err != nil {
			return err
		}
		if l, err = readLockouts(ctx, tx, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM mfa_attempt_limits WHERE user_id = ?`, id); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM signin_failures WHERE EXISTS (SELECT 1 FROM login_methods lm
			WHERE lm.user_id = ? AND lm.recipe_id = 'emailpassword' AND lm.tenant_id = signin_failures.tenant_id AND lm.email = signin_failures.account)`, id)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return store.Lockouts{}, err
	}
	if err != nil {
		return store.Lockouts{}, fmt.Errorf("sqlite: clear lockouts: %w", err)
	}
	return l, nil
}

// DeleteUser implements store.UserAdmin.
func (s *Store) DeleteUser(ctx context.Context, userID string) (store.User, error) {
	var u store.User
	err := s.tx(ctx, func(tx txn) error {
		var err error
		if u, err = loadUser(ctx, tx, userID); err != nil {
			return err
		}
		for _, lm := range u.LoginMethods {
			stmts := []struct {
				q    string
				args []any
			}{
				{`DELETE FROM account_tokens WHERE recipe_user_id = ?`, []any{lm.RecipeUserID}},
				{`DELETE FROM webauthn_options WHERE recipe_user_id = ? OR (tenant_id = ? AND email = ? AND email <> '')`, []any{lm.RecipeUserID, lm.TenantID, lm.Email}},
			}
			if lm.RecipeID == store.RecipeEmailPassword {
				stmts = append(stmts, struct {
					q    string
					args []any
				}{`DELETE FROM signin_failures WHERE tenant_id = ? AND account = ?`, []any{lm.TenantID, lm.Email}})
			}
			if lm.Email != "" {
				stmts = append(stmts, struct {
					q    string
					args []any
				}{`DELETE FROM passwordless_devices WHERE tenant_id = ? AND email = ?`, []any{lm.TenantID, lm.Email}})
			}
			if lm.PhoneNumber != "" {
				stmts = append(stmts, struct {
					q    string
					args []any
				}{`DELETE FROM passwordless_devices WHERE tenant_id = ? AND phone_number = ?`, []any{lm.TenantID, lm.PhoneNumber}})
			}
			for _, st := range stmts {
				if _, err := tx.ExecContext(ctx, st.q, st.args...); err != nil {
					return err
				}
			}
		}
		// Sessions, refresh tokens, login methods, passkeys, metadata, TOTP devices, recovery
		// codes, attempt limits and policy starts go with the user (ON DELETE CASCADE); the
		// explicit deletes keep the erasure complete should a cascade ever be missing.
		for _, q := range []string{
			`DELETE FROM refresh_tokens WHERE session_handle IN (SELECT handle FROM sessions WHERE user_id = ?)`,
			`DELETE FROM sessions WHERE user_id = ?`,
			`DELETE FROM webauthn_credentials WHERE recipe_user_id IN (SELECT recipe_user_id FROM login_methods WHERE user_id = ?)`,
			`DELETE FROM login_methods WHERE user_id = ?`,
			`DELETE FROM users WHERE id = ?`,
		} {
			if _, err := tx.ExecContext(ctx, q, u.ID); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, err
	}
	if err != nil {
		return store.User{}, fmt.Errorf("sqlite: delete user: %w", err)
	}
	return u, nil
}

// CreateAdminKey implements store.AdminKeys.
func (s *Store) CreateAdminKey(ctx context.Context, k store.AdminKey) error {
	err := s.tx(ctx, func(tx txn) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO admin_keys (name, hash, created_at) VALUES (?, ?, ?)`, k.Name, k.Hash, ms(k.CreatedAt))
		return err
	})
	if isUniqueViolation(err) {
		return fmt.Errorf("admin key %q: %w", k.Name, store.ErrAdminKeyExists)
	}
	if err != nil {
		return fmt.Errorf("sqlite: create admin key: %w", err)
	}
	return nil
}

const adminKeyColumns = `name, hash, created_at, revoked_at`

func scanAdminKey(sc interface{ Scan(...any) error }) (store.AdminKey, error) {
	var k store.AdminKey
	var created int64
	var revoked sql.NullInt64
	if err := sc.Scan(&k.Name, &k.Hash, &created, &revoked); err != nil {
		return k, err
	}
	k.CreatedAt, k.RevokedAt = fromMS(created), nullMS(revoked)
	return k, nil
}

// ListAdminKeys implements store.AdminKeys.
func (s *Store) ListAdminKeys(ctx context.Context) ([]store.AdminKey, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+adminKeyColumns+` FROM admin_keys ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list admin keys: %w", err)
	}
	defer rows.Close()
	out := []store.AdminKey{}
	for rows.Next() {
		k, err := scanAdminKey(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list admin keys: %w", err)
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// RevokeAdminKey implements store.AdminKeys.
func (s *Store) RevokeAdminKey(ctx context.Context, name string, now time.Time) (store.AdminKey, error) {
	var k store.AdminKey
	err := s.tx(ctx, func(tx txn) error {
		if _, err := tx.ExecContext(ctx, `UPDATE admin_keys SET revoked_at = coalesce(revoked_at, ?) WHERE name = ?`, ms(now), name); err != nil {
			return err
		}
		var err error
		k, err = scanAdminKey(tx.QueryRowContext(ctx, `SELECT `+adminKeyColumns+` FROM admin_keys WHERE name = ?`, name))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("admin key %q: %w", name, store.ErrNotFound)
		}
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return store.AdminKey{}, err
	}
	if err != nil {
		return store.AdminKey{}, fmt.Errorf("sqlite: revoke admin key: %w", err)
	}
	return k, nil
}

// AdminKeyByHash implements store.AdminKeys.
func (s *Store) AdminKeyByHash(ctx context.Context, hash string) (store.AdminKey, error) {
	k, err := scanAdminKey(s.r.QueryRowContext(ctx, `SELECT `+adminKeyColumns+` FROM admin_keys WHERE hash = ? AND revoked_at IS NULL`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return store.AdminKey{}, fmt.Errorf("admin key: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.AdminKey{}, fmt.Errorf("sqlite: admin key by hash: %w", err)
	}
	return k, nil
}
