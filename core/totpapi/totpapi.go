// Package totpapi serves the TOTP endpoints of SuperTokens' frontend driver interface (FDI
// 1.19+), with a session and without a tenant segment:
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
// Creating or verifying a new device is a factor setup and passes the MFA engine's setup
// rule; removing a verified device needs the session's requirement met. An accepted code
// marks totp completed in the session (new tokens in the answer). Each verification is one
// store transaction holding the user's failed-attempt limit (shared with recovery codes) and
// the device's last used time step, so a code is accepted once and five consecutive failures
// lock the user for 15 minutes, across replicas.
package totpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/httpapi"
	"github.com/twofold-dev/twofold/core/mfaengine"
	"github.com/twofold-dev/twofold/core/session"
	"github.com/twofold-dev/twofold/core/store"
	"github.com/twofold-dev/twofold/core/tenant"
	"github.com/twofold-dev/twofold/core/totp"
)

// QRCodeSize is the side of the QR code PNG in pixels.
const QRCodeSize = 256

// MaxDeviceNameLength bounds a device name.
const MaxDeviceNameLength = 100

// Options are the API's dependencies.
type Options struct {
	Store    store.Store
	Tenants  *tenant.Service
	Sessions *session.Manager
	Engine   *mfaengine.Engine
	Clock    func() time.Time
}

// API serves the TOTP endpoints.
type API struct {
	opts Options
}

// New returns the API.
func New(opts Options) *API {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	return &API{opts: opts}
}

// Register adds the endpoints to mux.
func (a *API) Register(mux *http.ServeMux) {
	req := func(h http.HandlerFunc) http.Handler { return a.opts.Sessions.Require(h) }
	mux.Handle("GET /auth/totp/device/list", req(a.list))
	mux.Handle("POST /auth/totp/device", req(a.create))
	mux.Handle("GET /auth/totp/device/qr", req(a.qr))
	mux.Handle("POST /auth/totp/device/verify", req(a.verifyDevice))
	mux.Handle("POST /auth/totp/verify", req(a.verify))
	mux.Handle("POST /auth/totp/device/remove", req(a.remove))
}

func sessionOf(r *http.Request) session.Session {
	s, _ := session.FromContext(r.Context())
	return s
}

// Config returns the TOTP settings of a tenant's configuration.
func Config(c contract.TOTP) totp.Config {
	return totp.Config{Issuer: c.Issuer, Digits: c.Digits, Period: time.Duration(c.PeriodSeconds) * time.Second,
		Skew: c.Skew, Algorithm: totp.SHA1}.WithDefaults()
}

// deviceConfig is the configuration a device was created with.
func deviceConfig(issuer string, d store.TOTPDevice) totp.Config {
	return totp.Config{Issuer: issuer, Digits: d.Digits, Period: time.Duration(d.Period) * time.Second, Skew: d.Skew, Algorithm: totp.SHA1}.WithDefaults()
}

type deviceJSON struct {
	Name     string `json:"name"`
	Period   int    `json:"period"`
	Skew     int    `json:"skew"`
	Verified bool   `json:"verified"`
}

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	devices, err := a.opts.Store.ListTOTPDevices(r.Context(), sessionOf(r).UserID)
	if err != nil {
		a.opts.Engine.InternalError(w, r, err)
		return
	}
	out := make([]deviceJSON, 0, len(devices))
	for _, d := range devices {
		out = append(out, deviceJSON{Name: d.Name, Period: d.Period, Skew: d.Skew, Verified: d.Verified})
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"status": contract.StatusOK, "devices": out})
}

// account is the otpauth label's account: the user's email, else phone number, else id.
func account(u store.User) string {
	for _, lm := range u.LoginMethods {
		if lm.Email != "" {
			return lm.Email
		}
	}
	for _, lm := range u.LoginMethods {
		if lm.PhoneNumber != "" {
			return lm.PhoneNumber
		}
	}
	return u.ID
}

func validName(w http.ResponseWriter, name string) bool {
	if len(name) > MaxDeviceNameLength {
		httpapi.WriteError(w, http.StatusBadRequest, "deviceName", "deviceName is longer than %d bytes", MaxDeviceNameLength)
		return false
	}
	return true
}

