// The first-factor operations, free of HTTP: sign-up and sign-in with email and password,
// sign-in-up with a third-party provider, and sign-out. Each takes plain inputs and returns an
// outcome with the new session's tokens; the FDI handlers (signin.go, thirdparty.go,
// sessions.go) and the hosted pages (core/hostedui) are the two edges that call them.

package httpapi

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/emailpassword"
	"github.com/twofold-dev/twofold/core/session"
	"github.com/twofold-dev/twofold/core/store"
	"github.com/twofold-dev/twofold/core/tenant"
	"github.com/twofold-dev/twofold/core/thirdparty"
)

// StatusNoEmailGivenByProvider is the third-party sign-in's answer when the provider shares
// no email address.
const StatusNoEmailGivenByProvider = "NO_EMAIL_GIVEN_BY_PROVIDER"

// ErrUnknownProvider means the tenant's configuration names no provider of that id.
var ErrUnknownProvider = errors.New("unknown third-party provider")

// SignInResult is the outcome of a first-factor sign-in or sign-up.
type SignInResult struct {
	// Status is contract.StatusOK with a new session, or what refused it:
	// StatusSignInNotAllowed, StatusSignUpNotAllowed or StatusSignInUpNotAllowed (Reason says
	// why), StatusFieldError (FieldErrors), StatusWrongCredentials,
	// StatusNoEmailGivenByProvider, or StatusGeneralError (Message; RetryAfter when the
	// sign-in throttle refused it).
	Status      string
	Reason      string
	FieldErrors emailpassword.FieldErrors
	Message     string
	RetryAfter  time.Duration
	// User signed in, and whether a new login method was created for it (third party).
	User    store.User
	Created bool
	// Session and Tokens are the new session's.
	Session session.Session
	Tokens  session.Tokens
}

// firstFactorRefusal is the reason tenant t refuses factor as a first factor, empty when it
// offers it.
func firstFactorRefusal(t tenant.Tenant, factor string) string {
	if slices.Contains(t.Config.FirstFactors, factor) {
		return ""
	}
	return fmt.Sprintf("%s is not a first factor of tenant %q", factor, t.ID)
}

// SignUp creates an emailpassword user in tenant t and a session for it.
func (a *API) SignUp(ctx context.Context, c Client, t tenant.Tenant, email, password string) (SignInResult, error) {
	if reason := firstFactorRefusal(t, mfa.EmailPassword); reason != "" {
		return SignInResult{Status: contract.StatusSignUpNotAllowed, Reason: reason}, nil
	}
	u, err := a.opts.EmailPassword.SignUp(ctx, t.ID, email, password)
	var fe emailpassword.FieldErrors
	switch {
	case errors.As(err, &fe):
		return a.refusedForm("emailpassword-signup", fe), nil
	case errors.Is(err, emailpassword.ErrEmailTaken):
		a.metrics.signIns.WithLabelValues("emailpassword-signup", "email_exists").Inc()
		a.auditLine(c, "Refused sign-up", t.ID, "", "email_exists", "recipe", "emailpassword")
		return SignInResult{Status: contract.StatusFieldError,
			FieldErrors: emailpassword.FieldErrors{{ID: "email", Error: emailpassword.MsgEmailExists}}}, nil
	case err != nil:
		return SignInResult{}, err
	}
	a.metrics.signIns.WithLabelValues("emailpassword-signup", "success").Inc()
	a.auditLine(c, "Signed up", t.ID, u.ID, "success", "recipe", "emailpassword")
	return a.startSession(ctx, t, u, u.ID, mfa.EmailPassword)
}

