package hostedui

import (
	"errors"
	"net/http"
	"slices"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/session"
)

// notices are the messages the account page shows after an action (?done=...).
var notices = map[string]string{
	"removed":      "The authenticator app was removed.",
	"signed-out":   "All other sessions were signed out.",
	"not-removed":  "That authenticator app could not be removed: finish two-step verification first.",
	"added-device": "Your authenticator app is ready.",
}

// accountPage shows the account's sign-in methods, authenticator apps, recovery codes and
// active sessions. It needs a session that met its MFA requirement.
func (u *UI) accountPage(w http.ResponseWriter, r *http.Request) {
	m, ok := u.loadMFA(w, r)
	if !ok {
		return
	}
	if !m.st.V {
		redirect(w, withQuery(MFAPath, "redirectToPath", AccountPath))
		return
	}
	ctx := r.Context()
	v, err := u.newView(w, r, m.t, "Account security")
	if err != nil {
		u.internalError(w, r, err)
		return
	}
	// The page's forms come back here; its "back" link goes where the browser came from.
	v.Continue, v.RedirectToPath = v.RedirectToPath, AccountPath
	v.Notice = notices[r.FormValue("done")]
	if v.Email, err = u.contactFor(ctx, m.sess, mfa.OTPEmail); err != nil {
		u.internalError(w, r, err)
		return
	}
	v.SetUp = slices.DeleteFunc(slices.Clone(m.st.SetUp), func(f string) bool { return f == mfa.EmailPassword })
	devices, err := u.opts.Store.ListTOTPDevices(ctx, m.sess.UserID)
	if err != nil {
		u.internalError(w, r, err)
		return
	}
	for _, d := range devices {
		v.Devices = append(v.Devices, deviceView{Name: d.Name, Verified: d.Verified})
	}
	v.CanAddTOTP = slices.Contains(m.st.Available, mfa.TOTP)
	v.RecoveryOffer = slices.Contains(m.st.Available, mfa.RecoveryCode)
	if v.CodesLeft, v.CodesTotal, err = u.opts.Store.CountRecoveryCodes(ctx, m.sess.UserID); err != nil {
		u.internalError(w, r, err)
		return
	}
	live, err := u.opts.Store.LiveUserSessions(ctx, m.sess.UserID, u.opts.Clock())
	if err != nil {
		u.internalError(w, r, err)
		return
	}
	for _, s := range live {
		if s.TenantID == m.sess.TenantID {
			v.Sessions = append(v.Sessions, sessionView{Handle: s.Handle, Created: s.CreatedAt, Current: s.Handle == m.sess.Handle})
		}
	}
	u.render(w, r, http.StatusOK, "account", v)
}

// accountSession is the session of an account action, which needs the MFA requirement met.
func (u *UI) accountSession(w http.ResponseWriter, r *http.Request) (mfaContext, bool) {
	m, ok := u.loadMFA(w, r)
	if !ok {
		return mfaContext{}, false
	}
	if !m.st.V {
		redirect(w, withQuery(MFAPath, "redirectToPath", AccountPath))
		return mfaContext{}, false
	}
	return m, true
}

// totpRemove removes one of the user's authenticator apps.
func (u *UI) totpRemove(w http.ResponseWriter, r *http.Request) {
	if _, ok := u.accountSession(w, r); !ok {
		return
	}
	c := u.newCall(w, r)
	a, err := u.fdi(c, http.MethodPost, "/auth/totp/device/remove", map[string]string{"deviceName": r.PostFormValue("deviceName")})
	if err != nil {
		u.internalError(w, r, err)
		return
	}
	done := "removed"
	if a.Status != contract.StatusOK {
		done = "not-removed"
	}
	redirect(w, withQuery(AccountPath, "done", done))
}

// recoveryGenerate replaces the user's recovery codes and shows the new set once.
func (u *UI) recoveryGenerate(w http.ResponseWriter, r *http.Request) {
	m, ok := u.accountSession(w, r)
	if !ok {
		return
	}
	u.showNewCodes(u.newCall(w, r), m.t, AccountPath)
}

// revokeOthers signs out every other live session of the user in this tenant.
func (u *UI) revokeOthers(w http.ResponseWriter, r *http.Request) {
	m, ok := u.accountSession(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	live, err := u.opts.Store.LiveUserSessions(ctx, m.sess.UserID, u.opts.Clock())
	if err != nil {
		u.internalError(w, r, err)
		return
	}
	n := 0
	for _, s := range live {
		if s.Handle == m.sess.Handle || s.TenantID != m.sess.TenantID {
			continue
		}
		if _, err := u.opts.Sessions.Revoke(ctx, s.Handle); err != nil && !errors.Is(err, session.ErrUnauthorised) {
			u.internalError(w, r, err)
			return
		}
		n++
	}
	if u.opts.Audit != nil {
		u.opts.Audit(r, "Signed out other sessions", m.sess.TenantID, m.sess.UserID, "success", "session", m.sess.Handle, "revoked", n)
	}
	redirect(w, withQuery(AccountPath, "done", "signed-out"))
}
