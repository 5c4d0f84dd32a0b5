package hostedui

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/mfaengine"
	"github.com/twofold-dev/twofold/core/session"
	"github.com/twofold-dev/twofold/core/store"
	"github.com/twofold-dev/twofold/core/tenant"
)

// hostedFactors are the second factors the hosted pages can complete.
var hostedFactors = []string{mfa.TOTP, mfa.OTPEmail, mfa.OTPPhone, mfa.RecoveryCode}

// mfaContext is a session on an MFA page with where it stands.
type mfaContext struct {
	sess session.Session
	t    tenant.Tenant
	st   mfaengine.State
	// offered are the factors of the next set the user can complete or set up now.
	offered []string
	back    string
}

// loadMFA verifies the browser's session and brings its st-mfa claim up to date (new cookies
// when v changed). It answers the request itself (a redirect or an error) and returns false
// when there is no session.
func (u *UI) loadMFA(w http.ResponseWriter, r *http.Request) (mfaContext, bool) {
	sess, ok := u.requireSession(w, r)
	if !ok {
		return mfaContext{}, false
	}
	t, err := u.opts.Tenants.Current(r.Context(), sess.TenantID)
	if err != nil {
		u.internalError(w, r, err)
		return mfaContext{}, false
	}
	sess, st, err := u.opts.MFA.Resync(r.Context(), w, r, sess)
	if err != nil {
		if errors.Is(err, session.ErrUnauthorised) {
			redirect(w, withQuery(SignInPath, "tenantId", t.ID))
			return mfaContext{}, false
		}
		u.internalError(w, r, err)
		return mfaContext{}, false
	}
	m := mfaContext{sess: sess, t: t, st: st, back: SafeRedirect(r.FormValue("redirectToPath"))}
	for _, f := range st.Next {
		// Recovery codes are offered to users who have some; they are created after another
		// factor is set up, not as a factor of their own here.
		setUp := slices.Contains(st.SetUp, f)
		if slices.Contains(hostedFactors, f) && (setUp || (slices.Contains(st.AllowedToSetUp, f) && f != mfa.RecoveryCode)) {
			m.offered = append(m.offered, f)
		}
	}
	return m, true
}

// mfaView starts an MFA page's data.
func (u *UI) mfaView(w http.ResponseWriter, r *http.Request, m mfaContext, title string) (view, error) {
	v, err := u.newView(w, r, m.t, title)
	if err != nil {
		return view{}, err
	}
	v.Factors = m.offered
	v.CanUseCode = slices.Contains(m.offered, mfa.RecoveryCode)
	return v, nil
}

// mfaPage is where the sidecar sends a browser whose session has not met its requirement: it
// goes straight to the one factor to complete, or shows a chooser.
func (u *UI) mfaPage(w http.ResponseWriter, r *http.Request) {
	m, ok := u.loadMFA(w, r)
	if !ok {
		return
	}
	choose := r.FormValue("choose") != ""
	if m.st.V && !choose {
		u.afterFactor(w, r, m.sess, m.back)
		return
	}
	if len(m.offered) == 0 {
		v, err := u.mfaView(w, r, m, "Two-step verification")
		if err != nil {
			u.internalError(w, r, err)
			return
		}
		if m.st.V {
			u.afterFactor(w, r, m.sess, m.back)
			return
		}
		v.Error = "Your account has no second step you can complete here. Please contact your administrator."
		u.render(w, r, http.StatusForbidden, "choose", v)
		return
	}
	// A recovery code only stands in for a lost factor: offer it from that factor's page.
	primary := slices.DeleteFunc(slices.Clone(m.offered), func(f string) bool { return f == mfa.RecoveryCode })
	if len(primary) == 0 {
		primary = m.offered
	}
	if len(primary) == 1 && !choose {
		redirect(w, withQuery(MFAPath+"/"+primary[0], "redirectToPath", m.back))
		return
	}
	v, err := u.mfaView(w, r, m, "Confirm it's you")
	if err != nil {
		u.internalError(w, r, err)
		return
	}
	u.render(w, r, http.StatusOK, "choose", v)
}

