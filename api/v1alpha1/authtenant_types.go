package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AuthTenantSpec declares a tenant of the auth core: how its users sign in first and how the
// core reaches them.
// +kubebuilder:validation:XValidation:rule="!('thirdparty' in self.firstFactors) || (has(self.thirdPartyProviders) && size(self.thirdPartyProviders) > 0)",message="firstFactors lists thirdparty, so thirdPartyProviders needs at least one provider"
// +kubebuilder:validation:XValidation:rule="!('otp-email' in self.firstFactors || 'link-email' in self.firstFactors) || has(self.email)",message="firstFactors lists otp-email or link-email, which send email: configure spec.email"
// +kubebuilder:validation:XValidation:rule="!('otp-phone' in self.firstFactors || 'link-phone' in self.firstFactors) || has(self.sms)",message="firstFactors lists otp-phone or link-phone, which send text messages: configure spec.sms"
// +kubebuilder:validation:XValidation:rule="!('link-email' in self.firstFactors || 'link-phone' in self.firstFactors) || has(self.websiteDomain)",message="magic links (link-email, link-phone) need spec.websiteDomain to build the link"
type AuthTenantSpec struct {
	// TenantID is the tenant's id in the auth core and in the /auth/<tenantId>/ API paths.
	// Defaults to the object's name. It cannot be changed once set: users belong to it.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="tenantId must be lower-case letters, digits and '-', starting and ending with a letter or digit"
	// +kubebuilder:validation:XValidation:rule="!(self in ['admin','auth','jwt','session','signin','signup','signout','signinup','mfa','totp','user','users','recipe','loginmethods','authorisationurl','enforcement','emailpassword','passwordless','thirdparty','well-known'])",message="tenantId is a reserved word of the auth API paths; choose another"
	TenantID string `json:"tenantId,omitempty"`

	// FirstFactors are the ways a user can start a session. totp and recovery-code prove
	// possession of something, not who the user is, so they are secondary factors only.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=9
	// +listType=set
	// +kubebuilder:validation:XValidation:rule="!('totp' in self)",message="totp cannot be a first factor: list it in an MFAPolicy requirement instead"
	// +kubebuilder:validation:XValidation:rule="!('recovery-code' in self)",message="recovery-code cannot be a first factor: it only stands in for a lost second factor"
	FirstFactors []FactorID `json:"firstFactors"`

	// ThirdPartyProviders are the OIDC/OAuth2 providers for the thirdparty first factor.
	// +optional
	// +kubebuilder:validation:MaxItems=20
	// +listType=map
	// +listMapKey=id
	ThirdPartyProviders []ThirdPartyProvider `json:"thirdPartyProviders,omitempty"`

	// Email configures how the core sends email: sign-in codes, magic links, verification
	// and password-reset messages.
	// +optional
	Email *EmailDelivery `json:"email,omitempty"`

	// SMS configures how the core sends text messages (otp-phone, link-phone).
	// +optional
	SMS *SMSDelivery `json:"sms,omitempty"`

	// Session configures token lifetimes and cookies.
	// +optional
	Session SessionSettings `json:"session,omitempty"`

	// EmailVerification is Off (no verification), Optional (offered, not enforced) or
	// Required (protected requests are refused until the user's email is verified).
	// +optional
	// +kubebuilder:default=Optional
	// +kubebuilder:validation:Enum=Off;Optional;Required
	EmailVerification string `json:"emailVerification,omitempty"`

	// WebsiteDomain is the origin users see, such as https://app.example.com. Magic links and
	// the hosted pages' return URLs are built from it.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^https?://[^/?#]+$')",message="websiteDomain must be an origin such as https://app.example.com, without a path"
	WebsiteDomain string `json:"websiteDomain,omitempty"`

	// TOTP tunes time-based one-time passwords for this tenant.
	// +optional
	TOTP *TOTPSettings `json:"totp,omitempty"`

	// WebAuthn configures passkeys and security keys (the webauthn factor). The relying party
	// defaults to websiteDomain: its host is the relying party id and it is the one origin.
	// +optional
	WebAuthn *WebAuthnSettings `json:"webauthn,omitempty"`

	// Branding is shown on the hosted sign-in and MFA pages.
	// +optional
	Branding *Branding `json:"branding,omitempty"`

	// CodeSending limits the sign-in codes and magic links (first or second factor) one email
	// address or phone number, and one signed-in user, receive in a sliding window, so that
	// nobody can flood a mailbox or a phone, or open device after device to get more guesses
	// at a second factor. Defaults: 5 per contact and 5 per user every 15 minutes.
	// +optional
	CodeSending *CodeSendingLimits `json:"codeSending,omitempty"`

	// OTPEmail governs the otp-email secondary factor.
	// +optional
	OTPEmail *OTPEmailSettings `json:"otpEmail,omitempty"`

	// DeletionPolicy says what deleting this object does in the core. Retain (the default)
	// stops managing the tenant and keeps its configuration and users; Delete removes the
	// tenant's configuration (users are never deleted by the controller).
	// +optional
	// +kubebuilder:default=Retain
	// +kubebuilder:validation:Enum=Retain;Delete
	DeletionPolicy string `json:"deletionPolicy,omitempty"`
}

