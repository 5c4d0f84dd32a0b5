package hostedui

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/emailpassword"
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
	v.PasskeySignIn = slices.Contains(ff, mfa.WebAuthn) && t.Config.WebAuthn.HasRelyingParty()
	switch r.FormValue("passkey") {
	case "failed":
		v.Error = "That passkey could not be used. Try again, or sign in another way."
	case "taken":
		v.Error = "This email already has an account with a passkey. Sign in with it instead."
	case "recovered":
		v.Notice = "Your new passkey is ready. Sign in with it."
	}
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

// signedIn continues once an operation started session sess with tokens in tenant t: the
// browser gets the session's cookies and goes on (nextStep).
// SignedIn continues a first-factor sign-in of the hosted pages: the session's cookies, then
// the MFA step when it is not complete, else back to where the browser was going.
func (u *UI) SignedIn(w http.ResponseWriter, r *http.Request, t tenant.Tenant, sess session.Session, tokens session.Tokens, back string) {
	u.signedIn(w, r, t, sess, tokens, back)
}

func (u *UI) signedIn(w http.ResponseWriter, r *http.Request, t tenant.Tenant, sess session.Session, tokens session.Tokens, back string) {
	u.opts.Sessions.WriteCookies(w, tokens, httpapi.SessionSettings(t.Config))
	u.afterFactor(w, r, sess, back)
}

// fieldErrorsOf maps a FIELD_ERROR's fields to their messages.
func fieldErrorsOf(fe emailpassword.FieldErrors) map[string]string {
	out := map[string]string{}
	for _, f := range fe {
		out[f.ID] = f.Error
	}
	return out
}

func (u *UI) signIn(w http.ResponseWriter, r *http.Request) { u.passwordAction(w, r, false) }
func (u *UI) signUp(w http.ResponseWriter, r *http.Request) { u.passwordAction(w, r, true) }

// passwordAction signs in or up with email and password.
func (u *UI) passwordAction(w http.ResponseWriter, r *http.Request, signUp bool) {
	t, ok := u.tenantOf(w, r)
	if !ok {
		return
	}
	email := strings.TrimSpace(r.PostFormValue("email"))
	op := u.opts.API.SignIn
	if signUp {
		op = u.opts.API.SignUp
	}
	res, err := op(r.Context(), u.opts.API.ClientOf(r), t, email, r.PostFormValue("password"))
	if err != nil {
		u.InternalError(w, r, err)
		return
	}
	if res.Status == contract.StatusOK {
		u.signedIn(w, r, t, res.Session, res.Tokens, SafeRedirect(r.PostFormValue("redirectToPath")))
		return
	}
	v, err := u.signInView(w, r, t, signUp)
	if err != nil {
		u.InternalError(w, r, err)
		return
	}
	v.Email = email
	status := http.StatusUnprocessableEntity
	switch res.Status {
	case contract.StatusWrongCredentials:
		status = http.StatusUnauthorized
		v.Error = "Incorrect email or password."
	case contract.StatusFieldError:
		v.FieldErrors = fieldErrorsOf(res.FieldErrors)
		v.Error = "Please correct the highlighted fields."
	case contract.StatusSignInNotAllowed, contract.StatusSignUpNotAllowed:
		status = http.StatusForbidden
		v.Error = "Signing in with a password is not enabled here."
	default:
		v.Error = "Signing in did not work: " + firstNonEmpty(res.Message, res.Status)
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

// signOut ends the browser's session and shows the sign-in page.
func (u *UI) signOut(w http.ResponseWriter, r *http.Request) {
	tenantID := tenantIDOf(r)
	if sess, _, ok := u.currentSession(r.Context(), r); ok {
		tenantID = sess.TenantID
	}
	if c, err := r.Cookie(contract.CookieAccessToken); err == nil && c.Value != "" {
		sess, err := u.opts.Sessions.Verify(r.Context(), c.Value, session.VerifyOptions{})
		switch {
		case err != nil:
			// An expired access token cannot sign out; the browser still forgets both tokens,
			// and the refresh token it drops was the only way to revive the session.
			if t, err := u.opts.Tenants.Current(r.Context(), tenantID); err == nil {
				u.opts.Sessions.ClearTokens(w, httpapi.SessionSettings(t.Config))
			}
		default:
			if err := u.opts.API.SignOut(r.Context(), u.opts.API.ClientOf(r), sess); err != nil {
				u.InternalError(w, r, err)
				return
			}
			u.opts.Sessions.ClearTokens(w, u.opts.API.ClearSettings(r.Context(), sess.TenantID))
		}
	}
	Redirect(w, WithQuery(SignInPath, "tenantId", tenantID))
}
