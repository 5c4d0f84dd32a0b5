// Package store defines the auth core's persistence: tenants, users in the account-linking
// model, user metadata, sessions with their refresh-token chain, and signing keys. SQLite
// (package store/sqlite) is the embedded default; a PostgreSQL implementation is a second
// implementation of the same interface, checked by the same conformance suite
// (package store/storetest).
//
// Every method that writes more than one row does so in one transaction.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Sentinel errors callers branch on. Implementations wrap them with context.
var (
	// ErrNotFound: the tenant, user, session or key does not exist.
	ErrNotFound = errors.New("not found")
	// ErrEmailTaken: an emailpassword login method with that email exists in the tenant.
	ErrEmailTaken = errors.New("email already used by an emailpassword login method in this tenant")
	// ErrUserExists: a user with that id is already stored.
	ErrUserExists = errors.New("user id already used")
	// ErrAlreadyLinked: the user to link is already linked, or is a primary user with others.
	ErrAlreadyLinked = errors.New("user already linked")
	// ErrSessionRevoked: the session exists but was revoked.
	ErrSessionRevoked = errors.New("session revoked")
	// ErrTokenTheft: a refresh token was presented after a younger token of its session was
	// used. The session has been revoked in the same transaction.
	ErrTokenTheft = errors.New("refresh token reused after rotation")
	// ErrUserDisabled: an admin disabled the user, so no session of theirs starts or
	// refreshes.
	ErrUserDisabled = errors.New("user disabled")
	// ErrTooManyRefreshes: the current refresh token was presented again while it already
	// has MaxUnusedRefreshChildren children none of which was used. Nothing changed.
	ErrTooManyRefreshes = errors.New("refresh token presented too often without using its children")
)

// MaxUnusedRefreshChildren bounds how many refresh tokens one token can mint before one of
// them is used. An honest client presents a token again only when it lost the answer, so a
// handful is plenty; the bound stops one stolen token from filling the store.
const MaxUnusedRefreshChildren = 8

// Recipe ids of login methods.
const (
	RecipeEmailPassword = "emailpassword"
	RecipeThirdParty    = "thirdparty"
	RecipePasswordless  = "passwordless"
)

// Store is the auth core's persistence. Implementations are safe for concurrent use.
type Store interface {
	Tenants
	Users
	Sessions
	LiveSessions
	Keys
	MFA
	WebAuthn
	AccountFlows
	SignInThrottle
	SendLimiter
	UserAdmin
	AdminKeys
	UserImport
	Writer
	// Ping reports whether the store can serve requests (readiness).
	Ping(ctx context.Context) error
	// Close releases the store's resources.
	Close() error
}

// Tenant is a tenant's stored configuration, kept as the JSON the admin API accepted.
type Tenant struct {
	ID      string
	Config  json.RawMessage
	Hash    string
	Version int64
	// CreatedAt and UpdatedAt are when the tenant was first stored and last changed.
	CreatedAt time.Time
	UpdatedAt time.Time
	// Owner identifies who manages the tenant (for the controllers, the AuthTenant's
	// namespace/name/uid); empty when nobody has claimed it. The store compares it as an
	// opaque string.
	Owner string
}

// Tenants stores tenant configurations.
type Tenants interface {
	// PutTenant creates or replaces a tenant's configuration. When hash equals the stored hash
	// nothing changes and the stored tenant is returned; otherwise the version increases by
	// one. created reports whether the tenant did not exist before.
	PutTenant(ctx context.Context, id string, cfg json.RawMessage, hash string, now time.Time) (t Tenant, created bool, err error)
	// GetTenant returns ErrNotFound for an unknown tenant.
	GetTenant(ctx context.Context, id string) (Tenant, error)
	// ListTenants returns every tenant ordered by id.
	ListTenants(ctx context.Context) ([]Tenant, error)
	// DeleteTenant removes a tenant's configuration; with deleteUsers it also removes the
	// login methods of the tenant, users left without login methods, and their sessions.
	DeleteTenant(ctx context.Context, id string, deleteUsers bool) error
	TenantOwnership
}

// User is a primary user with its login methods (account-linking model).
type User struct {
	ID           string
	TimeJoined   time.Time
	IsPrimary    bool
	LoginMethods []LoginMethod
	// DisabledAt is when an admin disabled the user; zero while enabled. A disabled user
	// cannot sign in by any factor nor refresh a session.
	DisabledAt time.Time
}

// LoginMethod is one way a user signs in. RecipeUserID equals User.ID for the first one.
type LoginMethod struct {
	RecipeUserID     string
	RecipeID         string
	TenantID         string
	Email            string
	PhoneNumber      string
	ThirdPartyID     string
	ThirdPartyUserID string
	Verified         bool
	TimeJoined       time.Time
	// WebAuthnCredentialIDs are the credential ids of a webauthn login method.
	WebAuthnCredentialIDs []string
}

