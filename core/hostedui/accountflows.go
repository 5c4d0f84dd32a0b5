package hostedui

import (
	"net/http"
	"strings"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/core/accountapi"
	"github.com/twofold-dev/twofold/core/httpapi"
	"github.com/twofold-dev/twofold/core/session"
	"github.com/twofold-dev/twofold/core/tenant"
)

// Paths of the pages the core's emails link to (websiteBasePath + the page, as the SuperTokens
// frontends use). A link asked for from these pages carries its token in the URL fragment
// (?tenantId=...&link=1#token=...), so it never reaches a server's logs; the page's script
// copies it into the form, which POSTs it. A ?token= link (an SDK's, or an older email's) still
// works.
const (
	ResetPasswordPath = "/auth/reset-password"
	VerifyEmailPath   = "/auth/verify-email"
)

// resetView is the password-reset page: the email form without a token, the new-password
// form with one.
func (u *UI) resetView(w http.ResponseWriter, r *http.Request, t tenant.Tenant) (View, error) {
	v, err := u.newView(w, r, t, "Reset your password")
	if err != nil {
		return View{}, err
	}
	v.Token = r.FormValue("token")
	v.TokenInFragment = v.Token == "" && r.Method == http.MethodGet && r.URL.Query().Get("link") == "1"
	if v.Token != "" || v.TokenInFragment {
		v.Title = "Choose a new password"
	}
	return v, nil
}

// resetPasswordPage asks for the email to send a reset link to, or, from the link, for the
// new password.
func (u *UI) resetPasswordPage(w http.ResponseWriter, r *http.Request) {
	t, ok := u.tenantOf(w, r)
	if !ok {
		return
	}
	v, err := u.resetView(w, r, t)
	if err != nil {
		u.InternalError(w, r, err)
		return
	}
	u.Render(w, r, http.StatusOK, "reset", v)
}

// forgotPassword sends a reset link. The answer is the same whether the email has an
// account or not.
func (u *UI) forgotPassword(w http.ResponseWriter, r *http.Request) {
	t, ok := u.tenantOf(w, r)
	if !ok {
		return
	}
	email := strings.TrimSpace(r.PostFormValue("email"))
	err := u.opts.Account.SendResetEmail(r.Context(), u.opts.API.ClientOf(r), t, email, true)
	ref, ok := u.refusalOf(w, r, err)
	if !ok {
		return
	}
	v, err := u.resetView(w, r, t)
	if err != nil {
		u.InternalError(w, r, err)
		return
	}
	v.Email = email
	switch {
	case ref == nil:
		v.Title, v.Sent = "Check your email", true
		v.Notice = "If " + email + " has an account, we sent it a link to choose a new password."
		u.Render(w, r, http.StatusOK, "reset", v)
	case ref.Status == contract.StatusFieldError:
		v.FieldErrors = map[string]string{ref.Field: ref.Message}
		u.Render(w, r, http.StatusUnprocessableEntity, "reset", v)
	default:
		v.Error = "The email could not be sent: " + firstNonEmpty(ref.Message, ref.Status) + "."
		u.Render(w, r, http.StatusServiceUnavailable, "reset", v)
	}
}

// resetPassword sets the new password with the link's token; the core signs every session
// of the user out.
func (u *UI) resetPassword(w http.ResponseWriter, r *http.Request) {
	t, ok := u.tenantOf(w, r)
	if !ok {
		return
	}
	token := r.PostFormValue("token")
	var err error
	if token == "" {
		// What the FDI answers a form without a token.
		err = &accountapi.Refusal{Message: "Please provide the password reset token"}
	} else {
		_, err = u.opts.Account.ResetPassword(r.Context(), u.opts.API.ClientOf(r), t, token, r.PostFormValue("password"))
	}
	ref, ok := u.refusalOf(w, r, err)
	if !ok {
		return
	}
	if ref == nil {
		v, err := u.signInView(w, r, t, false)
		if err != nil {
			u.InternalError(w, r, err)
			return
		}
		v.Notice = "Your password was changed and every session was signed out. Sign in with the new password."
		u.Render(w, r, http.StatusOK, "signin", v)
		return
	}
	v, err := u.resetView(w, r, t)
	if err != nil {
		u.InternalError(w, r, err)
		return
	}
	status := http.StatusUnprocessableEntity
	switch ref.Status {
	case contract.StatusFieldError:
		v.FieldErrors = map[string]string{ref.Field: ref.Message}
	case contract.StatusResetPasswordInvalidToken:
		status, v.Token, v.Title = http.StatusGone, "", "Reset your password"
		v.Error = "This link has expired or was already used. Ask for a new one."
	default:
		v.Error = "The password could not be changed: " + firstNonEmpty(ref.Message, ref.Status) + "."
	}
	u.Render(w, r, status, "reset", v)
}