// ThirdPartyProvider is one OIDC or OAuth2 identity provider.
// +kubebuilder:validation:XValidation:rule="self.type != 'OIDC' || has(self.issuer)",message="an OIDC provider needs issuer, used for discovery"
type ThirdPartyProvider struct {
	// ID is the provider's id in the API (thirdPartyId), such as google or github.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	ID string `json:"id"`
	// Name is shown on the sign-in button. Defaults to the provider type's name.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name,omitempty"`
	// Type selects a preset (Google, GitHub) or generic OIDC discovery from Issuer.
	// +kubebuilder:validation:Enum=Google;GitHub;OIDC
	Type string `json:"type"`
	// Issuer is the OIDC issuer URL; required for OIDC, optional for the presets.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="self.matches('^https?://')",message="issuer must be an http(s) URL"
	Issuer string `json:"issuer,omitempty"`
	// ClientID is the OAuth2 client id registered with the provider.
	// +kubebuilder:validation:MinLength=1
	ClientID string `json:"clientId"`
	// ClientSecretRef names the Secret key holding the OAuth2 client secret.
	ClientSecretRef SecretKeySelector `json:"clientSecretRef"`
	// Scopes requested; defaults to the preset's (openid email profile for OIDC).
	// +optional
	// +listType=set
	Scopes []string `json:"scopes,omitempty"`
}

// EmailDelivery configures outgoing email.
type EmailDelivery struct {
	// SMTP server settings.
	SMTP SMTPSettings `json:"smtp"`
}

// SMTPSettings describes an SMTP submission server.
type SMTPSettings struct {
	// Host name of the SMTP server.
	// +kubebuilder:validation:MinLength=1
	Host string `json:"host"`
	// Port of the SMTP server.
	// +kubebuilder:default=587
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port,omitempty"`
	// From is the sender, such as "Acme <no-reply@example.com>".
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=320
	// +kubebuilder:validation:XValidation:rule="self.contains('@')",message="from must contain an email address"
	From string `json:"from"`
	// TLS is StartTLS (upgrade a plain connection), TLS (implicit TLS, usually port 465) or
	// None (only for a relay on a trusted network).
	// +optional
	// +kubebuilder:default=StartTLS
	// +kubebuilder:validation:Enum=StartTLS;TLS;None
	TLS string `json:"tls,omitempty"`
	// UsernameRef and PasswordRef name Secret keys with the SMTP credentials; omit both for an
	// unauthenticated relay.
	// +optional
	UsernameRef *SecretKeySelector `json:"usernameRef,omitempty"`
	// +optional
	PasswordRef *SecretKeySelector `json:"passwordRef,omitempty"`
}