func (a *API) create(w http.ResponseWriter, r *http.Request) {
	sess := sessionOf(r)
	ctx := r.Context()
	var body struct {
		DeviceName string `json:"deviceName"`
	}
	if !httpapi.Decode(w, r, &body) || !validName(w, body.DeviceName) {
		return
	}
	if err := a.opts.Engine.CheckSetup(ctx, sess, mfa.TOTP); err != nil {
		if !mfaengine.WriteSetupError(w, err) {
			a.opts.Engine.InternalError(w, r, err)
		}
		return
	}
	t, err := a.opts.Tenants.Current(ctx, sess.TenantID)
	if err != nil {
		a.opts.Engine.InternalError(w, r, err)
		return
	}
	u, err := a.opts.Store.GetUser(ctx, sess.UserID)
	if err != nil {
		a.opts.Engine.InternalError(w, r, err)
		return
	}
	cfg := Config(t.Config.TOTP)
	secret, err := totp.NewSecret()
	if err != nil {
		a.opts.Engine.InternalError(w, r, err)
		return
	}
	uri, err := cfg.URI(secret, account(u))
	if err != nil {
		a.opts.Engine.InternalError(w, r, fmt.Errorf("build the otpauth URI: %w", err))
		return
	}
	d := store.TOTPDevice{UserID: u.ID, Name: body.DeviceName, Secret: secret, Digits: cfg.Digits,
		Period: int(cfg.Period / time.Second), Skew: cfg.Skew, CreatedAt: a.opts.Clock(), CreatedBySession: sess.Handle}
	if d.Name == "" {
		// SuperTokens' default names: "TOTP Device N", the first N not taken.
		d.Name, err = a.defaultName(ctx, u.ID)
		if err != nil {
			a.opts.Engine.InternalError(w, r, err)
			return
		}
	}
	err = a.opts.Store.CreateTOTPDevice(ctx, d)
	if errors.Is(err, store.ErrDeviceExists) {
		httpapi.WriteJSON(w, http.StatusOK, map[string]string{"status": contract.StatusDeviceAlreadyExists})
		return
	}
	if err != nil {
		a.opts.Engine.InternalError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{"status": contract.StatusOK, "deviceName": d.Name, "secret": secret, "qrCodeString": uri})
}

func (a *API) defaultName(ctx context.Context, userID string) (string, error) {
	devices, err := a.opts.Store.ListTOTPDevices(ctx, userID)
	if err != nil {
		return "", err
	}
	taken := map[string]bool{}
	for _, d := range devices {
		taken[d.Name] = true
	}
	for n := len(devices) + 1; ; n++ {
		if name := fmt.Sprintf("TOTP Device %d", n); !taken[name] {
			return name, nil
		}
	}
}

// findDevice returns the user's device called name.
func (a *API) findDevice(ctx context.Context, userID, name string) (store.TOTPDevice, bool, error) {
	devices, err := a.opts.Store.ListTOTPDevices(ctx, userID)
	if err != nil {
		return store.TOTPDevice{}, false, err
	}
	for _, d := range devices {
		if d.Name == name {
			return d, true, nil
		}
	}
	return store.TOTPDevice{}, false, nil
}

