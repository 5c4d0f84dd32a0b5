package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/twofold-dev/twofold/core/passwordless"
	"github.com/twofold-dev/twofold/core/store"
)

var _ store.AccountFlows = (*Store)(nil)

func insertCode(ctx context.Context, tx txn, tenantID, preAuthSessionID string, c passwordless.Code) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO passwordless_codes (id, tenant_id, pre_auth_session_id, user_input_code_hash, link_code_hash, created_at)
		VALUES (?, ?, ?, ?, ?, ?)`, c.ID, tenantID, preAuthSessionID, nullable(c.UserInputCodeHash), nullable(c.LinkCodeHash), ms(c.CreatedAt))
	return err
}

// CreatePasswordlessDevice implements store.AccountFlows.
func (s *Store) CreatePasswordlessDevice(ctx context.Context, tenantID string, d passwordless.Device) error {
	err := s.tx(ctx, func(tx txn) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO passwordless_devices (tenant_id, pre_auth_session_id, email, phone_number, flow_type, failed_attempts)
			VALUES (?, ?, ?, ?, ?, ?)`, tenantID, d.PreAuthSessionID, nullable(d.Email), nullable(d.PhoneNumber), string(d.Flow), d.FailedAttempts); err != nil {
			return err
		}
		for _, c := range d.Codes {
			if err := insertCode(ctx, tx, tenantID, d.PreAuthSessionID, c); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: create passwordless device: %w", err)
	}
	return nil
}

func loadDevice(ctx context.Context, q querier, tenantID, preAuthSessionID string) (passwordless.Device, error) {
	// One query for the device and its codes: a consume is on the hot path.
	rows, err := q.QueryContext(ctx, `SELECT coalesce(d.email, ''), coalesce(d.phone_number, ''), d.flow_type, d.failed_attempts,
		c.id, coalesce(c.user_input_code_hash, ''), coalesce(c.link_code_hash, ''), c.created_at
		FROM passwordless_devices d LEFT JOIN passwordless_codes c
		ON c.tenant_id = d.tenant_id AND c.pre_auth_session_id = d.pre_auth_session_id
		WHERE d.tenant_id = ? AND d.pre_auth_session_id = ? ORDER BY c.created_at, c.id`, tenantID, preAuthSessionID)
	if err != nil {
		return passwordless.Device{}, err
	}
	defer rows.Close()
	d := passwordless.Device{PreAuthSessionID: preAuthSessionID}
	found := false
	for rows.Next() {
		var flow string
		var id sql.NullString
		var created sql.NullInt64
		var c passwordless.Code
		if err := rows.Scan(&d.Email, &d.PhoneNumber, &flow, &d.FailedAttempts, &id, &c.UserInputCodeHash, &c.LinkCodeHash, &created); err != nil {
			return passwordless.Device{}, err
		}
		found, d.Flow = true, passwordless.FlowType(flow)
		if id.Valid {
			c.ID, c.CreatedAt = id.String, fromMS(created.Int64)
			d.Codes = append(d.Codes, c)
		}
	}
	if err := rows.Err(); err != nil {
		return passwordless.Device{}, err
	}
	if !found {
		return passwordless.Device{}, fmt.Errorf("passwordless device in tenant %q: %w", tenantID, store.ErrNotFound)
	}
	return d, nil
}

// GetPasswordlessDevice implements store.AccountFlows.
func (s *Store) GetPasswordlessDevice(ctx context.Context, tenantID, preAuthSessionID string) (passwordless.Device, error) {
	d, err := loadDevice(ctx, s.r, tenantID, preAuthSessionID)
	if errors.Is(err, store.ErrNotFound) {
		return passwordless.Device{}, err
	}
	if err != nil {
		return passwordless.Device{}, fmt.Errorf("sqlite: get passwordless device: %w", err)
	}
	return d, nil
}

