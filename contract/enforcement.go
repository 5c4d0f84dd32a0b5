package contract

import (
	"crypto/sha256"
	"encoding/base64"

	"github.com/twofold-dev/twofold/contract/mfa"
)

// EnforcementVersion is the v of the enforcement feed this package describes. Version 2
// lists revoked sessions by SessionHandleHash instead of by handle; a sidecar refuses a
// feed of any other version and keeps enforcing the last one it accepted.
const EnforcementVersion = 2

// Enforcement is the read-only feed a sidecar polls: GET /auth/{tenantId}/enforcement.
type Enforcement struct {
	V                          int              `json:"v"`
	TenantID                   string           `json:"tenantId"`
	ConfigVersion              int64            `json:"configVersion"`
	Issuer                     string           `json:"issuer"`
	AccessTokenLifetimeSeconds int64            `json:"accessTokenLifetimeSeconds"`
	MFA                        EnforcementMFA   `json:"mfa"`
	EmailVerificationRequired  bool             `json:"emailVerificationRequired"`
	RevokedSessions            []RevokedSession `json:"revokedSessions"`
	HostedUI                   HostedUI         `json:"hostedUI"`
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
