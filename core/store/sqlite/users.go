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

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// loadUser reads a primary user and its login methods; id may be a recipe user id.
func loadUser(ctx context.Context, q querier, id string) (store.User, error) {
	var u store.User
	var joined int64
	var primary bool
	var disabled sql.NullInt64
	err := q.QueryRowContext(ctx, `SELECT u.id, u.time_joined, u.is_primary, u.disabled_at FROM users u
		WHERE u.id = ? OR u.id = (SELECT user_id FROM login_methods WHERE recipe_user_id = ?)`, id, id).Scan(&u.ID, &joined, &primary, &disabled)
	if errors.Is(err, sql.ErrNoRows) {
		return store.User{}, fmt.Errorf("user %q: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.User{}, err
	}
	u.TimeJoined, u.IsPrimary, u.DisabledAt = fromMS(joined), primary, nullMS(disabled)
	rows, err := q.QueryContext(ctx, `SELECT recipe_user_id, recipe_id, tenant_id, coalesce(email, ''), coalesce(phone_number, ''),
		coalesce(third_party_id, ''), coalesce(third_party_user_id, ''), verified, time_joined
		FROM login_methods WHERE user_id = ? ORDER BY time_joined, recipe_user_id`, u.ID)
	if err != nil {
		return store.User{}, err
	}
	defer rows.Close()
	for rows.Next() {
		var lm store.LoginMethod
		var t int64
		if err := rows.Scan(&lm.RecipeUserID, &lm.RecipeID, &lm.TenantID, &lm.Email, &lm.PhoneNumber,
			&lm.ThirdPartyID, &lm.ThirdPartyUserID, &lm.Verified, &t); err != nil {
			return store.User{}, err
		}
		lm.TimeJoined = fromMS(t)
		u.LoginMethods = append(u.LoginMethods, lm)
	}
	if err := rows.Err(); err != nil {
		return store.User{}, err
	}
	rows.Close()
	return u, store.AttachCredentialIDs(&u, func() ([]store.WebAuthnCredential, error) { return listCredentials(ctx, q, u.ID) })
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// CreateEmailPasswordUser implements store.Users.
func (s *Store) CreateEmailPasswordUser(ctx context.Context, n store.NewEmailPasswordUser) (store.User, error) {
	var u store.User
	err := s.tx(ctx, func(tx txn) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO users (id, time_joined, is_primary) VALUES (?, ?, 1)`, n.UserID, ms(n.Now)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO login_methods (recipe_user_id, user_id, recipe_id, tenant_id, email, password_hash, verified, time_joined)
			VALUES (?, ?, 'emailpassword', ?, ?, ?, 0, ?)`, n.UserID, n.UserID, n.TenantID, n.Email, n.PasswordHash, ms(n.Now))
		if isUniqueViolation(err) {
			return store.ErrEmailTaken
		}
		if err != nil {
			return err
		}
		u, err = loadUser(ctx, tx, n.UserID)
		return err
	})
	if errors.Is(err, store.ErrEmailTaken) {
		return store.User{}, fmt.Errorf("create user in tenant %q: %w", n.TenantID, err)
	}
	if err != nil {
		return store.User{}, fmt.Errorf("sqlite: create emailpassword user: %w", err)
	}
	return u, nil
}

// GetEmailPasswordLogin implements store.Users.
func (s *Store) GetEmailPasswordLogin(ctx context.Context, tenantID, email string) (store.User, string, error) {
	var userID, hash string
	err := s.r.QueryRowContext(ctx, `SELECT user_id, password_hash FROM login_methods
		WHERE recipe_id = 'emailpassword' AND tenant_id = ? AND email = ?`, tenantID, email).Scan(&userID, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return store.User{}, "", fmt.Errorf("emailpassword login in tenant %q: %w", tenantID, store.ErrNotFound)
	}
	if err != nil {
		return store.User{}, "", fmt.Errorf("sqlite: get emailpassword login: %w", err)
	}
	u, err := loadUser(ctx, s.r, userID)
	if err != nil {
		return store.User{}, "", fmt.Errorf("sqlite: get emailpassword login: %w", err)
	}
	return u, hash, nil
}