// AddPasswordlessCode implements store.AccountFlows.
func (s *Store) AddPasswordlessCode(ctx context.Context, tenantID, preAuthSessionID string, c passwordless.Code) error {
	err := s.tx(ctx, func(tx txn) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM passwordless_devices WHERE tenant_id = ? AND pre_auth_session_id = ?`,
			tenantID, preAuthSessionID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("passwordless device in tenant %q: %w", tenantID, store.ErrNotFound)
		}
		return insertCode(ctx, tx, tenantID, preAuthSessionID, c)
	})
	if errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err != nil {
		return fmt.Errorf("sqlite: add passwordless code: %w", err)
	}
	return nil
}

// ConsumePasswordlessCode implements store.AccountFlows. The write transaction (BEGIN
// IMMEDIATE on the single writer) serialises concurrent consumes of a device.
func (s *Store) ConsumePasswordlessCode(ctx context.Context, tenantID, preAuthSessionID string,
	consume func(d *passwordless.Device) (passwordless.Outcome, error)) (passwordless.Device, passwordless.Outcome, error) {
	var d passwordless.Device
	var out passwordless.Outcome
	err := s.tx(ctx, func(tx txn) error {
		var err error
		if d, err = loadDevice(ctx, tx, tenantID, preAuthSessionID); err != nil {
			return err
		}
		if out, err = consume(&d); err != nil {
			return err
		}
		if out.Done() {
			_, err = tx.ExecContext(ctx, `DELETE FROM passwordless_devices WHERE tenant_id = ? AND pre_auth_session_id = ?`, tenantID, preAuthSessionID)
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE passwordless_devices SET failed_attempts = ? WHERE tenant_id = ? AND pre_auth_session_id = ?`,
			d.FailedAttempts, tenantID, preAuthSessionID)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return passwordless.Device{}, passwordless.Outcome{}, err
	}
	if err != nil {
		return passwordless.Device{}, passwordless.Outcome{}, fmt.Errorf("sqlite: consume passwordless code: %w", err)
	}
	return d, out, nil
}

// DeletePasswordlessDevicesBefore implements store.AccountFlows.
func (s *Store) DeletePasswordlessDevicesBefore(ctx context.Context, t time.Time) (int, error) {
	var n int64
	err := s.tx(ctx, func(tx txn) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM passwordless_devices WHERE NOT EXISTS (SELECT 1 FROM passwordless_codes c
			WHERE c.tenant_id = passwordless_devices.tenant_id AND c.pre_auth_session_id = passwordless_devices.pre_auth_session_id
			AND c.created_at > ?)`, ms(t))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete expired passwordless devices: %w", err)
	}
	return int(n), nil
}

// SignInUpPasswordless implements store.AccountFlows.
func (s *Store) SignInUpPasswordless(ctx context.Context, n store.NewPasswordlessUser) (store.User, string, bool, error) {
	if (n.Email == "") == (n.PhoneNumber == "") {
		return store.User{}, "", false, errors.New("sqlite: passwordless user needs exactly one of email and phone number")
	}
	column, value := "email", n.Email
	if n.PhoneNumber != "" {
		column, value = "phone_number", n.PhoneNumber
	}
	const find = `SELECT recipe_user_id FROM login_methods WHERE recipe_id = 'passwordless' AND tenant_id = ? AND `
	// A sign-in (the login method exists) needs no write transaction: read first, in one
	// query, and queue for the single writer only to create.
	u, recipeUserID, err := s.passwordlessOwner(ctx, column, n.TenantID, value)
	if err == nil {
		return u, recipeUserID, false, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return store.User{}, "", false, fmt.Errorf("sqlite: sign in or up with passwordless: %w", err)
	}
	var created bool
	err = s.tx(ctx, func(tx txn) error {
		err := tx.QueryRowContext(ctx, find+column+` = ?`, n.TenantID, value).Scan(&recipeUserID)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			created, recipeUserID = true, n.RecipeUserID
			owner := n.UserID
			if owner == "" {
				owner = n.RecipeUserID
				if _, err := tx.ExecContext(ctx, `INSERT INTO users (id, time_joined, is_primary) VALUES (?, ?, 1)`, owner, ms(n.Now)); err != nil {
					return err
				}
			} else if _, err := loadUser(ctx, tx, owner); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO login_methods (recipe_user_id, user_id, recipe_id, tenant_id, email, phone_number, verified, time_joined)
				VALUES (?, ?, 'passwordless', ?, ?, ?, 1, ?)`, recipeUserID, owner, n.TenantID, nullable(n.Email), nullable(n.PhoneNumber), ms(n.Now)); err != nil {
				return err
			}
		case err != nil:
			return err
		}
		u, err = loadUser(ctx, tx, recipeUserID)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, "", false, err
	}
	if err != nil {
		return store.User{}, "", false, fmt.Errorf("sqlite: sign in or up with passwordless: %w", err)
	}
	return u, recipeUserID, created, nil
}

