package totp

import (
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/hostedui"
	"github.com/twofold-dev/twofold/core/mfaengine"
)

// This file is the hosted-page edge: the steps of the hosted MFA pages for totp, rendered by
// core/hostedui with templates/totp.html. Each step calls the operations directly.

// Paths of the hosted steps.
const (
	pagePath     = hostedui.MFAPath + "/totp"
	qrPath       = hostedui.UIPrefix + "/totp/qr.png"
	setupAction  = hostedui.UIPrefix + "/action/totp/setup"
	verifyAction = hostedui.UIPrefix + "/action/totp/verify"
	removeAction = hostedui.UIPrefix + "/action/totp/remove"
)

func (f *Factor) registerPages(mux *http.ServeMux) {
	ui := f.opts.Pages
	mux.Handle("GET "+pagePath, ui.Page(f.page))
	mux.Handle("GET "+qrPath, ui.Page(f.qrImage))
	mux.Handle("POST "+setupAction, ui.Action(f.setupStep))
	mux.Handle("POST "+verifyAction, ui.Action(f.verifyStep))
	mux.Handle("POST "+removeAction, ui.Action(f.removeStep))
}

// groupSecret spaces a base32 secret in groups of four for reading.
func groupSecret(s string) string {
	var b strings.Builder
	for i, c := range s {
		if i > 0 && i%4 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// page asks for a code from the authenticator app, or sets one up: when the user has none,
// or with ?setup=1 (adding a device from the account page).
func (f *Factor) page(w http.ResponseWriter, r *http.Request) {
	m, ok := f.opts.Pages.LoadMFA(w, r)
	if !ok {
		return
	}
	f.render(w, r, m, http.StatusOK, nil)
}

func (f *Factor) render(w http.ResponseWriter, r *http.Request, m hostedui.MFAPage, status int, edit func(*hostedui.View)) {
	ui, ctx := f.opts.Pages, r.Context()
	hasTOTP := slices.Contains(m.State.SetUp, mfa.TOTP)
	setup := !hasTOTP || r.FormValue("setup") != "" || r.PostFormValue("deviceName") != ""
	title := "Enter your code"
	if setup {
		title = "Set up your authenticator app"
	}
	v, err := ui.MFAView(w, r, m, title)
	if err != nil {
		ui.InternalError(w, r, err)
		return
	}
	v.Factor, v.SetupMode = mfa.TOTP, setup
	if setup {
		if err := f.opts.Engine.CheckSetup(ctx, m.Session, mfa.TOTP); err != nil {
			var denied *mfaengine.SetupDeniedError
			if !errors.As(err, &denied) {
				ui.InternalError(w, r, err)
				return
			}
			if hasTOTP {
				v.SetupMode, v.Title = false, "Enter your code"
				v.Error = "Finish signing in before adding another authenticator app."
			} else {
				v.Error = "You cannot set up an authenticator app now: " + denied.Reason + "."
				ui.Render(w, r, http.StatusForbidden, "choose", v)
				return
			}
		}
	}
	if v.SetupMode {
		d, ok, err := f.PendingDevice(ctx, m.Session)
		if err != nil {
			ui.InternalError(w, r, err)
			return
		}
		if ok {
			v.DeviceName, v.Secret, v.QRURL = d.Name, groupSecret(d.Secret), qrPath
		}
	}
	if edit != nil {
		edit(&v)
	}
	ui.Render(w, r, status, "totp", v)
}

// qrImage serves the QR code of the device being set up, found from the session: the URL
// carries no secret.
func (f *Factor) qrImage(w http.ResponseWriter, r *http.Request) {
	ui := f.opts.Pages
	sess, ok := ui.RequireSession(w, r)
	if !ok {
		return
	}
	d, ok, err := f.PendingDevice(r.Context(), sess)
	if err != nil {
		ui.InternalError(w, r, err)
		return
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	png, err := f.QRCode(r.Context(), sess, d.Name)
	if err != nil {
		ui.Logger().Info("No QR code for the device being set up", "reason", err.Error())
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(png)
}

// setupStep creates a device (or reuses the one being set up) and shows its QR code.
func (f *Factor) setupStep(w http.ResponseWriter, r *http.Request) {
	ui := f.opts.Pages
	m, ok := ui.LoadMFA(w, r)
	if !ok {
		return
	}
	_, pending, err := f.PendingDevice(r.Context(), m.Session)
	if err != nil {
		ui.InternalError(w, r, err)
		return
	}
	if !pending {
		_, err := f.CreateDevice(r.Context(), m.Session, "")
		var denied *mfaengine.SetupDeniedError
		if errors.As(err, &denied) {
			f.render(w, r, m, http.StatusForbidden, func(v *hostedui.View) { v.Error = "You cannot set up an authenticator app now: " + denied.Reason + "." })
			return
		}
		if err != nil {
			ui.InternalError(w, r, err)
			return
		}
	}
	toSetup(w, m)
}

// toSetup sends the browser to the setup page.
func toSetup(w http.ResponseWriter, m hostedui.MFAPage) {
	hostedui.Redirect(w, hostedui.WithQuery(pagePath, "setup", "1", "redirectToPath", m.Back))
}

// verifyStep checks a code: of the device being set up (deviceName set) or of any of the
// user's devices.
func (f *Factor) verifyStep(w http.ResponseWriter, r *http.Request) {
	ui := f.opts.Pages
	m, ok := ui.LoadMFA(w, r)
	if !ok {
		return
	}
	code := strings.ReplaceAll(strings.TrimSpace(r.PostFormValue("code")), " ", "")
	name := r.PostFormValue("deviceName")
	if code == "" {
		f.render(w, r, m, http.StatusUnprocessableEntity, func(v *hostedui.View) { v.FieldErrors["code"] = "Enter the 6-digit code from the app." })
		return
	}
	var res Result
	var err error
	if name != "" {
		res, err = f.VerifyDevice(r.Context(), m.Session, name, code)
	} else {
		res, err = f.Verify(r.Context(), m.Session, code)
	}
	f.auditResult(r, m.Session, res, err, name != "" && !res.WasAlreadyVerified)
	var denied *mfaengine.SetupDeniedError
	switch {
	case errors.As(err, &denied):
		f.render(w, r, m, http.StatusForbidden, func(v *hostedui.View) { v.Error = "This step is not allowed now: " + denied.Reason + "." })
	case err != nil:
		ui.InternalError(w, r, err)
	case res.Outcome == Accepted:
		ui.AfterFactor(w, r, m, res.Update, name != "" && !res.WasAlreadyVerified)
	case res.Outcome == Invalid:
		f.render(w, r, m, http.StatusUnprocessableEntity, func(v *hostedui.View) {
			v.FieldErrors["code"] = hostedui.AttemptsMessage("code", res.Failures, MaxFailures)
		})
	case res.Outcome == Locked:
		// Whole milliseconds, as the FDI answer's retryAfterMs.
		retry := res.RetryAfter.Truncate(time.Millisecond)
		f.render(w, r, m, http.StatusTooManyRequests, func(v *hostedui.View) { v.Error = hostedui.LockedMessage(retry) })
	default:
		toSetup(w, m)
	}
}

// removeStep removes one of the user's authenticator apps from the account page.
func (f *Factor) removeStep(w http.ResponseWriter, r *http.Request) {
	ui := f.opts.Pages
	m, ok := ui.AccountSession(w, r)
	if !ok {
		return
	}
	done := "removed"
	name := r.PostFormValue("deviceName")
	if name == "" {
		done = "not-removed"
	} else if existed, err := f.RemoveDevice(r.Context(), m.Session, name); errors.Is(err, mfaengine.ErrNotSatisfied) {
		done = "not-removed"
	} else if err != nil {
		ui.InternalError(w, r, err)
		return
	} else if existed {
		f.auditRemoved(r, m.Session, name)
	}
	hostedui.Redirect(w, hostedui.WithQuery(hostedui.AccountPath, "done", done))
}
