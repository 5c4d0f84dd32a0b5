package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/twofold-dev/twofold/core/passwordless"
	"github.com/twofold-dev/twofold/core/store"
)

const sessionColumns = `handle, user_id, recipe_user_id, tenant_id, claims::text, created_at, expires_at, revoked_at, current_refresh_hash, refresh_lifetime_ms`

func scanSession(row scanner) (store.Session, error) {
	var s store.Session
	var claims string
	var lifetime int64
	var revoked *time.Time
	if err := row.Scan(&s.Handle, &s.UserID, &s.RecipeUserID, &s.TenantID, &claims, &s.CreatedAt, &s.ExpiresAt, &revoked, &s.CurrentRefreshHash, &lifetime); err != nil {
		return store.Session{}, err
	}
	s.RefreshLifetime = time.Duration(lifetime) * time.Millisecond
	s.Claims = json.RawMessage(claims)
	s.CreatedAt, s.ExpiresAt, s.RevokedAt = utc(s.CreatedAt), utc(s.ExpiresAt), fromNull(revoked)
	return s, nil
}

// getSession reads a session; with lock it also locks the row until the transaction ends.
func getSession(ctx context.Context, q querier, handle string, lock bool) (store.Session, error) {
	query := `SELECT ` + sessionColumns + ` FROM sessions WHERE handle = $1`
	if lock {
		query += ` FOR UPDATE`
	}
	s, err := scanSession(q.QueryRow(ctx, query, handle))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Session{}, fmt.Errorf("session %q: %w", handle, store.ErrNotFound)
	}
	return s, err
}

func collectSessions(rows pgx.Rows) ([]store.Session, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Session, error) { return scanSession(r) })
}

func claimsText(c json.RawMessage) string {
	if len(c) == 0 {
		return "{}"
	}
	return string(c)
}

// CreateSession implements store.Sessions: the session and its first refresh token in one
// statement, so in one transaction.
func (s *Store) CreateSession(ctx context.Context, sess store.Session) error {
	ctx, cancel := bound(ctx)
	defer cancel()
	return createSessionError(createSession(ctx, s.pool, sess))
}

func createSession(ctx context.Context, q execQuerier, sess store.Session) error {
	tag, err := q.Exec(ctx, `WITH sess AS (
			INSERT INTO sessions (handle, user_id, recipe_user_id, tenant_id, claims, created_at, expires_at, revoked_at, current_refresh_hash, refresh_lifetime_ms)
			SELECT $1, $2, $3, $4, CAST($5::text AS json), $6, $7, NULL, $8, $9
			WHERE NOT EXISTS (SELECT 1 FROM users WHERE id = $2 AND disabled_at IS NOT NULL) RETURNING handle)
		INSERT INTO refresh_tokens (hash, session_handle, parent_hash, created_at) SELECT $8, handle, NULL, $6 FROM sess`,
		sess.Handle, sess.UserID, sess.RecipeUserID, sess.TenantID, claimsText(sess.Claims), sess.CreatedAt, sess.ExpiresAt,
		sess.CurrentRefreshHash, sess.RefreshLifetime.Milliseconds())
	if err == nil && tag.RowsAffected() == 0 {
		return fmt.Errorf("user %q: %w", sess.UserID, store.ErrUserDisabled)
	}
	return err
}

// createSessionError is the error CreateSession returns for err.
func createSessionError(err error) error {
	if err == nil || errors.Is(err, store.ErrUserDisabled) || retryable(err) {
		return err
	}
	return fmt.Errorf("postgres: create session: %w", err)
}

// GetSession implements store.Sessions.
func (s *Store) GetSession(ctx context.Context, handle string) (store.Session, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	sess, err := getSession(ctx, s.pool, handle, false)
	if errors.Is(err, store.ErrNotFound) {
		return store.Session{}, err
	}
	if err != nil {
		return store.Session{}, fmt.Errorf("postgres: get session: %w", err)
	}
	return sess, nil
}

