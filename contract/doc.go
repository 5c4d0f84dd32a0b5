// Package contract holds the shapes of the contracts between Twofold's separately deployed
// components, so that a change to any of them is one diff the core, the sidecar and the
// controllers all see: a tenant's configuration as the controllers send it to the core's
// admin API (TenantConfig), what the core answers (TenantState) and the enforcement feed the
// sidecars poll (Enforcement). The requirement grammar, its evaluation and the st-mfa claim
// are in the subpackage contract/mfa. docs/contracts.md describes the wire protocol.
//
// It depends only on the standard library and contract/mfa, because the sidecar imports it
// and its binary must stay small.
package contract
