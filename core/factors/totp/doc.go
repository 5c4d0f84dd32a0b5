// Package totp is Twofold's totp factor in one place: time-based one-time passwords (RFC 6238)
// from an authenticator app, as SuperTokens' TOTP recipe (FDI 1.19+) defines them. The package
// holds the factor's rules, its operations, its FDI endpoints and its hosted-page steps, the
// way Ory Kratos keeps a login method in selfservice/strategy/<method>; core/server adds it to
// the core's registry of factors, which calls Register.
//
// Layout, from the rules up to the two HTTP edges:
//
//   - code.go, uri.go: the rules. Secrets, the otpauth:// URI and its QR code, verification
//     with a skew window and replay protection. No state, no transport.
//   - factor.go: the operations (Factor): list, create, show the QR code of, verify and remove
//     a user's devices. They take a session and plain values and return results, errors the
//     edges branch on, and the MFA engine's Update when a code completes the factor; they
//     never see an http.ResponseWriter.
//   - fdi.go: the FDI endpoints, a thin adapter (decode, call, encode) for the SuperTokens
//     SDKs.
//   - pages.go, templates/: the hosted-page steps (enter a code, set up an app, its QR code,
//     remove one from the account page), a second thin adapter over the same operations,
//     rendered by core/hostedui.
//
// The FDI endpoints, with a session and without a tenant segment:
//
//	GET  /auth/totp/device/list    {devices:[{name, period, skew, verified}]}
//	POST /auth/totp/device         {deviceName?} -> OK{deviceName, secret, qrCodeString} | DEVICE_ALREADY_EXISTS_ERROR
//	GET  /auth/totp/device/qr      ?deviceName= -> image/png of an unverified device's otpauth URI (Twofold
//	                               extension; the setup rule applies, as the code carries the secret)
//	POST /auth/totp/device/verify  {deviceName, totp} -> OK{wasAlreadyVerified} | UNKNOWN_DEVICE_ERROR |
//	                               INVALID_TOTP_ERROR{currentNumberOfFailedAttempts, maxNumberOfFailedAttempts} |
//	                               LIMIT_REACHED_ERROR{retryAfterMs}
//	POST /auth/totp/verify         {totp} -> OK | INVALID_TOTP_ERROR | LIMIT_REACHED_ERROR | UNKNOWN_USER_ID_ERROR
//	POST /auth/totp/device/remove  {deviceName} -> OK{didDeviceExist}
//
// The hosted steps: GET /auth/mfa/totp (enter a code, or set up an app when the user has none
// or with ?setup=1), GET /auth/ui/totp/qr.png (the QR code of the device this session is
// setting up; the URL carries no secret), and the form actions /auth/ui/action/totp/setup,
// /verify and /remove.
//
// Rules of the operations. Creating or verifying a new device is a factor setup and passes
// the MFA engine's setup rule; removing a verified device needs the session's requirement
// met. A device's QR code (it carries the secret) is shown only to the session that created
// the device, and only before it is verified. An accepted code marks totp completed in the
// session (new tokens). Each verification is one store transaction holding the user's
// failed-attempt limit (core/attempts, shared with recovery codes) and the device's last used
// time step:
//
//  1. load the user's limit; if it is locked, answer LIMIT_REACHED_ERROR with the time left
//     in milliseconds and stop;
//  2. verify the code against the device's secret and last used step (POST /totp/verify names
//     no device: try each verified device of the user, and count one failure if none accepts);
//  3. on success, store the step with a compare-and-set (UPDATE ... SET last_step = $new WHERE
//     last_step < $new) so two replicas racing with the same code cannot both accept it, and
//     clear the failures;
//  4. on failure, count it and answer INVALID_TOTP_ERROR with the failures and the maximum.
//
// So a code is accepted once, and five consecutive failures lock the user for 15 minutes,
// across replicas (with PostgreSQL the limit's row is read with SELECT ... FOR UPDATE).
package totp
