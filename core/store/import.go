package store

import (
	"context"
	"time"
)

// ImportedUser is a user handed over in bulk, by a migration from another system or a
// benchmark's seed: a primary user with one emailpassword login and its TOTP devices.
type ImportedUser struct {
	UserID   string
	TenantID string
	// Email is the login's email, normalised as the core stores it.
	Email string
	// PasswordHash is an argon2id hash in the PHC string format the core verifies.
	PasswordHash  string
	EmailVerified bool
	TimeJoined    time.Time
	// TOTPDevices are the user's devices; their UserID is the user's.
	TOTPDevices []TOTPDevice
}

// UserImport stores users in bulk.
type UserImport interface {
	// ImportUsers stores users in one transaction, at a fraction of the cost of one
	// CreateEmailPasswordUser and CreateTOTPDevice each. Nothing is stored when one user
	// cannot be: an email its tenant already has (or that the batch holds twice) gives
	// ErrEmailTaken, a user id already stored ErrUserExists, each naming the user.
	ImportUsers(ctx context.Context, users []ImportedUser) error
}
