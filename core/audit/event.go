// Package audit is the core's audit trail: every security event (a sign-in, a refused code, a
// lockout, a factor set up, a session revoked, a tenant changed) becomes one Event of a single
// documented JSON schema (docs/audit.md), which
//
//   - is written as one log line of the logger named "audit", always;
//   - is counted in the core's metrics (events by type and outcome, authentications by factor
//     and outcome, lockouts by factor), so the dashboards see what the audit trail sees;
//   - is handed to an optional Sink, such as the Webhook that posts batches of events to a
//     security team's collector.
//
// Recording never blocks and never fails: a sink that cannot keep up drops events and counts
// them, the log line is still written.
//
// The parts of the core name an event by its log message ("Signed in", "Refused sign-in
// code"); Types maps each message to the event's type. A test fails when code emits a message
// that Types does not know, so a new event is documented when it is added.
package audit

import (
	"crypto/rand"
	"encoding/hex"
	"time"
)

// SchemaVersion is the version of the event schema; it changes only when a field changes
// meaning or goes away (fields are only added within a version).
const SchemaVersion = 1

// Event is one audit event, the JSON object docs/audit.md documents.
type Event struct {
	// Schema is SchemaVersion.
	Schema int `json:"schema"`
	// ID identifies the event; a receiver deduplicates on it (the webhook delivers at least
	// once).
	ID string `json:"id"`
	// Time is when the core recorded the event, UTC.
	Time time.Time `json:"time"`
	// Type is one of the types of Types, or TypeOther.
	Type string `json:"type"`
	// Message is the human-readable description, the log line's msg.
	Message string `json:"message"`
	// Outcome is "success" or a reason code for a refusal (wrong_credentials, locked, ...).
	Outcome string `json:"outcome"`
	// Tenant is the tenant id; empty for events not bound to a tenant.
	Tenant string `json:"tenant,omitempty"`
	// User is the user id, when known.
	User string `json:"user,omitempty"`
	// Factor is the factor id the event concerns (emailpassword, thirdparty, otp-email,
	// otp-phone, link-email, link-phone, totp, recovery-code, webauthn), when there is one.
	Factor string `json:"factor,omitempty"`
	// Actor is who caused the event: "user" (the public API and hosted pages) or "admin" (the
	// admin API).
	Actor string `json:"actor"`
	// IP is the client's address (the X-Forwarded-For client when the peer is a trusted proxy).
	IP string `json:"ip,omitempty"`
	// ForwardedFor is the request's X-Forwarded-For header as received, when present.
	ForwardedFor string `json:"forwardedFor,omitempty"`
	// Details are the event's further fields; docs/audit.md lists them per type.
	Details map[string]any `json:"details,omitempty"`
}

// Success reports whether the event's outcome is "success".
func (e Event) Success() bool { return e.Outcome == OutcomeSuccess }

// OutcomeSuccess is the outcome of an event that succeeded.
const OutcomeSuccess = "success"

// Actors.
const (
	ActorUser  = "user"
	ActorAdmin = "admin"
)

// Event types.
const (
	TypeSignUp               = "sign_up"
	TypeSignIn               = "sign_in"
	TypeLockout              = "lockout"
	TypeFactorAttempt        = "factor_attempt"
	TypeFactorSetup          = "factor_setup"
	TypeCodeSent             = "code_sent"
	TypeSignOut              = "sign_out"
	TypeTokenTheft           = "token_theft"
	TypeSessionRevoked       = "session_revoked"
	TypeEmailVerification    = "email_verification"
	TypePasswordResetRequest = "password_reset_request"
	TypePasswordReset        = "password_reset"
	TypeAccountRecovery      = "account_recovery"
	TypeTenantChanged        = "tenant_changed"
	TypeTenantDeleted        = "tenant_deleted"
	TypeTenantOwnerChanged   = "tenant_owner_changed"
	TypeUserViewed           = "user_viewed"
	TypeMFAReset             = "mfa_reset"
	TypeLockoutCleared       = "lockout_cleared"
	TypeUserStatusChanged    = "user_status_changed"
	TypeUserDeleted          = "user_deleted"
	TypeAdminKeyChanged      = "admin_key_changed"
	TypeOther                = "other"
)

// Details are bounded, so one event stays one reasonable log line and webhook item.
const (
	maxDetailsStringBytes    = 512
	maxDetailsPerEventFields = 32
)

