package accountapi

import (
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/delivery"
	"github.com/twofold-dev/twofold/core/httpapi"
	"github.com/twofold-dev/twofold/core/httpkit"
	"github.com/twofold-dev/twofold/core/mfaapi"
	"github.com/twofold-dev/twofold/core/passwordless"
	"github.com/twofold-dev/twofold/core/session"
	"github.com/twofold-dev/twofold/core/store"
	"github.com/twofold-dev/twofold/core/tenant"
)

// ReasonContactTaken is the SIGN_IN_UP_NOT_ALLOWED reason when a secondary factor's email or
// phone number belongs to another user.
const ReasonContactTaken = "Cannot complete factor setup as the account info is already associated with another primary user. Please contact support."

// ReasonNewEmail is the SIGN_IN_UP_NOT_ALLOWED reason when otp-email is set up with an address
// that is not on the account and the tenant does not allow new addresses.
const ReasonNewEmail = "Email codes can only be set up with an email address already on your account."

// MaxLiveCodes bounds the unexpired codes of one device: a wrong guess is compared with every
// code of the device, so unlimited resends would let a guesser multiply its five attempts'
// chances. A resend beyond it answers RESTART_FLOW_ERROR and the user starts a new device.
const MaxLiveCodes = 5

// contactOf normalises the email or phone number of a request, answering GENERAL_ERROR with
// SuperTokens' message when it is invalid.
func contactOf(w http.ResponseWriter, email, phone *string) (passwordless.Contact, delivery.Channel, bool) {
	if email != nil {
		e, err := passwordless.NormaliseEmail(*email)
		if err != nil {
			generalError(w, "Email is invalid: %v", err)
			return passwordless.Contact{}, "", false
		}
		return passwordless.Contact{Email: e}, delivery.Email, true
	}
	p, err := passwordless.NormalisePhone(*phone, "")
	if err != nil {
		generalError(w, "Phone number is invalid: %v", err)
		return passwordless.Contact{}, "", false
	}
	return passwordless.Contact{PhoneNumber: p}, delivery.SMS, true
}

// firstFactorFlow is the flow type of a first-factor code for a contact on channel ch: a user
// input code when otp-* is a first factor of the tenant, a magic link when link-* is, both
// when both are. ok is false when neither is.
func firstFactorFlow(t tenant.Tenant, ch delivery.Channel) (passwordless.FlowType, bool) {
	otp, link := mfa.OTPEmail, mfa.LinkEmail
	if ch == delivery.SMS {
		otp, link = mfa.OTPPhone, mfa.LinkPhone
	}
	hasOTP, hasLink := slices.Contains(t.Config.FirstFactors, otp), slices.Contains(t.Config.FirstFactors, link)
	switch {
	case hasOTP && hasLink:
		return passwordless.FlowUserInputCodeAndMagicLink, true
	case hasOTP:
		return passwordless.FlowUserInputCode, true
	case hasLink:
		return passwordless.FlowMagicLink, true
	}
	return "", false
}

// linkingSession decides whether a passwordless request is a secondary factor: with
// shouldTryLinkingWithSessionUser false it never is; true requires a session (401 without);
// absent uses the request's session when it has one. A session of another tenant is refused.
func (a *API) linkingSession(w http.ResponseWriter, r *http.Request, t tenant.Tenant, should *bool) (sess session.Session, secondary, ok bool) {
	if should != nil && !*should {
		return session.Session{}, false, true
	}
	sess, has, ok := a.optionalSession(w, r)
	if !ok {
		return session.Session{}, false, false
	}
	if !has {
		if should != nil {
			session.WriteError(w, session.ErrUnauthorised)
			return session.Session{}, false, false
		}
		return session.Session{}, false, true
	}
	if sess.TenantID != t.ID {
		httpkit.WriteError(w, http.StatusBadRequest, "", "the session belongs to tenant %q, not %q", sess.TenantID, t.ID)
		return session.Session{}, false, false
	}
	return sess, true, true
}

