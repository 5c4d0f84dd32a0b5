package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/twofold-dev/twofold/core/store"
)

// LiveUserSessions implements store.LiveSessions.
func (s *Store) LiveUserSessions(ctx context.Context, userID string, now time.Time) ([]store.Session, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+sessionColumns+` FROM sessions
		WHERE (user_id = ? OR recipe_user_id = ?) AND revoked_at IS NULL AND expires_at > ?
		ORDER BY created_at DESC, handle`, userID, userID, ms(now))
	if err != nil {
		return nil, fmt.Errorf("sqlite: list live sessions of user: %w", err)
	}
	defer rows.Close()
	var out []store.Session
	for rows.Next() {
		sess, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list live sessions of user: %w", err)
		}
		out = append(out, sess)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list live sessions of user: %w", err)
	}
	return out, nil
}
