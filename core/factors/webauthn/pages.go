package webauthn

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"net/http"
	"slices"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/accountapi"
	"github.com/twofold-dev/twofold/core/hostedui"
	"github.com/twofold-dev/twofold/core/mfaengine"
	"github.com/twofold-dev/twofold/core/session"
	"github.com/twofold-dev/twofold/core/store"
	"github.com/twofold-dev/twofold/core/tenant"
)

// This file is the hosted-page edge: the passkey step of the hosted MFA pages, rendered by
// core/hostedui with templates/webauthn.html. The page carries options the core generated;
// static/webauthn.js has the browser answer them and posts the answer to the verify action,
// which calls the operations directly.

// Paths of the hosted step.
const (
	pagePath     = hostedui.MFAPath + "/webauthn"
	scriptPath   = hostedui.UIPrefix + "/webauthn.js"
	verifyAction = hostedui.UIPrefix + "/action/webauthn/verify"
	renameAction = hostedui.UIPrefix + "/action/webauthn/rename"
	// recoverPath is where the recovery email's link lands: SuperTokens' path under the
	// website's base path, served here for tenants whose base path is the hosted pages'.
	recoverPath       = "/auth/webauthn/recover"
	recoverSendAction = hostedui.UIPrefix + "/action/webauthn/recover/send"
	recoverAction     = hostedui.UIPrefix + "/action/webauthn/recover"
	removeAction      = hostedui.UIPrefix + "/action/webauthn/remove"
)

//go:embed templates/*.html
var templates embed.FS

//go:embed static/webauthn.js
var script []byte

func (f *Factor) registerPages(mux *http.ServeMux) {
	ui := f.opts.Pages
	mux.Handle("GET "+pagePath, ui.Page(f.page))
	mux.Handle("GET "+scriptPath, ui.Page(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Write(script)
	}))
	mux.Handle("POST "+verifyAction, ui.Action(f.verifyStep))
	mux.Handle("POST "+renameAction, ui.Action(f.renameStep))
	mux.Handle("POST "+removeAction, ui.Action(f.removeStep))
	f.registerFirstFactorPages(mux)
	if f.opts.Recovery != nil {
		mux.Handle("GET "+recoverPath, ui.Page(f.recoverPage))
		mux.Handle("POST "+recoverSendAction, ui.Action(f.recoverSendStep))
		mux.Handle("POST "+recoverAction, ui.Action(f.recoverStep))
	}
}

// page asks for the user's passkey, or creates one: when the user has none, or with ?setup=1.
func (f *Factor) page(w http.ResponseWriter, r *http.Request) {
	m, ok := f.opts.Pages.LoadMFA(w, r)
	if !ok {
		return
	}
	f.render(w, r, m, http.StatusOK, "")
}

// emailOf is the address a new passkey of u is registered under: the user's first email.
func emailOf(u store.User) string {
	for _, lm := range u.LoginMethods {
		if lm.Email != "" {
			return lm.Email
		}
	}
	return ""
}

// render shows the step with fresh options; problem, when set, says what went wrong before.
func (f *Factor) render(w http.ResponseWriter, r *http.Request, m hostedui.MFAPage, status int, problem string) {
	ui, ctx := f.opts.Pages, r.Context()
	has := slices.Contains(m.State.SetUp, mfa.WebAuthn)
	setup := !has || r.FormValue("setup") != "" || r.PostFormValue("mode") == "create"
	title := "Use your passkey"
	if setup {
		title = "Create a passkey"
	}
	v, err := ui.MFAView(w, r, m, title)
	if err != nil {
		ui.InternalError(w, r, err)
		return
	}
	v.Factor, v.SetupMode, v.Error = mfa.WebAuthn, setup, problem
	var options any
	if setup {
		options, err = f.setupOptions(r, m)
		var denied *mfaengine.SetupDeniedError
		switch {
		case errors.As(err, &denied):
			v.Error = "You cannot create a passkey now: " + denied.Reason + "."
			ui.Render(w, r, http.StatusForbidden, "choose", v)
			return
		case errors.Is(err, errNoEmail):
			v.Error = "A passkey needs an email address on your account. Use another method."
			ui.Render(w, r, http.StatusConflict, "choose", v)
			return
		}
	} else {
		options, err = f.SignInOptions(ctx, m.Tenant, m.Session.UserID)
	}
	if err != nil {
		ui.InternalError(w, r, err)
		return
	}
	b, err := json.Marshal(options)
	if err != nil {
		ui.InternalError(w, r, err)
		return
	}
	v.PasskeyOptions = string(b)
	ui.Render(w, r, status, "webauthn", v)
}