// SMSDelivery configures outgoing text messages.
// +kubebuilder:validation:XValidation:rule="self.provider != 'Twilio' || has(self.twilio)",message="provider Twilio needs the twilio settings"
// +kubebuilder:validation:XValidation:rule="self.provider != 'Webhook' || has(self.webhook)",message="provider Webhook needs the webhook settings"
type SMSDelivery struct {
	// Provider is Twilio (or any service with Twilio's Messages API) or Webhook (a signed
	// JSON POST to your own service).
	// +kubebuilder:validation:Enum=Twilio;Webhook
	Provider string `json:"provider"`
	// +optional
	Twilio *TwilioSettings `json:"twilio,omitempty"`
	// +optional
	Webhook *SMSWebhookSettings `json:"webhook,omitempty"`
}

// TwilioSettings configures a Twilio-style Messages API.
type TwilioSettings struct {
	// AccountSID of the account.
	// +kubebuilder:validation:MinLength=1
	AccountSID string `json:"accountSid"`
	// AuthTokenRef names the Secret key holding the auth token.
	AuthTokenRef SecretKeySelector `json:"authTokenRef"`
	// From is the sending number in E.164 form.
	// +kubebuilder:validation:Pattern=`^\+[1-9][0-9]{6,14}$`
	From string `json:"from"`
	// BaseURL overrides the API's base URL, for compatible providers.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="self.matches('^https?://')",message="baseURL must be an http(s) URL"
	BaseURL string `json:"baseURL,omitempty"`
}

// SMSWebhookSettings configures delivery through a webhook.
type SMSWebhookSettings struct {
	// URL receiving the signed JSON POST.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.matches('^https?://')",message="url must be an http(s) URL"
	URL string `json:"url"`
	// SecretRef names the Secret key holding the HMAC signing secret.
	SecretRef SecretKeySelector `json:"secretRef"`
}

// SessionSettings configures sessions.
// +kubebuilder:validation:XValidation:rule="!has(self.cookieSameSite) || self.cookieSameSite != 'None' || !has(self.cookieSecure) || self.cookieSecure",message="cookieSameSite None requires cookieSecure: browsers drop insecure SameSite=None cookies"
type SessionSettings struct {
	// AccessTokenLifetime, between 1m and 24h. Default 1h.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+(ms|s|m|h))+$') && duration(self) >= duration('1m') && duration(self) <= duration('24h')",message="accessTokenLifetime must be a duration between 1m and 24h, such as 15m or 1h"
	AccessTokenLifetime *Duration `json:"accessTokenLifetime,omitempty"`
	// RefreshTokenLifetime, between 1h and 8760h (a year). Default 2400h (100 days).
	// +optional
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+(ms|s|m|h))+$') && duration(self) >= duration('1h') && duration(self) <= duration('8760h')",message="refreshTokenLifetime must be a duration between 1h and 8760h, such as 720h"
	RefreshTokenLifetime *Duration `json:"refreshTokenLifetime,omitempty"`
	// CookieDomain scopes the session cookies; empty means the host that set them.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	CookieDomain string `json:"cookieDomain,omitempty"`
	// CookieSameSite is Lax (the default), Strict or None.
	// +optional
	// +kubebuilder:validation:Enum=Lax;Strict;None
	CookieSameSite string `json:"cookieSameSite,omitempty"`
	// CookieSecure marks the cookies Secure. Default true.
	// +optional
	CookieSecure *bool `json:"cookieSecure,omitempty"`
}

// OTPEmailSettings govern the otp-email secondary factor.
type OTPEmailSettings struct {
	// AllowNewAddresses lets users set otp-email up with an address that is not yet on their
	// account (the code still proves they hold it). Off by default: someone who knows only a
	// user's password could otherwise enrol an address of their own as the user's second
	// factor before the user does.
	// +optional
	AllowNewAddresses bool `json:"allowNewAddresses,omitempty"`
}