// SignIn signs in to tenant t with email and password, within the sign-in throttle.
func (a *API) SignIn(ctx context.Context, c Client, t tenant.Tenant, email, password string) (SignInResult, error) {
	if reason := firstFactorRefusal(t, mfa.EmailPassword); reason != "" {
		return SignInResult{Status: contract.StatusSignInNotAllowed, Reason: reason}, nil
	}
	account := emailpassword.NormaliseEmail(email)
	if fe := emailpassword.ValidateSignIn(account, password); len(fe) > 0 {
		return a.refusedForm("emailpassword", fe), nil
	}
	client := clientKey(c.Addr)
	// The attempt is counted before the hash is spent, in the same transaction as the
	// decision, so concurrent guesses cannot slip past the limit; a locked account is refused
	// whether it exists or not, so the answer reveals nothing about which emails have accounts.
	res, err := a.opts.Store.ReserveSignIn(ctx, store.SignInAttempt{
		TenantID: t.ID, Account: account, Client: client, Now: a.opts.Clock(), Limits: a.opts.SignInLimits})
	if err != nil {
		return SignInResult{}, err
	}
	if !res.RefusedUntil.IsZero() {
		return a.throttled(c, t.ID, account, res), nil
	}
	u, err := a.opts.EmailPassword.SignIn(ctx, t.ID, email, password)
	var fe emailpassword.FieldErrors
	switch {
	case errors.As(err, &fe):
		return a.refusedForm("emailpassword", fe), nil
	case errors.Is(err, emailpassword.ErrWrongCredentials):
		a.metrics.signIns.WithLabelValues("emailpassword", "wrong_credentials").Inc()
		a.auditLine(c, "Refused sign-in", t.ID, "", "wrong_credentials", "recipe", "emailpassword", "email", account)
		if !res.LocksAccount.IsZero() {
			a.auditLine(c, "Locked sign-in", t.ID, "", "locked", "recipe", "emailpassword", "email", account, "lockedUntil", res.LocksAccount.UTC().Format(time.RFC3339))
		}
		return SignInResult{Status: contract.StatusWrongCredentials}, nil
	case err != nil:
		return SignInResult{}, err
	}
	if err := a.opts.Store.SignInSucceeded(ctx, t.ID, account, client); err != nil {
		return SignInResult{}, err
	}
	if res, refused := a.refuseDisabled(c, t, u, "emailpassword"); refused {
		return res, nil
	}
	a.metrics.signIns.WithLabelValues("emailpassword", "success").Inc()
	a.auditLine(c, "Signed in", t.ID, u.ID, "success", "recipe", "emailpassword")
	recipeUserID := u.ID
	for _, lm := range u.LoginMethods {
		if lm.RecipeID == store.RecipeEmailPassword && lm.TenantID == t.ID && lm.Email == account {
			recipeUserID = lm.RecipeUserID
		}
	}
	return a.startSession(ctx, t, u, recipeUserID, mfa.EmailPassword)
}

// refusedForm is a sign-in or sign-up refused for its form fields, counted for recipe.
func (a *API) refusedForm(recipe string, fe emailpassword.FieldErrors) SignInResult {
	a.metrics.signIns.WithLabelValues(recipe, "field_error").Inc()
	return SignInResult{Status: contract.StatusFieldError, FieldErrors: fe}
}

// throttled is a sign-in refused by the throttle, for the account's lock or the client's
// spent budget.
func (a *API) throttled(c Client, tenantID, account string, res store.SignInReservation) SignInResult {
	left := res.RefusedUntil.Sub(a.opts.Clock())
	minutes := max(int(left.Round(time.Minute)/time.Minute), 1)
	msg := fmt.Sprintf("Too many failed sign-in attempts for this account. Try again in %d minutes, or reset your password.", minutes)
	outcome := "locked"
	if res.ClientRefused {
		outcome = "client_throttled"
		msg = fmt.Sprintf("Too many failed sign-in attempts from your network. Try again in %d minutes.", minutes)
	}
	a.metrics.signIns.WithLabelValues("emailpassword", outcome).Inc()
	a.auditLine(c, "Refused sign-in", tenantID, "", outcome, "recipe", "emailpassword", "email", account)
	return SignInResult{Status: contract.StatusGeneralError, Message: msg, RetryAfter: left}
}

// ThirdPartySignIn is a sign-in-up with the authorization code a provider sent back.
type ThirdPartySignIn struct {
	ProviderID string
	// RedirectURI is the redirect URI registered with the provider, QueryParams the query the
	// provider redirected with (code, state), CodeVerifier the PKCE verifier.
	RedirectURI  string
	QueryParams  map[string]string
	CodeVerifier string
}

