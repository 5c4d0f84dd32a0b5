package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/twofold-dev/twofold/core/store"
)

var _ store.MFA = (*Store)(nil)

// CreateTOTPDevice implements store.MFA.
func (s *Store) CreateTOTPDevice(ctx context.Context, d store.TOTPDevice) error {
	ctx, cancel := bound(ctx)
	defer cancel()
	_, err := s.pool.Exec(ctx, `INSERT INTO totp_devices (user_id, name, secret, digits, period, skew, verified, last_used_step, created_at, created_by_session)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, d.UserID, d.Name, d.Secret, d.Digits, d.Period, d.Skew, d.Verified, d.LastUsedStep, d.CreatedAt, d.CreatedBySession)
	switch {
	case pgCode(err) == uniqueViolation:
		return fmt.Errorf("device %q of user %q: %w", d.Name, d.UserID, store.ErrDeviceExists)
	case pgCode(err) == foreignKeyViolation:
		return fmt.Errorf("user %q: %w", d.UserID, store.ErrNotFound)
	case err != nil:
		return fmt.Errorf("postgres: create TOTP device: %w", err)
	}
	return nil
}

// totpDevicesQuery is the query of a user's devices: only the named one when name is set,
// only verified ones with onlyVerified.
func totpDevicesQuery(userID, name string, onlyVerified bool) (string, []any) {
	query := `SELECT user_id, name, secret, digits, period, skew, verified, last_used_step, created_at, created_by_session FROM totp_devices WHERE user_id = $1`
	args := []any{userID}
	if name != "" {
		query += ` AND name = $2`
		args = append(args, name)
	}
	if onlyVerified {
		query += ` AND verified`
	}
	return query + ` ORDER BY created_at, name`, args
}

func scanTOTPDevice(r pgx.CollectableRow) (store.TOTPDevice, error) {
	var d store.TOTPDevice
	err := r.Scan(&d.UserID, &d.Name, &d.Secret, &d.Digits, &d.Period, &d.Skew, &d.Verified, &d.LastUsedStep, &d.CreatedAt, &d.CreatedBySession)
	d.CreatedAt = utc(d.CreatedAt)
	return d, err
}

func listTOTPDevices(ctx context.Context, q querier, userID, name string, onlyVerified bool) ([]store.TOTPDevice, error) {
	query, args := totpDevicesQuery(userID, name, onlyVerified)
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanTOTPDevice)
}

// ListTOTPDevices implements store.MFA.
func (s *Store) ListTOTPDevices(ctx context.Context, userID string) ([]store.TOTPDevice, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	out, err := listTOTPDevices(ctx, s.pool, userID, "", false)
	if err != nil {
		return nil, fmt.Errorf("postgres: list TOTP devices: %w", err)
	}
	return out, nil
}

// DeleteTOTPDevice implements store.MFA, in one statement: the device is deleted unless it
// is verified and only unverified ones may go.
func (s *Store) DeleteTOTPDevice(ctx context.Context, userID, name string, onlyUnverified bool) (existed, deleted bool, err error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	err = s.pool.QueryRow(ctx, `WITH d AS (
			DELETE FROM totp_devices WHERE user_id = $1 AND name = $2 AND NOT ($3 AND verified) RETURNING 1)
		SELECT EXISTS (SELECT 1 FROM d), EXISTS (SELECT 1 FROM d) OR EXISTS (SELECT 1 FROM totp_devices WHERE user_id = $1 AND name = $2)`,
		userID, name, onlyUnverified).Scan(&deleted, &existed)
	if err != nil {
		return false, false, fmt.Errorf("postgres: delete TOTP device: %w", err)
	}
	return existed, deleted, nil
}

// lockUser locks a user's row until the transaction ends (FOR NO KEY UPDATE, which leaves
// inserts that reference the user free): the MFA writes of one user apply one after the other
// on every replica. An unknown user locks nothing; there is nothing of theirs to protect.
func lockUser(ctx context.Context, tx pgx.Tx, userID string) error {
	_, err := tx.Exec(ctx, `SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE`, userID)
	return err
}

// limitQuery reads a user's attempt limit.
const limitQuery = `SELECT failures, locked_until FROM mfa_attempt_limits WHERE user_id = $1`

func scanLimit(row pgx.Row) (store.AttemptLimit, error) {
	var l store.AttemptLimit
	var until *time.Time
	err := row.Scan(&l.Failures, &until)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.AttemptLimit{}, nil
	}
	if err != nil {
		return store.AttemptLimit{}, err
	}
	l.LockedUntil = fromNull(until)
	return l, nil
}

func readLimit(ctx context.Context, q querier, userID string) (store.AttemptLimit, error) {
	return scanLimit(q.QueryRow(ctx, limitQuery, userID))
}

// queueLockAndLimit queues, in this order, the lock of the user's row (FOR NO KEY UPDATE,
// which leaves inserts that reference the user free) and the read of their attempt limit into
// *limit. The server runs a batch's statements one after the other, each with a fresh snapshot
// in READ COMMITTED, so the read sees the limit the previous holder of the lock stored:
// verifications of one user on any replica apply one after the other, in one round trip for
// the lock and the reads. An unknown user locks nothing; there is nothing of theirs to protect.
func queueLockAndLimit(b *pgx.Batch, userID string, limit *store.AttemptLimit) {
	b.Queue(`SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE`, userID)
	b.Queue(limitQuery, userID).QueryRow(func(row pgx.Row) error {
		l, err := scanLimit(row)
		*limit = l
		return err
	})
}

// queueWriteLimit queues the statement that stores l when it differs from old.
func queueWriteLimit(b *pgx.Batch, userID string, old, l store.AttemptLimit) {
	switch {
	case old == l:
	case l == (store.AttemptLimit{}):
		b.Queue(`DELETE FROM mfa_attempt_limits WHERE user_id = $1`, userID)
	default:
		b.Queue(`INSERT INTO mfa_attempt_limits (user_id, failures, locked_until) VALUES ($1, $2, $3)
			ON CONFLICT (user_id) DO UPDATE SET failures = excluded.failures, locked_until = excluded.locked_until`,
			userID, l.Failures, nullTime(l.LockedUntil))
	}
}

// sendWrites sends a batch of writes, if there are any; a limit stored for an unknown user is
// ErrNotFound.
func sendWrites(ctx context.Context, tx pgx.Tx, b *pgx.Batch, userID string) error {
	if b.Len() == 0 {
		return nil
	}
	err := tx.SendBatch(ctx, b).Close()
	if pgCode(err) == foreignKeyViolation {
		return fmt.Errorf("user %q: %w", userID, store.ErrNotFound)
	}
	return err
}

// GetMFAStatus implements store.MFA.
func (s *Store) GetMFAStatus(ctx context.Context, userID string) (store.MFAStatus, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	return mfaStatus(ctx, s.pool, userID)
}

func mfaStatus(ctx context.Context, q querier, userID string) (store.MFAStatus, error) {
	var st store.MFAStatus
	err := q.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM totp_devices WHERE user_id = $1 AND verified),
		(SELECT count(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL)`, userID).Scan(&st.VerifiedTOTPDevices, &st.UnusedRecoveryCodes)
	if err != nil {
		return store.MFAStatus{}, fmt.Errorf("postgres: read MFA status: %w", err)
	}
	return st, nil
}