// CodeSendingLimits bound the codes and links sent per contact and per user.
type CodeSendingLimits struct {
	// MaxPerContact codes to one email address or phone number per window. Default 5.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	MaxPerContact *int32 `json:"maxPerContact,omitempty"`
	// MaxPerUser second-factor codes to all of one signed-in user's contacts per window.
	// Default 5.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	MaxPerUser *int32 `json:"maxPerUser,omitempty"`
	// Window is the sliding window, between 1m and 24h. Default 15m.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+(ms|s|m|h))+$') && duration(self) >= duration('1m') && duration(self) <= duration('24h')",message="codeSending.window must be a duration between 1m and 24h, such as 15m"
	Window *Duration `json:"window,omitempty"`
}

// WebAuthnSettings configure the webauthn factor: the relying party passkeys are bound to, and
// what the core asks of authenticators.
// +kubebuilder:validation:XValidation:rule="!has(self.origins) || has(self.rpId)",message="webauthn.origins needs webauthn.rpId: the host of every origin or a domain they share, such as example.com"
type WebAuthnSettings struct {
	// RPName is the name authenticators show beside the passkey. Defaults to the branding app
	// name, else "Twofold".
	// +optional
	// +kubebuilder:validation:MaxLength=100
	RPName string `json:"rpName,omitempty"`
	// RPID is the relying party id: a domain every origin is on, such as example.com for
	// https://app.example.com and https://admin.example.com. Defaults to the host of
	// websiteDomain. Passkeys are bound to it: changing it makes every passkey unusable.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([a-z0-9-]*[a-z0-9])?([.][a-z0-9]([a-z0-9-]*[a-z0-9])?)*$')",message="webauthn.rpId must be a lower-case domain name such as example.com, without scheme or port (browsers refuse IP addresses)"
	RPID string `json:"rpId,omitempty"`
	// Origins are the origins of the pages that run passkey ceremonies, when the application
	// lives on several (defaults to websiteDomain). Each must be https (or http://localhost)
	// and on the relying party id.
	// +optional
	// +kubebuilder:validation:MaxItems=20
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:XValidation:rule="self.matches('^(https://[^/?#]+|http://localhost(:[0-9]+)?)$')",message="each webauthn origin must be an https origin such as https://app.example.com (or http://localhost), without a path"
	Origins []string `json:"origins,omitempty"`
	// Attestation is the attestation conveyance asked of new authenticators. Default none.
	// +optional
	// +kubebuilder:validation:Enum=none;indirect;direct;enterprise
	Attestation string `json:"attestation,omitempty"`
	// UserVerification is required (default: a PIN or biometric on every use), preferred or
	// discouraged.
	// +optional
	// +kubebuilder:validation:Enum=required;preferred;discouraged
	UserVerification string `json:"userVerification,omitempty"`
	// AuthenticatorAttachment limits new passkeys to platform authenticators (the device's
	// own) or cross-platform ones (security keys, phones). Both when unset.
	// +optional
	// +kubebuilder:validation:Enum=platform;cross-platform
	AuthenticatorAttachment string `json:"authenticatorAttachment,omitempty"`
	// ResidentKey is required (default: discoverable passkeys, signing in without a user
	// name), preferred or discouraged (security keys that store no credential).
	// +optional
	// +kubebuilder:validation:Enum=required;preferred;discouraged
	ResidentKey string `json:"residentKey,omitempty"`
}