// RotateRefreshToken implements store.Sessions. The session's row is locked before the
// presented token is looked at, so rotations of one session, on any replica, apply one after
// the other: of two siblings used at once, the second finds the first current and is theft.
func (s *Store) RotateRefreshToken(ctx context.Context, presented, next string, now time.Time) (store.Rotation, error) {
	var rot store.Rotation
	var theft bool
	err := s.tx(ctx, pgx.ReadCommitted, func(tx pgx.Tx) error {
		rot, theft = store.Rotation{}, false
		sess, err := scanSession(tx.QueryRow(ctx, `SELECT `+sessionColumns+` FROM sessions
			WHERE handle = (SELECT session_handle FROM refresh_tokens WHERE hash = $1) FOR UPDATE`, presented))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("refresh token: %w", store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		// Read the token again now that the session is ours: a concurrent deletion of old
		// sessions may have removed it before we got the lock.
		var parent *string
		var disabled bool
		err = tx.QueryRow(ctx, `SELECT r.parent_hash, u.disabled_at IS NOT NULL FROM refresh_tokens r, users u
			WHERE r.hash = $1 AND r.session_handle = $2 AND u.id = $3`, presented, sess.Handle, sess.UserID).Scan(&parent, &disabled)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("refresh token: %w", store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		if !sess.RevokedAt.IsZero() {
			return fmt.Errorf("session %q: %w", sess.Handle, store.ErrSessionRevoked)
		}
		if !now.Before(sess.ExpiresAt) {
			return fmt.Errorf("session %q expired: %w", sess.Handle, store.ErrNotFound)
		}
		if disabled {
			return fmt.Errorf("user %q: %w", sess.UserID, store.ErrUserDisabled)
		}
		// The writes go in one batch: one round trip.
		var writes pgx.Batch
		switch {
		case presented == sess.CurrentRefreshHash:
			// The current token again (a retry, or a client that lost the answer): issue
			// another child, up to store.MaxUnusedRefreshChildren, and wait for one to be used.
			var children int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM refresh_tokens WHERE session_handle = $1 AND parent_hash = $2`,
				sess.Handle, presented).Scan(&children); err != nil {
				return err
			}
			if children >= store.MaxUnusedRefreshChildren {
				return fmt.Errorf("session %q: %w", sess.Handle, store.ErrTooManyRefreshes)
			}
		case parent != nil && *parent == sess.CurrentRefreshHash:
			// First use of a child: it becomes current. Its siblings stay known, so that
			// presenting one of them later is recognised as theft.
			sess.CurrentRefreshHash = presented
		default:
			// A sibling of the current token or an older ancestor: two clients hold tokens of
			// one session, so one of them stole it.
			theft = true
			if err := revoke(ctx, tx, sess, now); err != nil {
				return err
			}
			sess.RevokedAt = now.UTC().Truncate(time.Microsecond)
			rot.Session = sess
			return nil
		}
		writes.Queue(`INSERT INTO refresh_tokens (hash, session_handle, parent_hash, created_at) VALUES ($1, $2, $3, $4)`,
			next, sess.Handle, presented, now)
		if sess.RefreshLifetime > 0 {
			sess.ExpiresAt = now.Add(sess.RefreshLifetime).UTC().Truncate(time.Microsecond)
		}
		writes.Queue(`UPDATE sessions SET current_refresh_hash = $2, expires_at = $3 WHERE handle = $1`,
			sess.Handle, sess.CurrentRefreshHash, sess.ExpiresAt)
		if err := tx.SendBatch(ctx, &writes).Close(); err != nil {
			return err
		}
		rot = store.Rotation{Session: sess, ParentHash: presented}
		return nil
	})
	if err == nil && theft {
		return rot, fmt.Errorf("session %q: %w", rot.Session.Handle, store.ErrTokenTheft)
	}
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrSessionRevoked) || errors.Is(err, store.ErrTooManyRefreshes) || errors.Is(err, store.ErrUserDisabled) {
		return store.Rotation{}, err
	}
	if err != nil {
		return store.Rotation{}, fmt.Errorf("postgres: rotate refresh token: %w", err)
	}
	return rot, nil
}

// UpdateSession implements store.Sessions. The session's row stays locked while fn runs, so
// concurrent updates on any replica each see the previous one's claims.
func (s *Store) UpdateSession(ctx context.Context, handle string, fn func(store.SessionTx) error) (store.Session, error) {
	var sess store.Session
	err := s.tx(ctx, pgx.ReadCommitted, func(tx pgx.Tx) error {
		st := &sessionTx{writeTx: writeTx{tx: tx}}
		var err error
		if st.sess, err = getSession(ctx, tx, handle, true); err != nil {
			return err
		}
		if !st.sess.RevokedAt.IsZero() {
			return fmt.Errorf("session %q: %w", handle, store.ErrSessionRevoked)
		}
		if err := fn(st); err != nil {
			if retryable(err) {
				return err
			}
			return errDecided{err}
		}
		if st.claims != nil {
			if _, err := tx.Exec(ctx, `UPDATE sessions SET claims = CAST($2::text AS json) WHERE handle = $1`, handle, claimsText(st.claims)); err != nil {
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
		return store.Session{}, fmt.Errorf("postgres: update session: %w", err)
	}
	return sess, nil
}

// Write implements store.Writer.
func (s *Store) Write(ctx context.Context, fn func(store.Tx) error) error {
	err := s.tx(ctx, pgx.ReadCommitted, func(tx pgx.Tx) error {
		if err := fn(writeTx{tx: tx}); err != nil {
			if retryable(err) {
				return err
			}
			return errDecided{err}
		}
		return nil
	})
	if err, ok := unwrapDecided(err); ok {
		return err
	}
	if err != nil {
		return fmt.Errorf("postgres: write: %w", err)
	}
	return nil
}

// sessionTx is store.SessionTx on PostgreSQL.
type sessionTx struct {
	writeTx
	sess   store.Session
	claims json.RawMessage
}

func (t *sessionTx) Session() store.Session { return t.sess }

func (t *sessionTx) SetClaims(c json.RawMessage) { t.claims = c }

// writeTx is store.Tx on PostgreSQL: the Store's operations, run in tx.
type writeTx struct {
	tx pgx.Tx
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
	return policyStart(ctx, t.tx, userID, tenantID, now)
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

// nextRevocationSeq takes the tenant's next revocation cursor value inside tx. The counter's
// row stays locked until tx ends, so the revocations of one tenant commit in cursor order and
// a reader that sees a cursor value sees every revocation up to it. Locks are taken session
// rows first, then counters in tenant order, everywhere, so revocations cannot deadlock.
func nextRevocationSeq(ctx context.Context, tx pgx.Tx, tenantID string) (int64, error) {
	var seq int64
	err := tx.QueryRow(ctx, `INSERT INTO revocation_counters (tenant_id, seq) VALUES ($1, 1)
		ON CONFLICT (tenant_id) DO UPDATE SET seq = revocation_counters.seq + 1 RETURNING seq`, tenantID).Scan(&seq)
	return seq, err
}

// revoke marks a live session, whose row tx has locked, revoked at now with its tenant's
// next revocation cursor value.
func revoke(ctx context.Context, tx pgx.Tx, sess store.Session, now time.Time) error {
	seq, err := nextRevocationSeq(ctx, tx, sess.TenantID)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE sessions SET revoked_at = $2, revoke_seq = $3 WHERE handle = $1`, sess.Handle, now, seq)
	return err
}

// RevokeSession implements store.Sessions: the first revocation time stays.
func (s *Store) RevokeSession(ctx context.Context, handle string, now time.Time) (store.Session, error) {
	var sess store.Session
	err := s.tx(ctx, pgx.ReadCommitted, func(tx pgx.Tx) error {
		var err error
		sess, err = scanSession(tx.QueryRow(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE handle = $1 FOR UPDATE`, handle))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("session %q: %w", handle, store.ErrNotFound)
		}
		if err != nil || !sess.RevokedAt.IsZero() {
			return err
		}
		if err := revoke(ctx, tx, sess, now); err != nil {
			return err
		}
		sess.RevokedAt = now.UTC().Truncate(time.Microsecond)
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return store.Session{}, err
	}
	if err != nil {
		err, _ = unwrapDecided(err)
		return store.Session{}, fmt.Errorf("postgres: revoke session: %w", err)
	}
	return sess, nil
}

// RevokeUserSessions implements store.Sessions.
func (s *Store) RevokeUserSessions(ctx context.Context, userID string, now time.Time) (int, error) {
	var n int
	err := s.tx(ctx, pgx.ReadCommitted, func(tx pgx.Tx) error {
		n = 0
		rows, err := tx.Query(ctx, `SELECT tenant_id FROM sessions
			WHERE revoked_at IS NULL AND (user_id = $1 OR recipe_user_id = $1) ORDER BY handle FOR UPDATE`, userID)
		if err != nil {
			return err
		}
		tenants, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		slices.Sort(tenants)
		for _, t := range slices.Compact(tenants) {
			seq, err := nextRevocationSeq(ctx, tx, t)
			if err != nil {
				return err
			}
			tag, err := tx.Exec(ctx, `UPDATE sessions SET revoked_at = $1, revoke_seq = $2
				WHERE revoked_at IS NULL AND tenant_id = $3 AND (user_id = $4 OR recipe_user_id = $4)`, now, seq, t, userID)
			if err != nil {
				return err
			}
			n += int(tag.RowsAffected())
		}
		return nil
	})
	if err != nil {
		err, _ = unwrapDecided(err)
		return 0, fmt.Errorf("postgres: revoke sessions of user: %w", err)
	}
	return n, nil
}

// RevocationCursor implements store.Sessions.
func (s *Store) RevocationCursor(ctx context.Context, tenantID string) (int64, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	var cursor int64
	err := s.pool.QueryRow(ctx, `SELECT seq FROM revocation_counters WHERE tenant_id = $1`, tenantID).Scan(&cursor)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("postgres: read revocation cursor: %w", err)
	}
	return cursor, nil
}

// RevocationsSince implements store.Sessions. The cursor is read first; rows above it are
// left for the next ask, so a revocation committing between the two reads is not skipped.
func (s *Store) RevocationsSince(ctx context.Context, tenantID string, since int64, notBefore time.Time) (store.Revocations, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	var out store.Revocations
	var err error
	if out.Cursor, err = s.RevocationCursor(ctx, tenantID); err != nil {
		return store.Revocations{}, err
	}
	out.Full = since <= 0 || since > out.Cursor
	if out.Full {
		since = 0
	}
	rows, err := s.pool.Query(ctx, `SELECT handle, revoked_at, revoke_seq FROM sessions
		WHERE tenant_id = $1 AND revoke_seq > $2 AND revoke_seq <= $3 AND revoked_at >= $4 ORDER BY revoke_seq, handle`,
		tenantID, since, out.Cursor, notBefore)
	if err != nil {
		return store.Revocations{}, fmt.Errorf("postgres: list revocations: %w", err)
	}
	out.Sessions, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Revocation, error) {
		var r store.Revocation
		err := row.Scan(&r.Handle, &r.RevokedAt, &r.Seq)
		return r, err
	})
	if err != nil {
		return store.Revocations{}, fmt.Errorf("postgres: list revocations: %w", err)
	}
	return out, nil
}

// RevokedSince implements store.Sessions.
func (s *Store) RevokedSince(ctx context.Context, tenantID string, since time.Time) ([]store.Session, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT `+sessionColumns+` FROM sessions
		WHERE tenant_id = $1 AND revoked_at IS NOT NULL AND revoked_at >= $2 ORDER BY revoked_at, handle`, tenantID, since)
	if err != nil {
		return nil, fmt.Errorf("postgres: list revoked sessions: %w", err)
	}
	out, err := collectSessions(rows)
	if err != nil {
		return nil, fmt.Errorf("postgres: list revoked sessions: %w", err)
	}
	return out, nil
}

// DeleteSessionsBefore implements store.Sessions; the tokens go with their sessions (ON DELETE
// CASCADE).
func (s *Store) DeleteSessionsBefore(ctx context.Context, t time.Time) (int, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE expires_at < $1 OR revoked_at < $1`, t)
	if err != nil {
		return 0, fmt.Errorf("postgres: delete old sessions: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// LiveUserSessions implements store.LiveSessions.
func (s *Store) LiveUserSessions(ctx context.Context, userID string, now time.Time) ([]store.Session, error) {
	ctx, cancel := bound(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT `+sessionColumns+` FROM sessions
		WHERE (user_id = $1 OR recipe_user_id = $1) AND revoked_at IS NULL AND expires_at > $2
		ORDER BY created_at DESC, handle`, userID, now)
	if err != nil {
		return nil, fmt.Errorf("postgres: list live sessions of user: %w", err)
	}
	out, err := collectSessions(rows)
	if err != nil {
		return nil, fmt.Errorf("postgres: list live sessions of user: %w", err)
	}
	return out, nil
}
