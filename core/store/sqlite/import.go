package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/twofold-dev/twofold/core/store"
)

// ImportUsers implements store.UserImport: three prepared statements in one transaction.
func (s *Store) ImportUsers(ctx context.Context, users []store.ImportedUser) error {
	err := s.tx(ctx, func(t txn) error {
		prepare := func(q string) (*sql.Stmt, error) { return t.tx.PrepareContext(ctx, q) }
		user, err := prepare(`INSERT INTO users (id, time_joined, is_primary) VALUES (?, ?, 1)`)
		if err != nil {
			return err
		}
		defer user.Close()
		login, err := prepare(`INSERT INTO login_methods (recipe_user_id, user_id, recipe_id, tenant_id, email, password_hash, verified, time_joined)
			VALUES (?, ?, 'emailpassword', ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer login.Close()
		device, err := prepare(`INSERT INTO totp_devices (user_id, name, secret, digits, period, skew, verified, last_used_step, created_at, created_by_session)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			return err
		}
		defer device.Close()
		for _, u := range users {
			if _, err := user.ExecContext(ctx, u.UserID, ms(u.TimeJoined)); isUniqueViolation(err) {
				return fmt.Errorf("import user %q: %w", u.UserID, store.ErrUserExists)
			} else if err != nil {
				return fmt.Errorf("import user %q: %w", u.UserID, err)
			}
			_, err := login.ExecContext(ctx, u.UserID, u.UserID, u.TenantID, u.Email, u.PasswordHash, u.EmailVerified, ms(u.TimeJoined))
			if isUniqueViolation(err) {
				return fmt.Errorf("import user %q into tenant %q: %w", u.UserID, u.TenantID, store.ErrEmailTaken)
			} else if err != nil {
				return fmt.Errorf("import user %q: %w", u.UserID, err)
			}
			for _, d := range u.TOTPDevices {
				_, err := device.ExecContext(ctx, u.UserID, d.Name, d.Secret, d.Digits, d.Period, d.Skew, d.Verified, d.LastUsedStep, ms(d.CreatedAt), d.CreatedBySession)
				if isUniqueViolation(err) {
					return fmt.Errorf("import device %q of user %q: %w", d.Name, u.UserID, store.ErrDeviceExists)
				} else if err != nil {
					return fmt.Errorf("import device %q of user %q: %w", d.Name, u.UserID, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	return nil
}
