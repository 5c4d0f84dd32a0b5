package store

import (
	"context"
	"errors"
	"time"

	"github.com/twofold-dev/twofold/core/passwordless"
)

// ErrContactTaken: the tenant already has a passwordless login method with that email or
// phone number, owned by a user other than the one it was to be linked to.
var ErrContactTaken = errors.New("contact already used by a passwordless login method of another user in this tenant")

// Kinds of AccountToken.
const (
	TokenEmailVerification = "email-verification"
	TokenPasswordReset     = "password-reset"
	// TokenPasskeyRecovery lets a user who lost every passkey register a new one.
	TokenPasskeyRecovery = "passkey-recovery"
)

// NewPasswordlessUser is what SignInUpPasswordless creates when the tenant has no
// passwordless login method for the contact yet.
type NewPasswordlessUser struct {
	// RecipeUserID is the id of the new login method (and of the new user when UserID is
	// empty).
	RecipeUserID string
	// UserID, when set, links the new login method to this existing user (a factor set up
	// during MFA) instead of creating a new primary user.
	UserID   string
	TenantID string
	// Exactly one of Email and PhoneNumber, normalised.
	Email       string
	PhoneNumber string
	Now         time.Time
}

// AccountToken is a single-use email verification or password reset token. The token
// itself goes to the user by email; the store keeps only its SHA-256 (Hash).
type AccountToken struct {
	Hash         string
	Kind         string
	TenantID     string
	RecipeUserID string
	// Email is the address the token was sent to; it must still be the login method's email
	// when the token is used.
	Email     string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// AccountFlows persists the passwordless factors (devices with their codes, and passwordless
// login methods) and the tokens of email verification and password reset.
type AccountFlows interface {
	// CreatePasswordlessDevice stores a new device and its codes in tenantID.
	CreatePasswordlessDevice(ctx context.Context, tenantID string, d passwordless.Device) error
	// GetPasswordlessDevice returns a device with its codes, oldest first; ErrNotFound when
	// the tenant has none with that preAuthSessionId.
	GetPasswordlessDevice(ctx context.Context, tenantID, preAuthSessionID string) (passwordless.Device, error)
	// AddPasswordlessCode stores one more code of an existing device (a resend);
	// ErrNotFound when the device is gone.
	AddPasswordlessCode(ctx context.Context, tenantID, preAuthSessionID string, c passwordless.Code) error
	// ConsumePasswordlessCode loads the device in one write transaction, calls consume on it,
	// and then deletes the device and its codes when the outcome is Done, or saves its failed
	// attempts otherwise, so concurrent consumes of one device are applied one after the
	// other. ErrNotFound when the tenant has no such device.
	ConsumePasswordlessCode(ctx context.Context, tenantID, preAuthSessionID string,
		consume func(d *passwordless.Device) (passwordless.Outcome, error)) (passwordless.Device, passwordless.Outcome, error)
	// DeletePasswordlessDevicesBefore removes the devices whose every code was created at or
	// before t (pass now minus passwordless.CodeLifetime: those codes have all expired) and
	// returns how many.
	DeletePasswordlessDevicesBefore(ctx context.Context, t time.Time) (int, error)

	// SignInUpPasswordless returns the user owning the tenant's passwordless login method for
	// the contact of n, or, when there is none, creates it as n describes (verified, as the
	// code proved the contact), in one transaction. recipeUserID is the login method's id;
	// created reports whether it was created. When n.UserID is set and the existing login
	// method belongs to another user, the owner is returned all the same: the caller
	// compares. ErrNotFound when n.UserID is set and unknown.
	SignInUpPasswordless(ctx context.Context, n NewPasswordlessUser) (u User, recipeUserID string, created bool, err error)
	// SetEmailVerified marks the login method recipeUserID verified if its email is still
	// email, and returns its user; ErrNotFound when no such login method has that email.
	SetEmailVerified(ctx context.Context, recipeUserID, email string) (User, error)
	// SetPasswordHash replaces the password hash of the emailpassword login method
	// recipeUserID; ErrNotFound when there is none.
	SetPasswordHash(ctx context.Context, recipeUserID, passwordHash string) (User, error)

	// CreateAccountToken stores a token.
	CreateAccountToken(ctx context.Context, tok AccountToken) error
	// GetAccountToken returns the token of kind with hash without using it up; ErrNotFound when
	// it is unknown, used already, or expired at now.
	GetAccountToken(ctx context.Context, kind, hash string, now time.Time) (AccountToken, error)
	// ConsumeAccountToken uses up the token of kind with hash, in one transaction: it
	// deletes it together with every other token of the same kind for the same login
	// method, and returns it. ErrNotFound when it is unknown, already used, or expired at now.
	ConsumeAccountToken(ctx context.Context, kind, hash string, now time.Time) (AccountToken, error)
	// DeleteAccountTokensBefore removes tokens that expired at or before t and returns how
	// many.
	DeleteAccountTokensBefore(ctx context.Context, t time.Time) (int, error)
}
