package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/twofold-dev/twofold/core/store"
)

// CreateWebAuthnOptions implements store.WebAuthn.
func (s *Store) CreateWebAuthnOptions(ctx context.Context, o store.WebAuthnOptions) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO webauthn_options (tenant_id, id, kind, challenge, email, user_handle,
		recipe_user_id, rp_id, user_verification, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		o.TenantID, o.ID, o.Kind, o.Challenge, o.Email, o.UserHandle, o.RecipeUserID, o.RPID, o.UserVerification, o.CreatedAt, o.ExpiresAt)
	if err != nil {
		return fmt.Errorf("postgres: create webauthn options: %w", err)
	}
	return nil
}

// ConsumeWebAuthnOptions implements store.WebAuthn.
func (s *Store) ConsumeWebAuthnOptions(ctx context.Context, tenantID, id string, now time.Time) (store.WebAuthnOptions, error) {
	o := store.WebAuthnOptions{TenantID: tenantID, ID: id}
	err := s.pool.QueryRow(ctx, `DELETE FROM webauthn_options WHERE tenant_id = $1 AND id = $2
		RETURNING kind, challenge, email, user_handle, recipe_user_id, rp_id, user_verification, created_at, expires_at`, tenantID, id).
		Scan(&o.Kind, &o.Challenge, &o.Email, &o.UserHandle, &o.RecipeUserID, &o.RPID, &o.UserVerification, &o.CreatedAt, &o.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.WebAuthnOptions{}, fmt.Errorf("webauthn options %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.WebAuthnOptions{}, fmt.Errorf("postgres: consume webauthn options: %w", err)
	}
	o.CreatedAt, o.ExpiresAt = utc(o.CreatedAt), utc(o.ExpiresAt)
	if !now.Before(o.ExpiresAt) {
		return store.WebAuthnOptions{}, fmt.Errorf("webauthn options %q expired at %s: %w", id, o.ExpiresAt.Format(time.RFC3339), store.ErrNotFound)
	}
	return o, nil
}

// DeleteWebAuthnOptionsBefore implements store.WebAuthn.
func (s *Store) DeleteWebAuthnOptionsBefore(ctx context.Context, t time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM webauthn_options WHERE expires_at <= $1`, t)
	if err != nil {
		return 0, fmt.Errorf("postgres: delete expired webauthn options: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

func insertCredential(ctx context.Context, tx pgx.Tx, c store.WebAuthnCredential) error {
	transports := c.Transports
	if transports == nil {
		transports = []string{}
	}
	_, err := tx.Exec(ctx, `INSERT INTO webauthn_credentials (tenant_id, id, recipe_user_id, rp_id, public_key,
		attestation_type, aaguid, sign_count, transports, user_verified, backup_eligible, backup_state, name, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, array_to_string($9::text[], ','), $10, $11, $12, $13, $14)`,
		c.TenantID, c.ID, c.RecipeUserID, c.RPID, c.PublicKey, c.AttestationType, c.AAGUID, int64(c.SignCount),
		transports, c.UserVerified, c.BackupEligible, c.BackupState, c.Name, c.CreatedAt)
	if pgCode(err) == uniqueViolation {
		return fmt.Errorf("credential %q: %w", c.ID, store.ErrCredentialExists)
	}
	return err
}

// SignUpWebAuthn implements store.WebAuthn.
func (s *Store) SignUpWebAuthn(ctx context.Context, n store.NewWebAuthnUser) (store.User, error) {
	var u store.User
	err := s.tx(ctx, pgx.ReadCommitted, func(tx pgx.Tx) error {
		owner := n.UserID
		if owner == "" {
			owner = n.RecipeUserID
			if _, err := tx.Exec(ctx, `INSERT INTO users (id, time_joined, is_primary) VALUES ($1, $2, TRUE)`, owner, n.Now); err != nil {
				return err
			}
		} else if _, err := loadUser(ctx, tx, owner); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO login_methods (recipe_user_id, user_id, recipe_id, tenant_id, email, verified, time_joined)
			VALUES ($1, $2, 'webauthn', $3, $4, $5, $6)`, n.RecipeUserID, owner, n.TenantID, n.Email, n.Verified, n.Now)
		if pgCode(err) == uniqueViolation {
			return fmt.Errorf("webauthn login method for %q: %w", n.Email, store.ErrEmailTaken)
		}
		if err != nil {
			return err
		}
		c := n.Credential
		c.TenantID, c.RecipeUserID = n.TenantID, n.RecipeUserID
		if err := insertCredential(ctx, tx, c); err != nil {
			return err
		}
		u, err = loadUser(ctx, tx, owner)
		return err
	})
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrEmailTaken) || errors.Is(err, store.ErrCredentialExists) {
		return store.User{}, err
	}
	if err != nil {
		return store.User{}, fmt.Errorf("postgres: sign up with webauthn: %w", err)
	}
	return u, nil
}