// secondaryCheck applies the account-linking rules to a secondary factor for contact c: a
// completion when the session's user has a passwordless login method for it, refused
// (SIGN_IN_UP_NOT_ALLOWED) when another user has it, otherwise a setup that
// must pass the setup rule (a 403 invalid claim when refused). It answers refusals itself.
// For a completion it also returns the session's user, who owns the contact.
func (a *API) secondaryCheck(w http.ResponseWriter, r *http.Request, t tenant.Tenant, sess session.Session, c passwordless.Contact, factor string) (setup bool, owner store.User, ok bool) {
	var owners []store.User
	var err error
	if c.Email != "" {
		owners, err = a.opts.Store.UsersByEmail(r.Context(), t.ID, c.Email)
	} else {
		owners, err = a.opts.Store.UsersByPhone(r.Context(), t.ID, c.PhoneNumber)
	}
	if err != nil {
		a.internalError(w, r, fmt.Errorf("find the owners of a contact: %w", err))
		return false, store.User{}, false
	}
	// A contact the user already proved with a code stays theirs, whoever else later signed
	// up with the same email by another method; otherwise any other owner refuses it.
	for _, u := range owners {
		if u.ID == sess.UserID && hasPasswordlessLogin(u, t.ID, c) {
			return false, u, true
		}
	}
	for _, u := range owners {
		if u.ID != sess.UserID {
			a.opts.API.Audit(r, "Refused factor", t.ID, sess.UserID, "contact_of_another_user", "factor", factor)
			httpkit.WriteJSON(w, http.StatusOK, map[string]string{"status": contract.StatusSignInUpNotAllowed, "reason": ReasonContactTaken})
			return false, store.User{}, false
		}
	}
	if c.Email != "" && !t.Config.OTPEmail.AllowNewAddresses {
		known, err := a.emailOnAccount(r, sess.UserID, c.Email)
		if err != nil {
			a.internalError(w, r, err)
			return false, store.User{}, false
		}
		if !known {
			a.opts.API.Audit(r, "Refused factor setup", t.ID, sess.UserID, "new_email_address", "factor", factor)
			httpkit.WriteJSON(w, http.StatusOK, map[string]string{"status": contract.StatusSignInUpNotAllowed, "reason": ReasonNewEmail})
			return false, store.User{}, false
		}
	}
	if err := a.opts.MFA.CheckSetup(r.Context(), sess, factor); err != nil {
		if mfaapi.WriteSetupError(w, err) {
			a.opts.API.Audit(r, "Refused factor setup", t.ID, sess.UserID, "setup_denied", "factor", factor, "reason", err.Error())
			return false, store.User{}, false
		}
		a.internalError(w, r, err)
		return false, store.User{}, false
	}
	return true, store.User{}, true
}

// emailOnAccount reports whether email is the address of one of the user's login methods.
func (a *API) emailOnAccount(r *http.Request, userID, email string) (bool, error) {
	u, err := a.opts.Store.GetUser(r.Context(), userID)
	if err != nil {
		return false, fmt.Errorf("read the session's user: %w", err)
	}
	return slices.ContainsFunc(u.LoginMethods, func(lm store.LoginMethod) bool { return lm.Email == email }), nil
}

func hasPasswordlessLogin(u store.User, tenantID string, c passwordless.Contact) bool {
	return slices.ContainsFunc(u.LoginMethods, func(lm store.LoginMethod) bool {
		return lm.RecipeID == store.RecipePasswordless && lm.TenantID == tenantID &&
			((c.Email != "" && lm.Email == c.Email) || (c.PhoneNumber != "" && lm.PhoneNumber == c.PhoneNumber))
	})
}

func otpFactor(c passwordless.Contact) string {
	if c.Email != "" {
		return mfa.OTPEmail
	}
	return mfa.OTPPhone
}

