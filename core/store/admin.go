package store

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors of the user administration store.
var (
	// ErrAdminKeyExists: an admin key with that name exists (revoked or not: names are never
	// reused, so the audit trail's "by" stays unambiguous).
	ErrAdminKeyExists = errors.New("admin key name already used")
)

// MaxUserPage bounds a page of FindUsers.
const MaxUserPage = 100

// UserQuery selects users of one tenant by one identifier. Exactly one of Email,
// PhoneNumber, UserID and ThirdPartyID (with ThirdPartyUserID) is set; the caller checks.
type UserQuery struct {
	TenantID string
	// Email matches any login method's email, ignoring ASCII case.
	Email       string
	PhoneNumber string
	// UserID matches a primary or a recipe user id.
	UserID           string
	ThirdPartyID     string
	ThirdPartyUserID string
	// After is the cursor of the previous page (a primary user id); empty for the first.
	After string
	// Limit is the page size, 1 to MaxUserPage.
	Limit int
}

// UserPage is one page of FindUsers: users ordered by primary user id.
type UserPage struct {
	Users []User
	// Next is the cursor of the next page; empty on the last page.
	Next string
}

// Lockouts are a user's lockouts: the second-factor attempt limit (TOTP, recovery codes and
// passwordless second-factor codes share it) and the password sign-in throttle of each of the
// user's emailpassword login methods.
type Lockouts struct {
	SecondFactor AttemptLimit
	SignIn       []SignInLockout
}

// SignInLockout is the password sign-in throttle's state of one account (tenant and
// normalised email).
type SignInLockout struct {
	TenantID    string
	Account     string
	Failures    int
	LockedUntil time.Time
}

// Factor ids ResetMFA knows. They are the contract's factor ids; the store repeats them so it
// does not depend on the contract.
const (
	FactorTOTP         = "totp"
	FactorRecoveryCode = "recovery-code"
	FactorWebAuthn     = "webauthn"
	FactorOTPEmail     = "otp-email"
	FactorOTPPhone     = "otp-phone"
	FactorLinkEmail    = "link-email"
	FactorLinkPhone    = "link-phone"
)

// ResettableFactors are the factors ResetMFA removes, in the order it reports them.
var ResettableFactors = []string{FactorTOTP, FactorRecoveryCode, FactorWebAuthn, FactorOTPEmail, FactorOTPPhone, FactorLinkEmail, FactorLinkPhone}

// MFAReset reports what ResetMFA removed.
type MFAReset struct {
	TOTPDevices         int
	RecoveryCodes       int
	WebAuthnCredentials int
	// LoginMethods are the recipe user ids of the passwordless and webauthn login methods
	// removed (second-factor contacts linked to the user).
	LoginMethods []string
}

// AdminKey is a named key of the admin API. Only its hash is stored.
type AdminKey struct {
	Name string
	// Hash is the hex SHA-256 of the key (keys are 256-bit random values, so a fast hash
	// is enough).
	Hash      string
	CreatedAt time.Time
	// RevokedAt is zero while the key is usable.
	RevokedAt time.Time
}

// UserAdmin is what the admin API does to users: find them, disable them, reset their
// factors, clear their lockouts and erase them.
type UserAdmin interface {
	// FindUsers returns a page of the tenant's users matching q, ordered by primary user id.
	FindUsers(ctx context.Context, q UserQuery) (UserPage, error)
	// SetUserDisabled disables (at now) or enables a user and returns it. Disabling a
	// disabled user keeps its first time. ErrNotFound when unknown.
	SetUserDisabled(ctx context.Context, userID string, disabled bool, now time.Time) (User, error)
	// ResetMFA removes the user's chosen secondary factors (every resettable one when
	// factors is empty) in one transaction: TOTP devices, recovery codes, passkey
	// credentials, and passwordless or webauthn login methods linked to the user as second
	// factors. The user's first login method (recipe user id = user id) is never removed,
	// only its passkeys. The second-factor lockout is cleared with them, so the user can
	// enrol new factors at once. ErrNotFound when the user is unknown.
	ResetMFA(ctx context.Context, userID string, factors []string) (MFAReset, error)
	// UserLockouts returns the user's lockouts. ErrNotFound when the user is unknown.
	UserLockouts(ctx context.Context, userID string) (Lockouts, error)
	// ClearLockouts forgets the user's failed attempts and locks (second factor and password
	// sign-in) in one transaction and returns what they were.
	ClearLockouts(ctx context.Context, userID string) (Lockouts, error)
	// DeleteUser erases a user and everything kept about it in one transaction: login
	// methods, metadata, sessions with their refresh tokens, factors, lockouts, pending
	// account tokens, passwordless devices and passkey ceremonies for its contacts. It
	// returns the user as it was. ErrNotFound when unknown.
	DeleteUser(ctx context.Context, userID string) (User, error)
}

// AdminKeys stores the admin API's named keys.
type AdminKeys interface {
	// CreateAdminKey stores a key; ErrAdminKeyExists when the name is taken.
	CreateAdminKey(ctx context.Context, k AdminKey) error
	// ListAdminKeys returns every key, revoked ones too, ordered by name.
	ListAdminKeys(ctx context.Context) ([]AdminKey, error)
	// RevokeAdminKey revokes a key at now (a revoked key keeps its first time) and returns
	// it; ErrNotFound when unknown.
	RevokeAdminKey(ctx context.Context, name string, now time.Time) (AdminKey, error)
	// AdminKeyByHash returns the unrevoked key with that hash; ErrNotFound otherwise.
	AdminKeyByHash(ctx context.Context, hash string) (AdminKey, error)
}

// WantsFactor reports whether a ResetMFA of factors concerns f.
func WantsFactor(factors []string, f string) bool {
	if len(factors) == 0 {
		return true
	}
	for _, x := range factors {
		if x == f {
			return true
		}
	}
	return false
}
