package otp

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/accountapi"
	"github.com/twofold-dev/twofold/core/attempts"
	"github.com/twofold-dev/twofold/core/factors"
	"github.com/twofold-dev/twofold/core/httpapi"
	"github.com/twofold-dev/twofold/core/mfaengine"
	"github.com/twofold-dev/twofold/core/passwordless"
	"github.com/twofold-dev/twofold/core/session"
	"github.com/twofold-dev/twofold/core/store"
	"github.com/twofold-dev/twofold/core/tenant"
)

// ReasonContactTaken is the SIGN_IN_UP_NOT_ALLOWED reason when a second factor's email or
// phone number belongs to another user.
const ReasonContactTaken = "Cannot complete factor setup as the account info is already associated with another primary user. Please contact support."

// ReasonNewEmail is the SIGN_IN_UP_NOT_ALLOWED reason when otp-email is set up with an address
// that is not on the account and the tenant does not allow new addresses.
const ReasonNewEmail = "Email codes can only be set up with an email address already on your account."

//go:embed templates/*.html
var templates embed.FS

// Options are the factor's dependencies: those every factor has, and the account flows whose
// codes it sends and checks.
type Options struct {
	factors.Options
	// API gives the tenant and the client of a request, and the audit log.
	API *httpapi.API
	// Account sends and checks the codes, and serves first-factor codes.
	Account *accountapi.API
	// Registry receives the second-factor code attempts metric; a fresh registry when nil.
	Registry prometheus.Registerer
	// NewID makes the ids of new login methods; uuid.NewString when nil.
	NewID func() string
}

// Factor is the otp-email and otp-phone factor: its operations, and Register for its endpoints
// and pages.
type Factor struct {
	opts     Options
	attempts *prometheus.CounterVec
}

