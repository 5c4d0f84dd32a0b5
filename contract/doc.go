// Package contract holds the shapes of the contracts between Twofold's separately deployed
// components, so that a change to any of them is one diff the core, the sidecar and the
// controllers all see:
//
//   - a tenant's configuration as the controllers send it to the core's admin API
//     (TenantConfig) and what the core answers (TenantState, TenantList);
//   - the enforcement feed the sidecars poll (Enforcement);
//   - the access-token claims: st-ev (EmailVerificationClaim) here, st-mfa with the
//     requirement grammar and its evaluation in the subpackage contract/mfa;
//   - what clients of the core and of the sidecars see: the 401 and 403 bodies (MessageBody,
//     InvalidClaimBody), the cookie and header names of the session transport, the identity
//     headers the sidecar gives the app, and the FDI status strings.
//
// docs/contracts.md describes the wire protocol. The package depends only on the standard
// library and contract/mfa, because the sidecar imports it and its binary must stay small.
package contract
