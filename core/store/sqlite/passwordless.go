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
	err := s.tx(ctx, func(tx txn) (err error) {
		d, out, err = consumePasswordlessCode(ctx, tx, tenantID, preAuthSessionID, consume)
		return err
	})
	if err != nil {
		return passwordless.Device{}, passwordless.Outcome{}, consumeError(err)
	}
	return d, out, nil
}

func consumePasswordlessCode(ctx context.Context, tx txn, tenantID, preAuthSessionID string,
	consume func(d *passwordless.Device) (passwordless.Outcome, error)) (passwordless.Device, passwordless.Outcome, error) {
	d, err := loadDevice(ctx, tx, tenantID, preAuthSessionID)
	if err != nil {
		return passwordless.Device{}, passwordless.Outcome{}, err
	}
	out, err := consume(&d)
	if err != nil {
		return passwordless.Device{}, passwordless.Outcome{}, err
	}
	if out.Done() {
		_, err = tx.ExecContext(ctx, `DELETE FROM passwordless_devices WHERE tenant_id = ? AND pre_auth_session_id = ?`, tenantID, preAuthSessionID)
	} else {
		_, err = tx.ExecContext(ctx, `UPDATE passwordless_devices SET failed_attempts = ? WHERE tenant_id = ? AND pre_auth_session_id = ?`,
			d.FailedAttempts, tenantID, preAuthSessionID)
	}
	if err != nil {
		return passwordless.Device{}, passwordless.Outcome{}, err
	}
	return d, out, nil
}

// consumeError is the error ConsumePasswordlessCode returns for err.
func consumeError(err error) error {
	if err == nil || errors.Is(err, store.ErrNotFound) {
		return err
	}
	return fmt.Errorf("sqlite: consume passwordless code: %w", err)
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
	column, value, err := passwordlessContact(n)
	if err != nil {
		return store.User{}, "", false, err
	}
	// A sign-in (the login method exists) needs no write transaction: read first, in one
	// query, and queue for the single writer only to create.
	u, recipeUserID, err := passwordlessOwner(ctx, s.r, column, n.TenantID, value)
	if err == nil {
		return u, recipeUserID, false, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return store.User{}, "", false, signInUpError(err)
	}
	var created bool
	err = s.tx(ctx, func(tx txn) (err error) {
		u, recipeUserID, created, err = signInUpPasswordless(ctx, tx, n, column, value)
		return err
	})
	if err != nil {
		return store.User{}, "", false, signInUpError(err)
	}
	return u, recipeUserID, created, nil
}

// passwordlessContact returns the login_methods column of n's contact and its value.
func passwordlessContact(n store.NewPasswordlessUser) (column, value string, err error) {
	if (n.Email == "") == (n.PhoneNumber == "") {
		return "", "", errors.New("sqlite: passwordless user needs exactly one of email and phone number")
	}
	if n.PhoneNumber != "" {
		return "phone_number", n.PhoneNumber, nil
	}
	return "email", n.Email, nil
}

// signInUpPasswordless is SignInUpPasswordless inside tx: the single writer's transaction,
// so no other request creates the login method between the read and the insert.
func signInUpPasswordless(ctx context.Context, tx txn, n store.NewPasswordlessUser, column, value string) (store.User, string, bool, error) {
	u, recipeUserID, err := passwordlessOwner(ctx, tx, column, n.TenantID, value)
	if !errors.Is(err, store.ErrNotFound) {
		return u, recipeUserID, false, err
	}
	owner := n.UserID
	if owner == "" {
		owner = n.RecipeUserID
		if _, err := tx.ExecContext(ctx, `INSERT INTO users (id, time_joined, is_primary) VALUES (?, ?, 1)`, owner, ms(n.Now)); err != nil {
			return store.User{}, "", false, err
		}
	} else if _, err := loadUser(ctx, tx, owner); err != nil {
		return store.User{}, "", false, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO login_methods (recipe_user_id, user_id, recipe_id, tenant_id, email, phone_number, verified, time_joined)
		VALUES (?, ?, 'passwordless', ?, ?, ?, 1, ?)`, n.RecipeUserID, owner, n.TenantID, nullable(n.Email), nullable(n.PhoneNumber), ms(n.Now)); err != nil {
		return store.User{}, "", false, err
	}
	u, err = loadUser(ctx, tx, n.RecipeUserID)
	return u, n.RecipeUserID, true, err
}

// signInUpError is the error SignInUpPasswordless returns for err.
func signInUpError(err error) error {
	if err == nil || errors.Is(err, store.ErrNotFound) {
		return err
	}
	return fmt.Errorf("sqlite: sign in or up with passwordless: %w", err)
}

// passwordlessOwner reads, in one query, the user owning the tenant's passwordless login
// method whose column (email or phone_number) is value, with all its login methods, and the
// login method's id; ErrNotFound when there is none.
func passwordlessOwner(ctx context.Context, q querier, column, tenantID, value string) (store.User, string, error) {
	rows, err := q.QueryContext(ctx, `SELECT me.recipe_user_id, u.id, u.time_joined, u.is_primary, u.disabled_at,
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
		var disabled sql.NullInt64
		if err := rows.Scan(&recipeUserID, &u.ID, &joined, &u.IsPrimary, &disabled, &lm.RecipeUserID, &lm.RecipeID, &lm.TenantID, &lm.Email,
			&lm.PhoneNumber, &lm.ThirdPartyID, &lm.ThirdPartyUserID, &lm.Verified, &lmJoined); err != nil {
			return store.User{}, "", err
		}
		u.TimeJoined, lm.TimeJoined, u.DisabledAt = fromMS(joined), fromMS(lmJoined), nullMS(disabled)
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
