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

// loadUser reads a primary user and its login methods in one query; id may be a recipe user
// id.
func loadUser(ctx context.Context, q querier, id string) (store.User, error) {
	rows, err := q.Query(ctx, `SELECT u.id, u.time_joined, u.is_primary, u.disabled_at,
		lm.recipe_user_id, lm.recipe_id, lm.tenant_id, coalesce(lm.email, ''), coalesce(lm.phone_number, ''),
		coalesce(lm.third_party_id, ''), coalesce(lm.third_party_user_id, ''), lm.verified, lm.time_joined
		FROM users u LEFT JOIN login_methods lm ON lm.user_id = u.id
		WHERE u.id = (SELECT coalesce((SELECT user_id FROM login_methods WHERE recipe_user_id = $1), $1))
		ORDER BY lm.time_joined, lm.recipe_user_id`, id)
	if err != nil {
		return store.User{}, err
	}
	defer rows.Close()
	var u store.User
	var disabled *time.Time
	found := false
	for rows.Next() {
		var lm struct {
			RecipeUserID, RecipeID, TenantID             *string
			Email, Phone, ThirdPartyID, ThirdPartyUserID string
			Verified                                     *bool
			Joined                                       *time.Time
		}
		if err := rows.Scan(&u.ID, &u.TimeJoined, &u.IsPrimary, &disabled, &lm.RecipeUserID, &lm.RecipeID, &lm.TenantID,
			&lm.Email, &lm.Phone, &lm.ThirdPartyID, &lm.ThirdPartyUserID, &lm.Verified, &lm.Joined); err != nil {
			return store.User{}, err
		}
		found = true
		if lm.RecipeUserID == nil {
			continue
		}
		u.LoginMethods = append(u.LoginMethods, store.LoginMethod{
			RecipeUserID: *lm.RecipeUserID, RecipeID: *lm.RecipeID, TenantID: *lm.TenantID,
			Email: lm.Email, PhoneNumber: lm.Phone, ThirdPartyID: lm.ThirdPartyID, ThirdPartyUserID: lm.ThirdPartyUserID,
			Verified: *lm.Verified, TimeJoined: lm.Joined.UTC(),
		})
	}
	if err := rows.Err(); err != nil {
		return store.User{}, err
	}
	if !found {
		return store.User{}, fmt.Errorf("user %q: %w", id, store.ErrNotFound)
	}
	u.TimeJoined, u.DisabledAt = utc(u.TimeJoined), fromNull(disabled)
	rows.Close()
	return u, store.AttachCredentialIDs(&u, func() ([]store.WebAuthnCredential, error) { return listCredentials(ctx, q, u.ID) })
}

// CreateEmailPasswordUser implements store.Users.
func (s *Store) CreateEmailPasswordUser(ctx context.Context, n store.NewEmailPasswordUser) (store.User, error) {
	var u store.User
	err := s.tx(ctx, pgx.ReadCommitted, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO users (id, time_joined, is_primary) VALUES ($1, $2, TRUE)`, n.UserID, n.Now); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO login_methods (recipe_user_id, user_id, recipe_id, tenant_id, email, password_hash, verified, time_joined)
			VALUES ($1, $1, 'emailpassword', $2, $3, $4, FALSE, $5)`, n.UserID, n.TenantID, n.Email, n.PasswordHash, n.Now)
		if pgCode(err) == uniqueViolation && constraint(err) == "login_methods_emailpassword" {
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
		return store.User{}, fmt.Errorf("postgres: create emailpassword user: %w", err)
	}
	return u, nil
}

// GetEmailPasswordLogin implements store.Users.
func (s *Store) GetEmailPasswordLogin(ctx context.Context, tenantID, email string) (store.User, string, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	var userID, hash string
	err := s.pool.QueryRow(ctx, `SELECT user_id, password_hash FROM login_methods
		WHERE recipe_id = 'emailpassword' AND tenant_id = $1 AND email = $2`, tenantID, email).Scan(&userID, &hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.User{}, "", fmt.Errorf("emailpassword login in tenant %q: %w", tenantID, store.ErrNotFound)
	}
	if err != nil {
		return store.User{}, "", fmt.Errorf("postgres: get emailpassword login: %w", err)
	}
	u, err := loadUser(ctx, s.pool, userID)
	if err != nil {
		return store.User{}, "", fmt.Errorf("postgres: get emailpassword login: %w", err)
	}
	return u, hash, nil
}

