package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/twofold-dev/twofold/core/passwordless"
	"github.com/twofold-dev/twofold/core/store"
)

const sessionColumns = `handle, user_id, recipe_user_id, tenant_id, claims, created_at, expires_at, revoked_at, current_refresh_hash, refresh_lifetime_ms`

func scanSession(row scanner) (store.Session, error) {
	var s store.Session
	var claims string
	var created, expires, lifetime int64
	var revoked sql.NullInt64
	if err := row.Scan(&s.Handle, &s.UserID, &s.RecipeUserID, &s.TenantID, &claims, &created, &expires, &revoked, &s.CurrentRefreshHash, &lifetime); err != nil {
		return store.Session{}, err
	}
	s.RefreshLifetime = time.Duration(lifetime) * time.Millisecond
	s.Claims = json.RawMessage(claims)
	s.CreatedAt, s.ExpiresAt, s.RevokedAt = fromMS(created), fromMS(expires), nullMS(revoked)
	return s, nil
}

func getSession(ctx context.Context, q querier, handle string) (store.Session, error) {
	s, err := scanSession(q.QueryRowContext(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE handle = ?`, handle))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Session{}, fmt.Errorf("session %q: %w", handle, store.ErrNotFound)
	}
	return s, err
}

func claimsText(c json.RawMessage) string {
	if len(c) == 0 {
		return "{}"
	}
	return string(c)
}

// CreateSession implements store.Sessions.
func (s *Store) CreateSession(ctx context.Context, sess store.Session) error {
	return createSessionError(s.tx(ctx, func(tx txn) error { return createSession(ctx, tx, sess) }))
}

func createSession(ctx context.Context, tx txn, sess store.Session) error {
	res, err := tx.ExecContext(ctx, `INSERT INTO sessions (`+sessionColumns+`) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, ?8, ?9
		WHERE NOT EXISTS (SELECT 1 FROM users WHERE id = ?2 AND disabled_at IS NOT NULL)`,
		sess.Handle, sess.UserID, sess.RecipeUserID, sess.TenantID, claimsText(sess.Claims), ms(sess.CreatedAt), ms(sess.ExpiresAt),
		sess.CurrentRefreshHash, sess.RefreshLifetime.Milliseconds())
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return errors.Join(fmt.Errorf("user %q: %w", sess.UserID, store.ErrUserDisabled), err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO refresh_tokens (hash, session_handle, parent_hash, created_at) VALUES (?, ?, NULL, ?)`,
		sess.CurrentRefreshHash, sess.Handle, ms(sess.CreatedAt))
	return err
}

// createSessionError is the error CreateSession returns for err.
func createSessionError(err error) error {
	if err == nil || errors.Is(err, store.ErrUserDisabled) {
		return err
	}
	return fmt.Errorf("sqlite: create session: %w", err)
}

// GetSession implements store.Sessions.
func (s *Store) GetSession(ctx context.Context, handle string) (store.Session, error) {
	sess, err := getSession(ctx, s.r, handle)
	if errors.Is(err, store.ErrNotFound) {
		return store.Session{}, err
	}
	if err != nil {
		return store.Session{}, fmt.Errorf("sqlite: get session: %w", err)
	}
	return sess, nil
}

// RotateRefreshToken implements store.Sessions.
func (s *Store) RotateRefreshToken(ctx context.Context, presented, next string, now time.Time) (store.Rotation, error) {
	var rot store.Rotation
	theft := false
	err := s.tx(ctx, func(tx txn) error {
		var handle string
		var parent sql.NullString
		var disabled bool
		err := tx.QueryRowContext(ctx, `SELECT r.session_handle, r.parent_hash, u.disabled_at IS NOT NULL
			FROM refresh_tokens r JOIN sessions s ON s.handle = r.session_handle JOIN users u ON u.id = s.user_id
			WHERE r.hash = ?`, presented).Scan(&handle, &parent, &disabled)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("refresh token: %w", store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		sess, err := getSession(ctx, tx, handle)
		if err != nil {
			return err
		}
		if !sess.RevokedAt.IsZero() {
			return fmt.Errorf("session %q: %w", handle, store.ErrSessionRevoked)
		}
		if !now.Before(sess.ExpiresAt) {
			return fmt.Errorf("session %q expired: %w", handle, store.ErrNotFound)
		}
		if disabled {
			return fmt.Errorf("user %q: %w", sess.UserID, store.ErrUserDisabled)
		}
		switch {
		case presented == sess.CurrentRefreshHash:
			// The current token again (a retry, or a client that lost the answer): issue
			// another child, up to store.MaxUnusedRefreshChildren, and wait for one to be used.
			var children int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM refresh_tokens WHERE session_handle = ? AND parent_hash = ?`,
				handle, presented).Scan(&children); err != nil {
				return err
			}
			if children >= store.MaxUnusedRefreshChildren {
				return fmt.Errorf("session %q: %w", handle, store.ErrTooManyRefreshes)
			}
		case parent.Valid && parent.String == sess.CurrentRefreshHash:
			// First use of a child: it becomes current. Its siblings stay known, so that
			// presenting one of them later is recognised as theft.
			if _, err := tx.ExecContext(ctx, `UPDATE sessions SET current_refresh_hash = ? WHERE handle = ?`, presented, handle); err != nil {
				return err
			}
			sess.CurrentRefreshHash = presented
		default:
			// A sibling of the current token or an older ancestor: two clients hold tokens of
			// one session, so one of them stole it.
			theft = true
			if err := revoke(ctx, tx, sess, now); err != nil {
				return err
			}
			sess.RevokedAt = fromMS(ms(now))
			rot.Session = sess
			return nil
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO refresh_tokens (hash, session_handle, parent_hash, created_at) VALUES (?, ?, ?, ?)`,
			next, handle, presented, ms(now)); err != nil {
			return err
		}
		if sess.RefreshLifetime > 0 {
			sess.ExpiresAt = fromMS(ms(now.Add(sess.RefreshLifetime)))
			if _, err := tx.ExecContext(ctx, `UPDATE sessions SET expires_at = ? WHERE handle = ?`, ms(sess.ExpiresAt), handle); err != nil {
				return err
			}
		}
		rot = store.Rotation{Session: sess, ParentHash: presented}
		return nil
	})
	if theft {
		return rot, fmt.Errorf("session %q: %w", rot.Session.Handle, store.ErrTokenTheft)
	}
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrSessionRevoked) || errors.Is(err, store.ErrTooManyRefreshes) || errors.Is(err, store.ErrUserDisabled) {
		return store.Rotation{}, err
	}
	if err != nil {
		return store.Rotation{}, fmt.Errorf("sqlite: rotate refresh token: %w", err)
	}
	return rot, nil
}

// UpdateSession implements store.Sessions. Everything fn reads goes through the writer's
// connection, whose page cache the other connections' commits do not invalidate.
func (s *Store) UpdateSession(ctx context.Context, handle string, fn func(store.SessionTx) error) (store.Session, error) {
	var sess store.Session
	err := s.tx(ctx, func(tx txn) error {
		st := &sessionTx{writeTx: writeTx{tx: tx}}
		var err error
		if st.sess, err = getSession(ctx, tx, handle); err != nil {
			return err
		}
		if !st.sess.RevokedAt.IsZero() {
			return fmt.Errorf("session %q: %w", handle, store.ErrSessionRevoked)
		}
		if err := fn(st); err != nil {
			return errDecided{err}
		}
		if st.claims != nil {
			if _, err := tx.ExecContext(ctx, `UPDATE sessions SET claims = ? WHERE handle = ?`, claimsText(st.claims), handle); err != nil {
				return err
			}
			st.sess.Claims = st.claims
		}
		sess = st.sess
		return nil
	})
	if err, ok := unwrapDecided(err); ok {
		return store.Session{}, err
	}
	if err != nil {
		return store.Session{}, fmt.Errorf("sqlite: update session: %w", err)
	}
	return sess, nil
}

// Write implements store.Writer on the single writer's connection.
func (s *Store) Write(ctx context.Context, fn func(store.Tx) error) error {
	err := s.tx(ctx, func(tx txn) error {
		if err := fn(writeTx{tx: tx}); err != nil {
			return errDecided{err}
		}
		return nil
	})
	if err, ok := unwrapDecided(err); ok {
		return err
	}
	if err != nil {
		return fmt.Errorf("sqlite: write: %w", err)
	}
	return nil
}

// sessionTx is store.SessionTx on SQLite.
type sessionTx struct {
	writeTx
	sess   store.Session
	claims json.RawMessage
}

func (t *sessionTx) Session() store.Session { return t.sess }

func (t *sessionTx) SetClaims(c json.RawMessage) { t.claims = c }

// writeTx is store.Tx on SQLite: the Store's operations, run in tx. Everything it reads goes
// through the writer's connection, whose page cache the other connections' commits do not
// invalidate.
type writeTx struct {
	tx txn
}

func (t writeTx) GetUser(ctx context.Context, userID string) (store.User, error) {
	return getUser(ctx, t.tx, userID)
}

func (t writeTx) GetUserMetadata(ctx context.Context, userID string) (map[string]json.RawMessage, error) {
	return getUserMetadata(ctx, t.tx, userID)
}

func (t writeTx) GetMFAStatus(ctx context.Context, userID string) (store.MFAStatus, error) {
	return mfaStatus(ctx, t.tx, userID)
}

func (t writeTx) MFAPolicyStart(ctx context.Context, userID, tenantID string, now time.Time) (time.Time, error) {
	at, found, err := readPolicyStart(ctx, t.tx, userID, tenantID)
	if err != nil || found {
		return at, err
	}
	return recordPolicyStart(ctx, t.tx, userID, tenantID, now)
}

func (t writeTx) VerifyTOTP(ctx context.Context, userID, name string, decide func(store.AttemptLimit, []store.TOTPDevice) (store.TOTPAttempt, error)) (store.TOTPAttempt, error) {
	out, err := verifyTOTP(ctx, t.tx, userID, name, decide)
	return out, verifyTOTPError(err)
}

func (t writeTx) UseRecoveryCode(ctx context.Context, userID string, now time.Time, decide func(store.AttemptLimit, []store.RecoveryCode) (store.RecoveryAttempt, error)) (store.RecoveryAttempt, error) {
	out, err := useRecoveryCode(ctx, t.tx, userID, now, decide)
	return out, useRecoveryCodeError(err)
}

func (t writeTx) ConsumePasswordlessCode(ctx context.Context, tenantID, preAuthSessionID string,
	consume func(d *passwordless.Device) (passwordless.Outcome, error)) (passwordless.Device, passwordless.Outcome, error) {
	d, out, err := consumePasswordlessCode(ctx, t.tx, tenantID, preAuthSessionID, consume)
	return d, out, consumeError(err)
}

func (t writeTx) SignInUpPasswordless(ctx context.Context, n store.NewPasswordlessUser) (store.User, string, bool, error) {
	column, value, err := passwordlessContact(n)
	if err != nil {
		return store.User{}, "", false, err
	}
	u, recipeUserID, created, err := signInUpPasswordless(ctx, t.tx, n, column, value)
	return u, recipeUserID, created, signInUpError(err)
}

func (t writeTx) CreateSession(ctx context.Context, sess store.Session) error {
	return createSessionError(createSession(ctx, t.tx, sess))
}

// RevokeSession implements store.Sessions.
func (s *Store) RevokeSession(ctx context.Context, handle string, now time.Time) (store.Session, error) {
	var sess store.Session
	err := s.tx(ctx, func(tx txn) error {
		var err error
		if sess, err = getSession(ctx, tx, handle); err != nil {
			return err
		}
		if !sess.RevokedAt.IsZero() {
			return nil
		}
		if err := revoke(ctx, tx, sess, now); err != nil {
			return err
		}
		sess.RevokedAt = fromMS(ms(now))
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return store.Session{}, err
	}
	if err != nil {
		return store.Session{}, fmt.Errorf("sqlite: revoke session: %w", err)
	}
	return sess, nil
}

// RevokeUserSessions implements store.Sessions.
func (s *Store) RevokeUserSessions(ctx context.Context, userID string, now time.Time) (int, error) {
	var n int64
	err := s.tx(ctx, func(tx txn) error {
		rows, err := tx.QueryContext(ctx, `SELECT DISTINCT tenant_id FROM sessions
			WHERE revoked_at IS NULL AND (user_id = ? OR recipe_user_id = ?) ORDER BY tenant_id`, userID, userID)
		if err != nil {
			return err
		}
		var tenants []string
		for rows.Next() {
			var t string
			if err := rows.Scan(&t); err != nil {
				rows.Close()
				return err
			}
			tenants = append(tenants, t)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, t := range tenants {
			seq, err := nextRevocationSeq(ctx, tx, t)
			if err != nil {
				return err
			}
			res, err := tx.ExecContext(ctx, `UPDATE sessions SET revoked_at = ?, revoke_seq = ?
				WHERE revoked_at IS NULL AND tenant_id = ? AND (user_id = ? OR recipe_user_id = ?)`, ms(now), seq, t, userID, userID)
			if err != nil {
				return err
			}
			affected, err := res.RowsAffected()
			if err != nil {
				return err
			}
			n += affected
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: revoke sessions of user: %w", err)
	}
	return int(n), nil
}

// nextRevocationSeq takes the tenant's next revocation cursor value inside tx.
func nextRevocationSeq(ctx context.Context, tx txn, tenantID string) (int64, error) {
	var seq int64
	err := tx.QueryRowContext(ctx, `INSERT INTO revocation_counters (tenant_id, seq) VALUES (?, 1)
		ON CONFLICT (tenant_id) DO UPDATE SET seq = revocation_counters.seq + 1 RETURNING seq`, tenantID).Scan(&seq)
	return seq, err
}

// revoke marks a live session revoked at now with its tenant's next revocation cursor value.
func revoke(ctx context.Context, tx txn, sess store.Session, now time.Time) error {
	seq, err := nextRevocationSeq(ctx, tx, sess.TenantID)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `UPDATE sessions SET revoked_at = ?, revoke_seq = ? WHERE handle = ?`, ms(now), seq, sess.Handle)
	return err
}

// RevocationCursor implements store.Sessions.
func (s *Store) RevocationCursor(ctx context.Context, tenantID string) (int64, error) {
	var cursor int64
	err := s.r.QueryRowContext(ctx, `SELECT seq FROM revocation_counters WHERE tenant_id = ?`, tenantID).Scan(&cursor)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("sqlite: read revocation cursor: %w", err)
	}
	return cursor, nil
}

// RevocationsSince implements store.Sessions. The cursor is read first; rows above it are
// left for the next ask, so a revocation committing between the two reads is not skipped.
func (s *Store) RevocationsSince(ctx context.Context, tenantID string, since int64, notBefore time.Time) (store.Revocations, error) {
	var out store.Revocations
	var err error
	if out.Cursor, err = s.RevocationCursor(ctx, tenantID); err != nil {
		return store.Revocations{}, err
	}
	out.Full = since <= 0 || since > out.Cursor
	if out.Full {
		since = 0
	}
	rows, err := s.r.QueryContext(ctx, `SELECT handle, revoked_at, revoke_seq FROM sessions
		WHERE tenant_id = ? AND revoke_seq > ? AND revoke_seq <= ? AND revoked_at >= ? ORDER BY revoke_seq, handle`,
		tenantID, since, out.Cursor, ms(notBefore))
	if err != nil {
		return store.Revocations{}, fmt.Errorf("sqlite: list revocations: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r store.Revocation
		var at int64
		if err := rows.Scan(&r.Handle, &at, &r.Seq); err != nil {
			return store.Revocations{}, fmt.Errorf("sqlite: list revocations: %w", err)
		}
		r.RevokedAt = fromMS(at)
		out.Sessions = append(out.Sessions, r)
	}
	if err := rows.Err(); err != nil {
		return store.Revocations{}, fmt.Errorf("sqlite: list revocations: %w", err)
	}
	return out, nil
}

// RevokedSince implements store.Sessions.
func (s *Store) RevokedSince(ctx context.Context, tenantID string, since time.Time) ([]store.Session, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+sessionColumns+` FROM sessions
		WHERE tenant_id = ? AND revoked_at IS NOT NULL AND revoked_at >= ? ORDER BY revoked_at, handle`, tenantID, ms(since))
	if err != nil {
		return nil, fmt.Errorf("sqlite: list revoked sessions: %w", err)
	}
	defer rows.Close()
	var out []store.Session
	for rows.Next() {
		sess, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list revoked sessions: %w", err)
		}
		out = append(out, sess)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list revoked sessions: %w", err)
	}
	return out, nil
}

// DeleteSessionsBefore implements store.Sessions.
func (s *Store) DeleteSessionsBefore(ctx context.Context, t time.Time) (int, error) {
	var n int64
	err := s.tx(ctx, func(tx txn) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at < ? OR (revoked_at IS NOT NULL AND revoked_at < ?)`, ms(t), ms(t))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete old sessions: %w", err)
	}
	return int(n), nil
}
