package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/twofold-dev/twofold/core/passwordless"
	"github.com/twofold-dev/twofold/core/store"
)

var _ store.AccountFlows = (*Store)(nil)

func insertCode(ctx context.Context, tx pgx.Tx, tenantID, preAuthSessionID string, c passwordless.Code) error {
	_, err := tx.Exec(ctx, `INSERT INTO passwordless_codes (id, tenant_id, pre_auth_session_id, user_input_code_hash, link_code_hash, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, c.ID, tenantID, preAuthSessionID, nullable(c.UserInputCodeHash), nullable(c.LinkCodeHash), c.CreatedAt)
	return err
}

// CreatePasswordlessDevice implements store.AccountFlows.
func (s *Store) CreatePasswordlessDevice(ctx context.Context, tenantID string, d passwordless.Device) error {
	err := s.tx(ctx, pgx.ReadCommitted, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO passwordless_devices (tenant_id, pre_auth_session_id, email, phone_number, flow_type, failed_attempts)
			VALUES ($1, $2, $3, $4, $5, $6)`, tenantID, d.PreAuthSessionID, nullable(d.Email), nullable(d.PhoneNumber), string(d.Flow), d.FailedAttempts); err != nil {
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
		return fmt.Errorf("postgres: create passwordless device: %w", err)
	}
	return nil
}

// loadDevice reads a device and its codes in one query.
func loadDevice(ctx context.Context, q querier, tenantID, preAuthSessionID string) (passwordless.Device, error) {
	query := `SELECT coalesce(d.email, ''), coalesce(d.phone_number, ''), d.flow_type, d.failed_attempts,
		c.id, coalesce(c.user_input_code_hash, ''), coalesce(c.link_code_hash, ''), c.created_at
		FROM passwordless_devices d LEFT JOIN passwordless_codes c
		ON c.tenant_id = d.tenant_id AND c.pre_auth_session_id = d.pre_auth_session_id
		WHERE d.tenant_id = $1 AND d.pre_auth_session_id = $2 ORDER BY c.created_at, c.id`
	rows, err := q.Query(ctx, query, tenantID, preAuthSessionID)
	if err != nil {
		return passwordless.Device{}, err
	}
	defer rows.Close()
	d := passwordless.Device{PreAuthSessionID: preAuthSessionID}
	found := false
	for rows.Next() {
		var flow string
		var id *string
		var created *time.Time
		var c passwordless.Code
		if err := rows.Scan(&d.Email, &d.PhoneNumber, &flow, &d.FailedAttempts, &id, &c.UserInputCodeHash, &c.LinkCodeHash, &created); err != nil {
			return passwordless.Device{}, err
		}
		found, d.Flow = true, passwordless.FlowType(flow)
		if id != nil {
			c.ID, c.CreatedAt = *id, fromNull(created)
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
	ctx, cancel := bound(ctx)
	defer cancel()
	d, err := loadDevice(ctx, s.pool, tenantID, preAuthSessionID)
	if errors.Is(err, store.ErrNotFound) {
		return passwordless.Device{}, err
	}
	if err != nil {
		return passwordless.Device{}, fmt.Errorf("postgres: get passwordless device: %w", err)
	}
	return d, nil
}

// AddPasswordlessCode implements store.AccountFlows. The device's row is share-locked first,
// so a consume that deletes it waits for the code or the code finds it gone.
func (s *Store) AddPasswordlessCode(ctx context.Context, tenantID, preAuthSessionID string, c passwordless.Code) error {
	err := s.tx(ctx, pgx.ReadCommitted, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `SELECT 1 FROM passwordless_devices WHERE tenant_id = $1 AND pre_auth_session_id = $2 FOR KEY SHARE`,
			tenantID, preAuthSessionID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("passwordless device in tenant %q: %w", tenantID, store.ErrNotFound)
		}
		return insertCode(ctx, tx, tenantID, preAuthSessionID, c)
	})
	if errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err != nil {
		return fmt.Errorf("postgres: add passwordless code: %w", err)
	}
	return nil
}

// ConsumePasswordlessCode implements store.AccountFlows. The device's row is locked while
// consume runs (SELECT ... FOR UPDATE), so concurrent consumes of one device on any replica
// apply one after the other: each counts its failed attempt on top of the previous one's,
// and a code is accepted once.
func (s *Store) ConsumePasswordlessCode(ctx context.Context, tenantID, preAuthSessionID string,
	consume func(d *passwordless.Device) (passwordless.Outcome, error)) (passwordless.Device, passwordless.Outcome, error) {
	var d passwordless.Device
	var out passwordless.Outcome
	err := s.tx(ctx, pgx.ReadCommitted, func(tx pgx.Tx) (err error) {
		d, out, err = consumePasswordlessCode(ctx, tx, tenantID, preAuthSessionID, consume)
		return err
	})
	if err != nil {
		return passwordless.Device{}, passwordless.Outcome{}, consumeError(err)
	}
	return d, out, nil
}