// pendingDevice is the newest TOTP device this session created that is not verified yet: the
// one being set up.
func (u *UI) pendingDevice(ctx context.Context, sess session.Session) (store.TOTPDevice, bool, error) {
	devices, err := u.opts.Store.ListTOTPDevices(ctx, sess.UserID)
	if err != nil {
		return store.TOTPDevice{}, false, err
	}
	var found store.TOTPDevice
	ok := false
	for _, d := range devices {
		// Another session's device being set up is not ours to show: its secret would let
		// that session's holder, perhaps a password thief, hold the authenticator for good.
		if !d.Verified && d.CreatedBySession == sess.Handle && (!ok || !d.CreatedAt.Before(found.CreatedAt)) {
			found, ok = d, true
		}
	}
	return found, ok, nil
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

// totpPage asks for a code from the authenticator app, or sets one up: when the user has none,
// or with ?setup=1 (adding a device from the account page).
func (u *UI) totpPage(w http.ResponseWriter, r *http.Request) {
	m, ok := u.loadMFA(w, r)
	if !ok {
		return
	}
	u.renderTOTP(w, r, m, http.StatusOK, nil)
}

func (u *UI) renderTOTP(w http.ResponseWriter, r *http.Request, m mfaContext, status int, edit func(*view)) {
	ctx := r.Context()
	hasTOTP := slices.Contains(m.st.SetUp, mfa.TOTP)
	setup := !hasTOTP || r.FormValue("setup") != "" || r.PostFormValue("deviceName") != ""
	title := "Enter your code"
	if setup {
		title = "Set up your authenticator app"
	}
	v, err := u.mfaView(w, r, m, title)
	if err != nil {
		u.internalError(w, r, err)
		return
	}
	v.Factor, v.SetupMode = mfa.TOTP, setup
	if setup {
		if err := u.opts.MFA.CheckSetup(ctx, m.sess, mfa.TOTP); err != nil {
			var denied *mfaengine.SetupDeniedError
			if !errors.As(err, &denied) {
				u.internalError(w, r, err)
				return
			}
			if hasTOTP {
				v.SetupMode, v.Title = false, "Enter your code"
				v.Error = "Finish signing in before adding another authenticator app."
			} else {
				v.Error = "You cannot set up an authenticator app now: " + denied.Reason + "."
				u.render(w, r, http.StatusForbidden, "choose", v)
				return
			}
		}
	}
	if v.SetupMode {
		d, ok, err := u.pendingDevice(ctx, m.sess)
		if err != nil {
			u.internalError(w, r, err)
			return
		}
		if ok {
			v.DeviceName, v.Secret, v.QRURL = d.Name, groupSecret(d.Secret), uiPrefix+"/totp/qr.png"
		}
	}
	if edit != nil {
		edit(&v)
	}
	u.render(w, r, status, "totp", v)
}

// qrCode serves the QR code of the device being set up, found from the session: the URL
// carries no secret.
func (u *UI) qrCode(w http.ResponseWriter, r *http.Request) {
	sess, ok := u.requireSession(w, r)
	if !ok {
		return
	}
	d, ok, err := u.pendingDevice(r.Context(), sess)
	if err != nil {
		u.internalError(w, r, err)
		return
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	c := u.newCall(w, r)
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, "/auth/totp/device/qr?deviceName="+url.QueryEscape(d.Name), nil)
	if err != nil {
		u.internalError(w, r, err)
		return
	}
	req.AddCookie(&http.Cookie{Name: contract.CookieAccessToken, Value: c.access})
	req.RemoteAddr = r.RemoteAddr
	rec := &recorder{header: http.Header{}}
	u.opts.Core.ServeHTTP(rec, req)
	if rec.status != http.StatusOK || rec.header.Get("Content-Type") != "image/png" {
		u.opts.Logger.Info("No QR code for the device being set up", "status", rec.status)
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(rec.body.Bytes())
}

// claimRefusal is the reason of a 403 invalid-claim answer.
func claimRefusal(a answer) string {
	var errs []contract.ClaimValidationError
	_ = json.Unmarshal(a.Body["claimValidationErrors"], &errs)
	if len(errs) > 0 {
		return errs[0].Reason.Message
	}
	return a.Message
}

// totpSetup creates a TOTP device (or reuses the one being set up) and shows its QR code.
func (u *UI) totpSetup(w http.ResponseWriter, r *http.Request) {
	m, ok := u.loadMFA(w, r)
	if !ok {
		return
	}
	_, pending, err := u.pendingDevice(r.Context(), m.sess)
	if err != nil {
		u.internalError(w, r, err)
		return
	}
	if !pending {
		c := u.newCall(w, r)
		a, err := u.fdi(c, http.MethodPost, "/auth/totp/device", map[string]any{})
		if err != nil {
			u.internalError(w, r, err)
			return
		}
		if a.Code == http.StatusForbidden {
			u.renderTOTP(w, r, m, http.StatusForbidden, func(v *view) { v.Error = "You cannot set up an authenticator app now: " + claimRefusal(a) + "." })
			return
		}
		if a.Status != contract.StatusOK {
			u.internalError(w, r, errors.New("create TOTP device: "+firstNonEmpty(a.Status, a.Message)))
			return
		}
	}
	redirect(w, withQuery(MFAPath+"/totp", "setup", "1", "redirectToPath", m.back))
}

// attemptsMessage words a wrong-code answer with its attempt counts.
func attemptsMessage(a answer, what string) string {
	var failed, max int
	_ = json.Unmarshal(a.Body["currentNumberOfFailedAttempts"], &failed)
	_ = json.Unmarshal(a.Body["maxNumberOfFailedAttempts"], &max)
	msg := "That " + what + " is not right."
	if max > failed {
		msg += " Attempts left before a 15-minute lock: " + strconv.Itoa(max-failed) + "."
	}
	return msg
}

// lockedMessage words a LIMIT_REACHED_ERROR.
func lockedMessage(a answer) string {
	var ms int64
	_ = json.Unmarshal(a.Body["retryAfterMs"], &ms)
	minutes := (time.Duration(ms)*time.Millisecond + time.Minute - 1) / time.Minute
	return "Too many wrong codes. Try again in " + strconv.Itoa(int(minutes)) + " minutes, or use a recovery code later."
}

// totpVerify checks a code: of the device being set up (deviceName set) or of any of the
// user's devices.
func (u *UI) totpVerify(w http.ResponseWriter, r *http.Request) {
	m, ok := u.loadMFA(w, r)
	if !ok {
		return
	}
	code := strings.ReplaceAll(strings.TrimSpace(r.PostFormValue("code")), " ", "")
	name := r.PostFormValue("deviceName")
	if code == "" {
		u.renderTOTP(w, r, m, http.StatusUnprocessableEntity, func(v *view) { v.FieldErrors["code"] = "Enter the 6-digit code from the app." })
		return
	}
	c := u.newCall(w, r)
	var a answer
	var err error
	if name != "" {
		a, err = u.fdi(c, http.MethodPost, "/auth/totp/device/verify", map[string]string{"deviceName": name, "totp": code})
	} else {
		a, err = u.fdi(c, http.MethodPost, "/auth/totp/verify", map[string]string{"totp": code})
	}
	if err != nil {
		u.internalError(w, r, err)
		return
	}
	switch {
	case a.Status == contract.StatusOK:
		var was bool
		_ = json.Unmarshal(a.Body["wasAlreadyVerified"], &was)
		u.afterMFA(c, m, name != "" && !was)
	case a.Status == contract.StatusInvalidTOTP:
		u.renderTOTP(w, r, m, http.StatusUnprocessableEntity, func(v *view) {
			v.FieldErrors["code"] = attemptsMessage(a, "code")
		})
	case a.Status == contract.StatusLimitReached:
		u.renderTOTP(w, r, m, http.StatusTooManyRequests, func(v *view) { v.Error = lockedMessage(a) })
	case a.Status == contract.StatusUnknownDevice || a.Status == contract.StatusUnknownUserID:
		redirect(w, withQuery(MFAPath+"/totp", "setup", "1", "redirectToPath", m.back))
	case a.Code == http.StatusForbidden:
		u.renderTOTP(w, r, m, http.StatusForbidden, func(v *view) { v.Error = "This step is not allowed now: " + claimRefusal(a) + "." })
	default:
		u.internalError(w, r, errors.New("verify TOTP: "+firstNonEmpty(a.Status, a.Message)))
	}
}

// afterMFA continues once a second factor is completed: to the next factor while the
// requirement is not met, to the recovery codes after a first MFA setup, else back to where
// the browser was going.
func (u *UI) afterMFA(c *call, m mfaContext, firstSetup bool) {
	ctx := c.r.Context()
	sess, err := u.opts.Sessions.Verify(ctx, c.access, session.VerifyOptions{})
	if err != nil {
		u.internalError(c.w, c.r, err)
		return
	}
	st, err := u.opts.MFA.SessionState(ctx, sess)
	if err != nil {
		u.internalError(c.w, c.r, err)
		return
	}
	if !st.V {
		redirect(c.w, withQuery(MFAPath, "redirectToPath", m.back))
		return
	}
	next, err := nextStep(sess, m.back)
	if err != nil {
		u.internalError(c.w, c.r, err)
		return
	}
	if firstSetup && slices.Contains(st.Available, mfa.RecoveryCode) {
		_, total, err := u.opts.Store.CountRecoveryCodes(ctx, sess.UserID)
		if err != nil {
			u.internalError(c.w, c.r, err)
			return
		}
		if total == 0 {
			u.showNewCodes(c, m.t, next)
			return
		}
	}
	redirect(c.w, next)
}

// showNewCodes generates a set of recovery codes and shows it, this once.
func (u *UI) showNewCodes(c *call, t tenant.Tenant, next string) {
	a, err := u.fdi(c, http.MethodPost, "/auth/recovery-codes", map[string]any{})
	if err != nil {
		u.internalError(c.w, c.r, err)
		return
	}
	if a.Status != contract.StatusOK {
		u.errorPage(c.w, c.r, http.StatusForbidden, "Recovery codes not created", "New recovery codes cannot be created now: "+firstNonEmpty(claimRefusal(a), a.Status)+".")
		return
	}
	var codes []string
	if err := json.Unmarshal(a.Body["codes"], &codes); err != nil {
		u.internalError(c.w, c.r, err)
		return
	}
	v, err := u.newView(c.w, c.r, t, "Save your recovery codes")
	if err != nil {
		u.internalError(c.w, c.r, err)
		return
	}
	v.Codes, v.CodesText, v.Continue = codes, strings.Join(codes, "\n"), next
	u.render(c.w, c.r, http.StatusOK, "codes", v)
}

// recoveryPage asks for a recovery code.
func (u *UI) recoveryPage(w http.ResponseWriter, r *http.Request) {
	m, ok := u.loadMFA(w, r)
	if !ok {
		return
	}
	u.renderRecovery(w, r, m, http.StatusOK, "")
}

func (u *UI) renderRecovery(w http.ResponseWriter, r *http.Request, m mfaContext, status int, msg string) {
	v, err := u.mfaView(w, r, m, "Use a recovery code")
	if err != nil {
		u.internalError(w, r, err)
		return
	}
	v.Factor = mfa.RecoveryCode
	if msg != "" {
		v.FieldErrors["code"] = msg
	}
	u.render(w, r, status, "recovery", v)
}

// recoveryVerify uses up a recovery code.
func (u *UI) recoveryVerify(w http.ResponseWriter, r *http.Request) {
	m, ok := u.loadMFA(w, r)
	if !ok {
		return
	}
	code := strings.TrimSpace(r.PostFormValue("code"))
	if code == "" {
		u.renderRecovery(w, r, m, http.StatusUnprocessableEntity, "Enter one of your recovery codes.")
		return
	}
	c := u.newCall(w, r)
	a, err := u.fdi(c, http.MethodPost, "/auth/recovery-codes/verify", map[string]string{"code": code})
	if err != nil {
		u.internalError(w, r, err)
		return
	}
	switch a.Status {
	case contract.StatusOK:
		u.afterMFA(c, m, false)
	case contract.StatusInvalidRecoveryCode:
		u.renderRecovery(w, r, m, http.StatusUnprocessableEntity, attemptsMessage(a, "recovery code"))
	case contract.StatusLimitReached:
		u.renderRecovery(w, r, m, http.StatusTooManyRequests, lockedMessage(a))
	case contract.StatusNoRecoveryCodes:
		u.renderRecovery(w, r, m, http.StatusUnprocessableEntity, "You have no recovery codes left.")
	default:
		u.internalError(w, r, errors.New("verify recovery code: "+firstNonEmpty(a.Status, a.Message)))
	}
}

// recoveryCodePattern is one recovery code as shown: groups of letters and digits with dashes.
var recoveryCodePattern = regexp.MustCompile(`^[a-z0-9]{4}(?:-[a-z0-9]{4})+$`)

// recoveryDownload answers the codes the page showed as a text file. The codes come back in
// the form body (never a URL); anything that is not a code is dropped.
func (u *UI) recoveryDownload(w http.ResponseWriter, r *http.Request) {
	var codes []string
	for _, line := range strings.Split(r.PostFormValue("codes"), "\n") {
		if line = strings.TrimSpace(line); recoveryCodePattern.MatchString(line) {
			codes = append(codes, line)
		}
	}
	if len(codes) == 0 {
		u.errorPage(w, r, http.StatusBadRequest, "Nothing to download", "The recovery codes were not sent with the form.")
		return
	}
	app := "Twofold"
	if t, err := u.opts.Tenants.Current(r.Context(), tenantIDOf(r)); err == nil {
		app = brandingOf(t).AppName
	}
	body := app + " recovery codes\n\nEach code signs you in once if you lose your authenticator.\n\n" + strings.Join(codes, "\n") + "\n"
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="recovery-codes.txt"`)
	w.Write([]byte(body))
}

// contactFor is the user's email (otp-email) or phone number (otp-phone) a code goes to.
func (u *UI) contactFor(ctx context.Context, sess session.Session, factor string) (string, error) {
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

// factorOf is the otp factor of a request: its path or form field.
func factorOf(r *http.Request) string {
	if r.PostFormValue("factor") == mfa.OTPPhone || strings.HasSuffix(r.URL.Path, "/"+mfa.OTPPhone) {
		return mfa.OTPPhone
	}
	return mfa.OTPEmail
}

// otpPage offers to send a code by email or SMS as a second factor.
func (u *UI) otpPage(w http.ResponseWriter, r *http.Request) {
	m, ok := u.loadMFA(w, r)
	if !ok {
		return
	}
	factor := factorOf(r)
	contact, err := u.contactFor(r.Context(), m.sess, factor)
	if err != nil {
		u.internalError(w, r, err)
		return
	}
	title := "Get a code by email"
	if factor == mfa.OTPPhone {
		title = "Get a code by text message"
	}
	v, err := u.mfaView(w, r, m, title)
	if err != nil {
		u.internalError(w, r, err)
		return
	}
	v.Factor, v.Contact = factor, contact
	if r.FormValue("restart") != "" {
		v.Error = "That code can no longer be used. Send a new one."
	}
	if contact == "" {
		v.Error = "Your account has no " + map[string]string{mfa.OTPEmail: "email address", mfa.OTPPhone: "phone number"}[factor] + " to send a code to."
		u.render(w, r, http.StatusUnprocessableEntity, "choose", v)
		return
	}
	u.render(w, r, http.StatusOK, "otp", v)
}

// otpSend sends a second-factor code to the user's own email or phone number.
func (u *UI) otpSend(w http.ResponseWriter, r *http.Request) {
	m, ok := u.loadMFA(w, r)
	if !ok {
		return
	}
	factor := factorOf(r)
	contact, err := u.contactFor(r.Context(), m.sess, factor)
	if err != nil {
		u.internalError(w, r, err)
		return
	}
	if contact == "" {
		redirect(w, withQuery(MFAPath+"/"+factor, "redirectToPath", m.back))
		return
	}
	key := "email"
	if factor == mfa.OTPPhone {
		key = "phoneNumber"
	}
	c := u.newCall(w, r)
	a, err := u.fdi(c, http.MethodPost, "/auth/"+m.t.ID+"/signinup/code", map[string]any{key: contact, "shouldTryLinkingWithSessionUser": true})
	if err != nil {
		u.internalError(w, r, err)
		return
	}
	if a.Status != contract.StatusOK {
		v, err := u.mfaView(w, r, m, "Code not sent")
		if err != nil {
			u.internalError(w, r, err)
			return
		}
		v.Factor, v.Contact = factor, contact
		v.Error = "The code could not be sent: " + firstNonEmpty(claimRefusal(a), a.str("reason"), a.Status) + "."
		u.render(w, r, http.StatusUnprocessableEntity, "otp", v)
		return
	}
	v, err := u.codeView(w, r, m.t, factor, contact, a.str("deviceId"), a.str("preAuthSessionId"))
	if err != nil {
		u.internalError(w, r, err)
		return
	}
	u.render(w, r, http.StatusOK, "code", v)
}

// otpResend sends another second-factor code for the same attempt.
func (u *UI) otpResend(w http.ResponseWriter, r *http.Request) {
	m, ok := u.loadMFA(w, r)
	if !ok {
		return
	}
	deviceID, preAuth := r.PostFormValue("deviceId"), r.PostFormValue("preAuthSessionId")
	c := u.newCall(w, r)
	a, err := u.fdi(c, http.MethodPost, "/auth/"+m.t.ID+"/signinup/code/resend", map[string]string{"deviceId": deviceID, "preAuthSessionId": preAuth})
	if err != nil {
		u.internalError(w, r, err)
		return
	}
	u.renderResent(w, r, m.t, factorOf(r), a, deviceID, preAuth)
}

// otpVerify completes the second factor with the code the user received.
func (u *UI) otpVerify(w http.ResponseWriter, r *http.Request) {
	m, ok := u.loadMFA(w, r)
	if !ok {
		return
	}
	c := u.newCall(w, r)
	a, err := u.fdi(c, http.MethodPost, "/auth/"+m.t.ID+"/signinup/code/consume", map[string]any{
		"deviceId": r.PostFormValue("deviceId"), "preAuthSessionId": r.PostFormValue("preAuthSessionId"),
		"userInputCode": strings.TrimSpace(r.PostFormValue("code")), "shouldTryLinkingWithSessionUser": true})
	if err != nil {
		u.internalError(w, r, err)
		return
	}
	if a.Status == contract.StatusOK {
		u.afterMFA(c, m, false)
		return
	}
	u.codeFailure(w, r, m.t, factorOf(r), a)
}
