package store

import (
	"context"
	"time"
)

// LiveSessions lists the sessions a user can still use: not revoked and not expired at now.
// The hosted account page shows them and signs out the others.
type LiveSessions interface {
	// LiveUserSessions lists the live sessions of a user (primary or recipe user id) at now,
	// newest first.
	LiveUserSessions(ctx context.Context, userID string, now time.Time) ([]Session, error)
}
