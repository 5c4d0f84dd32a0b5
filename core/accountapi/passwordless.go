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
	"github.com/twofold-dev/twofold/core/passwordless"
	"github.com/twofold-dev/twofold/core/session"
	"github.com/twofold-dev/twofold/core/store"
	"github.com/twofold-dev/twofold/core/tenant"
)

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

// HasPasswordlessLogin reports whether user u has a passwordless login method of tenantID for
// contact c.
func HasPasswordlessLogin(u store.User, tenantID string, c passwordless.Contact) bool {
	return slices.ContainsFunc(u.LoginMethods, func(lm store.LoginMethod) bool {
		return lm.RecipeID == store.RecipePasswordless && lm.TenantID == tenantID &&
			((c.Email != "" && lm.Email == c.Email) || (c.PhoneNumber != "" && lm.PhoneNumber == c.PhoneNumber))
	})
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

// CreateCode sends a first-factor code (or magic link) to contact c of tenant t; its flow type
// follows the tenant's first factors.
func (a *API) CreateCode(ctx context.Context, cl httpapi.Client, t tenant.Tenant, c passwordless.Contact) (CodeSent, error) {
	ch := channelOf(c)
	flow, ok := firstFactorFlow(t, ch)
	if !ok {
		return CodeSent{}, &Refusal{Status: contract.StatusSignInUpNotAllowed,
			Reason: fmt.Sprintf("signing in with a code by %s is not enabled for tenant %q", channelName(ch), t.ID)}
	}
	return a.SendCode(ctx, cl, t, c, flow, "")
}

// SendCode sends a new code of flow to contact c of tenant t, within the send limits of the
// contact and, for a second factor, of userID, the user it is sent for. It is sent before it
// is stored, so a delivery failure leaves no usable code behind.
func (a *API) SendCode(ctx context.Context, cl httpapi.Client, t tenant.Tenant, c passwordless.Contact, flow passwordless.FlowType, userID string) (CodeSent, error) {
	ch := channelOf(c)
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
	a.opts.API.AuditClient(cl, "Sent a sign-in code", t.ID, userID, "success", "channel", string(ch), "secondary", userID != "")
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
	// Session is the new session of a first factor, or the session whose second factor was
	// completed. Tokens are its new tokens; nil for a second factor whose completion did not
	// change the session's claim.
	Session session.Session
	Tokens  *session.Tokens
}

// ConsumeCode checks a first-factor code (or link code) of the device preAuthSessionID: a
// right one signs the contact's owner in, or up, with a new session. The code's check, the
// user, the MFA policy's reads and the new session are one store transaction; only the
// session's signature waits until it has committed.
func (a *API) ConsumeCode(ctx context.Context, cl httpapi.Client, t tenant.Tenant, preAuthSessionID string, in passwordless.Input) (Consumed, error) {
	now := a.opts.Clock()
	var (
		out          passwordless.Outcome
		gone         bool
		factor       string
		refusal      *Refusal
		disabled     bool
		u            store.User
		recipeUserID string
		created      bool
		pending      session.Pending
	)
	err := a.opts.Store.Write(ctx, func(tx store.Tx) error {
		out, gone, factor, refusal, disabled, created = passwordless.Outcome{}, false, "", nil, false, false
		d, o, err := tx.ConsumePasswordlessCode(ctx, t.ID, preAuthSessionID, func(d *passwordless.Device) (passwordless.Outcome, error) {
			return d.Consume(in, now)
		})
		if errors.Is(err, store.ErrNotFound) {
			gone = true
			return nil
		}
		if out = o; err != nil || out.Status != passwordless.StatusOK {
			return err
		}
		// From here the code is used up, whatever the sign-in comes to.
		factor = d.FactorID(out.Method)
		if !slices.Contains(t.Config.FirstFactors, factor) {
			refusal = &Refusal{Status: contract.StatusSignInUpNotAllowed, Reason: fmt.Sprintf("%s is not a first factor of tenant %q", factor, t.ID)}
			return nil
		}
		if u, recipeUserID, created, err = tx.SignInUpPasswordless(ctx, store.NewPasswordlessUser{
			RecipeUserID: a.opts.NewID(), TenantID: t.ID, Email: d.Email, PhoneNumber: d.PhoneNumber, Now: now}); err != nil {
			return err
		}
		claims, err := a.opts.Claims(ctx, tx, t, u, mfa.Completed{factor: now.Unix()})
		if err != nil {
			return fmt.Errorf("compute session claims: %w", err)
		}
		if pending, err = a.opts.Sessions.Prepare(ctx, t.ID, u.ID, recipeUserID, claims); err != nil {
			return err
		}
		// The store refuses a disabled user's session; the code stays used up.
		err = a.opts.Sessions.Store(ctx, tx, pending)
		if disabled = errors.Is(err, session.ErrUserDisabled); disabled {
			return nil
		}
		return err
	})
	switch {
	case err != nil:
		return Consumed{}, err
	case gone:
		return Consumed{Status: contract.StatusRestartFlow}, nil
	}
	if res, right := a.judged(cl, t, "", out); !right {
		return res, nil
	}
	if refusal != nil {
		return Consumed{}, refusal
	}
	if disabled {
		a.opts.API.AuditClient(cl, "Refused sign-in", t.ID, u.ID, "user_disabled", "recipe", "passwordless", "factor", factor)
		return Consumed{}, &Refusal{Status: contract.StatusSignInUpNotAllowed, Reason: httpapi.MsgUserDisabled}
	}
	event := "Signed in"
	if created {
		event = "Signed up"
	}
	a.opts.API.AuditClient(cl, event, t.ID, u.ID, "success", "recipe", "passwordless", "factor", factor)
	sess, tokens, err := a.opts.Sessions.Issue(ctx, pending)
	if err != nil {
		return Consumed{}, err
	}
	return Consumed{Status: contract.StatusOK, User: u, Created: created, Session: sess, Tokens: &tokens}, nil
}

// ConsumeDevice checks a code (or link code) against the device preAuthSessionID in one store
// transaction, so concurrent guesses are all counted. userID is the user a second factor is
// entered for (empty for a first factor); counted, when set, learns whether the code was right
// as soon as the device was found and updated. A wrong, expired or used-up code is the result's
// Status; for a right one it returns the device and the factor it completes.
func (a *API) ConsumeDevice(ctx context.Context, cl httpapi.Client, t tenant.Tenant, preAuthSessionID string, in passwordless.Input, userID string,
	counted func(right bool) error) (passwordless.Device, string, Consumed, error) {
	now := a.opts.Clock()
	d, out, err := a.opts.Store.ConsumePasswordlessCode(ctx, t.ID, preAuthSessionID, func(d *passwordless.Device) (passwordless.Outcome, error) {
		return d.Consume(in, now)
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return passwordless.Device{}, "", Consumed{Status: contract.StatusRestartFlow}, nil
	case err != nil:
		return passwordless.Device{}, "", Consumed{}, err
	}
	if counted != nil {
		if err := counted(out.Status == passwordless.StatusOK); err != nil {
			return passwordless.Device{}, "", Consumed{}, err
		}
	}
	if res, right := a.judged(cl, t, userID, out); !right {
		return passwordless.Device{}, "", res, nil
	}
	return d, d.FactorID(out.Method), Consumed{Status: contract.StatusOK}, nil
}

// judged is a code check's outcome as the answer reports it, with a wrong, expired or
// used-up code audited; right reports a right code.
func (a *API) judged(cl httpapi.Client, t tenant.Tenant, userID string, out passwordless.Outcome) (res Consumed, right bool) {
	switch out.Status {
	case passwordless.StatusIncorrectCode, passwordless.StatusExpiredCode:
		a.opts.API.AuditClient(cl, "Refused sign-in code", t.ID, userID, out.Status.String(), "failedAttempts", out.FailedAttempts)
		return Consumed{Status: out.Status.String(), FailedAttempts: out.FailedAttempts, MaxAttempts: out.MaxAttempts}, false
	case passwordless.StatusRestartFlow:
		a.opts.API.AuditClient(cl, "Refused sign-in code", t.ID, userID, out.Status.String())
		return Consumed{Status: out.Status.String()}, false
	}
	return Consumed{Status: contract.StatusOK}, true
}
