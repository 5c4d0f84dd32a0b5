package accountapi

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/delivery"
	"github.com/twofold-dev/twofold/core/httpapi"
	"github.com/twofold-dev/twofold/core/mfaengine"
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

// ParseContact normalises the email (ch delivery.Email) or phone number (delivery.SMS) a code
// is asked for, or returns a GENERAL_ERROR refusal with SuperTokens' message when it is
// invalid.
func ParseContact(ch delivery.Channel, value string) (passwordless.Contact, error) {
	if ch != delivery.SMS {
		e, err := passwordless.NormaliseEmail(value)
		if err != nil {
			return passwordless.Contact{}, refused("Email is invalid: %v", err)
		}
		return passwordless.Contact{Email: e}, nil
	}
	p, err := passwordless.NormalisePhone(value, "")
	if err != nil {
		return passwordless.Contact{}, refused("Phone number is invalid: %v", err)
	}
	return passwordless.Contact{PhoneNumber: p}, nil
}

// channelOf is the channel a code for c goes by.
func channelOf(c passwordless.Contact) delivery.Channel {
	if c.PhoneNumber != "" {
		return delivery.SMS
	}
	return delivery.Email
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

// secondaryCheck applies the account-linking rules to a secondary factor for contact c: a
// completion when the session's user has a passwordless login method for it, refused
// (SIGN_IN_UP_NOT_ALLOWED) when another user has it, otherwise a setup that must pass the
// setup rule (a *mfaengine.SetupDeniedError when refused). For a completion it also returns
// the session's user, who owns the contact.
func (a *API) secondaryCheck(ctx context.Context, cl httpapi.Client, t tenant.Tenant, sess session.Session, c passwordless.Contact, factor string) (setup bool, owner store.User, err error) {
	var owners []store.User
	if c.Email != "" {
		owners, err = a.opts.Store.UsersByEmail(ctx, t.ID, c.Email)
	} else {
		owners, err = a.opts.Store.UsersByPhone(ctx, t.ID, c.PhoneNumber)
	}
	if err != nil {
		return false, store.User{}, fmt.Errorf("find the owners of a contact: %w", err)
	}
	// A contact the user already proved with a code stays theirs, whoever else later signed
	// up with the same email by another method; otherwise any other owner refuses it.
	for _, u := range owners {
		if u.ID == sess.UserID && hasPasswordlessLogin(u, t.ID, c) {
			return false, u, nil
		}
	}
	for _, u := range owners {
		if u.ID != sess.UserID {
			a.opts.API.AuditClient(cl, "Refused factor", t.ID, sess.UserID, "contact_of_another_user", "factor", factor)
			return false, store.User{}, &Refusal{Status: contract.StatusSignInUpNotAllowed, Reason: ReasonContactTaken}
		}
	}
	if c.Email != "" && !t.Config.OTPEmail.AllowNewAddresses {
		known, err := a.emailOnAccount(ctx, sess.UserID, c.Email)
		if err != nil {
			return false, store.User{}, err
		}
		if !known {
			a.opts.API.AuditClient(cl, "Refused factor setup", t.ID, sess.UserID, "new_email_address", "factor", factor)
			return false, store.User{}, &Refusal{Status: contract.StatusSignInUpNotAllowed, Reason: ReasonNewEmail}
		}
	}
	if err := a.opts.MFA.CheckSetup(ctx, sess, factor); err != nil {
		var denied *mfaengine.SetupDeniedError
		if errors.As(err, &denied) {
			a.opts.API.AuditClient(cl, "Refused factor setup", t.ID, sess.UserID, "setup_denied", "factor", factor, "reason", err.Error())
		}
		return false, store.User{}, err
	}
	return true, store.User{}, nil
}

// emailOnAccount reports whether email is the address of one of the user's login methods.
func (a *API) emailOnAccount(ctx context.Context, userID, email string) (bool, error) {
	u, err := a.opts.Store.GetUser(ctx, userID)
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

// send writes and sends the sign-in message of a new code; a delivery failure is a
// GENERAL_ERROR refusal naming the channel.
func (a *API) send(ctx context.Context, cl httpapi.Client, t tenant.Tenant, d passwordless.Device, sec passwordless.Secrets, userID string) error {
	ch, to := delivery.Email, d.Email
	if d.PhoneNumber != "" {
		ch, to = delivery.SMS, d.PhoneNumber
	}
	sender, templates, err := a.sender(t, ch)
	if err != nil {
		return err
	}
	link := ""
	if sec.LinkCode != "" {
		if t.Config.WebsiteDomain == "" {
			return refused("tenant %q has no websiteDomain to send magic links to", t.ID)
		}
		if link, err = passwordless.MagicLink(t.Config.WebsiteDomain, t.Config.WebsiteBasePath, t.ID, d.PreAuthSessionID, sec.LinkCode); err != nil {
			return err
		}
	}
	msg, err := templates.SignIn(ch, to, sec.UserInputCode, link, passwordless.CodeLifetime)
	if err != nil {
		return err
	}
	if err := sender.Send(ctx, msg); err != nil {
		a.metrics.codes.WithLabelValues(string(ch), "failed").Inc()
		a.log.Error(err, "Failed to send a sign-in code", "tenant", t.ID, "channel", string(ch))
		a.opts.API.AuditClient(cl, "Failed to send a sign-in code", t.ID, userID, "delivery_failed", "channel", string(ch))
		return refused("the sign-in code could not be sent by %s; try again later", channelName(ch))
	}
	a.metrics.codes.WithLabelValues(string(ch), "sent").Inc()
	return nil
}

// CodeSent is a code just sent: the device id only the client holds, the flow's id and its
// type.
type CodeSent struct {
	DeviceID         string
	PreAuthSessionID string
	Flow             passwordless.FlowType
}

// CreateCode sends a code (or magic link) to contact c of tenant t. Without linking it is a
// first factor, whose flow type follows the tenant's first factors; with linking, the session
// a secondary factor is for, the account-linking rules and the setup rule apply first. It is
// sent before it is stored, so a delivery failure leaves no usable code behind.
func (a *API) CreateCode(ctx context.Context, cl httpapi.Client, t tenant.Tenant, c passwordless.Contact, linking *session.Session) (CodeSent, error) {
	ch := channelOf(c)
	var userID string
	flow := passwordless.FlowUserInputCode
	if linking != nil {
		userID = linking.UserID
		if _, _, err := a.secondaryCheck(ctx, cl, t, *linking, c, otpFactor(c)); err != nil {
			return CodeSent{}, err
		}
	} else if f, ok := firstFactorFlow(t, ch); ok {
		flow = f
	} else {
		return CodeSent{}, &Refusal{Status: contract.StatusSignInUpNotAllowed,
			Reason: fmt.Sprintf("signing in with a code by %s is not enabled for tenant %q", channelName(ch), t.ID)}
	}
	if err := a.reserveSend(ctx, cl, t, c, userID, ch); err != nil {
		return CodeSent{}, err
	}
	d, sec, err := passwordless.NewDevice(c, flow, a.opts.Clock())
	if err != nil {
		return CodeSent{}, err
	}
	// Send first: when delivery fails nothing is stored, so no code exists that nobody got.
	if err := a.send(ctx, cl, t, d, sec, userID); err != nil {
		return CodeSent{}, err
	}
	if err := a.opts.Store.CreatePasswordlessDevice(ctx, t.ID, d); err != nil {
		return CodeSent{}, err
	}
	a.opts.API.AuditClient(cl, "Sent a sign-in code", t.ID, userID, "success", "channel", string(ch), "secondary", linking != nil)
	return CodeSent{DeviceID: sec.DeviceID, PreAuthSessionID: d.PreAuthSessionID, Flow: flow}, nil
}

// restartFlow is the refusal that sends the client back to ask for a new code.
var restartFlow = &Refusal{Status: contract.StatusRestartFlow}

// ResendCode sends another code of the device preAuthSessionID to its contact. An unknown
// device, a wrong device id, or a device with MaxLiveCodes live codes is a RESTART_FLOW_ERROR
// refusal.
func (a *API) ResendCode(ctx context.Context, cl httpapi.Client, t tenant.Tenant, deviceID, preAuthSessionID string) error {
	d, err := a.opts.Store.GetPasswordlessDevice(ctx, t.ID, preAuthSessionID)
	if errors.Is(err, store.ErrNotFound) {
		return restartFlow
	}
	if err != nil {
		return err
	}
	now := a.opts.Clock()
	live := 0
	for _, c := range d.Codes {
		if now.Before(c.CreatedAt.Add(passwordless.CodeLifetime)) {
			live++
		}
	}
	if live >= MaxLiveCodes {
		return restartFlow
	}
	code, sec, err := d.Resend(deviceID, now)
	if errors.Is(err, passwordless.ErrRestartFlow) {
		return restartFlow
	}
	if err != nil {
		return err
	}
	if err := a.reserveSend(ctx, cl, t, d.Contact, "", channelOf(d.Contact)); err != nil {
		return err
	}
	if err := a.send(ctx, cl, t, d, sec, ""); err != nil {
		return err
	}
	err = a.opts.Store.AddPasswordlessCode(ctx, t.ID, d.PreAuthSessionID, code)
	if errors.Is(err, store.ErrNotFound) {
		return restartFlow
	}
	return err
}

// Consumed is the outcome of a code entry.
type Consumed struct {
	// Status is contract.StatusOK, or the code's fault: StatusIncorrectUserInputCode or
	// StatusExpiredUserInputCode (FailedAttempts of MaxAttempts), or StatusRestartFlow.
	Status         string
	FailedAttempts int
	MaxAttempts    int
	// User signed in or whose factor was completed; Created when a new login method was made.
	User    store.User
	Created bool
	// Session is the new session of a first factor, or the session whose secondary factor was
	// completed. Tokens are its new tokens; nil for a secondary factor whose completion did
	// not change the session's claim.
	Session session.Session
	Tokens  *session.Tokens
}

// ConsumeCode checks a code (or link code) of the device preAuthSessionID. Without linking a
// right code signs the contact's owner in, or up, with a new session; with linking, the
// session a secondary factor is for, the entry is counted in the user's lockout first, and a
// right code completes otp-email or otp-phone in that session (adding the contact to the user
// when it is a setup).
func (a *API) ConsumeCode(ctx context.Context, cl httpapi.Client, t tenant.Tenant, preAuthSessionID string, in passwordless.Input, linking *session.Session) (Consumed, error) {
	var userID string
	if linking != nil {
		userID = linking.UserID
		if err := a.reserveFactorAttempt(ctx, cl, t, userID); err != nil {
			return Consumed{}, err
		}
	}
	now := a.opts.Clock()
	d, out, err := a.opts.Store.ConsumePasswordlessCode(ctx, t.ID, preAuthSessionID, func(d *passwordless.Device) (passwordless.Outcome, error) {
		return d.Consume(in, now)
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return Consumed{Status: contract.StatusRestartFlow}, nil
	case err != nil:
		return Consumed{}, err
	}
	if linking != nil && out.Status == passwordless.StatusOK {
		if err := a.factorAccepted(ctx, userID); err != nil {
			return Consumed{}, err
		}
	} else if linking != nil {
		a.metrics.attempts.WithLabelValues("wrong").Inc()
	}
	switch out.Status {
	case passwordless.StatusIncorrectCode, passwordless.StatusExpiredCode:
		a.opts.API.AuditClient(cl, "Refused sign-in code", t.ID, userID, out.Status.String(), "failedAttempts", out.FailedAttempts)
		return Consumed{Status: out.Status.String(), FailedAttempts: out.FailedAttempts, MaxAttempts: out.MaxAttempts}, nil
	case passwordless.StatusRestartFlow:
		a.opts.API.AuditClient(cl, "Refused sign-in code", t.ID, userID, out.Status.String())
		return Consumed{Status: out.Status.String()}, nil
	}
	factor := d.FactorID(out.Method)
	if linking != nil {
		return a.completeSecondary(ctx, cl, t, *linking, d.Contact, factor)
	}
	if !slices.Contains(t.Config.FirstFactors, factor) {
		return Consumed{}, &Refusal{Status: contract.StatusSignInUpNotAllowed, Reason: fmt.Sprintf("%s is not a first factor of tenant %q", factor, t.ID)}
	}
	u, recipeUserID, created, err := a.opts.Store.SignInUpPasswordless(ctx, store.NewPasswordlessUser{
		RecipeUserID: a.opts.NewID(), TenantID: t.ID, Email: d.Email, PhoneNumber: d.PhoneNumber, Now: now})
	if err != nil {
		return Consumed{}, err
	}
	event := "Signed in"
	if created {
		event = "Signed up"
	}
	a.opts.API.AuditClient(cl, event, t.ID, u.ID, "success", "recipe", "passwordless", "factor", factor)
	sess, tokens, err := a.startSession(ctx, t, u, recipeUserID, factor)
	if err != nil {
		return Consumed{}, err
	}
	return Consumed{Status: contract.StatusOK, User: u, Created: created, Session: sess, Tokens: &tokens}, nil
}

// completeSecondary finishes a secondary factor whose code was right: the linking rules are
// applied again (the account may have changed since the code was sent), a new contact becomes
// a passwordless login method of the session's user, and the factor is marked completed in
// the session, which gets new tokens.
func (a *API) completeSecondary(ctx context.Context, cl httpapi.Client, t tenant.Tenant, sess session.Session, c passwordless.Contact, factor string) (Consumed, error) {
	setup, u, err := a.secondaryCheck(ctx, cl, t, sess, c, factor)
	if err != nil {
		return Consumed{}, err
	}
	created := false
	if setup {
		u, _, created, err = a.opts.Store.SignInUpPasswordless(ctx, store.NewPasswordlessUser{
			RecipeUserID: a.opts.NewID(), UserID: sess.UserID, TenantID: t.ID, Email: c.Email, PhoneNumber: c.PhoneNumber, Now: a.opts.Clock()})
		if err != nil {
			return Consumed{}, err
		}
	}
	if u.ID != sess.UserID {
		// Another user took the contact between the check and the link.
		a.opts.API.AuditClient(cl, "Refused factor", t.ID, sess.UserID, "contact_of_another_user", "factor", factor)
		return Consumed{}, &Refusal{Status: contract.StatusSignInUpNotAllowed, Reason: ReasonContactTaken}
	}
	upd, err := a.opts.MFA.Complete(ctx, sess, factor)
	if err != nil {
		return Consumed{}, err
	}
	a.opts.API.AuditClient(cl, "Completed factor", t.ID, u.ID, "success", "factor", factor, "setup", setup)
	return Consumed{Status: contract.StatusOK, User: u, Created: created, Session: upd.Session, Tokens: upd.Tokens}, nil
}
