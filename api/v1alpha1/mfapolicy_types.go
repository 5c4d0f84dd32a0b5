package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RequirementItem is one step of an MFA requirement. Set exactly one field: a single factor,
// a oneOf group (any member satisfies it) or an allOfInAnyOrder group (every member, in any
// order). Steps are satisfied in the order they are listed.
// +kubebuilder:validation:XValidation:rule="[has(self.factor), has(self.oneOf), has(self.allOfInAnyOrder)].filter(x, x).size() == 1",message="set exactly one of factor, oneOf and allOfInAnyOrder in each requirement item"
type RequirementItem struct {
	// Factor that must be completed.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self != 'thirdparty'",message="thirdparty cannot be a secondary factor: a social login proves the same identity as the first factor"
	Factor FactorID `json:"factor,omitempty"`
	// OneOf is satisfied by completing any one of these factors.
	// +optional
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=9
	// +listType=set
	// +kubebuilder:validation:XValidation:rule="!('thirdparty' in self)",message="thirdparty cannot be a secondary factor: a social login proves the same identity as the first factor"
	OneOf []FactorID `json:"oneOf,omitempty"`
	// AllOfInAnyOrder is satisfied by completing every one of these factors.
	// +optional
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=9
	// +listType=set
	// +kubebuilder:validation:XValidation:rule="!('thirdparty' in self)",message="thirdparty cannot be a secondary factor: a social login proves the same identity as the first factor"
	AllOfInAnyOrder []FactorID `json:"allOfInAnyOrder,omitempty"`
}

// Requirement is an ordered list of requirement items.
// +kubebuilder:validation:MaxItems=9
// +kubebuilder:validation:XValidation:rule="self.all(i, !has(i.factor) || self.filter(j, has(j.factor) && j.factor == i.factor).size() == 1)",message="a factor may appear only once as a plain requirement item"
type Requirement []RequirementItem

// RouteRule tightens or relaxes enforcement for requests whose path starts with PathPrefix,
// as checked by the sidecars in front of the tenant's workloads.
// +kubebuilder:validation:XValidation:rule="!has(self.public) || !self.public || (!has(self.requirement) && !has(self.maxFactorAge))",message="a public route cannot also have a requirement or maxFactorAge"
// +kubebuilder:validation:XValidation:rule="(has(self.public) && self.public) || has(self.requirement) || has(self.maxFactorAge)",message="a route needs a requirement, a maxFactorAge, or public: true"
type RouteRule struct {
	// PathPrefix the rule applies to, such as /admin. The longest matching prefix wins.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=1024
	// +kubebuilder:validation:XValidation:rule="self.startsWith('/') && !self.contains('..') && !self.contains('//')",message="pathPrefix must be an absolute path such as /admin, without '..' or '//'"
	PathPrefix string `json:"pathPrefix"`
	// Methods the rule applies to; empty means every method.
	// +optional
	// +listType=set
	Methods []HTTPMethod `json:"methods,omitempty"`
	// Requirement that must be met on this route, on top of the tenant's.
	// +optional
	Requirement Requirement `json:"requirement,omitempty"`
	// MaxFactorAge: on this route, factors completed longer ago than this must be completed
	// again (step-up), such as 5m for an admin action.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+(ms|s|m|h))+$') && duration(self) >= duration('30s')",message="maxFactorAge must be a duration of at least 30s, such as 5m"
	MaxFactorAge *Duration `json:"maxFactorAge,omitempty"`
	// Public routes pass without a session, such as health checks.
	// +optional
	Public bool `json:"public,omitempty"`
}

// HTTPMethod is an HTTP request method.
// +kubebuilder:validation:Enum=GET;HEAD;POST;PUT;PATCH;DELETE;OPTIONS
type HTTPMethod string

// MFAPolicySpec declares the secondary factors a tenant's users must complete.
// +kubebuilder:validation:XValidation:rule="has(self.requirement) || (has(self.routes) && size(self.routes) > 0)",message="a policy needs a requirement, routes, or both"
type MFAPolicySpec struct {
	// TenantRefs names the AuthTenant objects, in this namespace, the policy applies to.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=100
	// +listType=set
	// +kubebuilder:validation:items:MaxLength=253
	TenantRefs []string `json:"tenantRefs"`

	// Requirement lists the secondary factors users must complete after the first factor.
	// +optional
	Requirement Requirement `json:"requirement,omitempty"`

	// Enforcement is Required (every user of the tenant) or UserOptIn (only users who turned
	// MFA on for themselves; others pass with their first factor).
	// +optional
	// +kubebuilder:default=Required
	// +kubebuilder:validation:Enum=Required;UserOptIn
	Enforcement string `json:"enforcement,omitempty"`

	// AllowedSecondaryFactors are the factors users may set up. Defaults to the factors the
	// requirement names plus recovery-code.
	// +optional
	// +kubebuilder:validation:MaxItems=9
	// +listType=set
	// +kubebuilder:validation:XValidation:rule="!('thirdparty' in self)",message="thirdparty cannot be a secondary factor: a social login proves the same identity as the first factor"
	AllowedSecondaryFactors []FactorID `json:"allowedSecondaryFactors,omitempty"`

	// EnrollmentGracePeriod lets users who have not set up a required factor yet keep
	// signing in with their first factor for this long after the policy first applies to
	// them, such as 168h. Zero (the default) enforces at once.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+(ms|s|m|h))+$') && duration(self) <= duration('2160h')",message="enrollmentGracePeriod must be a duration of at most 2160h (90 days), such as 168h"
	EnrollmentGracePeriod *Duration `json:"enrollmentGracePeriod,omitempty"`

	// MaxFactorAge: secondary factors completed longer ago than this count as not completed,
	// so users re-verify, such as 12h. Unset means a factor lasts as long as the session.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+(ms|s|m|h))+$') && duration(self) >= duration('1m')",message="maxFactorAge must be a duration of at least 1m, such as 12h"
	MaxFactorAge *Duration `json:"maxFactorAge,omitempty"`

	// Routes are per-path rules for the sidecars: step-up on sensitive paths, or public
	// paths that need no session.
	// +optional
	// +kubebuilder:validation:MaxItems=64
	// +listType=map
	// +listMapKey=pathPrefix
	Routes []RouteRule `json:"routes,omitempty"`
}

// MFAPolicyStatus is what the controller observed.
type MFAPolicyStatus struct {
	// Conditions: Ready says whether the policy is live in the core for every tenant.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// ObservedGeneration is the generation last applied successfully.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Tenants lists the tenant ids the policy is live on.
	// +optional
	Tenants []string `json:"tenants,omitempty"`
}

// MFAPolicy declares the multi-factor requirement of one or more tenants.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=mfap,categories=twofold
// +kubebuilder:printcolumn:name="Tenants",type=string,JSONPath=`.spec.tenantRefs`
// +kubebuilder:printcolumn:name="Enforcement",type=string,JSONPath=`.spec.enforcement`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type MFAPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// +required
	Spec MFAPolicySpec `json:"spec"`
	// +optional
	Status MFAPolicyStatus `json:"status,omitempty"`
}

// MFAPolicyList is a list of MFAPolicies.
// +kubebuilder:object:root=true
type MFAPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MFAPolicy `json:"items"`
}

func init() {
	SchemeBuilder.Register(&MFAPolicy{}, &MFAPolicyList{})
}