// AddWebAuthnCredential implements store.WebAuthn.
func (s *Store) AddWebAuthnCredential(ctx context.Context, c store.WebAuthnCredential) error {
	err := s.tx(ctx, pgx.ReadCommitted, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT tenant_id FROM login_methods WHERE recipe_user_id = $1 AND recipe_id = 'webauthn' FOR SHARE`, c.RecipeUserID).Scan(&c.TenantID)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("webauthn login method %q: %w", c.RecipeUserID, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		return insertCredential(ctx, tx, c)
	})
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrCredentialExists) {
		return err
	}
	if err != nil {
		return fmt.Errorf("postgres: add webauthn credential: %w", err)
	}
	return nil
}

const credentialColumns = `c.tenant_id, c.id, c.recipe_user_id, lm.user_id, c.rp_id, c.public_key, c.attestation_type,
	coalesce(c.aaguid, ''::bytea), c.sign_count, string_to_array(nullif(c.transports, ''), ','), c.user_verified, c.backup_eligible,
	c.backup_state, c.name, c.created_at, c.last_used_at
	FROM webauthn_credentials c JOIN login_methods lm ON lm.recipe_user_id = c.recipe_user_id`

func scanCredential(sc scanner) (store.WebAuthnCredential, error) {
	var c store.WebAuthnCredential
	var count int64
	var used *time.Time
	err := sc.Scan(&c.TenantID, &c.ID, &c.RecipeUserID, &c.UserID, &c.RPID, &c.PublicKey, &c.AttestationType, &c.AAGUID,
		&count, &c.Transports, &c.UserVerified, &c.BackupEligible, &c.BackupState, &c.Name, &c.CreatedAt, &used)
	c.SignCount, c.CreatedAt, c.LastUsedAt = uint32(count), utc(c.CreatedAt), fromNull(used)
	return c, err
}

// GetWebAuthnCredential implements store.WebAuthn.
func (s *Store) GetWebAuthnCredential(ctx context.Context, tenantID, id string) (store.WebAuthnCredential, error) {
	c, err := scanCredential(s.pool.QueryRow(ctx, `SELECT `+credentialColumns+` WHERE c.tenant_id = $1 AND c.id = $2`, tenantID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return c, fmt.Errorf("webauthn credential %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return c, fmt.Errorf("postgres: get webauthn credential: %w", err)
	}
	return c, nil
}

// ListWebAuthnCredentials implements store.WebAuthn.
func (s *Store) ListWebAuthnCredentials(ctx context.Context, userID string) ([]store.WebAuthnCredential, error) {
	out, err := listCredentials(ctx, s.pool, userID)
	if err != nil {
		return nil, fmt.Errorf("postgres: list webauthn credentials: %w", err)
	}
	return out, nil
}

func listCredentials(ctx context.Context, q querier, userID string) ([]store.WebAuthnCredential, error) {
	rows, err := q.Query(ctx, `SELECT `+credentialColumns+`
		WHERE lm.user_id = (SELECT coalesce((SELECT user_id FROM login_methods WHERE recipe_user_id = $1), $1))
		ORDER BY c.created_at, c.id`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.WebAuthnCredential
	for rows.Next() {
		c, err := scanCredential(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// UseWebAuthnCredential implements store.WebAuthn.
func (s *Store) UseWebAuthnCredential(ctx context.Context, a store.WebAuthnAssertion) error {
	var moved bool
	err := s.pool.QueryRow(ctx, `WITH u AS (
			UPDATE webauthn_credentials SET sign_count = $1, backup_state = $2, last_used_at = $3
			WHERE tenant_id = $4 AND id = $5 AND sign_count = $6 RETURNING 1)
		SELECT NOT EXISTS (SELECT 1 FROM u) FROM webauthn_credentials WHERE tenant_id = $4 AND id = $5`,
		int64(a.NewCount), a.BackupState, a.Now, a.TenantID, a.CredentialID, int64(a.OldCount)).Scan(&moved)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("webauthn credential %q: %w", a.CredentialID, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("postgres: use webauthn credential: %w", err)
	}
	if moved {
		return store.ErrCounterMoved
	}
	return nil
}

// ownedCredential is the WHERE clause of a credential ($1) of a user ($2, primary or recipe id).
const ownedCredential = ` WHERE id = $1 AND recipe_user_id IN (SELECT recipe_user_id FROM login_methods
	WHERE user_id = (SELECT coalesce((SELECT user_id FROM login_methods WHERE recipe_user_id = $2), $2)))`

// RenameWebAuthnCredential implements store.WebAuthn.
func (s *Store) RenameWebAuthnCredential(ctx context.Context, userID, id, name string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE webauthn_credentials SET name = $3`+ownedCredential, id, userID, name)
	if err != nil {
		return fmt.Errorf("postgres: rename webauthn credential: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("webauthn credential %q of user %q: %w", id, userID, store.ErrNotFound)
	}
	return nil
}

// RemoveWebAuthnCredential implements store.WebAuthn.
func (s *Store) RemoveWebAuthnCredential(ctx context.Context, userID, id string) (bool, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM webauthn_credentials`+ownedCredential, id, userID)
	if err != nil {
		return false, fmt.Errorf("postgres: remove webauthn credential: %w", err)
	}
	return tag.RowsAffected() > 0, nil
}
