package contract

import "github.com/twofold-dev/twofold/contract/mfa"

// This file holds the bodies of the admin API's user administration (docs/contracts.md,
// "User administration"), which the core serves and kubectl-twofold reads. Times are RFC 3339
// strings (empty or absent when there is none); timeJoined is unix milliseconds as in the FDI.

// HeaderAdminKey carries the admin key when Authorization cannot: through the Kubernetes API
// server's service proxy, which consumes Authorization to authenticate the kubectl user.
const HeaderAdminKey = "Twofold-Admin-Key"

// AdminVersion is the answer of GET /admin/v1/version.
type AdminVersion struct {
	// Version is the core's build version.
	Version string `json:"version"`
}

// AdminUser is a user as the admin API lists it.
type AdminUser struct {
	UserID     string `json:"userId"`
	TimeJoined int64  `json:"timeJoined"`
	Disabled   bool   `json:"disabled"`
	DisabledAt string `json:"disabledAt,omitempty"`
	// TenantIDs are the tenants of the user's login methods.
	TenantIDs    []string           `json:"tenantIds"`
	Emails       []string           `json:"emails"`
	PhoneNumbers []string           `json:"phoneNumbers"`
	LoginMethods []AdminLoginMethod `json:"loginMethods"`
}

// AdminLoginMethod is one login method of a user.
type AdminLoginMethod struct {
	RecipeUserID string `json:"recipeUserId"`
	// RecipeID is emailpassword, thirdparty, passwordless or webauthn.
	RecipeID    string `json:"recipeId"`
	TenantID    string `json:"tenantId"`
	Email       string `json:"email,omitempty"`
	PhoneNumber string `json:"phoneNumber,omitempty"`
	// ThirdPartyID and ThirdPartyUserID name a thirdparty login method's identity.
	ThirdPartyID     string `json:"thirdPartyId,omitempty"`
	ThirdPartyUserID string `json:"thirdPartyUserId,omitempty"`
	Verified         bool   `json:"verified"`
	TimeJoined       int64  `json:"timeJoined"`
}

// AdminUserList is the answer of GET /admin/v1/tenants/{tenantId}/users.
type AdminUserList struct {
	Users []AdminUser `json:"users"`
	// NextCursor, when set, is the cursor parameter of the next page.
	NextCursor string `json:"nextCursor,omitempty"`
}

// AdminUserDetail is the answer of GET /admin/v1/users/{userId}.
type AdminUserDetail struct {
	AdminUser
	Factors AdminFactors `json:"factors"`
	// RequiredSecondaryFactors are the user's own required factors (opting in to MFA).
	RequiredSecondaryFactors []string       `json:"requiredSecondaryFactors"`
	Lockouts                 AdminLockouts  `json:"lockouts"`
	Sessions                 []AdminSession `json:"sessions"`
}

// AdminFactors are the secondary factors a user has set up. No secret is ever included.
type AdminFactors struct {
	// SetUp lists the factor ids the MFA engine counts as set up.
	SetUp                []string           `json:"setUp"`
	TOTPDevices          []AdminTOTPDevice  `json:"totpDevices"`
	PasswordlessContacts []AdminContact     `json:"passwordlessContacts"`
	Passkeys             []AdminPasskey     `json:"passkeys"`
	RecoveryCodes        AdminRecoveryCodes `json:"recoveryCodes"`
}

// AdminTOTPDevice is a TOTP device without its secret.
type AdminTOTPDevice struct {
	Name      string `json:"name"`
	Verified  bool   `json:"verified"`
	CreatedAt string `json:"createdAt"`
}

// AdminContact is a passwordless login method: an email or phone the user receives codes at.
type AdminContact struct {
	RecipeUserID string `json:"recipeUserId"`
	TenantID     string `json:"tenantId"`
	Email        string `json:"email,omitempty"`
	PhoneNumber  string `json:"phoneNumber,omitempty"`
}

// AdminPasskey is a webauthn credential without its public key.
type AdminPasskey struct {
	ID         string `json:"id"`
	TenantID   string `json:"tenantId"`
	Name       string `json:"name"`
	CreatedAt  string `json:"createdAt"`
	LastUsedAt string `json:"lastUsedAt,omitempty"`
}

// AdminRecoveryCodes counts a user's recovery codes.
type AdminRecoveryCodes struct {
	Unused int `json:"unused"`
	Total  int `json:"total"`
}

// AdminLockouts are a user's lockouts.
type AdminLockouts struct {
	// SecondFactor is the attempt limit TOTP, recovery codes and second-factor codes share.
	SecondFactor AdminLockout `json:"secondFactor"`
	// SignIn is the password sign-in throttle of each of the user's emailpassword emails.
	SignIn []AdminSignInLockout `json:"signIn"`
}

// AdminLockout is one failed-attempt count and lock.
type AdminLockout struct {
	Failures    int    `json:"failures"`
	Locked      bool   `json:"locked"`
	LockedUntil string `json:"lockedUntil,omitempty"`
}

// AdminSignInLockout is the password sign-in throttle of one email of a tenant.
type AdminSignInLockout struct {
	TenantID string `json:"tenantId"`
	Email    string `json:"email"`
	AdminLockout
}

// AdminSession is a live session of a user.
type AdminSession struct {
	SessionHandle string `json:"sessionHandle"`
	TenantID      string `json:"tenantId"`
	RecipeUserID  string `json:"recipeUserId"`
	CreatedAt     string `json:"createdAt"`
	ExpiresAt     string `json:"expiresAt"`
	// Completed are the factors the session completed (st-mfa c: unix seconds), V its v.
	Completed mfa.Completed `json:"completed"`
	V         bool          `json:"v"`
}

