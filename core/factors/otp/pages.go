package otp

import (
	"errors"
	"net/http"
	"strings"

	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/accountapi"
	"github.com/twofold-dev/twofold/core/delivery"
	"github.com/twofold-dev/twofold/core/hostedui"
	"github.com/twofold-dev/twofold/core/mfaengine"
	"github.com/twofold-dev/twofold/core/passwordless"
)

// This file is the hosted-page edge: the steps of the hosted MFA pages for otp-email and
// otp-phone, rendered by core/hostedui with templates/otp.html and hostedui's code entry page.
// Each step calls the operations directly.

// Paths of the hosted steps.
const (
	sendAction   = hostedui.UIPrefix + "/action/otp/send"
	resendAction = hostedui.UIPrefix + "/action/otp/resend"
	verifyAction = hostedui.UIPrefix + "/action/otp/verify"
)

func (f *Factor) registerPages(mux *http.ServeMux) {
	ui := f.opts.Pages
	mux.Handle("GET "+hostedui.MFAPath+"/"+mfa.OTPEmail, ui.Page(f.page))
	mux.Handle("GET "+hostedui.MFAPath+"/"+mfa.OTPPhone, ui.Page(f.page))
	mux.Handle("POST "+sendAction, ui.Action(f.sendStep))
	mux.Handle("POST "+resendAction, ui.Action(f.resendStep))
	mux.Handle("POST "+verifyAction, ui.Action(f.verifyStep))
}

// stepFactor is the factor of a hosted step: its path or form field.
func stepFactor(r *http.Request) string {
	if r.PostFormValue("factor") == mfa.OTPPhone || strings.HasSuffix(r.URL.Path, "/"+mfa.OTPPhone) {
		return mfa.OTPPhone
	}
	return mfa.OTPEmail
}

// load reads the browser's MFA state, the step's factor and the user's contact for it (empty
// when the account has none); ok is false when the answer was given.
func (f *Factor) load(w http.ResponseWriter, r *http.Request) (m hostedui.MFAPage, factor, contact string, ok bool) {
	ui := f.opts.Pages
	if m, ok = ui.LoadMFA(w, r); !ok {
		return m, "", "", false
	}
	factor = stepFactor(r)
	contact, err := ui.ContactFor(r.Context(), m.Session, factor)
	if err != nil {
		ui.InternalError(w, r, err)
		return m, "", "", false
	}
	return m, factor, contact, true
}

// page offers to send a code by email or SMS as a second factor.
func (f *Factor) page(w http.ResponseWriter, r *http.Request) {
	ui := f.opts.Pages
	m, factor, contact, ok := f.load(w, r)
	if !ok {
		return
	}
	title := "Get a code by email"
	if factor == mfa.OTPPhone {
		title = "Get a code by text message"
	}
	v, err := ui.MFAView(w, r, m, title)
	if err != nil {
		ui.InternalError(w, r, err)
		return
	}
	v.Factor, v.Contact = factor, contact
	if r.FormValue("restart") != "" {
		v.Error = "That code can no longer be used. Send a new one."
	}
	if contact == "" {
		v.Error = "Your account has no " + map[string]string{mfa.OTPEmail: "email address", mfa.OTPPhone: "phone number"}[factor] + " to send a code to."
		ui.Render(w, r, http.StatusUnprocessableEntity, "choose", v)
		return
	}
	ui.Render(w, r, http.StatusOK, "otp", v)
}

// sendStep sends a code to the user's own email or phone number.
func (f *Factor) sendStep(w http.ResponseWriter, r *http.Request) {
	ui := f.opts.Pages
	m, factor, contact, ok := f.load(w, r)
	if !ok {
		return
	}
	if contact == "" {
		hostedui.Redirect(w, hostedui.WithQuery(hostedui.MFAPath+"/"+factor, "redirectToPath", m.Back))
		return
	}
	ch := delivery.Email
	if factor == mfa.OTPPhone {
		ch = delivery.SMS
	}
	c, err := accountapi.ParseContact(ch, contact)
	var sent accountapi.CodeSent
	if err == nil {
		sent, err = f.Send(r.Context(), f.opts.API.ClientOf(r), m.Tenant, m.Session, c)
	}
	if err != nil {
		var ref *accountapi.Refusal
		var denied *mfaengine.SetupDeniedError
		why := ""
		switch {
		case errors.As(err, &ref):
			for _, s := range []string{ref.Message, ref.Reason, ref.Status} {
				if why == "" {
					why = s
				}
			}
		case errors.As(err, &denied):
			why = denied.Reason
		default:
			ui.InternalError(w, r, err)
			return
		}
		v, err := ui.MFAView(w, r, m, "Code not sent")
		if err != nil {
			ui.InternalError(w, r, err)
			return
		}
		v.Factor, v.Contact = factor, contact
		v.Error = "The code could not be sent: " + why + "."
		ui.Render(w, r, http.StatusUnprocessableEntity, "otp", v)
		return
	}
	v, err := ui.CodeView(w, r, m.Tenant, factor, contact, sent.DeviceID, sent.PreAuthSessionID)
	if err != nil {
		ui.InternalError(w, r, err)
		return
	}
	ui.Render(w, r, http.StatusOK, "code", v)
}

// resendStep sends another code for the same attempt.
func (f *Factor) resendStep(w http.ResponseWriter, r *http.Request) {
	m, ok := f.opts.Pages.LoadMFA(w, r)
	if !ok {
		return
	}
	f.opts.Pages.ResendStep(w, r, m.Tenant, stepFactor(r))
}

// verifyStep completes the factor with the code the user received.
func (f *Factor) verifyStep(w http.ResponseWriter, r *http.Request) {
	ui := f.opts.Pages
	m, ok := ui.LoadMFA(w, r)
	if !ok {
		return
	}
	res, ok := ui.ConsumeStep(w, r, m.Tenant, stepFactor(r), func(preAuth string, in passwordless.Input) (accountapi.Consumed, error) {
		return f.Verify(r.Context(), f.opts.API.ClientOf(r), m.Tenant, m.Session, preAuth, in)
	})
	if ok {
		ui.AfterFactor(w, r, m, mfaengine.Update{Session: res.Session, Tokens: res.Tokens}, false)
	}
}
