package store

import (
	"context"
	"errors"
	"time"
)

// RecipeWebAuthn is the recipe id of passkey login methods: one per user and tenant, with an
// email and the user's credentials.
const RecipeWebAuthn = "webauthn"

// Kinds of WebAuthnOptions.
const (
	WebAuthnRegister = "register"
	WebAuthnSignIn   = "signin"
)

// Sentinel errors of the WebAuthn store.
var (
	// ErrCredentialExists: the tenant already has a credential with that id.
	ErrCredentialExists = errors.New("webauthn credential already registered in this tenant")
	// ErrCounterMoved: the compare-and-set of a credential's sign count found another value:
	// another assertion of the same credential was stored first. Nothing was changed.
	ErrCounterMoved = errors.New("webauthn sign count changed concurrently")
)

// WebAuthnOptions are one ceremony's options (SuperTokens' "generated options"): the
// challenge the browser signs and what the core asked for. They are stored server side, used
// once and expire quickly.
type WebAuthnOptions struct {
	ID       string
	TenantID string
	// Kind is WebAuthnRegister or WebAuthnSignIn.
	Kind string
	// Challenge is the base64url challenge sent to the browser.
	Challenge string
	// Email is the address a registration is for.
	Email string
	// UserHandle is the base64url user.id a registration sent to the authenticator.
	UserHandle string
	// RecipeUserID, for a registration, is the webauthn login method the credential is to be
	// added to (account recovery, or a credential added by a signed-in user); empty otherwise.
	RecipeUserID string
	// RPID is the relying party id the options named.
	RPID string
	// UserVerification is what the options asked of the authenticator.
	UserVerification string
	CreatedAt        time.Time
	ExpiresAt        time.Time
}

// WebAuthnCredential is one public key credential of a webauthn login method.
type WebAuthnCredential struct {
	// ID is the base64url credential id.
	ID       string
	TenantID string
	// RecipeUserID is the webauthn login method the credential belongs to; UserID its
	// primary user (read only: the store fills it in).
	RecipeUserID string
	UserID       string
	RPID         string
	// PublicKey is the COSE public key.
	PublicKey       []byte
	AttestationType string
	AAGUID          []byte
	SignCount       uint32
	Transports      []string
	UserVerified    bool
	BackupEligible  bool
	BackupState     bool
	// Name is what the user calls it ("Laptop"), shown on the account page.
	Name       string
	CreatedAt  time.Time
	LastUsedAt time.Time
}

// NewWebAuthnUser is what SignUpWebAuthn stores: a webauthn login method with its first
// credential.
type NewWebAuthnUser struct {
	// RecipeUserID is the new login method's id (and the new user's when UserID is empty).
	RecipeUserID string
	// UserID, when set, links the login method to this existing user (a second factor set up
	// during MFA) instead of creating a new primary user.
	UserID     string
	TenantID   string
	Email      string
	Verified   bool
	Credential WebAuthnCredential
	Now        time.Time
}

// WebAuthnAssertion is what a verified assertion changes on its credential.
type WebAuthnAssertion struct {
	CredentialID string
	TenantID     string
	// OldCount is the sign count the verification started from; NewCount the one to store.
	OldCount    uint32
	NewCount    uint32
	BackupState bool
	Now         time.Time
}

// WebAuthn stores passkeys: ceremony options, webauthn login methods and their credentials.
type WebAuthn interface {
	// CreateWebAuthnOptions stores one ceremony's options.
	CreateWebAuthnOptions(ctx context.Context, o WebAuthnOptions) error
	// ConsumeWebAuthnOptions deletes the tenant's options with id and returns them;
	// ErrNotFound when they are unknown, used already, or expired at now.
	ConsumeWebAuthnOptions(ctx context.Context, tenantID, id string, now time.Time) (WebAuthnOptions, error)
	// DeleteWebAuthnOptionsBefore removes options that expired at or before t, and returns
	// how many.
	DeleteWebAuthnOptionsBefore(ctx context.Context, t time.Time) (int, error)
	// SignUpWebAuthn creates a webauthn login method with its first credential, in one
	// transaction: ErrEmailTaken when the tenant has a webauthn login method with that email,
	// ErrCredentialExists when it has the credential, ErrNotFound when n.UserID is unknown.
	SignUpWebAuthn(ctx context.Context, n NewWebAuthnUser) (User, error)
	// AddWebAuthnCredential stores another credential of the webauthn login method
	// c.RecipeUserID: ErrNotFound when there is no such login method, ErrCredentialExists
	// when the tenant has the credential.
	AddWebAuthnCredential(ctx context.Context, c WebAuthnCredential) error
	// GetWebAuthnCredential returns the tenant's credential with id; ErrNotFound when none.
	GetWebAuthnCredential(ctx context.Context, tenantID, id string) (WebAuthnCredential, error)
	// ListWebAuthnCredentials returns the credentials of every webauthn login method of the
	// user (a primary or recipe user id), oldest first.
	ListWebAuthnCredentials(ctx context.Context, userID string) ([]WebAuthnCredential, error)
	// UseWebAuthnCredential stores a verified assertion with a compare-and-set on the sign
	// count: ErrCounterMoved when it is no longer a.OldCount, ErrNotFound when the credential
	// is gone.
	UseWebAuthnCredential(ctx context.Context, a WebAuthnAssertion) error
	// RenameWebAuthnCredential renames a credential of the user; ErrNotFound when the user
	// has no such credential.
	RenameWebAuthnCredential(ctx context.Context, userID, id, name string) error
	// RemoveWebAuthnCredential removes a credential of the user and reports whether it
	// existed. A login method left without credentials stays: the user can add one through
	// account recovery.
	RemoveWebAuthnCredential(ctx context.Context, userID, id string) (bool, error)
}

// AttachCredentialIDs fills in WebAuthnCredentialIDs of u's webauthn login methods from list,
// which is called only when u has one: most users have no passkey and pay no query.
func AttachCredentialIDs(u *User, list func() ([]WebAuthnCredential, error)) error {
	has := false
	for _, lm := range u.LoginMethods {
		has = has || lm.RecipeID == RecipeWebAuthn
	}
	if !has {
		return nil
	}
	creds, err := list()
	if err != nil {
		return err
	}
	for i := range u.LoginMethods {
		lm := &u.LoginMethods[i]
		for _, c := range creds {
			if c.RecipeUserID == lm.RecipeUserID {
				lm.WebAuthnCredentialIDs = append(lm.WebAuthnCredentialIDs, c.ID)
			}
		}
	}
	return nil
}