// send writes and sends the sign-in message of a new code; on failure it answers
// GENERAL_ERROR naming the channel and returns false.
func (a *API) send(w http.ResponseWriter, r *http.Request, t tenant.Tenant, d passwordless.Device, sec passwordless.Secrets, userID string) bool {
	ch, to := delivery.Email, d.Email
	if d.PhoneNumber != "" {
		ch, to = delivery.SMS, d.PhoneNumber
	}
	sender, templates, ok := a.sender(w, r, t, ch)
	if !ok {
		return false
	}
	link := ""
	if sec.LinkCode != "" {
		var err error
		if t.Config.WebsiteDomain == "" {
			generalError(w, "tenant %q has no websiteDomain to send magic links to", t.ID)
			return false
		}
		if link, err = passwordless.MagicLink(t.Config.WebsiteDomain, t.Config.WebsiteBasePath, t.ID, d.PreAuthSessionID, sec.LinkCode); err != nil {
			a.internalError(w, r, err)
			return false
		}
	}
	msg, err := templates.SignIn(ch, to, sec.UserInputCode, link, passwordless.CodeLifetime)
	if err != nil {
		a.internalError(w, r, err)
		return false
	}
	if err := sender.Send(r.Context(), msg); err != nil {
		a.metrics.codes.WithLabelValues(string(ch), "failed").Inc()
		a.log.Error(err, "Failed to send a sign-in code", "tenant", t.ID, "channel", string(ch))
		a.opts.API.Audit(r, "Failed to send a sign-in code", t.ID, userID, "delivery_failed", "channel", string(ch))
		generalError(w, "the sign-in code could not be sent by %s; try again later", channelName(ch))
		return false
	}
	a.metrics.codes.WithLabelValues(string(ch), "sent").Inc()
	return true
}

func (a *API) createCode(w http.ResponseWriter, r *http.Request) {
	t, ok := a.opts.API.TenantOf(w, r)
	if !ok {
		return
	}
	var body struct {
		Email                           *string `json:"email"`
		PhoneNumber                     *string `json:"phoneNumber"`
		ShouldTryLinkingWithSessionUser *bool   `json:"shouldTryLinkingWithSessionUser"`
	}
	if !httpkit.Decode(w, r, &body) {
		return
	}
	if (body.Email == nil) == (body.PhoneNumber == nil) {
		httpkit.WriteError(w, http.StatusBadRequest, "", "Please provide exactly one of email or phoneNumber")
		return
	}
	contact, ch, ok := contactOf(w, body.Email, body.PhoneNumber)
	if !ok {
		return
	}
	sess, secondary, ok := a.linkingSession(w, r, t, body.ShouldTryLinkingWithSessionUser)
	if !ok {
		return
	}
	flow := passwordless.FlowUserInputCode
	if secondary {
		if _, _, ok := a.secondaryCheck(w, r, t, sess, contact, otpFactor(contact)); !ok {
			return
		}
	} else if flow, ok = firstFactorFlow(t, ch); !ok {
		httpkit.WriteJSON(w, http.StatusOK, map[string]string{"status": contract.StatusSignInUpNotAllowed,
			"reason": fmt.Sprintf("signing in with a code by %s is not enabled for tenant %q", channelName(ch), t.ID)})
		return
	}
	if !a.reserveSend(w, r, t, contact, sess.UserID, ch) {
		return
	}
	d, sec, err := passwordless.NewDevice(contact, flow, a.opts.Clock())
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	// Send first: when delivery fails nothing is stored, so no code exists that nobody got.
	if !a.send(w, r, t, d, sec, sess.UserID) {
		return
	}
	if err := a.opts.Store.CreatePasswordlessDevice(r.Context(), t.ID, d); err != nil {
		a.internalError(w, r, err)
		return
	}
	a.opts.API.Audit(r, "Sent a sign-in code", t.ID, sess.UserID, "success", "channel", string(ch), "secondary", secondary)
	httpkit.WriteJSON(w, http.StatusOK, map[string]string{"status": contract.StatusOK, "deviceId": sec.DeviceID,
		"preAuthSessionId": d.PreAuthSessionID, "flowType": string(flow)})
}