// NewEmailPasswordUser is what CreateEmailPasswordUser stores.
type NewEmailPasswordUser struct {
	UserID       string
	TenantID     string
	Email        string
	PasswordHash string
	Now          time.Time
}

// ThirdPartyIdentity is what a provider said about a user.
type ThirdPartyIdentity struct {
	TenantID         string
	ThirdPartyID     string
	ThirdPartyUserID string
	Email            string
	Verified         bool
}

// Users stores users, their login methods and metadata.
type Users interface {
	// CreateEmailPasswordUser creates a new primary user with one emailpassword login
	// method. It returns ErrEmailTaken when the tenant already has that email.
	CreateEmailPasswordUser(ctx context.Context, u NewEmailPasswordUser) (User, error)
	// GetEmailPasswordLogin returns the user owning the tenant's emailpassword login method
	// with that email, and the method's password hash; ErrNotFound when there is none.
	GetEmailPasswordLogin(ctx context.Context, tenantID, email string) (u User, passwordHash string, err error)
	// UpsertThirdPartyUser finds the user of a third-party identity, updating its email and
	// verified flag, or creates a new primary user with newUserID. created reports which.
	UpsertThirdPartyUser(ctx context.Context, id ThirdPartyIdentity, newUserID string, now time.Time) (u User, created bool, err error)
	// GetUser returns a user by primary or recipe user id; ErrNotFound when unknown.
	GetUser(ctx context.Context, userID string) (User, error)
	// UsersByEmail returns the users with a login method of the tenant that has email (any
	// recipe), ordered by time joined: whose contact details these are.
	UsersByEmail(ctx context.Context, tenantID, email string) ([]User, error)
	// UsersByPhone is UsersByEmail for phone numbers.
	UsersByPhone(ctx context.Context, tenantID, phone string) ([]User, error)
	// LinkAccounts makes the login methods of recipeUserID (a user not linked to anyone)
	// login methods of primaryUserID, in one transaction, and returns the primary user. The
	// linked user's own sessions and metadata end with it. ErrNotFound when either is
	// unknown; ErrAlreadyLinked when recipeUserID already belongs to a primary user other
	// than itself or has other users linked to it, or both ids are the same user.
	LinkAccounts(ctx context.Context, recipeUserID, primaryUserID string) (User, error)
	// GetUserMetadata returns the user's metadata object ({} when none is stored).
	GetUserMetadata(ctx context.Context, userID string) (map[string]json.RawMessage, error)
	// UpdateUserMetadata merges update into the user's metadata at the top level, removing
	// keys whose value is JSON null, and returns the result.
	UpdateUserMetadata(ctx context.Context, userID string, update map[string]json.RawMessage, now time.Time) (map[string]json.RawMessage, error)
}

// Session is a signed-in session. Its refresh tokens are stored as hashes only.
type Session struct {
	Handle       string
	UserID       string
	RecipeUserID string
	TenantID     string
	// Claims are the custom access-token claims (st-mfa and whatever later parts add).
	Claims    json.RawMessage
	CreatedAt time.Time
	// ExpiresAt is when the refresh token chain ends.
	ExpiresAt time.Time
	// RefreshLifetime, when positive, moves ExpiresAt to the rotation time plus this much at
	// every rotation: the session ends after that long without a refresh.
	RefreshLifetime time.Duration
	// RevokedAt is zero while the session is live.
	RevokedAt time.Time
	// CurrentRefreshHash is the hash of the youngest refresh token that has been used (or the
	// first one issued).
	CurrentRefreshHash string
}

// Revocations answers RevocationsSince.
type Revocations struct {
	// Sessions are the revoked sessions, in the order they were revoked.
	Sessions []Revocation
	// Cursor is the tenant's revocation cursor these sessions bring the reader to.
	Cursor int64
	// Full is set when Sessions lists every session revoked at or after notBefore rather
	// than those revoked after since.
	Full bool
}

// Revocation is one revoked session.
type Revocation struct {
	Handle    string
	RevokedAt time.Time
	// Seq is the tenant's revocation cursor value the revocation took.
	Seq int64
}

// Rotation is the outcome of presenting a refresh token.
type Rotation struct {
	Session Session
	// ParentHash is the hash of the presented token, parent of the newly issued one.
	ParentHash string
}