// Types maps each audit message the core emits to its event type and actor. docs/audit.md
// documents every row.
var Types = map[string]struct{ Type, Actor string }{
	"Signed up":                                 {TypeSignUp, ActorUser},
	"Refused sign-up":                           {TypeSignUp, ActorUser},
	"Signed in":                                 {TypeSignIn, ActorUser},
	"Refused sign-in":                           {TypeSignIn, ActorUser},
	"Locked sign-in":                            {TypeLockout, ActorUser},
	"Completed factor":                          {TypeFactorAttempt, ActorUser},
	"Refused factor":                            {TypeFactorAttempt, ActorUser},
	"Refused sign-in code":                      {TypeFactorAttempt, ActorUser},
	"Refused factor code":                       {TypeFactorAttempt, ActorUser},
	"Locked second factor":                      {TypeLockout, ActorUser},
	"Removed factor":                            {TypeFactorSetup, ActorUser},
	"Refused factor setup":                      {TypeFactorSetup, ActorUser},
	"Added passkey":                             {TypeFactorSetup, ActorUser},
	"Removed passkey":                           {TypeFactorSetup, ActorUser},
	"Sent a sign-in code":                       {TypeCodeSent, ActorUser},
	"Refused to send a sign-in code":            {TypeCodeSent, ActorUser},
	"Failed to send a sign-in code":             {TypeCodeSent, ActorUser},
	"Signed out":                                {TypeSignOut, ActorUser},
	"Signed out other sessions":                 {TypeSessionRevoked, ActorUser},
	"Revoked session after refresh-token theft": {TypeTokenTheft, ActorUser},
	"Revoked user sessions":                     {TypeSessionRevoked, ActorAdmin},
	"Revoked session":                           {TypeSessionRevoked, ActorAdmin},
	"Sent an email verification email":          {TypeEmailVerification, ActorUser},
	"Verified email":                            {TypeEmailVerification, ActorUser},
	"Asked for a password reset":                {TypePasswordResetRequest, ActorUser},
	"Refused password reset":                    {TypePasswordReset, ActorUser},
	"Reset password":                            {TypePasswordReset, ActorUser},
	"Asked for a passkey recovery":              {TypeAccountRecovery, ActorUser},
	"Recovered passkey account":                 {TypeAccountRecovery, ActorUser},
	"Refused passkey recovery":                  {TypeAccountRecovery, ActorUser},
	"Changed tenant configuration":              {TypeTenantChanged, ActorAdmin},
	"Refused tenant change by a non-owner":      {TypeTenantChanged, ActorAdmin},
	"Deleted tenant configuration":              {TypeTenantDeleted, ActorAdmin},
	"Claimed tenant":                            {TypeTenantOwnerChanged, ActorAdmin},
	"Released tenant":                           {TypeTenantOwnerChanged, ActorAdmin},
	"Looked up users":                           {TypeUserViewed, ActorAdmin},
	"Viewed user":                               {TypeUserViewed, ActorAdmin},
	"Explained requirement":                     {TypeUserViewed, ActorAdmin},
	"Reset user MFA":                            {TypeMFAReset, ActorAdmin},
	"Cleared lockouts":                          {TypeLockoutCleared, ActorAdmin},
	"Disabled user":                             {TypeUserStatusChanged, ActorAdmin},
	"Enabled user":                              {TypeUserStatusChanged, ActorAdmin},
	"Deleted user":                              {TypeUserDeleted, ActorAdmin},
	"Created admin key":                         {TypeAdminKeyChanged, ActorAdmin},
	"Revoked admin key":                         {TypeAdminKeyChanged, ActorAdmin},
}

// New builds the event for an audit message: its type and actor from Types (TypeOther and
// ActorUser for a message Types does not know), its factor from the "factor" field of kv or
// else the "recipe" field when that names a factor (not "passwordless", whose factor depends
// on the channel), and the remaining key/value pairs
// of kv as details.
func New(now time.Time, msg, tenantID, userID, outcome, ip, forwardedFor string, kv ...any) Event {
	t, ok := Types[msg]
	if !ok {
		t.Type, t.Actor = TypeOther, ActorUser
	}
	e := Event{Schema: SchemaVersion, ID: newID(), Time: now.UTC(), Type: t.Type, Message: msg, Outcome: outcome,
		Tenant: tenantID, User: userID, Actor: t.Actor, IP: ip, ForwardedFor: forwardedFor}
	recipe := ""
	for i := 0; i+1 < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			continue
		}
		switch k {
		case "factor":
			e.Factor, _ = kv[i+1].(string)
			continue
		case "recipe":
			recipe, _ = kv[i+1].(string)
		}
		if e.Details == nil {
			e.Details = make(map[string]any, len(kv)/2)
		}
		if len(e.Details) < maxDetailsPerEventFields {
			e.Details[k] = detail(kv[i+1])
		}
	}
	if e.Factor == "" && (recipe == "emailpassword" || recipe == "thirdparty" || recipe == "webauthn") {
		e.Factor = recipe
	}
	return e
}

// detail keeps a detail's value as JSON encodes it, long strings cut short.
func detail(v any) any {
	switch v := v.(type) {
	case string:
		if len(v) > maxDetailsStringBytes {
			return v[:maxDetailsStringBytes]
		}
		return v
	case error:
		return detail(v.Error())
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano)
	case time.Duration:
		return v.String()
	default:
		return v
	}
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24)
	return hex.EncodeToString(b[:])
}