func (a *API) resendCode(w http.ResponseWriter, r *http.Request) {
	t, ok := a.opts.API.TenantOf(w, r)
	if !ok {
		return
	}
	var body struct {
		DeviceID         string `json:"deviceId"`
		PreAuthSessionID string `json:"preAuthSessionId"`
	}
	if !httpkit.Decode(w, r, &body) {
		return
	}
	if body.DeviceID == "" || body.PreAuthSessionID == "" {
		httpkit.WriteError(w, http.StatusBadRequest, "", "Please provide a deviceId and a preAuthSessionId")
		return
	}
	d, err := a.opts.Store.GetPasswordlessDevice(r.Context(), t.ID, body.PreAuthSessionID)
	if errors.Is(err, store.ErrNotFound) {
		status(w, contract.StatusRestartFlow)
		return
	}
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	now := a.opts.Clock()
	live := 0
	for _, c := range d.Codes {
		if now.Before(c.CreatedAt.Add(passwordless.CodeLifetime)) {
			live++
		}
	}
	if live >= MaxLiveCodes {
		status(w, contract.StatusRestartFlow)
		return
	}
	code, sec, err := d.Resend(body.DeviceID, now)
	if errors.Is(err, passwordless.ErrRestartFlow) {
		status(w, contract.StatusRestartFlow)
		return
	}
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	ch := delivery.Email
	if d.PhoneNumber != "" {
		ch = delivery.SMS
	}
	if !a.reserveSend(w, r, t, d.Contact, "", ch) {
		return
	}
	if !a.send(w, r, t, d, sec, "") {
		return
	}
	err = a.opts.Store.AddPasswordlessCode(r.Context(), t.ID, d.PreAuthSessionID, code)
	if errors.Is(err, store.ErrNotFound) {
		status(w, contract.StatusRestartFlow)
		return
	}
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	status(w, contract.StatusOK)
}

func (a *API) consumeCode(w http.ResponseWriter, r *http.Request) {
	t, ok := a.opts.API.TenantOf(w, r)
	if !ok {
		return
	}
	var body struct {
		PreAuthSessionID                string `json:"preAuthSessionId"`
		DeviceID                        string `json:"deviceId"`
		UserInputCode                   string `json:"userInputCode"`
		LinkCode                        string `json:"linkCode"`
		ShouldTryLinkingWithSessionUser *bool  `json:"shouldTryLinkingWithSessionUser"`
	}
	if !httpkit.Decode(w, r, &body) {
		return
	}
	in := passwordless.Input{DeviceID: body.DeviceID, UserInputCode: body.UserInputCode, LinkCode: body.LinkCode}
	switch {
	case body.PreAuthSessionID == "":
		httpkit.WriteError(w, http.StatusBadRequest, "", "Please provide preAuthSessionId")
		return
	case (in.LinkCode != "") == (in.DeviceID != "" || in.UserInputCode != ""), in.LinkCode == "" && (in.DeviceID == "" || in.UserInputCode == ""):
		httpkit.WriteError(w, http.StatusBadRequest, "", "Please provide one of (linkCode) or (deviceId+userInputCode) and not both")
		return
	}
	sess, secondary, ok := a.linkingSession(w, r, t, body.ShouldTryLinkingWithSessionUser)
	if !ok {
		return
	}
	if secondary && !a.reserveFactorAttempt(w, r, t, sess.UserID) {
		return
	}
	now := a.opts.Clock()
	d, out, err := a.opts.Store.ConsumePasswordlessCode(r.Context(), t.ID, body.PreAuthSessionID, func(d *passwordless.Device) (passwordless.Outcome, error) {
		return d.Consume(in, now)
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		status(w, contract.StatusRestartFlow)
		return
	case err != nil:
		a.internalError(w, r, err)
		return
	}
	if secondary && out.Status == passwordless.StatusOK {
		if err := a.factorAccepted(r, sess.UserID); err != nil {
			a.internalError(w, r, err)
			return
		}
	} else if secondary {
		a.metrics.attempts.WithLabelValues("wrong").Inc()
	}
	switch out.Status {
	case passwordless.StatusIncorrectCode, passwordless.StatusExpiredCode:
		a.opts.API.Audit(r, "Refused sign-in code", t.ID, sess.UserID, out.Status.String(), "failedAttempts", out.FailedAttempts)
		httpkit.WriteJSON(w, http.StatusOK, map[string]any{"status": out.Status.String(),
			"failedCodeInputAttemptCount": out.FailedAttempts, "maximumCodeInputAttempts": out.MaxAttempts})
		return
	case passwordless.StatusRestartFlow:
		a.opts.API.Audit(r, "Refused sign-in code", t.ID, sess.UserID, out.Status.String())
		status(w, out.Status.String())
		return
	}
	factor := d.FactorID(out.Method)
	if secondary {
		a.completeSecondary(w, r, t, sess, d.Contact, factor)
		return
	}
	if !slices.Contains(t.Config.FirstFactors, factor) {
		httpkit.WriteJSON(w, http.StatusOK, map[string]string{"status": contract.StatusSignInUpNotAllowed,
			"reason": fmt.Sprintf("%s is not a first factor of tenant %q", factor, t.ID)})
		return
	}
	u, recipeUserID, created, err := a.opts.Store.SignInUpPasswordless(r.Context(), store.NewPasswordlessUser{
		RecipeUserID: a.opts.NewID(), TenantID: t.ID, Email: d.Email, PhoneNumber: d.PhoneNumber, Now: now})
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	event := "Signed in"
	if created {
		event = "Signed up"
	}
	a.opts.API.Audit(r, event, t.ID, u.ID, "success", "recipe", "passwordless", "factor", factor)
	a.startSession(w, r, t, u, recipeUserID, factor, map[string]any{"status": contract.StatusOK, "createdNewRecipeUser": created, "user": httpapi.UserJSON(u)})
}

// completeSecondary finishes a secondary factor whose code was right: the linking rules are
// applied again (the account may have changed since the code was sent), a new contact becomes
// a passwordless login method of the session's user, and the factor is marked completed in
// the session, which gets new tokens.
func (a *API) completeSecondary(w http.ResponseWriter, r *http.Request, t tenant.Tenant, sess session.Session, c passwordless.Contact, factor string) {
	setup, u, ok := a.secondaryCheck(w, r, t, sess, c, factor)
	if !ok {
		return
	}
	created := false
	if setup {
		var err error
		u, _, created, err = a.opts.Store.SignInUpPasswordless(r.Context(), store.NewPasswordlessUser{
			RecipeUserID: a.opts.NewID(), UserID: sess.UserID, TenantID: t.ID, Email: c.Email, PhoneNumber: c.PhoneNumber, Now: a.opts.Clock()})
		if err != nil {
			a.internalError(w, r, err)
			return
		}
	}
	if u.ID != sess.UserID {
		// Another user took the contact between the check and the link.
		a.opts.API.Audit(r, "Refused factor", t.ID, sess.UserID, "contact_of_another_user", "factor", factor)
		httpkit.WriteJSON(w, http.StatusOK, map[string]string{"status": contract.StatusSignInUpNotAllowed, "reason": ReasonContactTaken})
		return
	}
	upd, err := a.opts.MFA.Complete(r.Context(), sess, factor)
	if err == nil {
		err = mfaapi.WriteUpdate(w, r, a.opts.Sessions, upd)
	}
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	a.opts.API.Audit(r, "Completed factor", t.ID, u.ID, "success", "factor", factor, "setup", setup)
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"status": contract.StatusOK, "createdNewRecipeUser": created, "user": httpapi.UserJSON(u)})
}

