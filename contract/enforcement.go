package contract

import (
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"strings"

	"github.com/twofold-dev/twofold/contract/mfa"
)

// EnforcementVersion is the v of the enforcement feed's full answer, GET
// /auth/{tenantId}/enforcement. Version 2 lists revoked sessions by SessionHandleHash instead
// of by handle. A sidecar of version 2 refuses a feed of any other version and keeps enforcing
// the last one it accepted; the core answers it in version 2 for as long as it asks without
// v=3.
const EnforcementVersion = 2

// EnforcementChangesVersion is the v of the feed's incremental answer, GET
// /auth/{tenantId}/enforcement?v=3&since=CURSOR&cv=CONFIGVERSION: what changed since the
// revocation cursor and the configuration version the sidecar holds, so that a poll costs what
// changed rather than the whole list. A sidecar that gets a version 2 answer (from a core
// older than this one) takes it as a full answer.
const EnforcementChangesVersion = 3

// Enforcement is the read-only feed a sidecar polls: GET /auth/{tenantId}/enforcement.
type Enforcement struct {
	V             int    `json:"v"`
	TenantID      string `json:"tenantId"`
	ConfigVersion int64  `json:"configVersion"`
	EnforcementPolicy
	RevokedSessions []RevokedSession `json:"revokedSessions"`
}

// EnforcementPolicy is the part of the feed that changes only with the tenant's configuration.
type EnforcementPolicy struct {
	Issuer                     string         `json:"issuer"`
	AccessTokenLifetimeSeconds int64          `json:"accessTokenLifetimeSeconds"`
	MFA                        EnforcementMFA `json:"mfa"`
	EmailVerificationRequired  bool           `json:"emailVerificationRequired"`
	HostedUI                   HostedUI       `json:"hostedUI"`
}

// EnforcementChanges is the feed's incremental answer (EnforcementChangesVersion).
type EnforcementChanges struct {
	V             int    `json:"v"`
	TenantID      string `json:"tenantId"`
	ConfigVersion int64  `json:"configVersion"`
	// Policy is the tenant's policy at ConfigVersion; left out when the sidecar asked with
	// cv equal to ConfigVersion.
	Policy *EnforcementPolicy `json:"policy,omitempty"`
	// Cursor is the tenant's revocation cursor after RevokedSessions: ask with since=Cursor.
	Cursor int64 `json:"cursor"`
	// Full is set when RevokedSessions lists every session revoked within the access-token
	// lifetime (the sidecar replaces what it holds); otherwise they are the sessions revoked
	// since the cursor the sidecar asked with (it adds them).
	Full            bool             `json:"full"`
	RevokedSessions []RevokedSession `json:"revokedSessions"`
}

// EnforcementChangesETag names the state of a tenant's feed that an incremental answer brings
// a sidecar to; a sidecar at that state asking with it in If-None-Match gets 304 Not Modified.
func EnforcementChangesETag(configVersion, cursor int64) string {
	return `"v3-` + strconv.FormatInt(configVersion, 10) + "-" + strconv.FormatInt(cursor, 10) + `"`
}

// EnforcementMFA is the part of the MFA policy a sidecar enforces.
type EnforcementMFA struct {
	Requirement         mfa.Requirement `json:"requirement"`
	Enforcement         string          `json:"enforcement"`
	MaxFactorAgeSeconds int64           `json:"maxFactorAgeSeconds"`
	Routes              []Route         `json:"routes"`
}

// RevokedSession is a session revoked within the last access-token lifetime. The feed is
// readable without credentials, so it names the session by SessionHandleHash, never by its
// handle.
type RevokedSession struct {
	HandleHash string `json:"handleHash"`
	RevokedAt  int64  `json:"revokedAt"`
}

// SessionHandleHash is how the enforcement feed names a session: the unpadded base64url
// SHA-256 of its handle (43 characters). A sidecar hashes the sessionHandle of a verified
// token once and compares; the feed itself reveals no handle.
func SessionHandleHash(handle string) string {
	sum := sha256.Sum256([]byte(handle))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// HostedUI tells a sidecar where to send browsers that need to sign in or complete MFA.
type HostedUI struct {
	SignIn string `json:"signIn"`
	MFA    string `json:"mfa"`
	// VerifyEmail is where a signed-in browser whose email must be verified first is sent.
	VerifyEmail string `json:"verifyEmail,omitempty"`
}

// Enforcement builds the sidecar feed of a tenant from its normalised configuration.
func (c TenantConfig) Enforcement(tenantID string, version int64, issuer string, revoked []RevokedSession) Enforcement {
	if revoked == nil {
		revoked = []RevokedSession{}
	}
	return Enforcement{
		V:                 EnforcementVersion,
		TenantID:          tenantID,
		ConfigVersion:     version,
		EnforcementPolicy: c.EnforcementPolicy(tenantID, issuer),
		RevokedSessions:   revoked,
	}
}

// EnforcementPolicy builds the policy part of a tenant's sidecar feed from its normalised
// configuration.
func (c TenantConfig) EnforcementPolicy(tenantID, issuer string) EnforcementPolicy {
	routes := c.MFA.Routes
	if routes == nil {
		routes = []Route{}
	}
	req := c.MFA.Requirement
	if req == nil {
		req = mfa.Requirement{}
	}
	base := strings.TrimSuffix(c.WebsiteBasePath, "/")
	signIn := base + "/signin"
	if tenantID != PublicTenantID {
		// The hosted sign-in page learns the tenant from this parameter (tenant ids need no
		// escaping).
		signIn += "?tenantId=" + tenantID
	}
	return EnforcementPolicy{
		Issuer:                     issuer,
		AccessTokenLifetimeSeconds: c.Session.AccessTokenLifetimeSeconds,
		MFA: EnforcementMFA{
			Requirement:         req,
			Enforcement:         c.MFA.Enforcement,
			MaxFactorAgeSeconds: c.MFA.MaxFactorAgeSeconds,
			Routes:              routes,
		},
		EmailVerificationRequired: c.EmailVerification == EmailVerificationRequired,
		HostedUI:                  HostedUI{SignIn: signIn, MFA: base + "/mfa", VerifyEmail: base + "/verify-email"},
	}
}
