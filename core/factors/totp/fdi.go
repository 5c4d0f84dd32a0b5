package totp

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/httpkit"
	"github.com/twofold-dev/twofold/core/mfaapi"
	"github.com/twofold-dev/twofold/core/mfaengine"
	"github.com/twofold-dev/twofold/core/session"
)

// This file is the FDI edge: each handler decodes the request, calls one operation and
// encodes its result as the SuperTokens SDKs expect it.

func (f *Factor) registerFDI(mux *http.ServeMux) {
	req := func(h http.HandlerFunc) http.Handler { return f.opts.Sessions.Require(h) }
	mux.Handle("GET /auth/totp/device/list", req(f.list))
	mux.Handle("POST /auth/totp/device", req(f.create))
	mux.Handle("GET /auth/totp/device/qr", req(f.qr))
	mux.Handle("POST /auth/totp/device/verify", req(f.verifyDevice))
	mux.Handle("POST /auth/totp/verify", req(f.verify))
	mux.Handle("POST /auth/totp/device/remove", req(f.remove))
}

func (f *Factor) internalError(w http.ResponseWriter, r *http.Request, err error) {
	httpkit.InternalError(f.opts.Logger, w, r, err)
}

// writeError answers an operation's error: the 403 invalid claim for a refusal of the setup
// rule or an unmet requirement, 500 for anything else.
func (f *Factor) writeError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case mfaapi.WriteSetupError(w, err):
	case errors.Is(err, mfaengine.ErrNotSatisfied):
		httpkit.WriteClaimError(w, mfa.ClaimNotSatisfiedMessage)
	default:
		f.internalError(w, r, err)
	}
}

type deviceJSON struct {
	Name     string `json:"name"`
	Period   int    `json:"period"`
	Skew     int    `json:"skew"`
	Verified bool   `json:"verified"`
}

func (f *Factor) list(w http.ResponseWriter, r *http.Request) {
	devices, err := f.Devices(r.Context(), session.Of(r).UserID)
	if err != nil {
		f.internalError(w, r, err)
		return
	}
	out := make([]deviceJSON, 0, len(devices))
	for _, d := range devices {
		out = append(out, deviceJSON{Name: d.Name, Period: d.Period, Skew: d.Skew, Verified: d.Verified})
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"status": contract.StatusOK, "devices": out})
}

func (f *Factor) create(w http.ResponseWriter, r *http.Request) {
	var body struct {
		DeviceName string `json:"deviceName"`
	}
	if !httpkit.Decode(w, r, &body) {
		return
	}
	d, err := f.CreateDevice(r.Context(), session.Of(r), body.DeviceName)
	switch {
	case errors.Is(err, ErrNameTooLong):
		httpkit.WriteError(w, http.StatusBadRequest, "deviceName", "%v", err)
	case errors.Is(err, ErrDeviceExists):
		httpkit.WriteJSON(w, http.StatusOK, map[string]string{"status": contract.StatusDeviceAlreadyExists})
	case err != nil:
		f.writeError(w, r, err)
	default:
		httpkit.WriteJSON(w, http.StatusOK, map[string]string{"status": contract.StatusOK, "deviceName": d.Name, "secret": d.Secret, "qrCodeString": d.URI})
	}
}

func (f *Factor) qr(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("deviceName")
	if name == "" {
		httpkit.WriteError(w, http.StatusBadRequest, "deviceName", "deviceName is required: GET /auth/totp/device/qr?deviceName=...")
		return
	}
	png, err := f.QRCode(r.Context(), session.Of(r), name)
	switch {
	case errors.Is(err, ErrUnknownDevice):
		httpkit.WriteJSON(w, http.StatusNotFound, map[string]string{"status": contract.StatusUnknownDevice, "message": fmt.Sprintf("no TOTP device %q", name)})
	case errors.Is(err, ErrDeviceVerified):
		httpkit.WriteError(w, http.StatusConflict, "deviceName", "device %q is verified; its QR code is shown only before verification", name)
	case errors.Is(err, ErrOtherSession):
		httpkit.WriteError(w, http.StatusForbidden, "deviceName", "device %q is being set up in another session; its QR code is shown only there", name)
	case err != nil:
		f.writeError(w, r, err)
	default:
		w.Header().Set("Content-Type", "image/png")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(png)
	}
}