// UpsertThirdPartyUser implements store.Users. Two replicas creating the same identity at
// once: the second insert hits the unique index, and its transaction runs again to find the
// first one's user.
func (s *Store) UpsertThirdPartyUser(ctx context.Context, id store.ThirdPartyIdentity, newUserID string, now time.Time) (store.User, bool, error) {
	var u store.User
	var created bool
	err := s.tx(ctx, pgx.ReadCommitted, func(tx pgx.Tx) error {
		created = false
		var userID string
		err := tx.QueryRow(ctx, `UPDATE login_methods SET email = $4, verified = $5 WHERE recipe_id = 'thirdparty'
			AND tenant_id = $1 AND third_party_id = $2 AND third_party_user_id = $3 RETURNING user_id`,
			id.TenantID, id.ThirdPartyID, id.ThirdPartyUserID, nullable(id.Email), id.Verified).Scan(&userID)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			created, userID = true, newUserID
			if _, err := tx.Exec(ctx, `INSERT INTO users (id, time_joined, is_primary) VALUES ($1, $2, TRUE)`, userID, now); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO login_methods (recipe_user_id, user_id, recipe_id, tenant_id, email,
				third_party_id, third_party_user_id, verified, time_joined) VALUES ($1, $1, 'thirdparty', $2, $3, $4, $5, $6, $7)`,
				userID, id.TenantID, nullable(id.Email), id.ThirdPartyID, id.ThirdPartyUserID, id.Verified, now)
			if pgCode(err) == uniqueViolation && constraint(err) == "login_methods_thirdparty" {
				return errRetry
			}
			if err != nil {
				return err
			}
		case err != nil:
			return err
		}
		u, err = loadUser(ctx, tx, userID)
		return err
	})
	if err != nil {
		return store.User{}, false, fmt.Errorf("postgres: upsert thirdparty user: %w", err)
	}
	return u, created, nil
}

// GetUser implements store.Users.
func (s *Store) GetUser(ctx context.Context, userID string) (store.User, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	return getUser(ctx, s.pool, userID)
}

func getUser(ctx context.Context, q querier, userID string) (store.User, error) {
	u, err := loadUser(ctx, q, userID)
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, err
	}
	if err != nil {
		return store.User{}, fmt.Errorf("postgres: get user: %w", err)
	}
	return u, nil
}

// readMetadata reads a user's metadata; ErrNotFound when the user is unknown.
func readMetadata(ctx context.Context, q querier, userID string) (map[string]json.RawMessage, error) {
	var raw *string
	err := q.QueryRow(ctx, `SELECT m.metadata::text FROM users u LEFT JOIN user_metadata m ON m.user_id = u.id WHERE u.id = $1`, userID).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("user %q: %w", userID, store.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	md := map[string]json.RawMessage{}
	if raw == nil {
		return md, nil
	}
	if err := json.Unmarshal([]byte(*raw), &md); err != nil {
		return nil, fmt.Errorf("decode metadata of user %q: %w", userID, err)
	}
	return md, nil
}

// GetUserMetadata implements store.Users.
func (s *Store) GetUserMetadata(ctx context.Context, userID string) (map[string]json.RawMessage, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	return getUserMetadata(ctx, s.pool, userID)
}

func getUserMetadata(ctx context.Context, q querier, userID string) (map[string]json.RawMessage, error) {
	md, err := readMetadata(ctx, q, userID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: get user metadata: %w", err)
	}
	return md, nil
}

// UpdateUserMetadata implements store.Users.
func (s *Store) UpdateUserMetadata(ctx context.Context, userID string, update map[string]json.RawMessage, now time.Time) (map[string]json.RawMessage, error) {
	var md map[string]json.RawMessage
	err := s.tx(ctx, pgx.ReadCommitted, func(tx pgx.Tx) error {
		// The user's lock makes concurrent merges apply one after the other; the read
		// follows in a statement of its own so it sees the previous merge.
		if err := lockUser(ctx, tx, userID); err != nil {
			return err
		}
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
		_, err = tx.Exec(ctx, `INSERT INTO user_metadata (user_id, metadata, updated_at) VALUES ($1, CAST($2::text AS json), $3)
			ON CONFLICT (user_id) DO UPDATE SET metadata = excluded.metadata, updated_at = excluded.updated_at`, userID, string(b), now)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: update user metadata: %w", err)
	}
	return md, nil
}

func (s *Store) usersBy(ctx context.Context, column, tenantID, value string) ([]store.User, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT lm.user_id FROM login_methods lm JOIN users u ON u.id = lm.user_id
		WHERE lm.tenant_id = $1 AND lm.`+column+` = $2 GROUP BY lm.user_id, u.time_joined ORDER BY u.time_joined, lm.user_id`, tenantID, value)
	if err != nil {
		return nil, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	out := make([]store.User, 0, len(ids))
	for _, id := range ids {
		u, err := loadUser(ctx, s.pool, id)
		if errors.Is(err, store.ErrNotFound) {
			continue // linked or deleted since the first query
		}
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
		return nil, fmt.Errorf("postgres: users by email: %w", err)
	}
	return users, nil
}

// UsersByPhone implements store.Users.
func (s *Store) UsersByPhone(ctx context.Context, tenantID, phone string) ([]store.User, error) {
	users, err := s.usersBy(ctx, "phone_number", tenantID, phone)
	if err != nil {
		return nil, fmt.Errorf("postgres: users by phone: %w", err)
	}
	return users, nil
}

// LinkAccounts implements store.Users. It runs SERIALIZABLE: the checks read both users'
// login methods, and a concurrent link or sign-up that changes them makes one of the two
// transactions run again.
func (s *Store) LinkAccounts(ctx context.Context, recipeUserID, primaryUserID string) (store.User, error) {
	var u store.User
	err := s.tx(ctx, pgx.Serializable, func(tx pgx.Tx) error {
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
		if _, err := tx.Exec(ctx, `UPDATE login_methods SET user_id = $1 WHERE user_id = $2`, primary.ID, linked.ID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM users WHERE id = $1`, linked.ID); err != nil {
			return err
		}
		u, err = loadUser(ctx, tx, primary.ID)
		return err
	})
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrAlreadyLinked) {
		return store.User{}, err
	}
	if err != nil {
		return store.User{}, fmt.Errorf("postgres: link accounts: %w", err)
	}
	return u, nil
}
