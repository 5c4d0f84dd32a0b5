package hostedui

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/core/accountapi"
	"github.com/twofold-dev/twofold/core/delivery"
	"github.com/twofold-dev/twofold/core/mfaengine"
	"github.com/twofold-dev/twofold/core/passwordless"
	"github.com/twofold-dev/twofold/core/tenant"
)

// This file serves the email and SMS code steps: the first-factor code and magic-link sign-in
// of the sign-in page, and the code entry the second factors (otp-email, otp-phone) share.

// CodeView is the code entry page for a code that was just sent: of a first factor (factor
// empty) or of the second factor.
func (u *UI) CodeView(w http.ResponseWriter, r *http.Request, t tenant.Tenant, factor, contact, deviceID, preAuth string) (View, error) {
	v, err := u.newView(w, r, t, "Check your messages")
	if err != nil {
		return View{}, err
	}
	v.Factor, v.Contact, v.DeviceID, v.PreAuthSessionID = factor, contact, deviceID, preAuth
	return v, nil
}

// refusal returns the refusal err is, and false for any other error.
func refusal(err error) (*accountapi.Refusal, bool) {
	var ref *accountapi.Refusal
	return ref, errors.As(err, &ref)
}

// refusalOf returns the refusal an operation's err is (nil for no error); for any other error
// it answers the error page and ok is false.
func (u *UI) refusalOf(w http.ResponseWriter, r *http.Request, err error) (*accountapi.Refusal, bool) {
	ref, refused := refusal(err)
	if err != nil && !refused {
		u.InternalError(w, r, err)
		return nil, false
	}
	return ref, true
}

// firstFactorCodeSend sends a passwordless sign-in code (first factor) by email or SMS.
func (u *UI) firstFactorCodeSend(w http.ResponseWriter, r *http.Request) {
	t, ok := u.tenantOf(w, r)
	if !ok {
		return
	}
	ch, contact, field := delivery.Email, strings.TrimSpace(r.PostFormValue("email")), "code-email"
	if r.PostFormValue("channel") == "sms" {
		ch, contact, field = delivery.SMS, strings.TrimSpace(r.PostFormValue("phoneNumber")), "code-phone"
	}
	c, err := accountapi.ParseContact(ch, contact)
	var sent accountapi.CodeSent
	if err == nil {
		sent, err = u.opts.Account.CreateCode(r.Context(), u.opts.API.ClientOf(r), t, c)
	}
	if err == nil {
		v, err := u.CodeView(w, r, t, "", contact, sent.DeviceID, sent.PreAuthSessionID)
		if err != nil {
			u.InternalError(w, r, err)
			return
		}
		v.LinkOnly = sent.Flow == passwordless.FlowMagicLink
		u.Render(w, r, http.StatusOK, "code", v)
		return
	}
	ref, ok := refusal(err)
	if !ok {
		u.InternalError(w, r, err)
		return
	}
	v, err := u.signInView(w, r, t, false)
	if err != nil {
		u.InternalError(w, r, err)
		return
	}
	v.FieldErrors[field] = firstNonEmpty(ref.Message, ref.Reason, "The code could not be sent.")
	v.Error = "The code could not be sent."
	u.Render(w, r, http.StatusUnprocessableEntity, "signin", v)
}

// firstFactorCodeResend sends another code for the same sign-in attempt.
func (u *UI) firstFactorCodeResend(w http.ResponseWriter, r *http.Request) {
	t, ok := u.tenantOf(w, r)
	if !ok {
		return
	}
	u.ResendStep(w, r, t, "")
}

// ResendStep sends another code for the attempt of the form and shows the code page, or the
// page the attempt started from when it is over. factor is the second factor, empty for a
// first.
func (u *UI) ResendStep(w http.ResponseWriter, r *http.Request, t tenant.Tenant, factor string) {
	deviceID, preAuth := r.PostFormValue("deviceId"), r.PostFormValue("preAuthSessionId")
	err := u.opts.Account.ResendCode(r.Context(), u.opts.API.ClientOf(r), t, deviceID, preAuth)
	if _, refused := refusal(err); refused {
		u.restart(w, r, t, factor, "That sign-in attempt has ended. Please start again.")
		return
	}
	if err != nil {
		u.InternalError(w, r, err)
		return
	}
	v, err := u.CodeView(w, r, t, factor, r.PostFormValue("contact"), deviceID, preAuth)
	if err != nil {
		u.InternalError(w, r, err)
		return
	}
	v.Notice = "We sent a new code."
	u.Render(w, r, http.StatusOK, "code", v)
}

// restart shows the page a code flow starts from with msg: sign-in for a first factor, the
// MFA step for a second.
func (u *UI) restart(w http.ResponseWriter, r *http.Request, t tenant.Tenant, factor, msg string) {
	if factor != "" {
		Redirect(w, WithQuery(MFAPath+"/"+factor, "redirectToPath", SafeRedirect(r.PostFormValue("redirectToPath")), "restart", "1"))
		return
	}
	v, err := u.signInView(w, r, t, false)
	if err != nil {
		u.InternalError(w, r, err)
		return
	}
	v.Error = msg
	u.Render(w, r, http.StatusGone, "signin", v)
}

