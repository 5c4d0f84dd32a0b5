// Package v1alpha1 contains the API types of the auth.twofold.dev group: AuthTenant, which
// declares a tenant's first factors, identity providers, delivery and session settings, and
// MFAPolicy, which declares the secondary factors a tenant's users must complete.
// +kubebuilder:object:generate=true
// +groupName=auth.twofold.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of these types.
	GroupVersion = schema.GroupVersion{Group: "auth.twofold.dev", Version: "v1alpha1"}

	// SchemeBuilder adds the types of this group-version to a scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types of this group-version to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