// verifyEmailPage confirms an email from the link's token (with a click, so mail scanners do
// not use the link up), or, without a token, offers a signed-in user to send the link.
func (u *UI) verifyEmailPage(w http.ResponseWriter, r *http.Request) {
	t, ok := u.tenantOf(w, r)
	if !ok {
		return
	}
	v, err := u.newView(w, r, t, "Verify your email")
	if err != nil {
		u.InternalError(w, r, err)
		return
	}
	v.Token = r.FormValue("token")
	v.TokenInFragment = v.Token == "" && r.URL.Query().Get("link") == "1"
	if v.Token == "" && !v.TokenInFragment {
		sess, ok := u.RequireSession(w, r)
		if !ok {
			return
		}
		if v.Email, err = u.ContactFor(r.Context(), sess, "otp-email"); err != nil {
			u.InternalError(w, r, err)
			return
		}
	}
	u.Render(w, r, http.StatusOK, "verifyemail", v)
}

// sendVerificationEmail sends the signed-in user a verification link.
func (u *UI) sendVerificationEmail(w http.ResponseWriter, r *http.Request) {
	sess, ok := u.RequireSession(w, r)
	if !ok {
		return
	}
	t, err := u.opts.Tenants.Current(r.Context(), sess.TenantID)
	if err != nil {
		u.InternalError(w, r, err)
		return
	}
	res, err := u.opts.Account.SendVerificationEmail(r.Context(), u.opts.API.ClientOf(r), t, sess, true)
	ref, ok := u.refusalOf(w, r, err)
	if !ok {
		return
	}
	if res.Tokens != nil {
		u.opts.Sessions.WriteCookies(w, *res.Tokens, httpapi.SessionSettings(t.Config))
	}
	if res.AlreadyVerified {
		Redirect(w, SafeRedirect(r.PostFormValue("redirectToPath")))
		return
	}
	v, err := u.newView(w, r, t, "Verify your email")
	if err != nil {
		u.InternalError(w, r, err)
		return
	}
	if v.Email, err = u.ContactFor(r.Context(), sess, "otp-email"); err != nil {
		u.InternalError(w, r, err)
		return
	}
	status := http.StatusOK
	if ref == nil {
		v.Sent, v.Notice = true, "We sent a link to "+v.Email+". Open it to verify your email."
	} else {
		status = http.StatusServiceUnavailable
		v.Error = "The email could not be sent: " + firstNonEmpty(ref.Message, ref.Status) + "."
	}
	u.Render(w, r, status, "verifyemail", v)
}

// verifyEmail uses the link's token; a session of the same login method gets its st-ev claim
// updated by the core.
func (u *UI) verifyEmail(w http.ResponseWriter, r *http.Request) {
	t, ok := u.tenantOf(w, r)
	if !ok {
		return
	}
	var linking *session.Session
	if sess, _, ok := u.currentSession(r.Context(), r); ok {
		linking = &sess
	}
	_, tokens, err := u.opts.Account.VerifyEmail(r.Context(), u.opts.API.ClientOf(r), t, r.PostFormValue("token"), linking)
	ref, ok := u.refusalOf(w, r, err)
	if !ok {
		return
	}
	if tokens != nil {
		u.opts.Sessions.WriteCookies(w, *tokens, httpapi.SessionSettings(t.Config))
	}
	v, err := u.newView(w, r, t, "Email verified")
	if err != nil {
		u.InternalError(w, r, err)
		return
	}
	status := http.StatusOK
	if ref == nil {
		v.Verified = true
		v.Notice = "Thank you: your email address is verified."
	} else {
		status, v.Title = http.StatusGone, "Verify your email"
		v.Error = "This link has expired or was already used. Sign in and ask for a new one."
	}
	u.Render(w, r, status, "verifyemail", v)
}