// Sessions stores sessions and the refresh-token chain used for theft detection.
type Sessions interface {
	// CreateSession stores a session and its first refresh token (hash); when an admin has
	// disabled the user it stores nothing and returns ErrUserDisabled (checked in the same
	// statement, so a sign-in needs no separate read for it).
	CreateSession(ctx context.Context, s Session) error
	// GetSession returns a session (revoked ones too); ErrNotFound when unknown.
	GetSession(ctx context.Context, handle string) (Session, error)
	// RotateRefreshToken consumes a presented refresh token (by hash) and records newHash as
	// its child, in one transaction:
	//   - the current token, or a child of it used for the first time (which becomes current),
	//     yields a Rotation, and the session's expiry slides to now + RefreshLifetime;
	//   - the current token with MaxUnusedRefreshChildren unused children already gives
	//     ErrTooManyRefreshes and changes nothing;
	//   - any other known token of the session (a sibling of the current token, which stays
	//     stored when its brother is used, or an older ancestor) is theft: the session is
	//     revoked at now and ErrTokenTheft returned;
	//   - an unknown token, or an expired or revoked session: ErrNotFound / ErrSessionRevoked;
	//   - a token of a user an admin disabled: ErrUserDisabled, and nothing changes.
	RotateRefreshToken(ctx context.Context, presentedHash, newHash string, now time.Time) (Rotation, error)
	// UpdateSession runs fn in one write transaction on a live session and commits what it
	// did, with the claims it set (SetClaims), when it returns nil; it returns the session as
	// committed. An error from fn rolls everything back and is returned as is. An unknown or
	// revoked session gives ErrNotFound / ErrSessionRevoked, and fn does not run. fn may run
	// more than once (PostgreSQL retries a transaction that lost a deadlock), so it must set
	// what it reports from scratch on each run.
	UpdateSession(ctx context.Context, handle string, fn func(SessionTx) error) (Session, error)
	// RevokeSession marks a session revoked and returns it; revoking a revoked session keeps
	// its first revocation time. ErrNotFound when unknown.
	RevokeSession(ctx context.Context, handle string, now time.Time) (Session, error)
	// RevokeUserSessions revokes every live session of a user (primary or recipe user id)
	// and returns how many.
	RevokeUserSessions(ctx context.Context, userID string, now time.Time) (int, error)
	// RevokedSince lists the tenant's sessions revoked at or after since, oldest first.
	RevokedSince(ctx context.Context, tenantID string, since time.Time) ([]Session, error)
	// RevocationsSince lists what a reader that has seen the tenant's revocations up to the
	// cursor since needs to know: the sessions revoked after it, at or after notBefore, with
	// the tenant's current cursor to ask with next time. Every revocation takes its tenant's
	// next cursor value in the transaction that revokes, so nothing committed after a
	// reader's ask is missed by its next one. With since 0 (a first ask), or a since beyond
	// the current cursor (the reader saw another database), it lists every session revoked at
	// or after notBefore and sets Full.
	RevocationsSince(ctx context.Context, tenantID string, since int64, notBefore time.Time) (Revocations, error)
	// RevocationCursor returns the tenant's current revocation cursor (0 while nothing was
	// ever revoked): one indexed read, for a reader that only needs to know whether anything
	// changed.
	RevocationCursor(ctx context.Context, tenantID string) (int64, error)
	// DeleteSessionsBefore removes sessions revoked or expired before t, with their tokens.
	DeleteSessionsBefore(ctx context.Context, t time.Time) (int, error)
}

// SigningKey is an access-token signing key pair (PKCS#8 DER private key).
type SigningKey struct {
	KID string
	// Algorithm is the JWS algorithm the key signs with: RS256, ES256 or EdDSA; RS256 when
	// empty.
	Algorithm  string
	PrivateDER []byte
	CreatedAt  time.Time
}

// KeyAlgorithm is k's algorithm, RS256 when it names none.
func KeyAlgorithm(k SigningKey) string {
	if k.Algorithm == "" {
		return "RS256"
	}
	return k.Algorithm
}

// Keys stores access-token signing keys.
type Keys interface {
	// CreateSigningKeyIfNone stores k unless a key of k's algorithm created after notBefore
	// exists; in one transaction, so concurrent replicas create at most one key per algorithm
	// and rotation interval.
	// created reports whether k was stored.
	CreateSigningKeyIfNone(ctx context.Context, k SigningKey, notBefore time.Time) (created bool, err error)
	// ListSigningKeys returns every stored key, newest first.
	ListSigningKeys(ctx context.Context) ([]SigningKey, error)
	// DeleteSigningKeysSupersededBefore removes the keys that a newer key, created before t,
	// replaced: tokens they signed have expired when t is now minus the longest access-token
	// lifetime. The newest key is never removed.
	DeleteSigningKeysSupersededBefore(ctx context.Context, t time.Time) (int, error)
}
