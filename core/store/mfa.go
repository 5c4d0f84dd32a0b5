package store

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors of the MFA store.
var (
	// ErrDeviceExists: the user already has a TOTP device with that name.
	ErrDeviceExists = errors.New("TOTP device name already used by this user")
	// ErrStepUsed: the compare-and-set of a TOTP device's last used step found a step at or
	// after the one to store: another request accepted that code first. Nothing was changed.
	ErrStepUsed = errors.New("TOTP time step already used")
	// ErrCodeUsed: the compare-and-set of a recovery code found it used already: another
	// request accepted it first. Nothing was changed.
	ErrCodeUsed = errors.New("recovery code already used")
)

// AttemptLimit is a user's failed-attempt state, shared by TOTP and recovery codes (one per
// user, so adding devices does not multiply an attacker's guesses). It mirrors attempts.Limiter;
// the zero value is a user with no failures.
type AttemptLimit struct {
	Failures    int
	LockedUntil time.Time
}

// TOTPDevice is one of a user's TOTP authenticators. Period, Skew and Digits are those the
// device was created with, so a tenant changing its settings does not break enrolled apps.
type TOTPDevice struct {
	UserID string
	Name   string
	// Secret is the base32 secret the authenticator app holds.
	Secret   string
	Digits   int
	Period   int
	Skew     int
	Verified bool
	// LastUsedStep is the last accepted time step (0 when never used): replay protection.
	LastUsedStep int64
	CreatedAt    time.Time
	// CreatedBySession is the handle of the session that created the device: while the
	// device is unverified, only that session may see its secret again.
	CreatedBySession string
}

// TOTPAttempt is what a TOTP verification decided; VerifyTOTP applies it.
type TOTPAttempt struct {
	// Limit is the user's new failed-attempt state.
	Limit AttemptLimit
	// Device is the name of the device that accepted the code; empty when none did.
	Device string
	// Step is the time step the accepted code belongs to.
	Step int64
}

// RecoveryCode is one unused recovery code of a user: only its hash is stored.
type RecoveryCode struct {
	ID   int64
	Hash []byte
}

// RecoveryAttempt is what a recovery-code verification decided; UseRecoveryCode applies it.
type RecoveryAttempt struct {
	// Limit is the user's new failed-attempt state.
	Limit AttemptLimit
	// CodeID is the code to mark used; zero when none matched.
	CodeID int64
}

// MFAStatus summarises which of the core's own secondary factors a user has set up.
type MFAStatus struct {
	VerifiedTOTPDevices int
	UnusedRecoveryCodes int
}

// MFA stores the secondary factors' state: TOTP devices, recovery codes, the per-user
// failed-attempt limit they share, and when a tenant's MFA policy first applied to a user
// (the start of their enrolment grace period). Rows belong to the primary user and end with it.
type MFA interface {
	// CreateTOTPDevice stores a new, unverified device; ErrDeviceExists when the user has a
	// device with that name, ErrNotFound when the user is unknown.
	CreateTOTPDevice(ctx context.Context, d TOTPDevice) error
	// ListTOTPDevices returns the user's devices ordered by creation time and name.
	ListTOTPDevices(ctx context.Context, userID string) ([]TOTPDevice, error)
	// DeleteTOTPDevice removes a device and reports whether it existed. When onlyUnverified
	// is set a verified device is kept and existed is reported with deleted false.
	DeleteTOTPDevice(ctx context.Context, userID, name string, onlyUnverified bool) (existed, deleted bool, err error)
	// VerifyTOTP applies one TOTP verification as one transaction: it reads the user's limit
	// and the devices to try (the named one, verified or not, or every verified device when
	// name is empty), calls decide, and stores what it decided: the new limit, and for an
	// accepted code the step with a compare-and-set (last_used_step < step) marking the
	// device verified. A lost compare-and-set rolls everything back and returns ErrStepUsed.
	// An error from decide rolls back and is returned as is.
	VerifyTOTP(ctx context.Context, userID, name string, decide func(limit AttemptLimit, devices []TOTPDevice) (TOTPAttempt, error)) (TOTPAttempt, error)
	// ReplaceRecoveryCodes replaces the user's recovery codes with hashes, in one transaction.
	ReplaceRecoveryCodes(ctx context.Context, userID string, hashes [][]byte, now time.Time) error
	// CountRecoveryCodes returns how many of the user's recovery codes are unused, and how
	// many the current set has in all.
	CountRecoveryCodes(ctx context.Context, userID string) (unused, total int, err error)
	// UseRecoveryCode applies one recovery-code verification as one transaction: it reads
	// the user's limit and unused codes, calls decide, stores the new limit and marks the
	// chosen code used with a compare-and-set (used_at IS NULL). A lost compare-and-set
	// rolls back and returns ErrCodeUsed; an error from decide rolls back and is returned.
	UseRecoveryCode(ctx context.Context, userID string, now time.Time, decide func(limit AttemptLimit, codes []RecoveryCode) (RecoveryAttempt, error)) (RecoveryAttempt, error)
	// GetMFAStatus counts the user's verified TOTP devices and unused recovery codes in one
	// read: what every sign-in and factor completion needs to know.
	GetMFAStatus(ctx context.Context, userID string) (MFAStatus, error)
	// GetAttemptLimit returns the user's failed-attempt state (zero when none is stored).
	GetAttemptLimit(ctx context.Context, userID string) (AttemptLimit, error)
	// UpdateAttemptLimit replaces the user's failed-attempt state with update's answer, which
	// receives the current state inside the transaction (passwordless second-factor codes
	// share the lockout this way). ErrNotFound when the user is unknown.
	UpdateAttemptLimit(ctx context.Context, userID string, update func(AttemptLimit) AttemptLimit) (AttemptLimit, error)
	// MFAPolicyStart returns when the tenant's MFA policy first applied to the user,
	// recording now when it never did. ErrNotFound when the user is unknown.
	MFAPolicyStart(ctx context.Context, userID, tenantID string, now time.Time) (time.Time, error)
}
