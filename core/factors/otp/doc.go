// Package otp is Twofold's email and SMS one-time-code second factor (factor ids otp-email and
// otp-phone) in one place: a code sent to an email address or phone number on the user's
// account, entered to complete the factor in the session. The package holds the factor's
// rules, its operations, its FDI endpoints and its hosted-page steps, the way
// core/factors/totp does; core/server adds it to the core's registry of factors, which calls
// Register. The codes themselves (devices, delivery, send limits) are core/accountapi's, the
// same as a first factor's.
//
// Layout, from the rules up to the two HTTP edges:
//
//   - factor.go: the rules and the operations (Factor). Send sends a code for a session, Verify
//     checks one and completes the factor. They take a session and plain values and return
//     results, an *accountapi.Refusal in FDI's words, a *mfaengine.SetupDeniedError, and the
//     MFA engine's Update when a code completes the factor; they never see an
//     http.ResponseWriter.
//   - fdi.go: the passwordless code endpoints, a thin adapter (decode, call, encode).
//   - pages.go, templates/: the hosted-page steps (choose where the code goes, enter it), a
//     second thin adapter over the same operations, rendered by core/hostedui.
//
// The FDI endpoints are SuperTokens' passwordless ones, which serve first and second factors
// alike, with and without the /<tenantId> segment:
//
//	POST /auth/{t}/signinup/code          {email} | {phoneNumber}, shouldTryLinkingWithSessionUser?
//	POST /auth/{t}/signinup/code/resend   {deviceId, preAuthSessionId}
//	POST /auth/{t}/signinup/code/consume  {preAuthSessionId, deviceId, userInputCode} | {preAuthSessionId, linkCode}
//
// A request is a second factor when it carries a session and shouldTryLinkingWithSessionUser
// is not false (true requires a session: 401 without); otherwise it is a first factor, handed
// to core/accountapi's operations (CreateCode, ResendCode, ConsumeCode).
//
// The hosted steps: GET /auth/mfa/otp-email and /auth/mfa/otp-phone (send a code to the
// account's own address or number), and the form actions /auth/ui/action/otp/send, /resend and
// /verify; the code entry page is core/hostedui's, shared with first-factor codes.
//
// Rules of a second-factor code, applied when it is sent and again when it is consumed (the
// account may have changed in between):
//
//   - an email or phone number that belongs to another user of the tenant is refused
//     (SIGN_IN_UP_NOT_ALLOWED, ReasonContactTaken) before any code is sent and again at
//     consume;
//   - a contact the session's user already has a passwordless login method for is a factor
//     completion: the consume marks otp-email or otp-phone completed in the session
//     (mfaengine.Engine.Complete);
//   - an email address that is on no login method of the user is refused unless the tenant
//     allows new addresses (otpEmail.allowNewAddresses; ReasonNewEmail);
//   - any other contact is a factor setup and must pass the setup rule
//     (mfaengine.Engine.CheckSetup, a 403 invalid claim when refused) before the code is sent
//     and at consume, which then adds the contact to the user as a passwordless login method
//     and completes the factor.
//
// A second-factor code entry is counted as a failure in the user's failed-attempt limit
// (core/attempts, shared with TOTP and recovery codes) before the code is checked, so opening
// device after device gives no more guesses; a right code gives the attempt back. A locked
// user gets GENERAL_ERROR with retryAfterMs.
package otp