// New returns the factor and adds its hosted steps to opts.Pages.
func New(opts Options) (*Factor, error) {
	if opts.API == nil || opts.Account == nil {
		return nil, errors.New("otp: Options.API and Options.Account are required")
	}
	opts.Options = opts.Options.WithDefaults()
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	if opts.NewID == nil {
		opts.NewID = uuid.NewString
	}
	f := &Factor{opts: opts, attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "twofold", Subsystem: "core", Name: "second_factor_code_attempts_total",
		Help: "Second-factor code entries by outcome: accepted, wrong, or locked (refused by the user's lockout, shared with TOTP and recovery codes).",
	}, []string{"outcome"})}
	if err := opts.Registry.Register(f.attempts); err != nil {
		return nil, fmt.Errorf("otp: register metrics: %w", err)
	}
	if opts.Pages != nil {
		if err := opts.Pages.AddFactor(mfa.OTPEmail, templates); err != nil {
			return nil, err
		}
		// Both factors share the templates added with otp-email.
		if err := opts.Pages.AddFactor(mfa.OTPPhone, embed.FS{}); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// Register adds the FDI endpoints and, with Options.Pages, the hosted steps to mux.
func (f *Factor) Register(mux *http.ServeMux) {
	f.registerFDI(mux)
	if f.opts.Pages != nil {
		f.registerPages(mux)
	}
}

// factorOf is the factor a code to contact c completes.
func factorOf(c passwordless.Contact) string {
	if c.Email != "" {
		return mfa.OTPEmail
	}
	return mfa.OTPPhone
}

// Send sends a code to contact c for the second factor of session sess in tenant t, after the
// rules of the package doc: a refusal is an *accountapi.Refusal or a
// *mfaengine.SetupDeniedError.
func (f *Factor) Send(ctx context.Context, cl httpapi.Client, t tenant.Tenant, sess session.Session, c passwordless.Contact) (accountapi.CodeSent, error) {
	if _, _, err := f.check(ctx, cl, t, sess, c, factorOf(c)); err != nil {
		return accountapi.CodeSent{}, err
	}
	return f.opts.Account.SendCode(ctx, cl, t, c, passwordless.FlowUserInputCode, sess.UserID)
}

// Verify checks a code of the device preAuthSessionID for the second factor of session sess.
// The entry is counted in the user's lockout first (a locked user gets a GENERAL_ERROR
// refusal); a right code completes otp-email or otp-phone in the session, adding the contact
// to the user when it is a setup, and the result carries the session's new tokens.
func (f *Factor) Verify(ctx context.Context, cl httpapi.Client, t tenant.Tenant, sess session.Session, preAuthSessionID string, in passwordless.Input) (accountapi.Consumed, error) {
	if err := f.reserveAttempt(ctx, cl, t, sess.UserID); err != nil {
		return accountapi.Consumed{}, err
	}
	d, factor, res, err := f.opts.Account.ConsumeDevice(ctx, cl, t, preAuthSessionID, in, sess.UserID, func(right bool) error {
		if right {
			return f.accepted(ctx, sess.UserID)
		}
		f.attempts.WithLabelValues("wrong").Inc()
		return nil
	})
	if err != nil || res.Status != contract.StatusOK {
		return res, err
	}
	return f.complete(ctx, cl, t, sess, d.Contact, factor)
}

// complete finishes a second factor whose code was right: the rules are applied again (the
// account may have changed since the code was sent), a new contact becomes a passwordless
// login method of the session's user, and the factor is marked completed in the session, which
// gets new tokens.
func (f *Factor) complete(ctx context.Context, cl httpapi.Client, t tenant.Tenant, sess session.Session, c passwordless.Contact, factor string) (accountapi.Consumed, error) {
	setup, u, err := f.check(ctx, cl, t, sess, c, factor)
	if err != nil {
		return accountapi.Consumed{}, err
	}
	created := false
	if setup {
		u, _, created, err = f.opts.Store.SignInUpPasswordless(ctx, store.NewPasswordlessUser{
			RecipeUserID: f.opts.NewID(), UserID: sess.UserID, TenantID: t.ID, Email: c.Email, PhoneNumber: c.PhoneNumber, Now: f.opts.Clock()})
		if err != nil {
			return accountapi.Consumed{}, err
		}
	}
	if u.ID != sess.UserID {
		// Another user took the contact between the check and the link.
		f.opts.API.AuditClient(cl, "Refused factor", t.ID, sess.UserID, "contact_of_another_user", "factor", factor)
		return accountapi.Consumed{}, &accountapi.Refusal{Status: contract.StatusSignInUpNotAllowed, Reason: ReasonContactTaken}
	}
	upd, err := f.opts.Engine.Complete(ctx, sess, factor)
	if err != nil {
		return accountapi.Consumed{}, err
	}
	f.opts.API.AuditClient(cl, "Completed factor", t.ID, u.ID, "success", "factor", factor, "setup", setup)
	return accountapi.Consumed{Status: contract.StatusOK, User: u, Created: created, Session: upd.Session, Tokens: upd.Tokens}, nil
}

// check applies the account-linking rules to a second factor for contact c: a completion when
// the session's user has a passwordless login method for it (it returns that user), refused
// (SIGN_IN_UP_NOT_ALLOWED) when another user has it, otherwise a setup that must pass the
// setup rule.
func (f *Factor) check(ctx context.Context, cl httpapi.Client, t tenant.Tenant, sess session.Session, c passwordless.Contact, factor string) (setup bool, owner store.User, err error) {
	var owners []store.User
	if c.Email != "" {
		owners, err = f.opts.Store.UsersByEmail(ctx, t.ID, c.Email)
	} else {
		owners, err = f.opts.Store.UsersByPhone(ctx, t.ID, c.PhoneNumber)
	}
	if err != nil {
		return false, store.User{}, fmt.Errorf("find the owners of a contact: %w", err)
	}
	// A contact the user already proved with a code stays theirs, whoever else later signed
	// up with the same email by another method; otherwise any other owner refuses it.
	for _, u := range owners {
		if u.ID == sess.UserID && accountapi.HasPasswordlessLogin(u, t.ID, c) {
			return false, u, nil
		}
	}
	for _, u := range owners {
		if u.ID != sess.UserID {
			f.opts.API.AuditClient(cl, "Refused factor", t.ID, sess.UserID, "contact_of_another_user", "factor", factor)
			return false, store.User{}, &accountapi.Refusal{Status: contract.StatusSignInUpNotAllowed, Reason: ReasonContactTaken}
		}
	}
	if c.Email != "" && !t.Config.OTPEmail.AllowNewAddresses {
		known, err := f.emailOnAccount(ctx, sess.UserID, c.Email)
		if err != nil {
			return false, store.User{}, err
		}
		if !known {
			f.opts.API.AuditClient(cl, "Refused factor setup", t.ID, sess.UserID, "new_email_address", "factor", factor)
			return false, store.User{}, &accountapi.Refusal{Status: contract.StatusSignInUpNotAllowed, Reason: ReasonNewEmail}
		}
	}
	if err := f.opts.Engine.CheckSetup(ctx, sess, factor); err != nil {
		var denied *mfaengine.SetupDeniedError
		if errors.As(err, &denied) {
			f.opts.API.AuditClient(cl, "Refused factor setup", t.ID, sess.UserID, "setup_denied", "factor", factor, "reason", err.Error())
		}
		return false, store.User{}, err
	}
	return true, store.User{}, nil
}

// emailOnAccount reports whether email is the address of one of the user's login methods.
func (f *Factor) emailOnAccount(ctx context.Context, userID, email string) (bool, error) {
	u, err := f.opts.Store.GetUser(ctx, userID)
	if err != nil {
		return false, fmt.Errorf("read the session's user: %w", err)
	}
	return slices.ContainsFunc(u.LoginMethods, func(lm store.LoginMethod) bool { return lm.Email == email }), nil
}

// reserveAttempt counts a code entry of the user as a failure before the code is checked, in
// the lockout TOTP and recovery codes share, so concurrent guesses cannot pass a check made
// before any of them was counted. A locked user gets a GENERAL_ERROR refusal with
// retryAfterMs. accepted gives the attempt back.
func (f *Factor) reserveAttempt(ctx context.Context, cl httpapi.Client, t tenant.Tenant, userID string) error {
	now := f.opts.Clock()
	var retry time.Duration
	_, err := f.opts.Store.UpdateAttemptLimit(ctx, userID, func(l store.AttemptLimit) store.AttemptLimit {
		lim := attempts.Limiter(l)
		if retry = lim.RetryAfter(now); retry > 0 {
			return l
		}
		lim.Fail(now)
		return store.AttemptLimit(lim)
	})
	if err != nil {
		return err
	}
	if retry == 0 {
		return nil
	}
	f.attempts.WithLabelValues("locked").Inc()
	f.opts.API.AuditClient(cl, "Refused sign-in code", t.ID, userID, "locked")
	return &accountapi.Refusal{Status: contract.StatusGeneralError, RetryAfter: retry, Retry: true,
		Message: fmt.Sprintf("Too many wrong codes. Try again in %s.", accountapi.Minutes(retry))}
}

// accepted clears the user's failed attempts after a right code.
func (f *Factor) accepted(ctx context.Context, userID string) error {
	f.attempts.WithLabelValues("accepted").Inc()
	_, err := f.opts.Store.UpdateAttemptLimit(ctx, userID, func(store.AttemptLimit) store.AttemptLimit { return store.AttemptLimit{} })
	return err
}