// passwordlessOwner reads, in one query, the user owning the tenant's passwordless login
// method whose column (email or phone_number) is value, with all its login methods, and the
// login method's id; ErrNotFound when there is none.
func (s *Store) passwordlessOwner(ctx context.Context, column, tenantID, value string) (store.User, string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT me.recipe_user_id, u.id, u.time_joined, u.is_primary,
		lm.recipe_user_id, lm.recipe_id, lm.tenant_id, coalesce(lm.email, ''), coalesce(lm.phone_number, ''),
		coalesce(lm.third_party_id, ''), coalesce(lm.third_party_user_id, ''), lm.verified, lm.time_joined
		FROM login_methods me JOIN users u ON u.id = me.user_id JOIN login_methods lm ON lm.user_id = u.id
		WHERE me.recipe_id = 'passwordless' AND me.tenant_id = ? AND me.`+column+` = ?
		ORDER BY lm.time_joined, lm.recipe_user_id`, tenantID, value)
	if err != nil {
		return store.User{}, "", err
	}
	defer rows.Close()
	var u store.User
	var recipeUserID string
	for rows.Next() {
		var lm store.LoginMethod
		var joined, lmJoined int64
		if err := rows.Scan(&recipeUserID, &u.ID, &joined, &u.IsPrimary, &lm.RecipeUserID, &lm.RecipeID, &lm.TenantID, &lm.Email,
			&lm.PhoneNumber, &lm.ThirdPartyID, &lm.ThirdPartyUserID, &lm.Verified, &lmJoined); err != nil {
			return store.User{}, "", err
		}
		u.TimeJoined, lm.TimeJoined = fromMS(joined), fromMS(lmJoined)
		u.LoginMethods = append(u.LoginMethods, lm)
	}
	if err := rows.Err(); err != nil {
		return store.User{}, "", err
	}
	if recipeUserID == "" {
		return store.User{}, "", fmt.Errorf("passwordless login method in tenant %q: %w", tenantID, store.ErrNotFound)
	}
	return u, recipeUserID, nil
}

// updateLoginMethod runs an UPDATE of one login method and returns its user, or ErrNotFound
// when the UPDATE matched nothing.
func (s *Store) updateLoginMethod(ctx context.Context, what, recipeUserID, query string, args ...any) (store.User, error) {
	var u store.User
	err := s.tx(ctx, func(tx txn) error {
		res, err := tx.ExecContext(ctx, query, args...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			if err == nil {
				err = fmt.Errorf("login method %q: %w", recipeUserID, store.ErrNotFound)
			}
			return err
		}
		u, err = loadUser(ctx, tx, recipeUserID)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, err
	}
	if err != nil {
		return store.User{}, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	return u, nil
}

// SetEmailVerified implements store.AccountFlows.
func (s *Store) SetEmailVerified(ctx context.Context, recipeUserID, email string) (store.User, error) {
	return s.updateLoginMethod(ctx, "set email verified", recipeUserID,
		`UPDATE login_methods SET verified = 1 WHERE recipe_user_id = ? AND email = ?`, recipeUserID, email)
}

// SetPasswordHash implements store.AccountFlows.
func (s *Store) SetPasswordHash(ctx context.Context, recipeUserID, passwordHash string) (store.User, error) {
	return s.updateLoginMethod(ctx, "set password hash", recipeUserID,
		`UPDATE login_methods SET password_hash = ? WHERE recipe_user_id = ? AND recipe_id = 'emailpassword'`, passwordHash, recipeUserID)
}

// CreateAccountToken implements store.AccountFlows.
func (s *Store) CreateAccountToken(ctx context.Context, tok store.AccountToken) error {
	err := s.tx(ctx, func(tx txn) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO account_tokens (hash, kind, tenant_id, recipe_user_id, email, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, tok.Hash, tok.Kind, tok.TenantID, tok.RecipeUserID, tok.Email, ms(tok.CreatedAt), ms(tok.ExpiresAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: create %s token: %w", tok.Kind, err)
	}
	return nil
}

// GetAccountToken implements store.AccountFlows.
func (s *Store) GetAccountToken(ctx context.Context, kind, hash string, now time.Time) (store.AccountToken, error) {
	tok := store.AccountToken{Hash: hash, Kind: kind}
	var created, expires int64
	err := s.r.QueryRowContext(ctx, `SELECT tenant_id, recipe_user_id, email, created_at, expires_at FROM account_tokens
		WHERE hash = ? AND kind = ? AND expires_at > ?`, hash, kind, ms(now)).Scan(&tok.TenantID, &tok.RecipeUserID, &tok.Email, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return store.AccountToken{}, fmt.Errorf("%s token: %w", kind, store.ErrNotFound)
	}
	if err != nil {
		return store.AccountToken{}, fmt.Errorf("sqlite: get %s token: %w", kind, err)
	}
	tok.CreatedAt, tok.ExpiresAt = fromMS(created), fromMS(expires)
	return tok, nil
}

// ConsumeAccountToken implements store.AccountFlows.
func (s *Store) ConsumeAccountToken(ctx context.Context, kind, hash string, now time.Time) (store.AccountToken, error) {
	tok := store.AccountToken{Hash: hash, Kind: kind}
	expired := false
	err := s.tx(ctx, func(tx txn) error {
		var created, expires int64
		err := tx.QueryRowContext(ctx, `SELECT tenant_id, recipe_user_id, email, created_at, expires_at FROM account_tokens
			WHERE hash = ? AND kind = ?`, hash, kind).Scan(&tok.TenantID, &tok.RecipeUserID, &tok.Email, &created, &expires)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%s token: %w", kind, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		tok.CreatedAt, tok.ExpiresAt = fromMS(created), fromMS(expires)
		if !now.Before(tok.ExpiresAt) {
			// An expired token is deleted alone, and the deletion committed: the user's newer
			// tokens stay usable.
			expired = true
			_, err := tx.ExecContext(ctx, `DELETE FROM account_tokens WHERE hash = ?`, hash)
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM account_tokens WHERE kind = ? AND recipe_user_id = ?`, kind, tok.RecipeUserID)
		return err
	})
	if err == nil && expired {
		return store.AccountToken{}, fmt.Errorf("%s token expired at %s: %w", kind, tok.ExpiresAt.Format(time.RFC3339), store.ErrNotFound)
	}
	if errors.Is(err, store.ErrNotFound) {
		return store.AccountToken{}, err
	}
	if err != nil {
		return store.AccountToken{}, fmt.Errorf("sqlite: consume %s token: %w", kind, err)
	}
	return tok, nil
}

// DeleteAccountTokensBefore implements store.AccountFlows.
func (s *Store) DeleteAccountTokensBefore(ctx context.Context, t time.Time) (int, error) {
	var n int64
	err := s.tx(ctx, func(tx txn) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM account_tokens WHERE expires_at <= ?`, ms(t))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete expired account tokens: %w", err)
	}
	return int(n), nil
}
