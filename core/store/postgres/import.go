package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/twofold-dev/twofold/core/store"
)

// ImportUsers implements store.UserImport: one batch of inserts, sent in one round trip, in
// one transaction.
func (s *Store) ImportUsers(ctx context.Context, users []store.ImportedUser) error {
	// what names each queued insert, so an error names the user it stopped at.
	type what struct {
		user, device string
	}
	var b pgx.Batch
	var queued []what
	for _, u := range users {
		b.Queue(`INSERT INTO users (id, time_joined, is_primary) VALUES ($1, $2, TRUE)`, u.UserID, u.TimeJoined)
		b.Queue(`INSERT INTO login_methods (recipe_user_id, user_id, recipe_id, tenant_id, email, password_hash, verified, time_joined)
			VALUES ($1, $1, 'emailpassword', $2, $3, $4, $5, $6)`, u.UserID, u.TenantID, u.Email, u.PasswordHash, u.EmailVerified, u.TimeJoined)
		queued = append(queued, what{user: u.UserID}, what{user: u.UserID})
		for _, d := range u.TOTPDevices {
			b.Queue(`INSERT INTO totp_devices (user_id, name, secret, digits, period, skew, verified, last_used_step, created_at, created_by_session)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, u.UserID, d.Name, d.Secret, d.Digits, d.Period, d.Skew, d.Verified, d.LastUsedStep, d.CreatedAt, d.CreatedBySession)
			queued = append(queued, what{user: u.UserID, device: d.Name})
		}
	}
	err := s.tx(ctx, pgx.ReadCommitted, func(tx pgx.Tx) error {
		res := tx.SendBatch(ctx, &b)
		for _, q := range queued {
			_, err := res.Exec()
			switch {
			case err == nil:
				continue
			case pgCode(err) == uniqueViolation && q.device != "":
				err = fmt.Errorf("import device %q of user %q: %w", q.device, q.user, store.ErrDeviceExists)
			case pgCode(err) == uniqueViolation && constraint(err) == "login_methods_emailpassword":
				err = fmt.Errorf("import user %q: %w", q.user, store.ErrEmailTaken)
			case pgCode(err) == uniqueViolation:
				err = fmt.Errorf("import user %q: %w", q.user, store.ErrUserExists)
			default:
				err = fmt.Errorf("import user %q: %w", q.user, err)
			}
			res.Close()
			return err
		}
		return res.Close()
	})
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	return nil
}