// UpsertThirdPartyUser implements store.Users.
func (s *Store) UpsertThirdPartyUser(ctx context.Context, id store.ThirdPartyIdentity, newUserID string, now time.Time) (store.User, bool, error) {
	var u store.User
	var created bool
	err := s.tx(ctx, func(tx txn) error {
		var userID string
		err := tx.QueryRowContext(ctx, `SELECT user_id FROM login_methods WHERE recipe_id = 'thirdparty'
			AND tenant_id = ? AND third_party_id = ? AND third_party_user_id = ?`, id.TenantID, id.ThirdPartyID, id.ThirdPartyUserID).Scan(&userID)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			created, userID = true, newUserID
			if _, err := tx.ExecContext(ctx, `INSERT INTO users (id, time_joined, is_primary) VALUES (?, ?, 1)`, userID, ms(now)); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO login_methods (recipe_user_id, user_id, recipe_id, tenant_id, email,
				third_party_id, third_party_user_id, verified, time_joined) VALUES (?, ?, 'thirdparty', ?, ?, ?, ?, ?, ?)`,
				userID, userID, id.TenantID, nullable(id.Email), id.ThirdPartyID, id.ThirdPartyUserID, id.Verified, ms(now)); err != nil {
				return err
			}
		case err != nil:
			return err
		default:
			if _, err := tx.ExecContext(ctx, `UPDATE login_methods SET email = ?, verified = ? WHERE recipe_id = 'thirdparty'
				AND tenant_id = ? AND third_party_id = ? AND third_party_user_id = ?`,
				nullable(id.Email), id.Verified, id.TenantID, id.ThirdPartyID, id.ThirdPartyUserID); err != nil {
				return err
			}
		}
		u, err = loadUser(ctx, tx, userID)
		return err
	})
	if err != nil {
		return store.User{}, false, fmt.Errorf("sqlite: upsert thirdparty user: %w", err)
	}
	return u, created, nil
}

// GetUser implements store.Users.
func (s *Store) GetUser(ctx context.Context, userID string) (store.User, error) {
	return getUser(ctx, s.r, userID)
}

func getUser(ctx context.Context, q querier, userID string) (store.User, error) {
	u, err := loadUser(ctx, q, userID)
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, err
	}
	if err != nil {
		return store.User{}, fmt.Errorf("sqlite: get user: %w", err)
	}
	return u, nil
}

func readMetadata(ctx context.Context, q querier, userID string) (map[string]json.RawMessage, error) {
	var raw sql.NullString
	err := q.QueryRowContext(ctx, `SELECT m.metadata FROM users u LEFT JOIN user_metadata m ON m.user_id = u.id WHERE u.id = ?`, userID).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("user %q: %w", userID, store.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	md := map[string]json.RawMessage{}
	if !raw.Valid {
		return md, nil
	}
	if err := json.Unmarshal([]byte(raw.String), &md); err != nil {
		return nil, fmt.Errorf("decode metadata of user %q: %w", userID, err)
	}
	return md, nil
}

// GetUserMetadata implements store.Users.
func (s *Store) GetUserMetadata(ctx context.Context, userID string) (map[string]json.RawMessage, error) {
	return getUserMetadata(ctx, s.r, userID)
}

func getUserMetadata(ctx context.Context, q querier, userID string) (map[string]json.RawMessage, error) {
	md, err := readMetadata(ctx, q, userID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: get user metadata: %w", err)
	}
	return md, nil
}

// UpdateUserMetadata implements store.Users.
func (s *Store) UpdateUserMetadata(ctx context.Context, userID string, update map[string]json.RawMessage, now time.Time) (map[string]json.RawMessage, error) {
	var md map[string]json.RawMessage
	err := s.tx(ctx, func(tx txn) error {
		var err error
		if md, err = readMetadata(ctx, tx, userID); err != nil {
			return err
		}
		for k, v := range update {
			if string(v) == "null" || len(v) == 0 {
				delete(md, k)
			} else {
				md[k] = v
			}
		}
		b, err := json.Marshal(md)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO user_metadata (user_id, metadata, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (user_id) DO UPDATE SET metadata = excluded.metadata, updated_at = excluded.updated_at`, userID, string(b), ms(now))
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: update user metadata: %w", err)
	}
	return md, nil
}

func (s *Store) usersBy(ctx context.Context, column, tenantID, value string) ([]store.User, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT DISTINCT lm.user_id, u.time_joined FROM login_methods lm JOIN users u ON u.id = lm.user_id
		WHERE lm.tenant_id = ? AND lm.`+column+` = ? ORDER BY u.time_joined, lm.user_id`, tenantID, value)
	if err != nil {
		return nil, err
	}
	var ids []string
	for rows.Next() {
		var id string
		var joined int64
		if err := rows.Scan(&id, &joined); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]store.User, 0, len(ids))
	for _, id := range ids {
		u, err := loadUser(ctx, s.r, id)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}

// UsersByEmail implements store.Users.
func (s *Store) UsersByEmail(ctx context.Context, tenantID, email string) ([]store.User, error) {
	users, err := s.usersBy(ctx, "email", tenantID, email)
	if err != nil {
		return nil, fmt.Errorf("sqlite: users by email: %w", err)
	}
	return users, nil
}

// UsersByPhone implements store.Users.
func (s *Store) UsersByPhone(ctx context.Context, tenantID, phone string) ([]store.User, error) {
	users, err := s.usersBy(ctx, "phone_number", tenantID, phone)
	if err != nil {
		return nil, fmt.Errorf("sqlite: users by phone: %w", err)
	}
	return users, nil
}

// LinkAccounts implements store.Users.
func (s *Store) LinkAccounts(ctx context.Context, recipeUserID, primaryUserID string) (store.User, error) {
	var u store.User
	err := s.tx(ctx, func(tx txn) error {
		primary, err := loadUser(ctx, tx, primaryUserID)
		if err != nil {
			return err
		}
		linked, err := loadUser(ctx, tx, recipeUserID)
		if err != nil {
			return err
		}
		if linked.ID == primary.ID {
			return fmt.Errorf("%w: %q and %q are the same user", store.ErrAlreadyLinked, recipeUserID, primaryUserID)
		}
		if linked.ID != recipeUserID || len(linked.LoginMethods) != 1 {
			return fmt.Errorf("%w: %q is linked to user %q or has other login methods", store.ErrAlreadyLinked, recipeUserID, linked.ID)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE login_methods SET user_id = ? WHERE user_id = ?`, primary.ID, linked.ID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM users WHERE id = ?`, linked.ID); err != nil {
			return err
		}
		u, err = loadUser(ctx, tx, primary.ID)
		return err
	})
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrAlreadyLinked) {
		return store.User{}, err
	}
	if err != nil {
		return store.User{}, fmt.Errorf("sqlite: link accounts: %w", err)
	}
	return u, nil
}
