package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/twofold-dev/twofold/core/store"
)

var _ store.MFA = (*Store)(nil)

func isForeignKeyViolation(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}

// CreateTOTPDevice implements store.MFA.
func (s *Store) CreateTOTPDevice(ctx context.Context, d store.TOTPDevice) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO totp_devices (user_id, name, secret, digits, period, skew, verified, last_used_step, created_at, created_by_session)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, d.UserID, d.Name, d.Secret, d.Digits, d.Period, d.Skew, d.Verified, d.LastUsedStep, ms(d.CreatedAt), d.CreatedBySession)
	switch {
	case isUniqueViolation(err):
		return fmt.Errorf("device %q of user %q: %w", d.Name, d.UserID, store.ErrDeviceExists)
	case isForeignKeyViolation(err):
		return fmt.Errorf("user %q: %w", d.UserID, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("sqlite: create TOTP device: %w", err)
	}
	return nil
}

func listTOTPDevices(ctx context.Context, q querier, userID, name string, onlyVerified bool) ([]store.TOTPDevice, error) {
	query := `SELECT user_id, name, secret, digits, period, skew, verified, last_used_step, created_at, created_by_session FROM totp_devices WHERE user_id = ?`
	args := []any{userID}
	if name != "" {
		query += ` AND name = ?`
		args = append(args, name)
	}
	if onlyVerified {
		query += ` AND verified = 1`
	}
	rows, err := q.QueryContext(ctx, query+` ORDER BY created_at, name`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.TOTPDevice
	for rows.Next() {
		var d store.TOTPDevice
		var created int64
		if err := rows.Scan(&d.UserID, &d.Name, &d.Secret, &d.Digits, &d.Period, &d.Skew, &d.Verified, &d.LastUsedStep, &created, &d.CreatedBySession); err != nil {
			return nil, err
		}
		d.CreatedAt = fromMS(created)
		out = append(out, d)
	}
	return out, rows.Err()
}

// ListTOTPDevices implements store.MFA.
func (s *Store) ListTOTPDevices(ctx context.Context, userID string) ([]store.TOTPDevice, error) {
	out, err := listTOTPDevices(ctx, s.r, userID, "", false)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list TOTP devices: %w", err)
	}
	return out, nil
}