// ConsumeStep checks the code of the form with consume: a first factor's (factor empty) or
// the second factor's. A form without a code ends the attempt, as the FDI refuses it. ok is
// false when the answer was given: the code page again for a wrong or expired code, the page
// the attempt started from when it is over or refused, an error page.
func (u *UI) ConsumeStep(w http.ResponseWriter, r *http.Request, t tenant.Tenant, factor string,
	consume func(preAuthSessionID string, in passwordless.Input) (accountapi.Consumed, error)) (accountapi.Consumed, bool) {
	in := passwordless.Input{DeviceID: r.PostFormValue("deviceId"), UserInputCode: strings.TrimSpace(r.PostFormValue("code"))}
	preAuth := r.PostFormValue("preAuthSessionId")
	if preAuth == "" || in.DeviceID == "" || in.UserInputCode == "" {
		u.codeFailure(w, r, t, factor, accountapi.Consumed{})
		return accountapi.Consumed{}, false
	}
	res, err := consume(preAuth, in)
	var denied *mfaengine.SetupDeniedError
	if _, refused := refusal(err); refused || errors.As(err, &denied) {
		u.codeFailure(w, r, t, factor, accountapi.Consumed{})
		return accountapi.Consumed{}, false
	}
	if err != nil {
		u.InternalError(w, r, err)
		return accountapi.Consumed{}, false
	}
	if res.Status != contract.StatusOK {
		u.codeFailure(w, r, t, factor, res)
		return accountapi.Consumed{}, false
	}
	return res, true
}

// codeFailure renders the code page again for a wrong or expired code, or starts over.
func (u *UI) codeFailure(w http.ResponseWriter, r *http.Request, t tenant.Tenant, factor string, res accountapi.Consumed) {
	switch res.Status {
	case contract.StatusIncorrectUserInputCode, contract.StatusExpiredUserInputCode:
		v, err := u.CodeView(w, r, t, factor, r.PostFormValue("contact"), r.PostFormValue("deviceId"), r.PostFormValue("preAuthSessionId"))
		if err != nil {
			u.InternalError(w, r, err)
			return
		}
		if res.Status == contract.StatusExpiredUserInputCode {
			v.FieldErrors["code"] = "That code has expired. Send a new code."
		} else {
			v.FieldErrors["code"] = "That code is not right."
			if res.MaxAttempts > 0 {
				v.FieldErrors["code"] += " Attempts left: " + strconv.Itoa(res.MaxAttempts-res.FailedAttempts) + "."
			}
		}
		u.Render(w, r, http.StatusUnprocessableEntity, "code", v)
	default:
		u.restart(w, r, t, factor, "Too many wrong codes, or the code is no longer valid. Please start again.")
	}
}

// firstFactorCodeConsume signs in with a passwordless code (first factor).
func (u *UI) firstFactorCodeConsume(w http.ResponseWriter, r *http.Request) {
	t, ok := u.tenantOf(w, r)
	if !ok {
		return
	}
	res, ok := u.ConsumeStep(w, r, t, "", func(preAuth string, in passwordless.Input) (accountapi.Consumed, error) {
		return u.opts.Account.ConsumeCode(r.Context(), u.opts.API.ClientOf(r), t, preAuth, in)
	})
	if ok {
		u.signedIn(w, r, t, res.Session, *res.Tokens, SafeRedirect(r.PostFormValue("redirectToPath")))
	}
}

// magicLinkPage is where a sign-in link lands. The link's code is in the URL fragment, which
// never reaches a server: the page's script copies it into the form (and out of the address
// bar), and the person confirms with a click, so that mail scanners that open links do not
// use it up.
func (u *UI) magicLinkPage(w http.ResponseWriter, r *http.Request) {
	t, ok := u.tenantOf(w, r)
	if !ok {
		return
	}
	v, err := u.newView(w, r, t, "Finish signing in")
	if err != nil {
		u.InternalError(w, r, err)
		return
	}
	v.PreAuthSessionID = r.FormValue("preAuthSessionId")
	u.Render(w, r, http.StatusOK, "link", v)
}

// magicLinkConsume signs in with the code of a sign-in link.
func (u *UI) magicLinkConsume(w http.ResponseWriter, r *http.Request) {
	t, ok := u.tenantOf(w, r)
	if !ok {
		return
	}
	linkCode := strings.TrimSpace(r.PostFormValue("linkCode"))
	if linkCode == "" {
		u.restart(w, r, t, "", "This sign-in link is incomplete. Open it again from the email, or sign in with a code.")
		return
	}
	preAuth := r.PostFormValue("preAuthSessionId")
	var res accountapi.Consumed
	var err error
	if preAuth != "" {
		res, err = u.opts.Account.ConsumeCode(r.Context(), u.opts.API.ClientOf(r), t, preAuth, passwordless.Input{LinkCode: linkCode})
	}
	if _, ok := u.refusalOf(w, r, err); !ok {
		return
	}
	if err == nil && res.Status == contract.StatusOK {
		u.signedIn(w, r, t, res.Session, *res.Tokens, SafeRedirect(r.PostFormValue("redirectToPath")))
		return
	}
	u.restart(w, r, t, "", "This sign-in link has expired or was already used. Please start again.")
}