// Session handling of an MFA reset.
const (
	// ResetSessionsRevoke ends the user's live sessions (the default).
	ResetSessionsRevoke = "revoke"
	// ResetSessionsRefresh keeps them, removing the reset factors from their claims.
	ResetSessionsRefresh = "refresh"
)

// AdminMFAResetRequest is the body of POST /admin/v1/users/{userId}/mfa/reset.
type AdminMFAResetRequest struct {
	// Factors to remove: totp, recovery-code, webauthn, otp-email, otp-phone, link-email,
	// link-phone; every one of them when empty.
	Factors []string `json:"factors,omitempty"`
	// Sessions is ResetSessionsRevoke (default) or ResetSessionsRefresh.
	Sessions string `json:"sessions,omitempty"`
}

// AdminMFAReset is the answer of an MFA reset.
type AdminMFAReset struct {
	UserID string `json:"userId"`
	// Factors are the factors reset.
	Factors              []string `json:"factors"`
	RemovedTOTPDevices   int      `json:"removedTotpDevices"`
	RemovedRecoveryCodes int      `json:"removedRecoveryCodes"`
	RemovedPasskeys      int      `json:"removedPasskeys"`
	// RemovedLoginMethods are the recipe user ids of second-factor contacts and passkey
	// login methods removed.
	RemovedLoginMethods []string `json:"removedLoginMethods"`
	Sessions            string   `json:"sessions"`
	RevokedSessions     int      `json:"revokedSessions"`
	RefreshedSessions   int      `json:"refreshedSessions"`
}

// AdminLockoutsCleared is the answer of POST /admin/v1/users/{userId}/lockouts/clear: the
// lockouts as they were.
type AdminLockoutsCleared struct {
	UserID  string        `json:"userId"`
	Cleared AdminLockouts `json:"cleared"`
}

// AdminUserStatus is the answer of disabling or enabling a user.
type AdminUserStatus struct {
	AdminUser
	// RevokedSessions counts the sessions disabling ended.
	RevokedSessions int `json:"revokedSessions"`
}

// AdminUserDeleted is the answer of DELETE /admin/v1/users/{userId}.
type AdminUserDeleted struct {
	UserID string `json:"userId"`
	// LoginMethods counts the login methods erased with the user.
	LoginMethods    int `json:"loginMethods"`
	RevokedSessions int `json:"revokedSessions"`
}

// AdminExplanation is the answer of GET /admin/v1/users/{userId}/explain.
type AdminExplanation struct {
	UserID      string          `json:"userId"`
	TenantID    string          `json:"tenantId"`
	Disabled    bool            `json:"disabled"`
	Enforcement string          `json:"enforcement"`
	Requirement mfa.Requirement `json:"requirement"`
	// RequiredSecondaryFactors are the user's own required factors.
	RequiredSecondaryFactors []string `json:"requiredSecondaryFactors"`
	SetUp                    []string `json:"setUp"`
	Available                []string `json:"available"`
	// FirstFactor is the factor of the user's first login method in the tenant, which the
	// next sign-in is assumed to complete.
	FirstFactor string `json:"firstFactor"`
	// Next is the next set after that first factor (empty: nothing more to complete).
	Next []string `json:"next"`
	// MustSetUp is set when no factor of Next is set up: the user is asked to set one up.
	MustSetUp     bool                  `json:"mustSetUp"`
	InGracePeriod bool                  `json:"inGracePeriod"`
	Route         *AdminRouteExplain    `json:"route,omitempty"`
	Sessions      []AdminSessionExplain `json:"sessions"`
	// Reasons are the explanation in sentences, in order.
	Reasons []string `json:"reasons"`
}

// AdminRouteExplain is what the sidecars require for one path and method.
type AdminRouteExplain struct {
	Path   string `json:"path"`
	Method string `json:"method"`
	// Rule is the route rule that matches (longest prefix), absent when none does.
	Rule                *Route          `json:"rule,omitempty"`
	Public              bool            `json:"public"`
	Requirement         mfa.Requirement `json:"requirement"`
	MaxFactorAgeSeconds int64           `json:"maxFactorAgeSeconds"`
}

// AdminSessionExplain is where one live session stands against the tenant and the route.
type AdminSessionExplain struct {
	SessionHandle string   `json:"sessionHandle"`
	V             bool     `json:"v"`
	Next          []string `json:"next"`
	// RouteNext is what the session lacks for the route; empty when it passes.
	RouteNext []string `json:"routeNext,omitempty"`
	// Verdict is "allowed", "mfa-incomplete" (v false or the tenant's requirement not met:
	// 403) or "step-up" (the route's rule not met: 403).
	Verdict string `json:"verdict"`
}

// AdminKeyInfo describes an admin key; the key itself is shown once, when it is created.
type AdminKeyInfo struct {
	Name      string `json:"name"`
	CreatedAt string `json:"createdAt,omitempty"`
	RevokedAt string `json:"revokedAt,omitempty"`
	// Source is "environment" for the core's own key (TWOFOLD_ADMIN_KEY, named default) and
	// "store" for keys created through the API.
	Source string `json:"source"`
}

// AdminKeyList is the answer of GET /admin/v1/admin-keys.
type AdminKeyList struct {
	Keys []AdminKeyInfo `json:"keys"`
}

// AdminKeyCreateRequest is the body of POST /admin/v1/admin-keys.
type AdminKeyCreateRequest struct {
	Name string `json:"name"`
}

// AdminKeyCreated is the answer of POST /admin/v1/admin-keys: the only time the key is shown.
type AdminKeyCreated struct {
	AdminKeyInfo
	Key string `json:"key"`
}