// DeleteTOTPDevice implements store.MFA.
func (s *Store) DeleteTOTPDevice(ctx context.Context, userID, name string, onlyUnverified bool) (existed, deleted bool, err error) {
	err = s.tx(ctx, func(tx txn) error {
		var verified bool
		err := tx.QueryRowContext(ctx, `SELECT verified FROM totp_devices WHERE user_id = ? AND name = ?`, userID, name).Scan(&verified)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		existed = true
		if onlyUnverified && verified {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM totp_devices WHERE user_id = ? AND name = ?`, userID, name); err != nil {
			return err
		}
		deleted = true
		return nil
	})
	if err != nil {
		return false, false, fmt.Errorf("sqlite: delete TOTP device: %w", err)
	}
	return existed, deleted, nil
}

func readLimit(ctx context.Context, q querier, userID string) (store.AttemptLimit, error) {
	var l store.AttemptLimit
	var until sql.NullInt64
	err := q.QueryRowContext(ctx, `SELECT failures, locked_until FROM mfa_attempt_limits WHERE user_id = ?`, userID).Scan(&l.Failures, &until)
	if errors.Is(err, sql.ErrNoRows) {
		return store.AttemptLimit{}, nil
	}
	if err != nil {
		return store.AttemptLimit{}, err
	}
	l.LockedUntil = nullMS(until)
	return l, nil
}

func writeLimit(ctx context.Context, tx txn, userID string, old, l store.AttemptLimit) error {
	if old == l {
		return nil
	}
	if l == (store.AttemptLimit{}) {
		_, err := tx.ExecContext(ctx, `DELETE FROM mfa_attempt_limits WHERE user_id = ?`, userID)
		return err
	}
	var until sql.NullInt64
	if !l.LockedUntil.IsZero() {
		until = sql.NullInt64{Int64: ms(l.LockedUntil), Valid: true}
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO mfa_attempt_limits (user_id, failures, locked_until) VALUES (?, ?, ?)
		ON CONFLICT (user_id) DO UPDATE SET failures = excluded.failures, locked_until = excluded.locked_until`, userID, l.Failures, until)
	if isForeignKeyViolation(err) {
		return fmt.Errorf("user %q: %w", userID, store.ErrNotFound)
	}
	return err
}

// GetMFAStatus implements store.MFA.
func (s *Store) GetMFAStatus(ctx context.Context, userID string) (store.MFAStatus, error) {
	return mfaStatus(ctx, s.r, userID)
}

func mfaStatus(ctx context.Context, q querier, userID string) (store.MFAStatus, error) {
	var st store.MFAStatus
	err := q.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM totp_devices WHERE user_id = ?1 AND verified = 1),
		(SELECT count(*) FROM recovery_codes WHERE user_id = ?1 AND used_at IS NULL)`, userID).Scan(&st.VerifiedTOTPDevices, &st.UnusedRecoveryCodes)
	if err != nil {
		return store.MFAStatus{}, fmt.Errorf("sqlite: read MFA status: %w", err)
	}
	return st, nil
}

// GetAttemptLimit implements store.MFA.
func (s *Store) GetAttemptLimit(ctx context.Context, userID string) (store.AttemptLimit, error) {
	l, err := readLimit(ctx, s.r, userID)
	if err != nil {
		return store.AttemptLimit{}, fmt.Errorf("sqlite: read attempt limit: %w", err)
	}
	return l, nil
}

// errDecided marks an error returned by a decide callback, so it is returned unwrapped.
type errDecided struct{ err error }

func (e errDecided) Error() string { return e.err.Error() }

func unwrapDecided(err error) (error, bool) {
	var d errDecided
	if errors.As(err, &d) {
		return d.err, true
	}
	return err, false
}

// VerifyTOTP implements store.MFA. The transaction is BEGIN IMMEDIATE on the single writer
// connection, so no other verification of any user interleaves with it.
func (s *Store) VerifyTOTP(ctx context.Context, userID, name string, decide func(store.AttemptLimit, []store.TOTPDevice) (store.TOTPAttempt, error)) (store.TOTPAttempt, error) {
	var out store.TOTPAttempt
	err := s.tx(ctx, func(tx txn) (err error) {
		out, err = verifyTOTP(ctx, tx, userID, name, decide)
		return err
	})
	return out, verifyTOTPError(err)
}

// verifyTOTP applies one TOTP verification inside tx; an error from decide comes back as
// errDecided.
func verifyTOTP(ctx context.Context, tx txn, userID, name string, decide func(store.AttemptLimit, []store.TOTPDevice) (store.TOTPAttempt, error)) (store.TOTPAttempt, error) {
	limit, err := readLimit(ctx, tx, userID)
	if err != nil {
		return store.TOTPAttempt{}, err
	}
	devices, err := listTOTPDevices(ctx, tx, userID, name, name == "")
	if err != nil {
		return store.TOTPAttempt{}, err
	}
	out, err := decide(limit, devices)
	if err != nil {
		return store.TOTPAttempt{}, errDecided{err}
	}
	if out.Device != "" {
		res, err := tx.ExecContext(ctx, `UPDATE totp_devices SET last_used_step = ?, verified = 1
			WHERE user_id = ? AND name = ? AND last_used_step < ?`, out.Step, userID, out.Device, out.Step)
		if err != nil {
			return store.TOTPAttempt{}, err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return store.TOTPAttempt{}, errors.Join(fmt.Errorf("device %q step %d: %w", out.Device, out.Step, store.ErrStepUsed), err)
		}
	}
	return out, writeLimit(ctx, tx, userID, limit, out.Limit)
}

// verifyTOTPError is the error VerifyTOTP returns for err.
func verifyTOTPError(err error) error {
	if err, ok := unwrapDecided(err); ok {
		return err
	}
	if err == nil || errors.Is(err, store.ErrStepUsed) || errors.Is(err, store.ErrNotFound) {
		return err
	}
	return fmt.Errorf("sqlite: verify TOTP: %w", err)
}

// ReplaceRecoveryCodes implements store.MFA.
func (s *Store) ReplaceRecoveryCodes(ctx context.Context, userID string, hashes [][]byte, now time.Time) error {
	err := s.tx(ctx, func(tx txn) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM recovery_codes WHERE user_id = ?`, userID); err != nil {
			return err
		}
		for _, h := range hashes {
			_, err := tx.ExecContext(ctx, `INSERT INTO recovery_codes (user_id, hash, created_at) VALUES (?, ?, ?)`, userID, h, ms(now))
			if isForeignKeyViolation(err) {
				return fmt.Errorf("user %q: %w", userID, store.ErrNotFound)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err != nil {
		return fmt.Errorf("sqlite: replace recovery codes: %w", err)
	}
	return nil
}

// CountRecoveryCodes implements store.MFA.
func (s *Store) CountRecoveryCodes(ctx context.Context, userID string) (unused, total int, err error) {
	err = s.r.QueryRowContext(ctx, `SELECT count(*), count(*) FILTER (WHERE used_at IS NULL) FROM recovery_codes WHERE user_id = ?`, userID).Scan(&total, &unused)
	if err != nil {
		return 0, 0, fmt.Errorf("sqlite: count recovery codes: %w", err)
	}
	return unused, total, nil
}

// UseRecoveryCode implements store.MFA.
func (s *Store) UseRecoveryCode(ctx context.Context, userID string, now time.Time, decide func(store.AttemptLimit, []store.RecoveryCode) (store.RecoveryAttempt, error)) (store.RecoveryAttempt, error) {
	var out store.RecoveryAttempt
	err := s.tx(ctx, func(tx txn) (err error) {
		out, err = useRecoveryCode(ctx, tx, userID, now, decide)
		return err
	})
	return out, useRecoveryCodeError(err)
}

// useRecoveryCode applies one recovery-code verification inside tx; an error from decide
// comes back as errDecided.
func useRecoveryCode(ctx context.Context, tx txn, userID string, now time.Time, decide func(store.AttemptLimit, []store.RecoveryCode) (store.RecoveryAttempt, error)) (store.RecoveryAttempt, error) {
	limit, err := readLimit(ctx, tx, userID)
	if err != nil {
		return store.RecoveryAttempt{}, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, hash FROM recovery_codes WHERE user_id = ? AND used_at IS NULL ORDER BY id`, userID)
	if err != nil {
		return store.RecoveryAttempt{}, err
	}
	var codes []store.RecoveryCode
	for rows.Next() {
		var c store.RecoveryCode
		if err := rows.Scan(&c.ID, &c.Hash); err != nil {
			rows.Close()
			return store.RecoveryAttempt{}, err
		}
		codes = append(codes, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return store.RecoveryAttempt{}, err
	}
	out, err := decide(limit, codes)
	if err != nil {
		return store.RecoveryAttempt{}, errDecided{err}
	}
	if out.CodeID != 0 {
		res, err := tx.ExecContext(ctx, `UPDATE recovery_codes SET used_at = ? WHERE id = ? AND user_id = ? AND used_at IS NULL`, ms(now), out.CodeID, userID)
		if err != nil {
			return store.RecoveryAttempt{}, err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return store.RecoveryAttempt{}, errors.Join(fmt.Errorf("recovery code %d: %w", out.CodeID, store.ErrCodeUsed), err)
		}
	}
	return out, writeLimit(ctx, tx, userID, limit, out.Limit)
}

// useRecoveryCodeError is the error UseRecoveryCode returns for err.
func useRecoveryCodeError(err error) error {
	if err, ok := unwrapDecided(err); ok {
		return err
	}
	if err == nil || errors.Is(err, store.ErrCodeUsed) || errors.Is(err, store.ErrNotFound) {
		return err
	}
	return fmt.Errorf("sqlite: use recovery code: %w", err)
}

// MFAPolicyStart implements store.MFA. It reads first, so only the first evaluation writes.
func (s *Store) MFAPolicyStart(ctx context.Context, userID, tenantID string, now time.Time) (time.Time, error) {
	at, found, err := readPolicyStart(ctx, s.r, userID, tenantID)
	if err != nil || found {
		return at, err
	}
	err = s.tx(ctx, func(tx txn) (err error) {
		at, err = recordPolicyStart(ctx, tx, userID, tenantID, now)
		return err
	})
	return at, err
}

func readPolicyStart(ctx context.Context, q querier, userID, tenantID string) (time.Time, bool, error) {
	var at int64
	err := q.QueryRowContext(ctx, `SELECT started_at FROM mfa_policy_starts WHERE user_id = ? AND tenant_id = ?`, userID, tenantID).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("sqlite: read MFA policy start: %w", err)
	}
	return fromMS(at), true, nil
}

// recordPolicyStart stores now as the start unless one is stored, and returns the stored one.
func recordPolicyStart(ctx context.Context, tx txn, userID, tenantID string, now time.Time) (time.Time, error) {
	_, err := tx.ExecContext(ctx, `INSERT INTO mfa_policy_starts (user_id, tenant_id, started_at) VALUES (?, ?, ?)
		ON CONFLICT (user_id, tenant_id) DO NOTHING`, userID, tenantID, ms(now))
	if isForeignKeyViolation(err) {
		return time.Time{}, fmt.Errorf("user %q: %w", userID, store.ErrNotFound)
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("sqlite: record MFA policy start: %w", err)
	}
	at, _, err := readPolicyStart(ctx, tx, userID, tenantID)
	return at, err
}