// GetAttemptLimit implements store.MFA.
func (s *Store) GetAttemptLimit(ctx context.Context, userID string) (store.AttemptLimit, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	l, err := readLimit(ctx, s.pool, userID)
	if err != nil {
		return store.AttemptLimit{}, fmt.Errorf("postgres: read attempt limit: %w", err)
	}
	return l, nil
}

// VerifyTOTP implements store.MFA. The user's row is locked first, so verifications of one
// user on any replica apply one after the other: a lockout one of them stores is seen by the
// next, and the step compare-and-set keeps a code from being accepted twice.
func (s *Store) VerifyTOTP(ctx context.Context, userID, name string, decide func(store.AttemptLimit, []store.TOTPDevice) (store.TOTPAttempt, error)) (store.TOTPAttempt, error) {
	var out store.TOTPAttempt
	err := s.tx(ctx, pgx.ReadCommitted, func(tx pgx.Tx) (err error) {
		out, err = verifyTOTP(ctx, tx, userID, name, decide)
		return err
	})
	return out, verifyTOTPError(err)
}

// verifyTOTP applies one TOTP verification inside tx; an error from decide comes back as
// errDecided.
func verifyTOTP(ctx context.Context, tx pgx.Tx, userID, name string, decide func(store.AttemptLimit, []store.TOTPDevice) (store.TOTPAttempt, error)) (store.TOTPAttempt, error) {
	var limit store.AttemptLimit
	var devices []store.TOTPDevice
	var reads pgx.Batch
	queueLockAndLimit(&reads, userID, &limit)
	query, args := totpDevicesQuery(userID, name, name == "")
	reads.Queue(query, args...).Query(func(rows pgx.Rows) (err error) {
		devices, err = pgx.CollectRows(rows, scanTOTPDevice)
		return err
	})
	if err := tx.SendBatch(ctx, &reads).Close(); err != nil {
		return store.TOTPAttempt{}, err
	}
	out, err := decide(limit, devices)
	if err != nil {
		return store.TOTPAttempt{}, errDecided{err}
	}
	var writes pgx.Batch
	if out.Device != "" {
		device, step := out.Device, out.Step
		writes.Queue(`UPDATE totp_devices SET last_used_step = $1, verified = TRUE
			WHERE user_id = $2 AND name = $3 AND last_used_step < $1`, step, userID, device).Exec(func(tag pgconn.CommandTag) error {
			if tag.RowsAffected() != 1 {
				return fmt.Errorf("device %q step %d: %w", device, step, store.ErrStepUsed)
			}
			return nil
		})
	}
	queueWriteLimit(&writes, userID, limit, out.Limit)
	return out, sendWrites(ctx, tx, &writes, userID)
}