// TOTPSettings tunes TOTP for a tenant. The defaults (6 digits, 30 s, skew 1) are what
// authenticator apps expect; change them only with a reason.
type TOTPSettings struct {
	// Issuer is shown by authenticator apps. Defaults to the branding app name or tenant id.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Issuer string `json:"issuer,omitempty"`
	// Digits per code.
	// +optional
	// +kubebuilder:validation:Enum=6;8
	Digits int32 `json:"digits,omitempty"`
	// PeriodSeconds each code is valid for.
	// +optional
	// +kubebuilder:validation:Minimum=15
	// +kubebuilder:validation:Maximum=120
	PeriodSeconds int32 `json:"periodSeconds,omitempty"`
	// Skew is how many periods before and after now are accepted, for clock drift.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=2
	Skew *int32 `json:"skew,omitempty"`
}

// Branding is shown on the hosted pages.
type Branding struct {
	// AppName is the product name users see.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	AppName string `json:"appName,omitempty"`
	// LogoURL is an https URL of the logo image.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.matches('^https://')",message="logoURL must be an https URL"
	LogoURL string `json:"logoURL,omitempty"`
	// PrimaryColor is a CSS hex colour such as #3b5bdb.
	// +optional
	// +kubebuilder:validation:Pattern=`^#[0-9a-fA-F]{6}$`
	PrimaryColor string `json:"primaryColor,omitempty"`
}

// AuthTenantStatus is what the controller observed.
type AuthTenantStatus struct {
	// Conditions: Ready summarises whether the core holds this configuration.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// ObservedGeneration is the generation last synced successfully.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// TenantID is the id the core knows the tenant by.
	// +optional
	TenantID string `json:"tenantId,omitempty"`
	// ConfigVersion is the configuration version the core reported after the last sync.
	// +optional
	ConfigVersion int64 `json:"configVersion,omitempty"`
	// ConfigHash is the hash of the configuration the core holds.
	// +optional
	ConfigHash string `json:"configHash,omitempty"`
	// AppliedPolicies lists the MFAPolicies the core's configuration includes, in the order
	// they combine, with the generation of each that was applied.
	// +optional
	// +listType=map
	// +listMapKey=name
	AppliedPolicies []AppliedPolicy `json:"appliedPolicies,omitempty"`
}

// AppliedPolicy is one MFAPolicy included in a tenant's configuration.
type AppliedPolicy struct {
	// Name of the MFAPolicy.
	Name string `json:"name"`
	// Generation of the MFAPolicy that was applied.
	Generation int64 `json:"generation"`
}

// AuthTenant declares a tenant of the Twofold auth core.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=at,categories=twofold
// +kubebuilder:printcolumn:name="Tenant",type=string,JSONPath=`.status.tenantId`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Version",type=integer,JSONPath=`.status.configVersion`,priority=1
// +kubebuilder:printcolumn:name="Factors",type=string,JSONPath=`.spec.firstFactors`,priority=1
// +kubebuilder:printcolumn:name="Policies",type=string,JSONPath=`.status.appliedPolicies[*].name`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="(has(self.spec.tenantId) ? self.spec.tenantId : self.metadata.name) == (has(oldSelf.spec.tenantId) ? oldSelf.spec.tenantId : oldSelf.metadata.name)",message="spec.tenantId cannot be changed once set: users belong to the tenant"
// +kubebuilder:validation:XValidation:rule="has(self.spec.tenantId) || self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$') && size(self.metadata.name) <= 63",message="the object name is not a valid tenant id (lower-case letters, digits and '-', at most 63): set spec.tenantId"
type AuthTenant struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec AuthTenantSpec `json:"spec"`
	// +optional
	Status AuthTenantStatus `json:"status,omitempty"`
}

// EffectiveTenantID is spec.tenantId, or the object's name when it is empty.
func (t *AuthTenant) EffectiveTenantID() string {
	if t.Spec.TenantID != "" {
		return t.Spec.TenantID
	}
	return t.Name
}

// AuthTenantList is a list of AuthTenants.
// +kubebuilder:object:root=true
type AuthTenantList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AuthTenant `json:"items"`
}

func init() {
	SchemeBuilder.Register(&AuthTenant{}, &AuthTenantList{})
}
