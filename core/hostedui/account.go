package hostedui

import (
	"errors"
	"net/http"
	"slices"

	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/session"
)

// notices are the messages the account page shows after an action (?done=...).
var notices = map[string]string{
	"removed":             "The authenticator app was removed.",
	"signed-out":          "All other sessions were signed out.",
	"not-removed":         "That authenticator app could not be removed: finish two-step verification first.",
	"added-device":        "Your authenticator app is ready.",
	"added-passkey":       "Your new passkey is ready.",
	"renamed-passkey":     "The passkey was renamed.",
	"removed-passkey":     "The passkey was removed.",
	"not-removed-passkey": "That passkey could not be removed: finish two-step verification first.",
}

// accountPage shows the account's sign-in methods, authenticator apps, recovery codes and
// active sessions. It needs a session that met its MFA requirement.
func (u *UI) accountPage(w http.ResponseWriter, r *http.Request) {
	m, ok := u.LoadMFA(w, r)
	if !ok {
		return
	}
	if !m.State.V {
		Redirect(w, WithQuery(MFAPath, "redirectToPath", AccountPath))
		return
	}
	ctx := r.Context()
	v, err := u.newView(w, r, m.Tenant, "Account security")
	if err != nil {
		u.InternalError(w, r, err)
		return
	}
	// The page's forms come back here; its "back" link goes where the browser came from.
	v.Continue, v.RedirectToPath = v.RedirectToPath, AccountPath
	v.Notice = notices[r.FormValue("done")]
	if v.Email, err = u.ContactFor(ctx, m.Session, mfa.OTPEmail); err != nil {
		u.InternalError(w, r, err)
		return
	}
	v.SetUp = slices.DeleteFunc(slices.Clone(m.State.SetUp), func(f string) bool { return f == mfa.EmailPassword })
	devices, err := u.opts.Store.ListTOTPDevices(ctx, m.Session.UserID)
	if err != nil {
		u.InternalError(w, r, err)
		return
	}
	for _, d := range devices {
		v.Devices = append(v.Devices, deviceView{Name: d.Name, Verified: d.Verified})
	}
	v.CanAddTOTP = slices.Contains(m.State.Available, mfa.TOTP)
	passkeys, err := u.opts.Store.ListWebAuthnCredentials(ctx, m.Session.UserID)
	if err != nil {
		u.InternalError(w, r, err)
		return
	}
	for _, c := range passkeys {
		v.Passkeys = append(v.Passkeys, passkeyView{ID: c.ID, Name: c.Name, Created: c.CreatedAt, LastUsed: c.LastUsedAt})
	}
	v.CanAddPasskey = slices.Contains(m.State.Available, mfa.WebAuthn)
	v.RecoveryOffer = slices.Contains(m.State.Available, mfa.RecoveryCode)
	if v.CodesLeft, v.CodesTotal, err = u.opts.Store.CountRecoveryCodes(ctx, m.Session.UserID); err != nil {
		u.InternalError(w, r, err)
		return
	}
	live, err := u.opts.Store.LiveUserSessions(ctx, m.Session.UserID, u.opts.Clock())
	if err != nil {
		u.InternalError(w, r, err)
		return
	}
	for _, s := range live {
		if s.TenantID == m.Session.TenantID {
			v.Sessions = append(v.Sessions, sessionView{Handle: s.Handle, Created: s.CreatedAt, Current: s.Handle == m.Session.Handle})
		}
	}
	u.Render(w, r, http.StatusOK, "account", v)
}

// AccountSession is the session of an account action, which needs the MFA requirement met.
func (u *UI) AccountSession(w http.ResponseWriter, r *http.Request) (MFAPage, bool) {
	m, ok := u.LoadMFA(w, r)
	if !ok {
		return MFAPage{}, false
	}
	if !m.State.V {
		Redirect(w, WithQuery(MFAPath, "redirectToPath", AccountPath))
		return MFAPage{}, false
	}
	return m, true
}

// revokeOthers signs out every other live session of the user in this tenant.
func (u *UI) revokeOthers(w http.ResponseWriter, r *http.Request) {
	m, ok := u.AccountSession(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	live, err := u.opts.Store.LiveUserSessions(ctx, m.Session.UserID, u.opts.Clock())
	if err != nil {
		u.InternalError(w, r, err)
		return
	}
	n := 0
	for _, s := range live {
		if s.Handle == m.Session.Handle || s.TenantID != m.Session.TenantID {
			continue
		}
		if _, err := u.opts.Sessions.Revoke(ctx, s.Handle); err != nil && !errors.Is(err, session.ErrUnauthorised) {
			u.InternalError(w, r, err)
			return
		}
		n++
	}
	if u.opts.Audit != nil {
		u.opts.Audit(r, "Signed out other sessions", m.Session.TenantID, m.Session.UserID, "success", "session", m.Session.Handle, "revoked", n)
	}
	Redirect(w, WithQuery(AccountPath, "done", "signed-out"))
}
