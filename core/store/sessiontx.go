package store

import (
	"context"
	"encoding/json"
	"time"

	"github.com/twofold-dev/twofold/core/passwordless"
)

// Tx is the part of the store that a sign-in or a factor completion uses, bound to one
// write transaction (Store.Write, or Sessions.UpdateSession for a live session). A code's
// check, the reads the MFA policy is computed from and the session they lead to then commit
// together or not at all, and a request pays for one transaction instead of one per step.
// Each method behaves as the Store method of the same name, inside the transaction.
type Tx interface {
	MFAReader
	VerifyTOTP(ctx context.Context, userID, name string, decide func(limit AttemptLimit, devices []TOTPDevice) (TOTPAttempt, error)) (TOTPAttempt, error)
	UseRecoveryCode(ctx context.Context, userID string, now time.Time, decide func(limit AttemptLimit, codes []RecoveryCode) (RecoveryAttempt, error)) (RecoveryAttempt, error)
	ConsumePasswordlessCode(ctx context.Context, tenantID, preAuthSessionID string,
		consume func(d *passwordless.Device) (passwordless.Outcome, error)) (passwordless.Device, passwordless.Outcome, error)
	SignInUpPasswordless(ctx context.Context, n NewPasswordlessUser) (u User, recipeUserID string, created bool, err error)
	CreateSession(ctx context.Context, s Session) error
}

// SessionTx is a Tx on a live session (Sessions.UpdateSession).
type SessionTx interface {
	Tx
	// Session is the session as the transaction read it, with the claims it had before.
	Session() Session
	// SetClaims replaces the session's custom claims when the transaction commits.
	SetClaims(claims json.RawMessage)
}

// Writer runs transactions of several store operations.
type Writer interface {
	// Write runs fn in one write transaction and commits what it did when it returns nil.
	// An error from fn rolls everything back and is returned as is. fn may run more than once
	// (PostgreSQL retries a transaction that lost a deadlock or a race to create the same
	// row), so it must set what it reports from scratch on each run.
	Write(ctx context.Context, fn func(Tx) error) error
}

// MFAReader is what the MFA policy of a user is computed from: the Store itself, or a
// SessionTx when the policy must see the transaction's own writes.
type MFAReader interface {
	GetUser(ctx context.Context, userID string) (User, error)
	GetUserMetadata(ctx context.Context, userID string) (map[string]json.RawMessage, error)
	GetMFAStatus(ctx context.Context, userID string) (MFAStatus, error)
	MFAPolicyStart(ctx context.Context, userID, tenantID string, now time.Time) (time.Time, error)
}

var (
	_ MFAReader = Store(nil)
	_ MFAReader = Tx(nil)
)