// consumePasswordlessCode is ConsumePasswordlessCode inside tx; an error from consume comes
// back as errDecided.
func consumePasswordlessCode(ctx context.Context, tx pgx.Tx, tenantID, preAuthSessionID string,
	consume func(d *passwordless.Device) (passwordless.Outcome, error)) (passwordless.Device, passwordless.Outcome, error) {
	// Lock first, then read in a statement of its own: in READ COMMITTED a locking read
	// that waited re-checks only the locked row, so codes joined into it could be stale.
	tag, err := tx.Exec(ctx, `SELECT 1 FROM passwordless_devices WHERE tenant_id = $1 AND pre_auth_session_id = $2 FOR UPDATE`,
		tenantID, preAuthSessionID)
	if err != nil {
		return passwordless.Device{}, passwordless.Outcome{}, err
	}
	if tag.RowsAffected() == 0 {
		return passwordless.Device{}, passwordless.Outcome{}, fmt.Errorf("passwordless device in tenant %q: %w", tenantID, store.ErrNotFound)
	}
	d, err := loadDevice(ctx, tx, tenantID, preAuthSessionID)
	if err != nil {
		return passwordless.Device{}, passwordless.Outcome{}, err
	}
	out, err := consume(&d)
	if err != nil {
		return passwordless.Device{}, passwordless.Outcome{}, errDecided{err}
	}
	if out.Done() {
		_, err = tx.Exec(ctx, `DELETE FROM passwordless_devices WHERE tenant_id = $1 AND pre_auth_session_id = $2`, tenantID, preAuthSessionID)
	} else {
		_, err = tx.Exec(ctx, `UPDATE passwordless_devices SET failed_attempts = $3 WHERE tenant_id = $1 AND pre_auth_session_id = $2`,
			tenantID, preAuthSessionID, d.FailedAttempts)
	}
	if err != nil {
		return passwordless.Device{}, passwordless.Outcome{}, err
	}
	return d, out, nil
}

// consumeError is the error ConsumePasswordlessCode returns for err.
func consumeError(err error) error {
	if err, decided := unwrapDecided(err); decided {
		return fmt.Errorf("postgres: consume passwordless code: %w", err)
	}
	if err == nil || errors.Is(err, store.ErrNotFound) || retryable(err) {
		return err
	}
	return fmt.Errorf("postgres: consume passwordless code: %w", err)
}

