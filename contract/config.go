package contract

import "github.com/twofold-dev/twofold/contract/mfa"

// Redacted replaces every secret in a configuration answered by the admin API.
const Redacted = "<redacted>"

// PublicTenantID is the tenant that always exists and serves requests without a tenant segment.
const PublicTenantID = "public"

// Enforcement modes of an MFA policy.
const (
	// EnforcementRequired applies the requirement to every user of the tenant.
	EnforcementRequired = "Required"
	// EnforcementUserOptIn applies the requirement only to users who enabled MFA for themselves.
	EnforcementUserOptIn = "UserOptIn"
)

// Email verification modes.
const (
	EmailVerificationOff      = "OFF"
	EmailVerificationOptional = "OPTIONAL"
	EmailVerificationRequired = "REQUIRED"
)

// Third-party provider types.
const (
	ProviderGoogle = "google"
	ProviderGitHub = "github"
	ProviderOIDC   = "oidc"
)

// TenantConfig is a tenant's whole desired configuration, as PUT to /admin/v1/tenants/{id}.
// Durations are whole seconds.
type TenantConfig struct {
	// FirstFactors lists the factors that can start a session, in display order.
	FirstFactors []string `json:"firstFactors,omitempty"`
	// ThirdPartyProviders are the OAuth2/OIDC providers users may sign in with.
	ThirdPartyProviders []Provider `json:"thirdPartyProviders,omitempty"`
	// Email configures delivery of email (codes, magic links).
	Email *Email `json:"email,omitempty"`
	// SMS configures delivery of text messages.
	SMS *SMS `json:"sms,omitempty"`
	// Session holds token lifetimes and cookie settings.
	Session Session `json:"session"`
	// EmailVerification is OFF, OPTIONAL or REQUIRED.
	EmailVerification string `json:"emailVerification,omitempty"`
	// WebsiteDomain is the origin of the application's website, used in magic links.
	WebsiteDomain string `json:"websiteDomain,omitempty"`
	// WebsiteBasePath is where the website serves its auth pages.
	WebsiteBasePath string `json:"websiteBasePath,omitempty"`
	// TOTP holds the parameters of TOTP devices created for this tenant.
	TOTP TOTP `json:"totp"`
	// WebAuthn configures passkeys and security keys (the webauthn factor).
	WebAuthn WebAuthn `json:"webauthn"`
	// CodeSending limits the one-time codes and links sent per contact and per user.
	CodeSending CodeSending `json:"codeSending"`
	// OTPEmail governs the otp-email secondary factor.
	OTPEmail OTPEmail `json:"otpEmail"`
	// Branding is shown by the hosted login pages.
	Branding *Branding `json:"branding,omitempty"`
	// MFA is the compiled multi-factor policy.
	MFA MFA `json:"mfa"`
}

// Provider is a third-party sign-in provider. ClientSecret is never returned by the core.
type Provider struct {
	// ID is what clients send as thirdPartyId.
	ID string `json:"id"`
	// Name is shown on sign-in buttons.
	Name string `json:"name,omitempty"`
	// Type is google, github or oidc (generic discovery from Issuer).
	Type                  string   `json:"type"`
	Issuer                string   `json:"issuer,omitempty"`
	ClientID              string   `json:"clientId"`
	ClientSecret          string   `json:"clientSecret,omitempty"`
	Scopes                []string `json:"scopes,omitempty"`
	AuthorizationEndpoint string   `json:"authorizationEndpoint,omitempty"`
	TokenEndpoint         string   `json:"tokenEndpoint,omitempty"`
	UserInfoEndpoint      string   `json:"userInfoEndpoint,omitempty"`
}

// Email configures email delivery.
type Email struct {
	SMTP *SMTP `json:"smtp,omitempty"`
}

// SMTP is an SMTP relay. Password is a secret.
type SMTP struct {
	Host     string `json:"host"`
	Port     int    `json:"port"`
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
	From     string `json:"from"`
	// TLS is starttls, tls or none.
	TLS string `json:"tls,omitempty"`
}

// SMS configures text-message delivery through Twilio or a generic webhook.
type SMS struct {
	// Provider is twilio or webhook.
	Provider string      `json:"provider"`
	Twilio   *Twilio     `json:"twilio,omitempty"`
	Webhook  *SMSWebhook `json:"webhook,omitempty"`
}

// Twilio holds Twilio-style API credentials. AuthToken is a secret.
type Twilio struct {
	AccountSID string `json:"accountSid"`
	AuthToken  string `json:"authToken,omitempty"`
	From       string `json:"from"`
	BaseURL    string `json:"baseURL,omitempty"`
}

// SMSWebhook posts messages to URL, signed with Secret.
type SMSWebhook struct {
	URL    string `json:"url"`
	Secret string `json:"secret,omitempty"`
}

// Session holds token lifetimes and cookie attributes.
type Session struct {
	AccessTokenLifetimeSeconds  int64  `json:"accessTokenLifetimeSeconds,omitempty"`
	RefreshTokenLifetimeSeconds int64  `json:"refreshTokenLifetimeSeconds,omitempty"`
	CookieDomain                string `json:"cookieDomain,omitempty"`
	// CookieSameSite is lax, strict or none; none requires CookieSecure and an anti-CSRF header.
	CookieSameSite string `json:"cookieSameSite,omitempty"`
	// CookieSecure defaults to true.
	CookieSecure *bool `json:"cookieSecure,omitempty"`
}

// OTPEmail governs the otp-email secondary factor.
type OTPEmail struct {
	// AllowNewAddresses lets a user set otp-email up with an address that is not yet on their
	// account. Off by default: someone who knows only the password could otherwise enrol an
	// address of their own as the victim's second factor.
	AllowNewAddresses bool `json:"allowNewAddresses,omitempty"`
}

