package hostedui

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/mfaengine"
	"github.com/twofold-dev/twofold/core/session"
	"github.com/twofold-dev/twofold/core/tenant"
)

// MFAPage is a browser's session on an MFA page, with where it stands.
type MFAPage struct {
	Session session.Session
	Tenant  tenant.Tenant
	State   mfaengine.State
	// Offered are the factors of the next set the user can complete or set up now.
	Offered []string
	// Back is the validated redirectToPath: where the browser goes once MFA is done.
	Back string
}

// LoadMFA verifies the browser's session and brings its st-mfa claim up to date (new cookies
// when v changed). It answers the request itself (a redirect or an error) and returns false
// when there is no session.
func (u *UI) LoadMFA(w http.ResponseWriter, r *http.Request) (MFAPage, bool) {
	sess, ok := u.RequireSession(w, r)
	if !ok {
		return MFAPage{}, false
	}
	t, err := u.opts.Tenants.Current(r.Context(), sess.TenantID)
	if err != nil {
		u.InternalError(w, r, err)
		return MFAPage{}, false
	}
	upd, err := u.opts.MFA.Resync(r.Context(), sess)
	if err == nil && upd.Tokens != nil {
		err = u.opts.Sessions.WriteTokensFor(w, r, upd.Session.TenantID, *upd.Tokens)
	}
	if err != nil {
		if errors.Is(err, session.ErrUnauthorised) {
			Redirect(w, WithQuery(SignInPath, "tenantId", t.ID))
			return MFAPage{}, false
		}
		u.InternalError(w, r, err)
		return MFAPage{}, false
	}
	sess, st := upd.Session, upd.State
	m := MFAPage{Session: sess, Tenant: t, State: st, Back: SafeRedirect(r.FormValue("redirectToPath"))}
	for _, f := range st.Next {
		// Recovery codes are offered to users who have some; they are created after another
		// factor is set up, not as a factor of their own here.
		setUp := slices.Contains(st.SetUp, f)
		if slices.Contains(u.hosted, f) && (setUp || (slices.Contains(st.AllowedToSetUp, f) && f != mfa.RecoveryCode)) {
			m.Offered = append(m.Offered, f)
		}
	}
	return m, true
}

// MFAView starts an MFA page's data.
func (u *UI) MFAView(w http.ResponseWriter, r *http.Request, m MFAPage, title string) (View, error) {
	v, err := u.newView(w, r, m.Tenant, title)
	if err != nil {
		return View{}, err
	}
	v.Factors = m.Offered
	v.CanUseCode = slices.Contains(m.Offered, mfa.RecoveryCode)
	return v, nil
}

// mfaPage is where the sidecar sends a browser whose session has not met its requirement: it
// goes straight to the one factor to complete, or shows a chooser.
func (u *UI) mfaPage(w http.ResponseWriter, r *http.Request) {
	m, ok := u.LoadMFA(w, r)
	if !ok {
		return
	}
	choose := r.FormValue("choose") != ""
	if m.State.V && !choose {
		u.afterFactor(w, r, m.Session, m.Back)
		return
	}
	if len(m.Offered) == 0 {
		v, err := u.MFAView(w, r, m, "Two-step verification")
		if err != nil {
			u.InternalError(w, r, err)
			return
		}
		if m.State.V {
			u.afterFactor(w, r, m.Session, m.Back)
			return
		}
		v.Error = "Your account has no second step you can complete here. Please contact your administrator."
		u.Render(w, r, http.StatusForbidden, "choose", v)
		return
	}
	// A recovery code only stands in for a lost factor: offer it from that factor's page.
	primary := slices.DeleteFunc(slices.Clone(m.Offered), func(f string) bool { return f == mfa.RecoveryCode })
	if len(primary) == 0 {
		primary = m.Offered
	}
	if len(primary) == 1 && !choose {
		Redirect(w, WithQuery(MFAPath+"/"+primary[0], "redirectToPath", m.Back))
		return
	}
	v, err := u.MFAView(w, r, m, "Confirm it's you")
	if err != nil {
		u.InternalError(w, r, err)
		return
	}
	u.Render(w, r, http.StatusOK, "choose", v)
}

// AttemptsMessage words a wrong answer (what: "code", "recovery code") with the attempts left
// before the lock.
func AttemptsMessage(what string, failed, max int) string {
	msg := "That " + what + " is not right."
	if max > failed {
		msg += " Attempts left before a 15-minute lock: " + strconv.Itoa(max-failed) + "."
	}
	return msg
}

// LockedMessage words a lock that ends in retryAfter.
func LockedMessage(retryAfter time.Duration) string {
	minutes := (retryAfter + time.Minute - 1) / time.Minute
	return "Too many wrong codes. Try again in " + strconv.Itoa(int(minutes)) + " minutes, or use a recovery code later."
}

// afterMFA continues once a second factor is completed: to the next factor while the
// requirement is not met, to the recovery codes after a first MFA setup, else back to where
// the browser was going.
func (u *UI) afterMFA(w http.ResponseWriter, r *http.Request, m MFAPage, access string, firstSetup bool) {
	ctx := r.Context()
	sess, err := u.opts.Sessions.Verify(ctx, access, session.VerifyOptions{})
	if err != nil {
		u.InternalError(w, r, err)
		return
	}
	st, err := u.opts.MFA.SessionState(ctx, sess)
	if err != nil {
		u.InternalError(w, r, err)
		return
	}
	if !st.V {
		Redirect(w, WithQuery(MFAPath, "redirectToPath", m.Back))
		return
	}
	next, err := nextStep(sess, m.Back)
	if err != nil {
		u.InternalError(w, r, err)
		return
	}
	if firstSetup && slices.Contains(st.Available, mfa.RecoveryCode) && u.afterFirstSetup != nil &&
		u.afterFirstSetup(w, r, sess, m.Tenant, next) {
		return
	}
	Redirect(w, next)
}

// ContactFor is the user's email (otp-email) or phone number (otp-phone) a code goes to: the
// session's login method's when it has one, else another login method's.
func (u *UI) ContactFor(ctx context.Context, sess session.Session, factor string) (string, error) {
	usr, err := u.opts.Store.GetUser(ctx, sess.UserID)
	if err != nil {
		return "", err
	}
	var found string
	for _, lm := range usr.LoginMethods {
		c := lm.Email
		if factor == mfa.OTPPhone {
			c = lm.PhoneNumber
		}
		if c != "" && (found == "" || lm.RecipeUserID == sess.RecipeUserID) {
			found = c
		}
	}
	return found, nil
}