// DeletePasswordlessDevicesBefore implements store.AccountFlows.
func (s *Store) DeletePasswordlessDevicesBefore(ctx context.Context, t time.Time) (int, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `DELETE FROM passwordless_devices d WHERE NOT EXISTS (SELECT 1 FROM passwordless_codes c
		WHERE c.tenant_id = d.tenant_id AND c.pre_auth_session_id = d.pre_auth_session_id AND c.created_at > $1)`, t)
	if err != nil {
		return 0, fmt.Errorf("postgres: delete expired passwordless devices: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// SignInUpPasswordless implements store.AccountFlows. A sign-in (the login method exists) is
// one read; a sign-up inserts, and when another replica created the same contact's login
// method a moment before, the unique index refuses the insert and the transaction runs again
// to find it.
func (s *Store) SignInUpPasswordless(ctx context.Context, n store.NewPasswordlessUser) (store.User, string, bool, error) {
	column, value, err := passwordlessContact(n)
	if err != nil {
		return store.User{}, "", false, err
	}
	ctx, cancel := bound(ctx)
	defer cancel()
	// A sign-in (the login method exists) is one read: the owner with its login methods.
	u, recipeUserID, err := passwordlessOwner(ctx, s.pool, column, n.TenantID, value)
	if err == nil {
		return u, recipeUserID, false, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return store.User{}, "", false, signInUpError(err)
	}
	var created bool
	err = s.tx(ctx, pgx.ReadCommitted, func(tx pgx.Tx) (err error) {
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
		return "", "", errors.New("postgres: passwordless user needs exactly one of email and phone number")
	}
	if n.PhoneNumber != "" {
		return "phone_number", n.PhoneNumber, nil
	}
	return "email", n.Email, nil
}

// signInUpPasswordless is SignInUpPasswordless inside tx. When another replica created the
// same contact's login method a moment before, the unique index refuses the insert and
// errRetry runs the transaction again to find it.
func signInUpPasswordless(ctx context.Context, tx pgx.Tx, n store.NewPasswordlessUser, column, value string) (store.User, string, bool, error) {
	u, recipeUserID, err := passwordlessOwner(ctx, tx, column, n.TenantID, value)
	if !errors.Is(err, store.ErrNotFound) {
		return u, recipeUserID, false, err
	}
	owner := n.UserID
	if owner == "" {
		owner = n.RecipeUserID
		if _, err := tx.Exec(ctx, `INSERT INTO users (id, time_joined, is_primary) VALUES ($1, $2, TRUE)`, owner, n.Now); err != nil {
			return store.User{}, "", false, err
		}
	} else {
		// Lock the owner (FOR KEY SHARE, as the insert's foreign key would) and use its
		// primary id: a recipe user id names its primary user.
		err := tx.QueryRow(ctx, `SELECT id FROM users WHERE id = (SELECT coalesce((SELECT user_id FROM login_methods WHERE recipe_user_id = $1), $1))
			FOR KEY SHARE`, owner).Scan(&owner)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.User{}, "", false, fmt.Errorf("user %q: %w", n.UserID, store.ErrNotFound)
		}
		if err != nil {
			return store.User{}, "", false, err
		}
	}
	_, err = tx.Exec(ctx, `INSERT INTO login_methods (recipe_user_id, user_id, recipe_id, tenant_id, email, phone_number, verified, time_joined)
		VALUES ($1, $2, 'passwordless', $3, $4, $5, TRUE, $6)`, n.RecipeUserID, owner, n.TenantID, nullable(n.Email), nullable(n.PhoneNumber), n.Now)
	if pgCode(err) == uniqueViolation && (constraint(err) == "login_methods_passwordless_email" || constraint(err) == "login_methods_passwordless_phone") {
		return store.User{}, "", false, errRetry
	}
	if err != nil {
		return store.User{}, "", false, err
	}
	u, err = loadUser(ctx, tx, n.RecipeUserID)
	return u, n.RecipeUserID, true, err
}

// signInUpError is the error SignInUpPasswordless returns for err.
func signInUpError(err error) error {
	if err == nil || errors.Is(err, store.ErrNotFound) || retryable(err) {
		return err
	}
	return fmt.Errorf("postgres: sign in or up with passwordless: %w", err)
}

// passwordlessOwner reads, in one query, the user owning the tenant's passwordless login
// method whose column (email or phone_number) is value, with all its login methods, and the
// login method's id; ErrNotFound when there is none.
func passwordlessOwner(ctx context.Context, q querier, column, tenantID, value string) (store.User, string, error) {
	rows, err := q.Query(ctx, `SELECT me.recipe_user_id, u.id, u.time_joined, u.is_primary, u.disabled_at,
		lm.recipe_user_id, lm.recipe_id, lm.tenant_id, coalesce(lm.email, ''), coalesce(lm.phone_number, ''),
		coalesce(lm.third_party_id, ''), coalesce(lm.third_party_user_id, ''), lm.verified, lm.time_joined
		FROM login_methods me JOIN users u ON u.id = me.user_id JOIN login_methods lm ON lm.user_id = u.id
		WHERE me.recipe_id = 'passwordless' AND me.tenant_id = $1 AND me.`+column+` = $2
		ORDER BY lm.time_joined, lm.recipe_user_id`, tenantID, value)
	if err != nil {
		return store.User{}, "", err
	}
	defer rows.Close()
	var u store.User
	var recipeUserID string
	for rows.Next() {
		var lm store.LoginMethod
		var disabled *time.Time
		if err := rows.Scan(&recipeUserID, &u.ID, &u.TimeJoined, &u.IsPrimary, &disabled, &lm.RecipeUserID, &lm.RecipeID, &lm.TenantID, &lm.Email,
			&lm.PhoneNumber, &lm.ThirdPartyID, &lm.ThirdPartyUserID, &lm.Verified, &lm.TimeJoined); err != nil {
			return store.User{}, "", err
		}
		lm.TimeJoined = utc(lm.TimeJoined)
		if disabled != nil {
			u.DisabledAt = utc(*disabled)
		}
		u.LoginMethods = append(u.LoginMethods, lm)
	}
	if err := rows.Err(); err != nil {
		return store.User{}, "", err
	}
	if recipeUserID == "" {
		return store.User{}, "", fmt.Errorf("passwordless login method in tenant %q: %w", tenantID, store.ErrNotFound)
	}
	u.TimeJoined = utc(u.TimeJoined)
	return u, recipeUserID, nil
}

// updateLoginMethod runs an UPDATE of one login method and returns its user, or ErrNotFound
// when the UPDATE matched nothing.
func (s *Store) updateLoginMethod(ctx context.Context, what, recipeUserID, query string, args ...any) (store.User, error) {
	var u store.User
	err := s.tx(ctx, pgx.ReadCommitted, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, query, args...)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("login method %q: %w", recipeUserID, store.ErrNotFound)
		}
		u, err = loadUser(ctx, tx, recipeUserID)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, err
	}
	if err != nil {
		return store.User{}, fmt.Errorf("postgres: %s: %w", what, err)
	}
	return u, nil
}

