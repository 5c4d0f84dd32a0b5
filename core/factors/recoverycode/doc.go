// Package recoverycode is Twofold's recovery-code factor (factor id recovery-code) in one
// place: a set of one-time codes a user writes down when setting up MFA and uses when their
// device is lost. The package holds the factor's rules, its operations, its FDI endpoints and
// its hosted-page steps, the way core/factors/totp does; core/server adds it to the core's
// registry of factors, which calls Register.
//
// Layout, from the rules up to the two HTTP edges:
//
//   - code.go: the rules. Generating a set, normalising what a person typed, hashing and
//     verifying against a user's unused hashes. No state, no transport.
//   - factor.go: the operations (Factor): create a new set, count the unused codes, use one.
//     They take a session and plain values and return results, errors the edges branch on,
//     and the MFA engine's Update when a code completes the factor; they never see an
//     http.ResponseWriter.
//   - fdi.go: the FDI endpoints, a thin adapter (decode, call, encode).
//   - pages.go, templates/: the hosted-page steps (enter a code, the new set shown once after a
//     first MFA setup or from the account page, its download as a text file), a second thin
//     adapter over the same operations, rendered by core/hostedui.
//
// The FDI endpoints (Twofold's own), with a session and without a tenant segment:
//
//	POST /auth/recovery-codes         -> OK{codes:[10 codes]}: a new set, shown this once
//	GET  /auth/recovery-codes/status  -> OK{remaining, total}
//	POST /auth/recovery-codes/verify  {code} -> OK | INVALID_RECOVERY_CODE_ERROR{currentNumberOfFailedAttempts,
//	                                  maxNumberOfFailedAttempts} | LIMIT_REACHED_ERROR{retryAfterMs} |
//	                                  NO_RECOVERY_CODES_ERROR
//
// The hosted steps: GET /auth/mfa/recovery-code (enter a code), and the form actions
// /auth/ui/action/recovery/verify, /generate (a new set from the account page) and /download.
// After a first MFA setup the hosted pages show a new set once, through the step this package
// adds to them (hostedui.UI.AfterFirstSetup).
//
// Rules of the operations. Generating a first set is a factor setup (the MFA engine's setup
// rule, so allowed once the requirement is met or when recovery-code is in the next set);
// replacing a set that still has unused codes needs the requirement met, since it invalidates
// the codes the user wrote down. A set is shown once, when generated, and only hashes are kept.
// Using a code is one store transaction: load the user's failed-attempt limit (core/attempts,
// shared with TOTP) and unused hashes, verify, and mark the matching code used with a
// compare-and-set (UPDATE ... SET used_at = $now WHERE id = $id AND used_at IS NULL), so two
// replicas cannot both accept the same code. An accepted code marks recovery-code completed in
// the session (new tokens); how it satisfies the requirement is the engine's stand-in rule. A
// failure counts toward the same per-user limit as TOTP: five in a row lock both for 15 minutes.
package recoverycode