// CodeSending limits how many sign-in codes and magic links (first factor or second) one
// contact and one user receive in a sliding window, so that nobody can flood a phone or a
// mailbox, or open device after device for more guesses at a second factor.
type CodeSending struct {
	// MaxPerContact messages to one email address or phone number per window. Default 5.
	MaxPerContact int `json:"maxPerContact,omitempty"`
	// MaxPerUser messages to all of a signed-in user's contacts per window (second-factor
	// codes). Default 5.
	MaxPerUser int `json:"maxPerUser,omitempty"`
	// WindowSeconds is the window's length, between 60 and 86400. Default 900 (15 minutes).
	WindowSeconds int64 `json:"windowSeconds,omitempty"`
}

// Defaults and bounds of CodeSending.
const (
	DefaultMaxCodesPerContact       = 5
	DefaultMaxCodesPerUser          = 5
	DefaultCodeWindowSeconds        = 900
	MaxCodeWindowSeconds      int64 = 86400
)

// TOTP holds TOTP device parameters.
type TOTP struct {
	Issuer        string `json:"issuer,omitempty"`
	Digits        int    `json:"digits,omitempty"`
	PeriodSeconds int    `json:"periodSeconds,omitempty"`
	Skew          int    `json:"skew,omitempty"`
}

// Values of the WebAuthn settings, as the WebAuthn specification spells them.
const (
	AttestationNone       = "none"
	AttestationIndirect   = "indirect"
	AttestationDirect     = "direct"
	AttestationEnterprise = "enterprise"

	UserVerificationRequired    = "required"
	UserVerificationPreferred   = "preferred"
	UserVerificationDiscouraged = "discouraged"

	AttachmentPlatform      = "platform"
	AttachmentCrossPlatform = "cross-platform"

	ResidentKeyRequired    = "required"
	ResidentKeyPreferred   = "preferred"
	ResidentKeyDiscouraged = "discouraged"
)

// WebAuthn configures the webauthn factor: the relying party authenticators bind credentials
// to, and what the core asks of authenticators.
type WebAuthn struct {
	// RPName is the name authenticators show. Default: the branding app name, else "Twofold".
	RPName string `json:"rpName,omitempty"`
	// RPID is the relying party id: the host of every origin or a registrable suffix of it.
	// Default: the host of WebsiteDomain.
	RPID string `json:"rpId,omitempty"`
	// Origins are the origins a ceremony may come from. Default: WebsiteDomain.
	Origins []string `json:"origins,omitempty"`
	// Attestation is the attestation conveyance asked for: none (default), indirect, direct
	// or enterprise.
	Attestation string `json:"attestation,omitempty"`
	// UserVerification is required (default: a PIN or biometric on every use), preferred or
	// discouraged.
	UserVerification string `json:"userVerification,omitempty"`
	// AuthenticatorAttachment limits new credentials to platform authenticators or to
	// cross-platform ones (security keys, phones); empty allows both.
	AuthenticatorAttachment string `json:"authenticatorAttachment,omitempty"`
	// ResidentKey is required (default: discoverable credentials, passkeys, which sign in
	// without a user name), preferred or discouraged (security keys that keep no credential).
	ResidentKey string `json:"residentKey,omitempty"`
}

// Branding is shown by the hosted login pages.
type Branding struct {
	AppName      string `json:"appName,omitempty"`
	LogoURL      string `json:"logoURL,omitempty"`
	PrimaryColor string `json:"primaryColor,omitempty"`
}

// MFA is the tenant's compiled multi-factor policy.
type MFA struct {
	// Requirement is the ordered secondary-factor requirement.
	Requirement mfa.Requirement `json:"requirement,omitempty"`
	// Enforcement is Required or UserOptIn.
	Enforcement string `json:"enforcement,omitempty"`
	// AllowedSecondaryFactors are the factors users may set up.
	AllowedSecondaryFactors      []string `json:"allowedSecondaryFactors,omitempty"`
	EnrollmentGracePeriodSeconds int64    `json:"enrollmentGracePeriodSeconds,omitempty"`
	// MaxFactorAgeSeconds makes completed factors expire; zero keeps them for the session.
	MaxFactorAgeSeconds int64 `json:"maxFactorAgeSeconds,omitempty"`
	// Routes are per-route step-up rules enforced by the sidecars.
	Routes []Route `json:"routes,omitempty"`
}

// Route is a step-up rule: requests whose path starts with PathPrefix (and whose method is in
// Methods, when given) need Requirement with factors no older than MaxFactorAgeSeconds, or
// nothing at all when Public.
type Route struct {
	PathPrefix          string          `json:"pathPrefix"`
	Methods             []string        `json:"methods,omitempty"`
	Requirement         mfa.Requirement `json:"requirement,omitempty"`
	MaxFactorAgeSeconds int64           `json:"maxFactorAgeSeconds,omitempty"`
	Public              bool            `json:"public,omitempty"`
}

// TenantState is what the admin API answers for a tenant.
type TenantState struct {
	TenantID string `json:"tenantId"`
	// ConfigVersion increases by one each time the stored configuration changes.
	ConfigVersion int64 `json:"configVersion"`
	// ConfigHash is Hash() of the stored configuration, secrets included.
	ConfigHash string       `json:"configHash"`
	Config     TenantConfig `json:"config"`
	UpdatedAt  string       `json:"updatedAt"`
	// Owner is who manages the tenant, as it claimed it with ?owner= (the controllers send
	// their AuthTenant's namespace/name/uid); absent when nobody has claimed it.
	Owner string `json:"owner,omitempty"`
}

// TenantList is the body of GET /admin/v1/tenants.
type TenantList struct {
	Tenants []TenantState `json:"tenants"`
}