// ThirdPartySignInUp signs in to tenant t, or up, with a provider's authorization code. A
// provider the tenant does not configure is ErrUnknownProvider.
func (a *API) ThirdPartySignInUp(ctx context.Context, c Client, t tenant.Tenant, in ThirdPartySignIn) (SignInResult, error) {
	if reason := firstFactorRefusal(t, mfa.ThirdParty); reason != "" {
		return SignInResult{Status: contract.StatusSignInUpNotAllowed, Reason: reason}, nil
	}
	p, err := thirdparty.Find(t.Config, in.ProviderID)
	if err != nil {
		return SignInResult{}, fmt.Errorf("%w: the provider %s could not be found in the configuration of tenant %q", ErrUnknownProvider, in.ProviderID, t.ID)
	}
	u, created, err := a.opts.ThirdParty.SignInUp(ctx, t.ID, p, in.RedirectURI, in.QueryParams, in.CodeVerifier)
	switch {
	case errors.Is(err, thirdparty.ErrNoEmail):
		a.metrics.signIns.WithLabelValues("thirdparty", "no_email").Inc()
		a.auditLine(c, "Refused sign-in", t.ID, "", "no_email", "recipe", "thirdparty", "provider", p.ID)
		return SignInResult{Status: StatusNoEmailGivenByProvider}, nil
	case errors.Is(err, thirdparty.ErrBadRedirect), errors.Is(err, thirdparty.ErrProvider):
		a.metrics.signIns.WithLabelValues("thirdparty", "provider_error").Inc()
		a.auditLine(c, "Refused sign-in", t.ID, "", "provider_error", "recipe", "thirdparty", "provider", p.ID, "reason", err.Error())
		return SignInResult{Status: contract.StatusGeneralError, Message: err.Error()}, nil
	case err != nil:
		return SignInResult{}, err
	}
	if res, refused := a.refuseDisabled(c, t, u, "thirdparty"); refused {
		return res, nil
	}
	a.metrics.signIns.WithLabelValues("thirdparty", "success").Inc()
	a.auditLine(c, "Signed in", t.ID, u.ID, "success", "recipe", "thirdparty", "provider", p.ID, "createdNewRecipeUser", created)
	recipeUserID := u.ID
	for _, lm := range u.LoginMethods {
		if lm.RecipeID == store.RecipeThirdParty && lm.ThirdPartyID == p.ID {
			recipeUserID = lm.RecipeUserID
		}
	}
	res, err := a.startSession(ctx, t, u, recipeUserID, mfa.ThirdParty)
	res.Created = created
	return res, err
}

// startSession creates a session for u whose st-mfa claim records factor as completed now.
func (a *API) startSession(ctx context.Context, t tenant.Tenant, u store.User, recipeUserID, factor string) (SignInResult, error) {
	claims, err := a.opts.Claims(ctx, a.opts.Store, t, u, mfa.Completed{factor: a.opts.Clock().Unix()})
	if err != nil {
		return SignInResult{}, fmt.Errorf("compute session claims: %w", err)
	}
	sess, tokens, err := a.opts.Sessions.Create(ctx, t.ID, u.ID, recipeUserID, claims)
	if errors.Is(err, session.ErrUserDisabled) {
		// Disabled between the check and the session: refused all the same.
		return SignInResult{Status: contract.StatusSignInNotAllowed, Reason: MsgUserDisabled}, nil
	}
	if err != nil {
		return SignInResult{}, err
	}
	return SignInResult{Status: contract.StatusOK, User: u, Session: sess, Tokens: tokens}, nil
}

// SignOut revokes session sess.
func (a *API) SignOut(ctx context.Context, c Client, sess session.Session) error {
	if _, err := a.opts.Sessions.Revoke(ctx, sess.Handle); err != nil && !errors.Is(err, session.ErrUnauthorised) {
		return err
	}
	a.metrics.sessions.WithLabelValues("signout", "success").Inc()
	a.auditLine(c, "Signed out", sess.TenantID, sess.UserID, "success", "session", sess.Handle)
	return nil
}