func (a *API) qr(w http.ResponseWriter, r *http.Request) {
	sess := sessionOf(r)
	ctx := r.Context()
	name := r.URL.Query().Get("deviceName")
	if name == "" {
		httpapi.WriteError(w, http.StatusBadRequest, "deviceName", "deviceName is required: GET /auth/totp/device/qr?deviceName=...")
		return
	}
	d, ok, err := a.findDevice(ctx, sess.UserID, name)
	if err != nil {
		a.opts.Engine.InternalError(w, r, err)
		return
	}
	if !ok {
		httpapi.WriteJSON(w, http.StatusNotFound, map[string]string{"status": contract.StatusUnknownDevice, "message": fmt.Sprintf("no TOTP device %q", name)})
		return
	}
	if d.Verified {
		// The secret of a verified device is never shown again.
		httpapi.WriteError(w, http.StatusConflict, "deviceName", "device %q is verified; its QR code is shown only before verification", name)
		return
	}
	if err := a.opts.Engine.CheckSetup(ctx, sess, mfa.TOTP); err != nil {
		if !mfaengine.WriteSetupError(w, err) {
			a.opts.Engine.InternalError(w, r, err)
		}
		return
	}
	// The QR code carries the secret: only a session that may set up totp sees it, and only the
	// session that created the device, or a password thief signed in beside the user could read
	// the secret of a device the user is still enrolling and hold the authenticator for good.
	if d.CreatedBySession == "" || d.CreatedBySession != sess.Handle {
		httpapi.WriteError(w, http.StatusForbidden, "deviceName", "device %q is being set up in another session; its QR code is shown only there", name)
		return
	}
	t, err := a.opts.Tenants.Current(ctx, sess.TenantID)
	if err != nil {
		a.opts.Engine.InternalError(w, r, err)
		return
	}
	u, err := a.opts.Store.GetUser(ctx, sess.UserID)
	if err != nil {
		a.opts.Engine.InternalError(w, r, err)
		return
	}
	uri, err := deviceConfig(Config(t.Config.TOTP).Issuer, d).URI(d.Secret, account(u))
	if err != nil {
		a.opts.Engine.InternalError(w, r, err)
		return
	}
	png, err := totp.QRCodePNG(uri, QRCodeSize)
	if err != nil {
		a.opts.Engine.InternalError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(png)
}

// outcome is what one verification came to.
type outcome int

const (
	accepted outcome = iota
	invalid
	locked
	noDevice
)

// result is an outcome with what the answer reports.
type result struct {
	outcome     outcome
	device      store.TOTPDevice
	failures    int
	retryAfter  time.Duration
	stepAlready bool
}

// check runs one verification of code against the user's device called name (every verified
// device when name is empty) in one store transaction.
func (a *API) check(ctx context.Context, issuer, userID, name, code string) (result, error) {
	now := a.opts.Clock()
	var res result
	_, err := a.opts.Store.VerifyTOTP(ctx, userID, name, func(limit store.AttemptLimit, devices []store.TOTPDevice) (store.TOTPAttempt, error) {
		res = result{}
		l := totp.Limiter{Failures: limit.Failures, LockedUntil: limit.LockedUntil}
		if l.Locked(now) {
			res.outcome, res.retryAfter = locked, l.RetryAfter(now)
			return store.TOTPAttempt{Limit: limit}, nil
		}
		if len(devices) == 0 {
			res.outcome = noDevice
			return store.TOTPAttempt{Limit: limit}, nil
		}
		for _, d := range devices {
			step, err := deviceConfig(issuer, d).Verify(d.Secret, code, now, d.LastUsedStep)
			if err == nil {
				l.Succeed()
				res.outcome, res.device = accepted, d
				return store.TOTPAttempt{Limit: store.AttemptLimit(l), Device: d.Name, Step: step}, nil
			}
			if !errors.Is(err, totp.ErrInvalidCode) {
				return store.TOTPAttempt{}, fmt.Errorf("verify TOTP device %q: %w", d.Name, err)
			}
		}
		l.Fail(now)
		res.outcome, res.failures = invalid, l.Failures
		if l.Locked(now) {
			res.retryAfter = l.RetryAfter(now)
		}
		return store.TOTPAttempt{Limit: store.AttemptLimit(l)}, nil
	})
	if errors.Is(err, store.ErrStepUsed) {
		// Another request accepted this code between our read and our write; nothing was
		// stored, and the code is not accepted twice.
		return result{outcome: invalid, stepAlready: true}, nil
	}
	return res, err
}

// writeFailure answers an invalid or locked outcome.
func writeFailure(w http.ResponseWriter, res result) {
	switch res.outcome {
	case locked:
		httpapi.WriteJSON(w, http.StatusOK, map[string]any{"status": contract.StatusLimitReached, "retryAfterMs": res.retryAfter.Milliseconds()})
	default:
		httpapi.WriteJSON(w, http.StatusOK, map[string]any{"status": contract.StatusInvalidTOTP,
			"currentNumberOfFailedAttempts": res.failures, "maxNumberOfFailedAttempts": totp.MaxFailures})
	}
}

type codeBody struct {
	DeviceName string `json:"deviceName"`
	TOTP       string `json:"totp"`
}

func decodeCode(w http.ResponseWriter, r *http.Request, needName bool) (codeBody, bool) {
	var body codeBody
	if !httpapi.Decode(w, r, &body) {
		return body, false
	}
	if needName && body.DeviceName == "" {
		httpapi.WriteError(w, http.StatusBadRequest, "deviceName", "deviceName is required")
		return body, false
	}
	if strings.TrimSpace(body.TOTP) == "" {
		httpapi.WriteError(w, http.StatusBadRequest, "totp", "totp is required: the code the authenticator app shows")
		return body, false
	}
	return body, true
}

func (a *API) verifyDevice(w http.ResponseWriter, r *http.Request) {
	sess := sessionOf(r)
	ctx := r.Context()
	body, ok := decodeCode(w, r, true)
	if !ok {
		return
	}
	d, found, err := a.findDevice(ctx, sess.UserID, body.DeviceName)
	if err != nil {
		a.opts.Engine.InternalError(w, r, err)
		return
	}
	if !found {
		httpapi.WriteJSON(w, http.StatusOK, map[string]string{"status": contract.StatusUnknownDevice})
		return
	}
	if !d.Verified {
		// Verifying a new device completes its setup: the setup rule applies again, in case
		// the user set up another factor since the device was created.
		if err := a.opts.Engine.CheckSetup(ctx, sess, mfa.TOTP); err != nil {
			if !mfaengine.WriteSetupError(w, err) {
				a.opts.Engine.InternalError(w, r, err)
			}
			return
		}
	}
	a.finish(w, r, sess, body.DeviceName, body.TOTP, map[string]any{"status": contract.StatusOK, "wasAlreadyVerified": d.Verified})
}

func (a *API) verify(w http.ResponseWriter, r *http.Request) {
	body, ok := decodeCode(w, r, false)
	if !ok {
		return
	}
	a.finish(w, r, sessionOf(r), "", body.TOTP, map[string]string{"status": contract.StatusOK})
}

// finish verifies the code and, when accepted, completes totp in the session and answers ok.
func (a *API) finish(w http.ResponseWriter, r *http.Request, sess session.Session, name, code string, ok any) {
	ctx := r.Context()
	t, err := a.opts.Tenants.Current(ctx, sess.TenantID)
	if err != nil {
		a.opts.Engine.InternalError(w, r, err)
		return
	}
	res, err := a.check(ctx, Config(t.Config.TOTP).Issuer, sess.UserID, name, code)
	if err != nil {
		a.opts.Engine.InternalError(w, r, err)
		return
	}
	switch res.outcome {
	case noDevice:
		status := contract.StatusUnknownUserID
		if name != "" {
			status = contract.StatusUnknownDevice // removed between the look-up and the check
		}
		httpapi.WriteJSON(w, http.StatusOK, map[string]string{"status": status})
		return
	case invalid, locked:
		writeFailure(w, res)
		return
	}
	if _, err := a.opts.Engine.Complete(ctx, w, r, sess, mfa.TOTP); err != nil {
		if errors.Is(err, session.ErrUnauthorised) {
			session.WriteError(w, err)
			return
		}
		a.opts.Engine.InternalError(w, r, err)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, ok)
}

func (a *API) remove(w http.ResponseWriter, r *http.Request) {
	sess := sessionOf(r)
	ctx := r.Context()
	var body struct {
		DeviceName string `json:"deviceName"`
	}
	if !httpapi.Decode(w, r, &body) {
		return
	}
	if body.DeviceName == "" {
		httpapi.WriteError(w, http.StatusBadRequest, "deviceName", "deviceName is required")
		return
	}
	err := a.opts.Engine.RequireSatisfied(ctx, sess)
	satisfied := err == nil
	if err != nil && !errors.Is(err, mfaengine.ErrNotSatisfied) {
		a.opts.Engine.InternalError(w, r, err)
		return
	}
	// A session that has not met its requirement may only drop devices it has not verified:
	// removing a verified one would let a password thief strip the second factor.
	existed, deleted, err := a.opts.Store.DeleteTOTPDevice(ctx, sess.UserID, body.DeviceName, !satisfied)
	if err != nil {
		a.opts.Engine.InternalError(w, r, err)
		return
	}
	if existed && !deleted {
		mfaengine.WriteClaimError(w, mfa.ClaimNotSatisfiedMessage)
		return
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"status": contract.StatusOK, "didDeviceExist": existed})
}
