package store

import (
	"context"
	"encoding/json"
	"time"
)

// SessionTx is the part of the store that completing a factor uses, bound to one write
// transaction on a live session (Sessions.UpdateSession). The factor's check, the reads the
// MFA policy is computed from and the session's new claims then commit together or not at
// all, and a request pays for one transaction instead of one per step. Each method behaves
// as the Store method of the same name, inside the transaction.
type SessionTx interface {
	// Session is the session as the transaction read it, with the claims it had before.
	Session() Session
	// SetClaims replaces the session's custom claims when the transaction commits.
	SetClaims(claims json.RawMessage)

	GetUser(ctx context.Context, userID string) (User, error)
	GetUserMetadata(ctx context.Context, userID string) (map[string]json.RawMessage, error)
	GetMFAStatus(ctx context.Context, userID string) (MFAStatus, error)
	MFAPolicyStart(ctx context.Context, userID, tenantID string, now time.Time) (time.Time, error)
	VerifyTOTP(ctx context.Context, userID, name string, decide func(limit AttemptLimit, devices []TOTPDevice) (TOTPAttempt, error)) (TOTPAttempt, error)
	UseRecoveryCode(ctx context.Context, userID string, now time.Time, decide func(limit AttemptLimit, codes []RecoveryCode) (RecoveryAttempt, error)) (RecoveryAttempt, error)
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
	_ MFAReader = SessionTx(nil)
)
