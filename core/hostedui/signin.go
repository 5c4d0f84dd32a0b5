package hostedui

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/httpapi"
	"github.com/twofold-dev/twofold/core/session"
	"github.com/twofold-dev/twofold/core/tenant"
)

// signInView fills in the first factors tenant t offers.
func (u *UI) signInView(w http.ResponseWriter, r *http.Request, t tenant.Tenant, signUp bool) (View, error) {
	title := "Sign in"
	if signUp {
		title = "Create your account"
	}
	v, err := u.newView(w, r, t, title)
	if err != nil {
		return View{}, err
	}
	ff := t.Config.FirstFactors
	v.SignUp = signUp
	v.PasswordEnabled = slices.Contains(ff, mfa.EmailPassword)
	if slices.Contains(ff, mfa.ThirdParty) {
		v.Providers = t.Config.ThirdPartyProviders
	}
	v.CodeByEmail = slices.Contains(ff, mfa.OTPEmail) || slices.Contains(ff, mfa.LinkEmail)
	v.CodeByPhone = slices.Contains(ff, mfa.OTPPhone) || slices.Contains(ff, mfa.LinkPhone)
	v.EmailSends = sends(slices.Contains(ff, mfa.OTPEmail), slices.Contains(ff, mfa.LinkEmail))
	v.PhoneSends = sends(slices.Contains(ff, mfa.OTPPhone), slices.Contains(ff, mfa.LinkPhone))
	return v, nil
}

// sends words what a passwordless sign-in sends.
func sends(code, link bool) string {
	switch {
	case code && link:
		return "code or link"
	case link:
		return "link"
	}
	return "code"
}

func (u *UI) signInPage(w http.ResponseWriter, r *http.Request) { u.firstFactorPage(w, r, false) }
func (u *UI) signUpPage(w http.ResponseWriter, r *http.Request) { u.firstFactorPage(w, r, true) }

// firstFactorPage serves the sign-in or sign-up page; a browser that already has a session
// goes on (to the MFA step when it is not complete), and one whose access token expired is
// sent to refresh it first.
func (u *UI) firstFactorPage(w http.ResponseWriter, r *http.Request, signUp bool) {
	t, ok := u.tenantOf(w, r)
	if !ok {
		return
	}
	back := SafeRedirect(r.FormValue("redirectToPath"))
	if sess, refresh, ok := u.currentSession(r.Context(), r); ok && sess.TenantID == t.ID {
		u.afterFactor(w, r, sess, back)
		return
	} else if refresh && r.FormValue("refreshed") == "" {
		Redirect(w, WithQuery("/auth/session/refresh/ui", "redirectToPath", r.URL.RequestURI()))
		return
	}
	v, err := u.signInView(w, r, t, signUp)
	if err != nil {
		u.InternalError(w, r, err)
		return
	}
	u.Render(w, r, http.StatusOK, "signin", v)
}

// afterFactor sends a browser on once a factor is done: see nextStep.
func (u *UI) afterFactor(w http.ResponseWriter, r *http.Request, sess session.Session, back string) {
	next, err := nextStep(sess, back)
	if err != nil {
		u.InternalError(w, r, err)
		return
	}
	Redirect(w, next)
}

// nextStep is where a browser with session sess goes on its way to back: the MFA step while
// the session's requirement is not met, then email verification while the session's st-ev
// claim says the email is not verified (only tenants that require it put the claim in),
// then back.
func nextStep(sess session.Session, back string) (string, error) {
	claim, err := sess.MFA()
	if err != nil {
		return "", err
	}
	if !claim.V {
		return WithQuery(MFAPath, "redirectToPath", back), nil
	}
	if raw, ok := sess.Claims[contract.EmailVerificationClaimKey]; ok {
		var ev contract.EmailVerificationClaim
		if err := json.Unmarshal(raw, &ev); err != nil {
			return "", fmt.Errorf("decode %s claim: %w", contract.EmailVerificationClaimKey, err)
		}
		if !ev.Verified() {
			return WithQuery(VerifyEmailPath, "redirectToPath", back), nil
		}
	}
	return back, nil
}

// afterSignIn continues after an FDI call that created a session: the new access token says
// where the browser goes next.
func (u *UI) afterSignIn(c *call, back string) {
	sess, err := u.opts.Sessions.Verify(c.r.Context(), c.access, session.VerifyOptions{})
	if err != nil {
		u.InternalError(c.w, c.r, err)
		return
	}
	u.afterFactor(c.w, c.r, sess, back)
}

// fieldErrors reads FDI's FIELD_ERROR formFields [{id, error}].
func fieldErrors(a answer) map[string]string {
	var list []struct {
		ID    string `json:"id"`
		Error string `json:"error"`
	}
	_ = json.Unmarshal(a.Body["formFields"], &list)
	out := map[string]string{}
	for _, f := range list {
		out[f.ID] = f.Error
	}
	return out
}