func (a *API) emailExists(w http.ResponseWriter, r *http.Request) {
	a.contactExists(w, r, "email", func(v string) (passwordless.Contact, error) {
		e, err := passwordless.NormaliseEmail(v)
		return passwordless.Contact{Email: e}, err
	})
}

func (a *API) phoneExists(w http.ResponseWriter, r *http.Request) {
	a.contactExists(w, r, "phoneNumber", func(v string) (passwordless.Contact, error) {
		p, err := passwordless.NormalisePhone(v, "")
		return passwordless.Contact{PhoneNumber: p}, err
	})
}

// contactExists answers whether the tenant has a passwordless login method for the contact
// in query parameter param; a contact that cannot be normalised does not exist.
func (a *API) contactExists(w http.ResponseWriter, r *http.Request, param string, normalise func(string) (passwordless.Contact, error)) {
	t, ok := a.opts.API.TenantOf(w, r)
	if !ok {
		return
	}
	v := r.URL.Query().Get(param)
	if v == "" {
		httpkit.WriteError(w, http.StatusBadRequest, "", "Please provide the %s as a GET param", param)
		return
	}
	c, err := normalise(v)
	if err != nil {
		httpkit.WriteJSON(w, http.StatusOK, map[string]any{"status": contract.StatusOK, "exists": false})
		return
	}
	var users []store.User
	if c.Email != "" {
		users, err = a.opts.Store.UsersByEmail(r.Context(), t.ID, c.Email)
	} else {
		users, err = a.opts.Store.UsersByPhone(r.Context(), t.ID, c.PhoneNumber)
	}
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	exists := slices.ContainsFunc(users, func(u store.User) bool { return hasPasswordlessLogin(u, t.ID, c) })
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"status": contract.StatusOK, "exists": exists})
}
