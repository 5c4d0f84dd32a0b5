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

// CreateWebAuthnOptions implements store.WebAuthn.
func (s *Store) CreateWebAuthnOptions(ctx context.Context, o store.WebAuthnOptions) error {
	err := s.tx(ctx, func(tx txn) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO webauthn_options (tenant_id, id, kind, challenge, email, user_handle,
			recipe_user_id, rp_id, user_verification, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			o.TenantID, o.ID, o.Kind, o.Challenge, o.Email, o.UserHandle, o.RecipeUserID, o.RPID, o.UserVerification, ms(o.CreatedAt), ms(o.ExpiresAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: create webauthn options: %w", err)
	}
	return nil
}

// ConsumeWebAuthnOptions implements store.WebAuthn.
func (s *Store) ConsumeWebAuthnOptions(ctx context.Context, tenantID, id string, now time.Time) (store.WebAuthnOptions, error) {
	o := store.WebAuthnOptions{TenantID: tenantID, ID: id}
	err := s.tx(ctx, func(tx txn) error {
		var created, expires int64
		err := tx.QueryRowContext(ctx, `DELETE FROM webauthn_options WHERE tenant_id = ? AND id = ?
			RETURNING kind, challenge, email, user_handle, recipe_user_id, rp_id, user_verification, created_at, expires_at`, tenantID, id).
			Scan(&o.Kind, &o.Challenge, &o.Email, &o.UserHandle, &o.RecipeUserID, &o.RPID, &o.UserVerification, &created, &expires)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("webauthn options %q: %w", id, store.ErrNotFound)
		}
		o.CreatedAt, o.ExpiresAt = fromMS(created), fromMS(expires)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return store.WebAuthnOptions{}, err
	}
	if err != nil {
		return store.WebAuthnOptions{}, fmt.Errorf("sqlite: consume webauthn options: %w", err)
	}
	if !now.Before(o.ExpiresAt) {
		return store.WebAuthnOptions{}, fmt.Errorf("webauthn options %q expired at %s: %w", id, o.ExpiresAt.Format(time.RFC3339), store.ErrNotFound)
	}
	return o, nil
}

// DeleteWebAuthnOptionsBefore implements store.WebAuthn.
func (s *Store) DeleteWebAuthnOptionsBefore(ctx context.Context, t time.Time) (int, error) {
	var n int64
	err := s.tx(ctx, func(tx txn) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM webauthn_options WHERE expires_at <= ?`, ms(t))
		if err == nil {
			n, err = res.RowsAffected()
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete expired webauthn options: %w", err)
	}
	return int(n), nil
}

func insertCredential(ctx context.Context, tx txn, c store.WebAuthnCredential) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO webauthn_credentials (tenant_id, id, recipe_user_id, rp_id, public_key,
		attestation_type, aaguid, sign_count, transports, user_verified, backup_eligible, backup_state, name, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.TenantID, c.ID, c.RecipeUserID, c.RPID, c.PublicKey, c.AttestationType, c.AAGUID, int64(c.SignCount),
		strings.Join(c.Transports, ","), c.UserVerified, c.BackupEligible, c.BackupState, c.Name, ms(c.CreatedAt))
	if isUniqueViolation(err) {
		return fmt.Errorf("credential %q: %w", c.ID, store.ErrCredentialExists)
	}
	return err
}

// SignUpWebAuthn implements store.WebAuthn.
func (s *Store) SignUpWebAuthn(ctx context.Context, n store.NewWebAuthnUser) (store.User, error) {
	var u store.User
	err := s.tx(ctx, func(tx txn) error {
		owner := n.UserID
		if owner == "" {
			owner = n.RecipeUserID
			if _, err := tx.ExecContext(ctx, `INSERT INTO users (id, time_joined, is_primary) VALUES (?, ?, 1)`, owner, ms(n.Now)); err != nil {
				return err
			}
		} else if _, err := loadUser(ctx, tx, owner); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO login_methods (recipe_user_id, user_id, recipe_id, tenant_id, email, verified, time_joined)
			VALUES (?, ?, 'webauthn', ?, ?, ?, ?)`, n.RecipeUserID, owner, n.TenantID, n.Email, n.Verified, ms(n.Now))
		if isUniqueViolation(err) {
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
		return store.User{}, fmt.Errorf("sqlite: sign up with webauthn: %w", err)
	}
	return u, nil
}

// AddWebAuthnCredential implements store.WebAuthn.
func (s *Store) AddWebAuthnCredential(ctx context.Context, c store.WebAuthnCredential) error {
	err := s.tx(ctx, func(tx txn) error {
		err := tx.QueryRowContext(ctx, `SELECT tenant_id FROM login_methods WHERE recipe_user_id = ? AND recipe_id = 'webauthn'`, c.RecipeUserID).Scan(&c.TenantID)
		if errors.Is(err, sql.ErrNoRows) {
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
		return fmt.Errorf("sqlite: add webauthn credential: %w", err)
	}
	return nil
}

const credentialColumns = `c.tenant_id, c.id, c.recipe_user_id, lm.user_id, c.rp_id, c.public_key, c.attestation_type,
	coalesce(c.aaguid, x''), c.sign_count, c.transports, c.user_verified, c.backup_eligible, c.backup_state, c.name, c.created_at, c.last_used_at
	FROM webauthn_credentials c JOIN login_methods lm ON lm.recipe_user_id = c.recipe_user_id`

func scanCredential(sc interface{ Scan(...any) error }) (store.WebAuthnCredential, error) {
	var c store.WebAuthnCredential
	var count, created int64
	var transports string
	var used sql.NullInt64
	err := sc.Scan(&c.TenantID, &c.ID, &c.RecipeUserID, &c.UserID, &c.RPID, &c.PublicKey, &c.AttestationType, &c.AAGUID,
		&count, &transports, &c.UserVerified, &c.BackupEligible, &c.BackupState, &c.Name, &created, &used)
	if err != nil {
		return c, err
	}
	c.SignCount, c.CreatedAt, c.LastUsedAt = uint32(count), fromMS(created), nullMS(used)
	if transports != "" {
		c.Transports = strings.Split(transports, ",")
	}
	return c, nil
}

// GetWebAuthnCredential implements store.WebAuthn.
func (s *Store) GetWebAuthnCredential(ctx context.Context, tenantID, id string) (store.WebAuthnCredential, error) {
	c, err := scanCredential(s.r.QueryRowContext(ctx, `SELECT `+credentialColumns+` WHERE c.tenant_id = ? AND c.id = ?`, tenantID, id))
	if errors.Is(err, sql.ErrNoRows) {
		return c, fmt.Errorf("webauthn credential %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return c, fmt.Errorf("sqlite: get webauthn credential: %w", err)
	}
	return c, nil
}

// ListWebAuthnCredentials implements store.WebAuthn.
func (s *Store) ListWebAuthnCredentials(ctx context.Context, userID string) ([]store.WebAuthnCredential, error) {
	out, err := listCredentials(ctx, s.r, userID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list webauthn credentials: %w", err)
	}
	return out, nil
}

func listCredentials(ctx context.Context, q querier, userID string) ([]store.WebAuthnCredential, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+credentialColumns+`
		WHERE lm.user_id = (SELECT coalesce((SELECT user_id FROM login_methods WHERE recipe_user_id = ?), ?))
		ORDER BY c.created_at, c.id`, userID, userID)
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
	err := s.tx(ctx, func(tx txn) error {
		res, err := tx.ExecContext(ctx, `UPDATE webauthn_credentials SET sign_count = ?, backup_state = ?, last_used_at = ?
			WHERE tenant_id = ? AND id = ? AND sign_count = ?`, int64(a.NewCount), a.BackupState, ms(a.Now), a.TenantID, a.CredentialID, int64(a.OldCount))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		var exists int
		err = tx.QueryRowContext(ctx, `SELECT 1 FROM webauthn_credentials WHERE tenant_id = ? AND id = ?`, a.TenantID, a.CredentialID).Scan(&exists)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("webauthn credential %q: %w", a.CredentialID, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		return store.ErrCounterMoved
	})
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrCounterMoved) {
		return err
	}
	if err != nil {
		return fmt.Errorf("sqlite: use webauthn credential: %w", err)
	}
	return nil
}

// ownedCredential is the WHERE clause of a credential of a user given by primary or recipe id.
const ownedCredential = ` WHERE id = ? AND recipe_user_id IN (SELECT recipe_user_id FROM login_methods
	WHERE user_id = (SELECT coalesce((SELECT user_id FROM login_methods WHERE recipe_user_id = ?), ?)))`

// RenameWebAuthnCredential implements store.WebAuthn.
func (s *Store) RenameWebAuthnCredential(ctx context.Context, userID, id, name string) error {
	var n int64
	err := s.tx(ctx, func(tx txn) error {
		res, err := tx.ExecContext(ctx, `UPDATE webauthn_credentials SET name = ?`+ownedCredential, name, id, userID, userID)
		if err == nil {
			n, err = res.RowsAffected()
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: rename webauthn credential: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("webauthn credential %q of user %q: %w", id, userID, store.ErrNotFound)
	}
	return nil
}

// RemoveWebAuthnCredential implements store.WebAuthn.
func (s *Store) RemoveWebAuthnCredential(ctx context.Context, userID, id string) (bool, error) {
	var n int64
	err := s.tx(ctx, func(tx txn) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM webauthn_credentials`+ownedCredential, id, userID, userID)
		if err == nil {
			n, err = res.RowsAffected()
		}
		return err
	})
	if err != nil {
		return false, fmt.Errorf("sqlite: remove webauthn credential: %w", err)
	}
	return n > 0, nil
}