type codeBody struct {
	DeviceName string `json:"deviceName"`
	TOTP       string `json:"totp"`
}

func decodeCode(w http.ResponseWriter, r *http.Request, needName bool) (codeBody, bool) {
	var body codeBody
	if !httpkit.Decode(w, r, &body) {
		return body, false
	}
	if needName && body.DeviceName == "" {
		httpkit.WriteError(w, http.StatusBadRequest, "deviceName", "deviceName is required")
		return body, false
	}
	if strings.TrimSpace(body.TOTP) == "" {
		httpkit.WriteError(w, http.StatusBadRequest, "totp", "totp is required: the code the authenticator app shows")
		return body, false
	}
	return body, true
}

func (f *Factor) verifyDevice(w http.ResponseWriter, r *http.Request) {
	body, ok := decodeCode(w, r, true)
	if !ok {
		return
	}
	res, err := f.VerifyDevice(r.Context(), session.Of(r), body.DeviceName, body.TOTP)
	f.auditResult(r, session.Of(r), res, err, !res.WasAlreadyVerified)
	f.writeResult(w, r, true, res, err, map[string]any{"status": contract.StatusOK, "wasAlreadyVerified": res.WasAlreadyVerified})
}

func (f *Factor) verify(w http.ResponseWriter, r *http.Request) {
	body, ok := decodeCode(w, r, false)
	if !ok {
		return
	}
	res, err := f.Verify(r.Context(), session.Of(r), body.TOTP)
	f.auditResult(r, session.Of(r), res, err, false)
	f.writeResult(w, r, false, res, err, map[string]string{"status": contract.StatusOK})
}

// writeResult answers a verification: ok with the new tokens when the code was accepted.
func (f *Factor) writeResult(w http.ResponseWriter, r *http.Request, named bool, res Result, err error, ok any) {
	var denied *mfaengine.SetupDeniedError
	switch {
	case errors.As(err, &denied):
		httpkit.WriteClaimError(w, denied.Reason)
	case err != nil || res.Outcome == Accepted:
		mfaapi.WriteCompleted(f.opts.Logger, w, r, f.opts.Sessions, res.Update, err, ok)
	case res.Outcome == NoDevice && named:
		httpkit.WriteJSON(w, http.StatusOK, map[string]string{"status": contract.StatusUnknownDevice})
	case res.Outcome == NoDevice:
		httpkit.WriteJSON(w, http.StatusOK, map[string]string{"status": contract.StatusUnknownUserID})
	case res.Outcome == Locked:
		httpkit.WriteJSON(w, http.StatusOK, map[string]any{"status": contract.StatusLimitReached, "retryAfterMs": res.RetryAfter.Milliseconds()})
	default:
		httpkit.WriteJSON(w, http.StatusOK, map[string]any{"status": contract.StatusInvalidTOTP,
			"currentNumberOfFailedAttempts": res.Failures, "maxNumberOfFailedAttempts": MaxFailures})
	}
}

func (f *Factor) remove(w http.ResponseWriter, r *http.Request) {
	var body struct {
		DeviceName string `json:"deviceName"`
	}
	if !httpkit.Decode(w, r, &body) {
		return
	}
	if body.DeviceName == "" {
		httpkit.WriteError(w, http.StatusBadRequest, "deviceName", "deviceName is required")
		return
	}
	existed, err := f.RemoveDevice(r.Context(), session.Of(r), body.DeviceName)
	if err != nil {
		f.writeError(w, r, err)
		return
	}
	if existed {
		f.auditRemoved(r, session.Of(r), body.DeviceName)
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"status": contract.StatusOK, "didDeviceExist": existed})
}