func (u *UI) signIn(w http.ResponseWriter, r *http.Request) { u.passwordAction(w, r, false) }
func (u *UI) signUp(w http.ResponseWriter, r *http.Request) { u.passwordAction(w, r, true) }

// passwordAction signs in or up with email and password through the FDI endpoint.
func (u *UI) passwordAction(w http.ResponseWriter, r *http.Request, signUp bool) {
	t, ok := u.tenantOf(w, r)
	if !ok {
		return
	}
	email := strings.TrimSpace(r.PostFormValue("email"))
	path := "/auth/" + t.ID + "/signin"
	if signUp {
		path = "/auth/" + t.ID + "/signup"
	}
	c := u.newCall(w, r)
	a, err := u.fdi(c, http.MethodPost, path, map[string]any{"formFields": []map[string]string{
		{"id": "email", "value": email}, {"id": "password", "value": r.PostFormValue("password")}}})
	if err != nil {
		u.InternalError(w, r, err)
		return
	}
	if a.Status == contract.StatusOK {
		u.afterSignIn(c, SafeRedirect(r.PostFormValue("redirectToPath")))
		return
	}
	v, err := u.signInView(w, r, t, signUp)
	if err != nil {
		u.InternalError(w, r, err)
		return
	}
	v.Email = email
	status := http.StatusUnprocessableEntity
	switch a.Status {
	case contract.StatusWrongCredentials:
		status = http.StatusUnauthorized
		v.Error = "Incorrect email or password."
	case contract.StatusFieldError:
		v.FieldErrors = fieldErrors(a)
		v.Error = "Please correct the highlighted fields."
	case contract.StatusSignInNotAllowed, contract.StatusSignUpNotAllowed:
		status = http.StatusForbidden
		v.Error = "Signing in with a password is not enabled here."
	default:
		v.Error = "Signing in did not work: " + firstNonEmpty(a.Message, a.Status)
	}
	u.Render(w, r, status, "signin", v)
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// codeView is the code entry page for a code that was just sent.
func (u *UI) codeView(w http.ResponseWriter, r *http.Request, t tenant.Tenant, factor, contact, deviceID, preAuth string) (View, error) {
	v, err := u.newView(w, r, t, "Check your messages")
	if err != nil {
		return View{}, err
	}
	v.Factor, v.Contact, v.DeviceID, v.PreAuthSessionID = factor, contact, deviceID, preAuth
	return v, nil
}

// firstFactorCodeSend sends a passwordless sign-in code (first factor) by email or SMS.
func (u *UI) firstFactorCodeSend(w http.ResponseWriter, r *http.Request) {
	t, ok := u.tenantOf(w, r)
	if !ok {
		return
	}
	body, contact, field := map[string]any{}, "", "code-email"
	if r.PostFormValue("channel") == "sms" {
		contact, field = strings.TrimSpace(r.PostFormValue("phoneNumber")), "code-phone"
		body["phoneNumber"] = contact
	} else {
		contact = strings.TrimSpace(r.PostFormValue("email"))
		body["email"] = contact
	}
	c := u.newCall(w, r)
	a, err := u.fdi(c, http.MethodPost, "/auth/"+t.ID+"/signinup/code", body)
	if err != nil {
		u.InternalError(w, r, err)
		return
	}
	if a.Status == contract.StatusOK {
		v, err := u.codeView(w, r, t, "", contact, a.str("deviceId"), a.str("preAuthSessionId"))
		if err != nil {
			u.InternalError(w, r, err)
			return
		}
		v.LinkOnly = a.str("flowType") == "MAGIC_LINK"
		u.Render(w, r, http.StatusOK, "code", v)
		return
	}
	v, err := u.signInView(w, r, t, false)
	if err != nil {
		u.InternalError(w, r, err)
		return
	}
	v.FieldErrors[field] = firstNonEmpty(a.Message, a.str("reason"), "The code could not be sent.")
	v.Error = "The code could not be sent."
	u.Render(w, r, http.StatusUnprocessableEntity, "signin", v)
}

// firstFactorCodeResend sends another code for the same sign-in attempt.
func (u *UI) firstFactorCodeResend(w http.ResponseWriter, r *http.Request) {
	t, ok := u.tenantOf(w, r)
	if !ok {
		return
	}
	c := u.newCall(w, r)
	deviceID, preAuth := r.PostFormValue("deviceId"), r.PostFormValue("preAuthSessionId")
	a, err := u.fdi(c, http.MethodPost, "/auth/"+t.ID+"/signinup/code/resend", map[string]string{"deviceId": deviceID, "preAuthSessionId": preAuth})
	if err != nil {
		u.InternalError(w, r, err)
		return
	}
	u.renderResent(w, r, t, "", a, deviceID, preAuth)
}

// renderResent shows the code page after a resend, or the start page when the attempt is over.
func (u *UI) renderResent(w http.ResponseWriter, r *http.Request, t tenant.Tenant, factor string, a answer, deviceID, preAuth string) {
	if a.Status != contract.StatusOK {
		u.restart(w, r, t, factor, "That sign-in attempt has ended. Please start again.")
		return
	}
	v, err := u.codeView(w, r, t, factor, r.PostFormValue("contact"), deviceID, preAuth)
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

// codeFailure renders the code page again for a wrong or expired code, or starts over.
func (u *UI) codeFailure(w http.ResponseWriter, r *http.Request, t tenant.Tenant, factor string, a answer) {
	switch a.Status {
	case contract.StatusIncorrectUserInputCode, contract.StatusExpiredUserInputCode:
		v, err := u.codeView(w, r, t, factor, r.PostFormValue("contact"), r.PostFormValue("deviceId"), r.PostFormValue("preAuthSessionId"))
		if err != nil {
			u.InternalError(w, r, err)
			return
		}
		if a.Status == contract.StatusExpiredUserInputCode {
			v.FieldErrors["code"] = "That code has expired. Send a new code."
		} else {
			var failed, max int
			_ = json.Unmarshal(a.Body["failedCodeInputAttemptCount"], &failed)
			_ = json.Unmarshal(a.Body["maximumCodeInputAttempts"], &max)
			v.FieldErrors["code"] = "That code is not right."
			if max > 0 {
				v.FieldErrors["code"] += " Attempts left: " + strconv.Itoa(max-failed) + "."
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
	c := u.newCall(w, r)
	a, err := u.fdi(c, http.MethodPost, "/auth/"+t.ID+"/signinup/code/consume", map[string]string{
		"deviceId": r.PostFormValue("deviceId"), "preAuthSessionId": r.PostFormValue("preAuthSessionId"),
		"userInputCode": strings.TrimSpace(r.PostFormValue("code"))})
	if err != nil {
		u.InternalError(w, r, err)
		return
	}
	if a.Status == contract.StatusOK {
		u.afterSignIn(c, SafeRedirect(r.PostFormValue("redirectToPath")))
		return
	}
	u.codeFailure(w, r, t, "", a)
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
	c := u.newCall(w, r)
	a, err := u.fdi(c, http.MethodPost, "/auth/"+t.ID+"/signinup/code/consume", map[string]string{
		"preAuthSessionId": r.PostFormValue("preAuthSessionId"), "linkCode": linkCode})
	if err != nil {
		u.InternalError(w, r, err)
		return
	}
	if a.Status == contract.StatusOK {
		u.afterSignIn(c, SafeRedirect(r.PostFormValue("redirectToPath")))
		return
	}
	u.restart(w, r, t, "", "This sign-in link has expired or was already used. Please start again.")
}

// refreshPage refreshes an expired session from the refresh cookie (whose path this page is
// under) and goes back; without a usable refresh token it goes to the sign-in page.
func (u *UI) refreshPage(w http.ResponseWriter, r *http.Request) {
	back := SafeRedirect(r.FormValue("redirectToPath"))
	c, err := r.Cookie(contract.CookieRefreshToken)
	if err == nil && c.Value != "" {
		sess, tokens, err := u.opts.Sessions.Refresh(r.Context(), c.Value)
		if err == nil {
			settings, serr := u.opts.Sessions.Settings(r.Context(), sess.TenantID)
			if serr != nil {
				u.InternalError(w, r, serr)
				return
			}
			u.opts.Sessions.WriteTokens(w, session.TransportCookie, tokens, settings)
			Redirect(w, back)
			return
		}
		if !errors.Is(err, session.ErrUnauthorised) && !errors.Is(err, session.ErrTokenTheft) {
			u.InternalError(w, r, err)
			return
		}
	}
	if t, err := u.opts.Tenants.Current(r.Context(), contract.PublicTenantID); err == nil {
		u.opts.Sessions.ClearTokens(w, httpapi.SessionSettings(t.Config))
	}
	// The sign-in page must not send the browser back here.
	Redirect(w, WithQuery(SignInPath, "redirectToPath", back, "refreshed", "1"))
}

// signOut ends the session through the FDI endpoint and shows the sign-in page.
func (u *UI) signOut(w http.ResponseWriter, r *http.Request) {
	c := u.newCall(w, r)
	tenantID := tenantIDOf(r)
	if sess, _, ok := u.currentSession(r.Context(), r); ok {
		tenantID = sess.TenantID
	}
	a, err := u.fdi(c, http.MethodPost, "/auth/signout", map[string]any{})
	if err != nil {
		u.InternalError(w, r, err)
		return
	}
	if a.Code == http.StatusUnauthorized {
		// An expired access token cannot sign out; the browser still forgets both tokens, and
		// the refresh token it drops was the only way to revive the session.
		if t, err := u.opts.Tenants.Current(r.Context(), tenantID); err == nil {
			u.opts.Sessions.ClearTokens(w, httpapi.SessionSettings(t.Config))
		}
	}
	Redirect(w, WithQuery(SignInPath, "tenantId", tenantID))
}