// verifyTOTPError is the error VerifyTOTP returns for err.
func verifyTOTPError(err error) error {
	if err, ok := unwrapDecided(err); ok {
		return err
	}
	if err == nil || errors.Is(err, store.ErrStepUsed) || errors.Is(err, store.ErrNotFound) {
		return err
	}
	return fmt.Errorf("postgres: verify TOTP: %w", err)
}

// ReplaceRecoveryCodes implements store.MFA.
func (s *Store) ReplaceRecoveryCodes(ctx context.Context, userID string, hashes [][]byte, now time.Time) error {
	err := s.tx(ctx, pgx.ReadCommitted, func(tx pgx.Tx) error {
		if err := lockUser(ctx, tx, userID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM recovery_codes WHERE user_id = $1`, userID); err != nil {
			return err
		}
		if len(hashes) == 0 {
			return nil
		}
		_, err := tx.Exec(ctx, `INSERT INTO recovery_codes (user_id, hash, created_at)
			SELECT $1, h, $3 FROM unnest($2::bytea[]) WITH ORDINALITY AS c(h, n) ORDER BY n`, userID, hashes, now)
		if pgCode(err) == foreignKeyViolation {
			return fmt.Errorf("user %q: %w", userID, store.ErrNotFound)
		}
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err != nil {
		return fmt.Errorf("postgres: replace recovery codes: %w", err)
	}
	return nil
}

// CountRecoveryCodes implements store.MFA.
func (s *Store) CountRecoveryCodes(ctx context.Context, userID string) (unused, total int, err error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	err = s.pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE used_at IS NULL) FROM recovery_codes WHERE user_id = $1`, userID).Scan(&total, &unused)
	if err != nil {
		return 0, 0, fmt.Errorf("postgres: count recovery codes: %w", err)
	}
	return unused, total, nil
}

// UseRecoveryCode implements store.MFA, under the same per-user lock as VerifyTOTP.
func (s *Store) UseRecoveryCode(ctx context.Context, userID string, now time.Time, decide func(store.AttemptLimit, []store.RecoveryCode) (store.RecoveryAttempt, error)) (store.RecoveryAttempt, error) {
	var out store.RecoveryAttempt
	err := s.tx(ctx, pgx.ReadCommitted, func(tx pgx.Tx) (err error) {
		out, err = useRecoveryCode(ctx, tx, userID, now, decide)
		return err
	})
	return out, useRecoveryCodeError(err)
}

// useRecoveryCode applies one recovery-code verification inside tx; an error from decide
// comes back as errDecided.
func useRecoveryCode(ctx context.Context, tx pgx.Tx, userID string, now time.Time, decide func(store.AttemptLimit, []store.RecoveryCode) (store.RecoveryAttempt, error)) (store.RecoveryAttempt, error) {
	var limit store.AttemptLimit
	var codes []store.RecoveryCode
	var reads pgx.Batch
	queueLockAndLimit(&reads, userID, &limit)
	reads.Queue(`SELECT id, hash FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL ORDER BY id`, userID).Query(func(rows pgx.Rows) (err error) {
		codes, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.RecoveryCode, error) {
			var c store.RecoveryCode
			err := r.Scan(&c.ID, &c.Hash)
			return c, err
		})
		return err
	})
	if err := tx.SendBatch(ctx, &reads).Close(); err != nil {
		return store.RecoveryAttempt{}, err
	}
	out, err := decide(limit, codes)
	if err != nil {
		return store.RecoveryAttempt{}, errDecided{err}
	}
	var writes pgx.Batch
	if out.CodeID != 0 {
		id := out.CodeID
		writes.Queue(`UPDATE recovery_codes SET used_at = $1 WHERE id = $2 AND user_id = $3 AND used_at IS NULL`, now, id, userID).Exec(func(tag pgconn.CommandTag) error {
			if tag.RowsAffected() != 1 {
				return fmt.Errorf("recovery code %d: %w", id, store.ErrCodeUsed)
			}
			return nil
		})
	}
	queueWriteLimit(&writes, userID, limit, out.Limit)
	return out, sendWrites(ctx, tx, &writes, userID)
}

