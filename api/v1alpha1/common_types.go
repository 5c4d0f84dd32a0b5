package v1alpha1

import "time"

// FactorID names an authentication factor, as in the st-mfa claim of a session.
// +kubebuilder:validation:Enum=emailpassword;thirdparty;otp-email;otp-phone;link-email;link-phone;totp;webauthn;recovery-code
type FactorID string

// Factor ids.
const (
	FactorEmailPassword FactorID = "emailpassword"
	FactorThirdParty    FactorID = "thirdparty"
	FactorOTPEmail      FactorID = "otp-email"
	FactorOTPPhone      FactorID = "otp-phone"
	FactorLinkEmail     FactorID = "link-email"
	FactorLinkPhone     FactorID = "link-phone"
	FactorTOTP          FactorID = "totp"
	FactorWebAuthn      FactorID = "webauthn"
	FactorRecoveryCode  FactorID = "recovery-code"
)

// SecretKeySelector names one key of a Secret in the object's namespace.
type SecretKeySelector struct {
	// Name of the Secret, in the same namespace as the object that refers to it.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	Name string `json:"name"`
	// Key within the Secret's data.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	Key string `json:"key"`
}

// Condition types and reasons used by both kinds.
const (
	// ConditionReady summarises whether the object is live in the auth core.
	ConditionReady = "Ready"

	// ReasonSynced: the core holds the declared configuration.
	ReasonSynced = "Synced"
	// ReasonCoreUnavailable: the core could not be reached; the controller retries with backoff.
	ReasonCoreUnavailable = "CoreUnavailable"
	// ReasonInvalidSpec: the core or a cross-object check refused the declared configuration.
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonSecretNotFound: a referenced Secret or key does not exist.
	ReasonSecretNotFound = "SecretNotFound"
	// ReasonTenantNotFound: an MFAPolicy names an AuthTenant that does not exist.
	ReasonTenantNotFound = "TenantNotFound"
	// ReasonConflict: MFAPolicies on one tenant contradict each other.
	ReasonConflict = "Conflict"
	// ReasonDeleting: the object is being deleted.
	ReasonDeleting = "Deleting"
	// ReasonTenantIDClaimed: another AuthTenant (or another manager) owns the tenant id in the
	// auth core; this object changes nothing there.
	ReasonTenantIDClaimed = "TenantIdClaimed"
	// ReasonTenantIDReserved: the tenant id is public, which only an AuthTenant in the
	// manager's public-tenant namespace may declare.
	ReasonTenantIDReserved = "TenantIdReserved"
)

// Duration is a Go duration string such as 90s, 15m or 1h30m. Each field using it states its
// range in a validation rule.
// +kubebuilder:validation:MaxLength=32
type Duration string

// Duration parses d; an empty value is zero.
func (d Duration) Duration() (time.Duration, error) {
	if d == "" {
		return 0, nil
	}
	return time.ParseDuration(string(d))
}