var errNoEmail = errors.New("the user has no email address")

// setupOptions are registration options for a new passkey of the session's user: for the
// user's webauthn login method when there is one, else for a new one under the user's email.
func (f *Factor) setupOptions(r *http.Request, m hostedui.MFAPage) (RegistrationOptions, error) {
	ctx := r.Context()
	if err := f.opts.Engine.CheckSetup(ctx, m.Session, mfa.WebAuthn); err != nil {
		return RegistrationOptions{}, err
	}
	u, err := f.opts.Store.GetUser(ctx, m.Session.UserID)
	if err != nil {
		return RegistrationOptions{}, err
	}
	if lm, ok := webauthnLogin(u, m.Tenant.ID); ok {
		return f.RegisterOptions(ctx, m.Tenant, lm.Email, "", lm.RecipeUserID)
	}
	email := emailOf(u)
	if email == "" {
		return RegistrationOptions{}, errNoEmail
	}
	return f.RegisterOptions(ctx, m.Tenant, email, "", "")
}

// verifyStep finishes the ceremony the page started: a new passkey (a sign-up linked to the
// session's user, or another credential of its login method) or a passkey used.
func (f *Factor) verifyStep(w http.ResponseWriter, r *http.Request) {
	ui, ctx := f.opts.Pages, r.Context()
	m, ok := ui.LoadMFA(w, r)
	if !ok {
		return
	}
	answer := json.RawMessage(r.PostFormValue("credential"))
	if len(answer) == 0 || !json.Valid(answer) {
		f.render(w, r, m, http.StatusUnprocessableEntity, "The passkey's answer did not arrive. Try again.")
		return
	}
	optionsID := r.PostFormValue("optionsId")
	var upd mfaengine.Update
	var err error
	firstSetup := false
	switch r.PostFormValue("mode") {
	case "create":
		u, uerr := f.opts.Store.GetUser(ctx, m.Session.UserID)
		if uerr != nil {
			ui.InternalError(w, r, uerr)
			return
		}
		if lm, has := webauthnLogin(u, m.Tenant.ID); has {
			if err = f.AddCredential(ctx, m.Session, lm.RecipeUserID, optionsID, answer); err == nil {
				upd, err = f.opts.Engine.Complete(ctx, m.Session, mfa.WebAuthn)
			}
		} else {
			var res Result
			res, err = f.SignUp(ctx, m.Tenant, &m.Session, optionsID, answer)
			upd, firstSetup = res.Update, true
		}
	default:
		var res Result
		res, err = f.SignIn(ctx, m.Tenant, &m.Session, optionsID, answer)
		upd = res.Update
	}
	f.opts.Record(r, "Completed factor", m.Tenant.ID, m.Session.UserID, outcome(err), "factor", mfa.WebAuthn, "setup", firstSetup)
	var denied *mfaengine.SetupDeniedError
	var locked *LockedError
	switch {
	case err == nil:
		ui.AfterFactor(w, r, m, upd, firstSetup)
	case errors.As(err, &denied):
		f.render(w, r, m, http.StatusForbidden, "This step is not allowed now: "+denied.Reason+".")
	case errors.As(err, &locked):
		f.render(w, r, m, http.StatusTooManyRequests, hostedui.LockedMessage(locked.RetryAfter))
	case errors.Is(err, ErrOptionsNotFound):
		f.render(w, r, m, http.StatusUnprocessableEntity, "That took too long. Try again.")
	case errors.Is(err, ErrInvalidCredential), errors.Is(err, ErrInvalidAuthenticator), errors.Is(err, ErrNotAllowed), errors.Is(err, ErrCredentialExists):
		f.render(w, r, m, http.StatusUnprocessableEntity, "That passkey could not be used. Try again, or use another method.")
	case errors.Is(err, ErrEmailTaken):
		f.render(w, r, m, http.StatusConflict, "Another account already has passkeys for your email address. Use another method.")
	default:
		ui.InternalError(w, r, err)
	}
}

func outcome(err error) string {
	if err != nil {
		return "refused"
	}
	return "success"
}

// Paths of the first-factor actions of the sign-in and sign-up pages.
const (
	signInAction = hostedui.UIPrefix + "/action/webauthn/signin"
	signUpAction = hostedui.UIPrefix + "/action/webauthn/signup"
)