// useRecoveryCodeError is the error UseRecoveryCode returns for err.
func useRecoveryCodeError(err error) error {
	if err, ok := unwrapDecided(err); ok {
		return err
	}
	if err == nil || errors.Is(err, store.ErrCodeUsed) || errors.Is(err, store.ErrNotFound) {
		return err
	}
	return fmt.Errorf("postgres: use recovery code: %w", err)
}

// MFAPolicyStart implements store.MFA. It reads first, so only the first evaluation writes;
// of two replicas recording at once, both return the time the first one stored.
func (s *Store) MFAPolicyStart(ctx context.Context, userID, tenantID string, now time.Time) (time.Time, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	return policyStart(ctx, s.pool, userID, tenantID, now)
}

// policyStart is MFAPolicyStart through q: the pool, or a transaction at read committed.
func policyStart(ctx context.Context, q execQuerier, userID, tenantID string, now time.Time) (time.Time, error) {
	const read = `SELECT started_at FROM mfa_policy_starts WHERE user_id = $1 AND tenant_id = $2`
	var at time.Time
	err := q.QueryRow(ctx, read, userID, tenantID).Scan(&at)
	if err == nil {
		return at.UTC(), nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, fmt.Errorf("postgres: read MFA policy start: %w", err)
	}
	_, err = q.Exec(ctx, `INSERT INTO mfa_policy_starts (user_id, tenant_id, started_at) VALUES ($1, $2, $3)
		ON CONFLICT (user_id, tenant_id) DO NOTHING`, userID, tenantID, now)
	if pgCode(err) == foreignKeyViolation {
		return time.Time{}, fmt.Errorf("user %q: %w", userID, store.ErrNotFound)
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("postgres: record MFA policy start: %w", err)
	}
	// A new statement, so a fresh snapshot: it sees the row whichever replica inserted it.
	if err := q.QueryRow(ctx, read, userID, tenantID).Scan(&at); err != nil {
		return time.Time{}, fmt.Errorf("postgres: record MFA policy start: %w", err)
	}
	return at.UTC(), nil
}
