// Package webauthn is the webauthn factor: passkeys and security keys, as a first factor (sign
// up and sign in with no password) and as a secondary factor, wire-compatible with
// SuperTokens' WebAuthn recipe (FDI 4.2) so supertokens-web-js drives it unchanged.
//
// A user's passkeys hang off a webauthn login method (one per email and tenant), as in
// SuperTokens' account-linking model: signing up with a passkey creates one, as a new user or,
// with a session, linked to the session's user (the factor's setup). Each ceremony starts with
// options the core stores (challenge, relying party, user verification) and deletes when the
// ceremony finishes, so every challenge is answered once; they expire after OptionsLifetime.
// Verification is go-webauthn's: the origin, the relying party id hash, the user presence and
// verification flags, the signature and the attestation statement. On top of it the core
// refuses a sign count that went backwards (a cloned authenticator), stores the new count with
// a compare-and-set, and shares the per-user lockout of the other secondary factors.
//
// The relying party comes from the tenant's configuration: its id from websiteDomain (or
// webauthn.rpId) and the origins a ceremony may come from (websiteDomain or webauthn.origins).
package webauthn