func (f *Factor) registerFirstFactorPages(mux *http.ServeMux) {
	ui := f.opts.Pages
	mux.Handle("POST "+signInAction, ui.Action(func(w http.ResponseWriter, r *http.Request) { f.firstFactorStep(w, r, f.SignIn, hostedui.SignInPath) }))
	mux.Handle("POST "+signUpAction, ui.Action(func(w http.ResponseWriter, r *http.Request) { f.firstFactorStep(w, r, f.SignUp, hostedui.SignUpPath) }))
}

// firstFactorStep finishes a passkey sign-in or sign-up the sign-in page started and continues
// as a password sign-in does; a refusal goes back to the page, which says what happened.
func (f *Factor) firstFactorStep(w http.ResponseWriter, r *http.Request,
	op func(context.Context, tenant.Tenant, *session.Session, string, json.RawMessage) (Result, error), page string) {
	ui := f.opts.Pages
	t, ok := ui.TenantOf(w, r)
	if !ok {
		return
	}
	back := hostedui.SafeRedirect(r.PostFormValue("redirectToPath"))
	answer := json.RawMessage(r.PostFormValue("credential"))
	if len(answer) == 0 || !json.Valid(answer) {
		hostedui.Redirect(w, hostedui.WithQuery(page, "tenantId", t.ID, "redirectToPath", back, "passkey", "failed"))
		return
	}
	res, err := op(r.Context(), t, nil, r.PostFormValue("optionsId"), answer)
	event, refused := "Signed in", "Refused sign-in"
	if page == hostedui.SignUpPath {
		event, refused = "Signed up", "Refused sign-up"
	}
	switch {
	case err == nil:
		f.opts.Record(r, event, t.ID, res.User.ID, "success", "recipe", mfa.WebAuthn)
		ui.SignedIn(w, r, t, res.Session, res.Tokens, back)
	case errors.Is(err, ErrEmailTaken):
		f.opts.Record(r, refused, t.ID, "", "refused", "recipe", mfa.WebAuthn, "reason", err.Error())
		hostedui.Redirect(w, hostedui.WithQuery(page, "tenantId", t.ID, "redirectToPath", back, "passkey", "taken"))
	case errors.Is(err, ErrOptionsNotFound), errors.Is(err, ErrInvalidCredential), errors.Is(err, ErrInvalidAuthenticator),
		errors.Is(err, ErrNotAllowed), errors.Is(err, ErrLocked), errors.Is(err, ErrCredentialExists):
		f.opts.Record(r, refused, t.ID, "", "refused", "recipe", mfa.WebAuthn, "reason", err.Error())
		hostedui.Redirect(w, hostedui.WithQuery(page, "tenantId", t.ID, "redirectToPath", back, "passkey", "failed"))
	default:
		ui.InternalError(w, r, err)
	}
}

// renameStep renames one of the user's passkeys from the account page.
func (f *Factor) renameStep(w http.ResponseWriter, r *http.Request) {
	ui := f.opts.Pages
	m, ok := ui.AccountSession(w, r)
	if !ok {
		return
	}
	err := f.RenameCredential(r.Context(), m.Session, r.PostFormValue("credentialId"), r.PostFormValue("name"))
	switch {
	case errors.Is(err, ErrUnknownCredential), errors.Is(err, ErrNameTooLong):
		hostedui.Redirect(w, hostedui.AccountPath)
	case err != nil:
		ui.InternalError(w, r, err)
	default:
		hostedui.Redirect(w, hostedui.WithQuery(hostedui.AccountPath, "done", "renamed-passkey"))
	}
}

// removeStep removes one of the user's passkeys from the account page.
func (f *Factor) removeStep(w http.ResponseWriter, r *http.Request) {
	ui := f.opts.Pages
	m, ok := ui.AccountSession(w, r)
	if !ok {
		return
	}
	err := f.RemoveCredential(r.Context(), m.Session, r.PostFormValue("credentialId"))
	switch {
	case errors.Is(err, mfaengine.ErrNotSatisfied):
		hostedui.Redirect(w, hostedui.WithQuery(hostedui.AccountPath, "done", "not-removed-passkey"))
	case errors.Is(err, ErrUnknownCredential):
		hostedui.Redirect(w, hostedui.AccountPath)
	case err != nil:
		ui.InternalError(w, r, err)
	default:
		f.opts.Record(r, "Removed passkey", m.Tenant.ID, m.Session.UserID, "success", "factor", mfa.WebAuthn)
		hostedui.Redirect(w, hostedui.WithQuery(hostedui.AccountPath, "done", "removed-passkey"))
	}
}