// SetEmailVerified implements store.AccountFlows.
func (s *Store) SetEmailVerified(ctx context.Context, recipeUserID, email string) (store.User, error) {
	return s.updateLoginMethod(ctx, "set email verified", recipeUserID,
		`UPDATE login_methods SET verified = TRUE WHERE recipe_user_id = $1 AND email = $2`, recipeUserID, email)
}

// SetPasswordHash implements store.AccountFlows.
func (s *Store) SetPasswordHash(ctx context.Context, recipeUserID, passwordHash string) (store.User, error) {
	return s.updateLoginMethod(ctx, "set password hash", recipeUserID,
		`UPDATE login_methods SET password_hash = $2 WHERE recipe_user_id = $1 AND recipe_id = 'emailpassword'`, recipeUserID, passwordHash)
}

// CreateAccountToken implements store.AccountFlows.
func (s *Store) CreateAccountToken(ctx context.Context, tok store.AccountToken) error {
	ctx, cancel := bound(ctx)
	defer cancel()
	_, err := s.pool.Exec(ctx, `INSERT INTO account_tokens (hash, kind, tenant_id, recipe_user_id, email, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, tok.Hash, tok.Kind, tok.TenantID, tok.RecipeUserID, tok.Email, tok.CreatedAt, tok.ExpiresAt)
	if err != nil {
		return fmt.Errorf("postgres: create %s token: %w", tok.Kind, err)
	}
	return nil
}

// GetAccountToken implements store.AccountFlows.
func (s *Store) GetAccountToken(ctx context.Context, kind, hash string, now time.Time) (store.AccountToken, error) {
	tok := store.AccountToken{Hash: hash, Kind: kind}
	err := s.pool.QueryRow(ctx, `SELECT tenant_id, recipe_user_id, email, created_at, expires_at FROM account_tokens
		WHERE hash = $1 AND kind = $2 AND expires_at > $3`, hash, kind, now).Scan(&tok.TenantID, &tok.RecipeUserID, &tok.Email, &tok.CreatedAt, &tok.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.AccountToken{}, fmt.Errorf("%s token: %w", kind, store.ErrNotFound)
	}
	if err != nil {
		return store.AccountToken{}, fmt.Errorf("postgres: get %s token: %w", kind, err)
	}
	tok.CreatedAt, tok.ExpiresAt = utc(tok.CreatedAt), utc(tok.ExpiresAt)
	return tok, nil
}

// ConsumeAccountToken implements store.AccountFlows. The token is taken with a DELETE ...
// RETURNING, so of two requests presenting it at once only one gets it.
func (s *Store) ConsumeAccountToken(ctx context.Context, kind, hash string, now time.Time) (store.AccountToken, error) {
	var tok store.AccountToken
	expired := false
	err := s.tx(ctx, pgx.ReadCommitted, func(tx pgx.Tx) error {
		tok, expired = store.AccountToken{Hash: hash, Kind: kind}, false
		err := tx.QueryRow(ctx, `DELETE FROM account_tokens WHERE hash = $1 AND kind = $2
			RETURNING tenant_id, recipe_user_id, email, created_at, expires_at`, hash, kind).Scan(&tok.TenantID, &tok.RecipeUserID, &tok.Email, &tok.CreatedAt, &tok.ExpiresAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("%s token: %w", kind, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		tok.CreatedAt, tok.ExpiresAt = utc(tok.CreatedAt), utc(tok.ExpiresAt)
		if !now.Before(tok.ExpiresAt) {
			// An expired token is deleted alone, and the deletion committed: the user's newer
			// tokens stay usable.
			expired = true
			return nil
		}
		_, err = tx.Exec(ctx, `DELETE FROM account_tokens WHERE kind = $1 AND recipe_user_id = $2`, kind, tok.RecipeUserID)
		return err
	})
	if err == nil && expired {
		return store.AccountToken{}, fmt.Errorf("%s token expired at %s: %w", kind, tok.ExpiresAt.Format(time.RFC3339), store.ErrNotFound)
	}
	if errors.Is(err, store.ErrNotFound) {
		return store.AccountToken{}, err
	}
	if err != nil {
		return store.AccountToken{}, fmt.Errorf("postgres: consume %s token: %w", kind, err)
	}
	return tok, nil
}

// DeleteAccountTokensBefore implements store.AccountFlows.
func (s *Store) DeleteAccountTokensBefore(ctx context.Context, t time.Time) (int, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `DELETE FROM account_tokens WHERE expires_at <= $1`, t)
	if err != nil {
		return 0, fmt.Errorf("postgres: delete expired account tokens: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