// recoverPage asks for the email of an account whose passkeys are lost or, opened from the
// emailed link, creates the new passkey.
func (f *Factor) recoverPage(w http.ResponseWriter, r *http.Request) {
	ui := f.opts.Pages
	t, ok := ui.TenantOf(w, r)
	if !ok {
		return
	}
	f.renderRecover(w, r, t, http.StatusOK, func(v *hostedui.View) {
		v.Token, v.TokenInFragment = r.URL.Query().Get("token"), r.URL.Query().Get("link") == "1"
	})
}

func (f *Factor) renderRecover(w http.ResponseWriter, r *http.Request, t tenant.Tenant, status int, edit func(*hostedui.View)) {
	ui := f.opts.Pages
	v, err := ui.NewView(w, r, t, "Lost your passkey?")
	if err != nil {
		ui.InternalError(w, r, err)
		return
	}
	edit(&v)
	if v.Token != "" || v.TokenInFragment {
		v.Title = "Create a new passkey"
	}
	ui.Render(w, r, status, "webauthnrecover", v)
}

// recoverSendStep emails the recovery link, saying the same whether the email has an account.
func (f *Factor) recoverSendStep(w http.ResponseWriter, r *http.Request) {
	ui := f.opts.Pages
	t, ok := ui.TenantOf(w, r)
	if !ok {
		return
	}
	email := r.PostFormValue("email")
	err := f.opts.Recovery.SendPasskeyRecoveryEmail(r.Context(), f.opts.ClientOf(r), t, email, true)
	var ref *accountapi.Refusal
	switch {
	case errors.As(err, &ref) && ref.Status == contract.StatusFieldError:
		f.renderRecover(w, r, t, http.StatusUnprocessableEntity, func(v *hostedui.View) { v.Email, v.FieldErrors = email, map[string]string{ref.Field: ref.Message} })
	case errors.As(err, &ref):
		f.renderRecover(w, r, t, http.StatusServiceUnavailable, func(v *hostedui.View) {
			msg := ref.Message
			if msg == "" {
				msg = ref.Status
			}
			v.Email, v.Error = email, "The email could not be sent: "+msg+"."
		})
	case err != nil:
		ui.InternalError(w, r, err)
	default:
		f.renderRecover(w, r, t, http.StatusOK, func(v *hostedui.View) {
			v.Sent, v.Notice = true, "If "+email+" has an account with a passkey, a link to create a new one is on its way. It works for an hour."
		})
	}
}

// recoverStep finishes the ceremony of the recovery page: the new passkey is added and the
// browser goes to sign in with it.
func (f *Factor) recoverStep(w http.ResponseWriter, r *http.Request) {
	ui := f.opts.Pages
	t, ok := ui.TenantOf(w, r)
	if !ok {
		return
	}
	back := hostedui.SafeRedirect(r.PostFormValue("redirectToPath"))
	token := r.PostFormValue("token")
	u, err := f.RecoverAccount(r.Context(), t, token, r.PostFormValue("optionsId"), json.RawMessage(r.PostFormValue("credential")))
	switch {
	case err == nil:
		f.opts.Record(r, "Recovered passkey account", t.ID, u.ID, "success", "factor", mfa.WebAuthn)
		hostedui.Redirect(w, hostedui.WithQuery(hostedui.SignInPath, "tenantId", t.ID, "redirectToPath", back, "passkey", "recovered"))
	case errors.Is(err, ErrRecoveryTokenInvalid):
		f.opts.Record(r, "Refused passkey recovery", t.ID, "", "invalid_token")
		f.renderRecover(w, r, t, http.StatusUnprocessableEntity, func(v *hostedui.View) {
			v.Error = "This link has expired or was used already. Ask for a new one."
		})
	case errors.Is(err, ErrOptionsNotFound), errors.Is(err, ErrInvalidCredential), errors.Is(err, ErrInvalidAuthenticator), errors.Is(err, ErrCredentialExists):
		f.opts.Record(r, "Refused passkey recovery", t.ID, "", "refused", "reason", err.Error())
		f.renderRecover(w, r, t, http.StatusUnprocessableEntity, func(v *hostedui.View) {
			v.Token, v.Error = token, "That passkey could not be created. Try again."
		})
	default:
		ui.InternalError(w, r, err)
	}
}
