package webauthn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/emailpassword"
	"github.com/twofold-dev/twofold/core/httpapi"
	"github.com/twofold-dev/twofold/core/httpkit"
	"github.com/twofold-dev/twofold/core/mfaapi"
	"github.com/twofold-dev/twofold/core/mfaengine"
	"github.com/twofold-dev/twofold/core/session"
	"github.com/twofold-dev/twofold/core/tenant"
)

// This file is the FDI edge, SuperTokens' WebAuthn recipe: each handler decodes the request,
// calls one operation and answers with the recipe's statuses.

func (f *Factor) registerFDI(mux *http.ServeMux) {
	req := func(h http.HandlerFunc) http.Handler { return f.opts.Sessions.Require(h) }
	// Like every tenant-scoped route, each is served with and without the /<tenantId> segment.
	for _, p := range []string{"/auth", "/auth/{tenant}"} {
		mux.HandleFunc("POST "+p+"/webauthn/options/register", f.registerOptions)
		mux.HandleFunc("POST "+p+"/webauthn/options/signin", f.signInOptions)
		mux.HandleFunc("POST "+p+"/webauthn/signup", f.signUp)
		mux.HandleFunc("POST "+p+"/webauthn/signin", f.signIn)
		mux.HandleFunc("GET "+p+"/webauthn/email/exists", f.emailExists)
		mux.Handle("POST "+p+"/webauthn/credential", req(f.addCredential))
		mux.Handle("GET "+p+"/webauthn/credential/list", req(f.listCredentials))
		mux.Handle("POST "+p+"/webauthn/credential/remove", req(f.removeCredential))
		if f.opts.Recovery != nil {
			mux.HandleFunc("POST "+p+"/user/webauthn/reset/token", f.sendRecoveryEmail)
			mux.HandleFunc("POST "+p+"/user/webauthn/reset", f.recoverAccount)
		}
	}
}

// tenantOf resolves the request's tenant (the public tenant without a segment).
func (f *Factor) tenantOf(w http.ResponseWriter, r *http.Request) (tenant.Tenant, bool) {
	id := r.PathValue("tenant")
	if id == "" {
		id = contract.PublicTenantID
	}
	t, err := f.opts.Tenants.Current(r.Context(), id)
	switch {
	case errors.Is(err, tenant.ErrUnknownTenant):
		httpkit.WriteError(w, http.StatusNotFound, "", "unknown tenant %q", id)
		return tenant.Tenant{}, false
	case err != nil:
		httpkit.InternalError(f.opts.Logger, w, r, err)
		return tenant.Tenant{}, false
	}
	return t, true
}

func status(w http.ResponseWriter, s string, kv ...any) {
	body := map[string]any{"status": s}
	for i := 0; i+1 < len(kv); i += 2 {
		body[kv[i].(string)] = kv[i+1]
	}
	httpkit.WriteJSON(w, http.StatusOK, body)
}

// writeError answers an operation's error with the recipe's status for it; signIn maps every
// refusal of the credential to INVALID_CREDENTIALS_ERROR, as SuperTokens does.
func (f *Factor) writeError(w http.ResponseWriter, r *http.Request, err error, notAllowed string) {
	var locked *LockedError
	switch {
	case mfaapi.WriteSetupError(w, err):
	case errors.Is(err, mfaengine.ErrNotSatisfied):
		httpkit.WriteClaimError(w, mfa.ClaimNotSatisfiedMessage)
	case errors.Is(err, ErrOptionsNotFound):
		status(w, contract.StatusOptionsNotFound)
	case errors.Is(err, ErrInvalidAuthenticator):
		status(w, contract.StatusInvalidAuthenticator, "reason", err.Error())
	case errors.Is(err, ErrInvalidCredential), errors.Is(err, ErrCredentialExists):
		status(w, contract.StatusInvalidCredentials)
	case errors.Is(err, ErrEmailTaken):
		status(w, contract.StatusEmailAlreadyExists)
	case errors.Is(err, ErrNotAllowed):
		status(w, notAllowed, "reason", err.Error())
	case errors.Is(err, session.ErrUserDisabled):
		status(w, notAllowed, "reason", httpapi.MsgUserDisabled)
	case errors.As(err, &locked):
		status(w, contract.StatusGeneralError, "message", fmt.Sprintf("Too many failed attempts. Try again in %d seconds.", int(locked.RetryAfter.Seconds())+1))
	case errors.Is(err, ErrUnknownCredential):
		status(w, contract.StatusCredentialNotFound)
	case errors.Is(err, ErrNoRelyingParty):
		status(w, contract.StatusGeneralError, "message", err.Error())
	default:
		httpkit.InternalError(f.opts.Logger, w, r, err)
	}
}

func (f *Factor) registerOptions(w http.ResponseWriter, r *http.Request) {
	t, ok := f.tenantOf(w, r)
	if !ok {
		return
	}
	var body struct {
		Email               *string `json:"email"`
		DisplayName         string  `json:"displayName"`
		RecoverAccountToken *string `json:"recoverAccountToken"`
	}
	if !httpkit.Decode(w, r, &body) {
		return
	}
	switch {
	case body.Email == nil && body.RecoverAccountToken == nil:
		httpkit.WriteError(w, http.StatusBadRequest, "", "Please provide the email or the recover account token")
		return
	case body.Email == nil:
		o, err := f.RecoveryOptions(r.Context(), t, *body.RecoverAccountToken)
		if errors.Is(err, ErrRecoveryTokenInvalid) {
			status(w, contract.StatusRecoverAccountTokenInvalid)
			return
		}
		if err != nil {
			f.writeError(w, r, err, contract.StatusSignUpNotAllowed)
			return
		}
		httpkit.WriteJSON(w, http.StatusOK, withStatus(o))
		return
	}
	email := emailpassword.NormaliseEmail(*body.Email)
	if msg := emailpassword.ValidateEmail(email); msg != "" {
		status(w, contract.StatusInvalidEmail, "err", msg)
		return
	}
	_, lm, found, err := f.loginByEmail(r.Context(), t.ID, email)
	if err != nil {
		httpkit.InternalError(f.opts.Logger, w, r, err)
		return
	}
	existing := ""
	if found {
		existing = lm.RecipeUserID
	}
	o, err := f.RegisterOptions(r.Context(), t, email, body.DisplayName, existing)
	if err != nil {
		f.writeError(w, r, err, contract.StatusSignUpNotAllowed)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, withStatus(o))
}

// withStatus is v's JSON object with "status": "OK" added.
func withStatus(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return append([]byte(`{"status":"OK",`), b[1:]...)
}

func (f *Factor) signInOptions(w http.ResponseWriter, r *http.Request) {
	t, ok := f.tenantOf(w, r)
	if !ok {
		return
	}
	// A signed-in user (a second factor) gets options naming their credentials; a request
	// whose token does not verify is answered like one without a session.
	userID := ""
	if sess, has, err := f.opts.Sessions.FromRequest(r); err == nil && has && sess.TenantID == t.ID {
		userID = sess.UserID
	}
	o, err := f.SignInOptions(r.Context(), t, userID)
	if err != nil {
		f.writeError(w, r, err, contract.StatusSignInNotAllowed)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, withStatus(o))
}

// ceremonyBody is the body of signup and signin.
type ceremonyBody struct {
	OptionsID                       string          `json:"webauthnGeneratedOptionsId"`
	Credential                      json.RawMessage `json:"credential"`
	ShouldTryLinkingWithSessionUser *bool           `json:"shouldTryLinkingWithSessionUser"`
}

// decodeCeremony reads a signup or signin body, and the linking session: with
// shouldTryLinkingWithSessionUser false there is none; true requires one (401 without);
// absent uses the request's session when it has one. A session of another tenant is refused.
func (f *Factor) decodeCeremony(w http.ResponseWriter, r *http.Request, t tenant.Tenant) (ceremonyBody, *session.Session, bool) {
	var body ceremonyBody
	if !httpkit.Decode(w, r, &body) {
		return body, nil, false
	}
	switch {
	case body.OptionsID == "":
		httpkit.WriteError(w, http.StatusBadRequest, "webauthnGeneratedOptionsId", "webauthnGeneratedOptionsId is required")
		return body, nil, false
	case len(body.Credential) == 0 || string(body.Credential) == "null":
		httpkit.WriteError(w, http.StatusBadRequest, "credential", "credential is required")
		return body, nil, false
	}
	if should := body.ShouldTryLinkingWithSessionUser; should != nil && !*should {
		return body, nil, true
	}
	sess, has, err := f.opts.Sessions.FromRequest(r)
	switch {
	case err != nil:
		session.WriteError(w, err)
		return body, nil, false
	case !has && body.ShouldTryLinkingWithSessionUser != nil:
		session.WriteError(w, session.ErrUnauthorised)
		return body, nil, false
	case !has:
		return body, nil, true
	case sess.TenantID != t.ID:
		httpkit.WriteError(w, http.StatusBadRequest, "", "the session belongs to tenant %q, not %q", sess.TenantID, t.ID)
		return body, nil, false
	}
	return body, &sess, true
}

func (f *Factor) signUp(w http.ResponseWriter, r *http.Request) {
	f.ceremony(w, r, f.SignUp, "Signed up", "Refused sign-up", contract.StatusSignUpNotAllowed)
}

func (f *Factor) signIn(w http.ResponseWriter, r *http.Request) {
	f.ceremony(w, r, f.SignIn, "Signed in", "Refused sign-in", contract.StatusSignInNotAllowed)
}

// ceremony serves signup and signin: op finishes the ceremony; the answer carries the user and
// the new session's tokens, or the second factor's updated tokens.
func (f *Factor) ceremony(w http.ResponseWriter, r *http.Request,
	op func(context.Context, tenant.Tenant, *session.Session, string, json.RawMessage) (Result, error), event, refused, notAllowed string) {
	t, ok := f.tenantOf(w, r)
	if !ok {
		return
	}
	body, sess, ok := f.decodeCeremony(w, r, t)
	if !ok {
		return
	}
	res, err := op(r.Context(), t, sess, body.OptionsID, body.Credential)
	if err != nil {
		if sess != nil {
			f.opts.Record(r, "Refused factor", t.ID, sess.UserID, "refused", "factor", mfa.WebAuthn, "reason", err.Error())
		} else {
			f.opts.Record(r, refused, t.ID, "", "refused", "recipe", mfa.WebAuthn, "reason", err.Error())
		}
		if notAllowed == contract.StatusSignInNotAllowed && (errors.Is(err, ErrOptionsNotFound) || errors.Is(err, ErrInvalidAuthenticator)) {
			err = ErrInvalidCredential
		}
		f.writeError(w, r, err, notAllowed)
		return
	}
	ok200 := map[string]any{"status": contract.StatusOK, "user": httpapi.UserJSON(res.User)}
	if sess != nil {
		f.opts.Record(r, "Completed factor", t.ID, res.User.ID, "success", "factor", mfa.WebAuthn, "setup", res.Created)
		mfaapi.WriteCompleted(f.opts.Logger, w, r, f.opts.Sessions, res.Update, nil, ok200)
		return
	}
	f.opts.Record(r, event, t.ID, res.User.ID, "success", "recipe", mfa.WebAuthn)
	f.opts.Sessions.WriteTokens(w, session.RequestedTransport(r), res.Tokens, httpapi.SessionSettings(t.Config))
	httpkit.WriteJSON(w, http.StatusOK, ok200)
}

func (f *Factor) emailExists(w http.ResponseWriter, r *http.Request) {
	t, ok := f.tenantOf(w, r)
	if !ok {
		return
	}
	email := r.URL.Query().Get("email")
	if email == "" {
		httpkit.WriteError(w, http.StatusBadRequest, "email", "Please provide the email as a GET param")
		return
	}
	exists, err := f.EmailExists(r.Context(), t.ID, emailpassword.NormaliseEmail(email))
	if err != nil {
		httpkit.InternalError(f.opts.Logger, w, r, err)
		return
	}
	status(w, contract.StatusOK, "exists", exists)
}

func (f *Factor) addCredential(w http.ResponseWriter, r *http.Request) {
	var body struct {
		RecipeUserID string          `json:"recipeUserId"`
		OptionsID    string          `json:"webauthnGeneratedOptionsId"`
		Credential   json.RawMessage `json:"credential"`
	}
	if !httpkit.Decode(w, r, &body) {
		return
	}
	switch {
	case body.RecipeUserID == "":
		httpkit.WriteError(w, http.StatusBadRequest, "recipeUserId", "Please provide the recipeUserId")
		return
	case body.OptionsID == "":
		httpkit.WriteError(w, http.StatusBadRequest, "webauthnGeneratedOptionsId", "webauthnGeneratedOptionsId is required")
		return
	case len(body.Credential) == 0:
		httpkit.WriteError(w, http.StatusBadRequest, "credential", "credential is required")
		return
	}
	sess := session.Of(r)
	err := f.AddCredential(r.Context(), sess, body.RecipeUserID, body.OptionsID, body.Credential)
	switch {
	case errors.Is(err, ErrUnknownCredential):
		status(w, contract.StatusGeneralError, "message", "User not found")
	case err != nil:
		f.writeError(w, r, err, contract.StatusSignUpNotAllowed)
	default:
		f.opts.Record(r, "Added passkey", sess.TenantID, sess.UserID, "success", "factor", mfa.WebAuthn)
		status(w, contract.StatusOK)
	}
}

type credentialJSON struct {
	ID           string `json:"webauthnCredentialId"`
	RelyingParty string `json:"relyingPartyId"`
	RecipeUserID string `json:"recipeUserId"`
	CreatedAt    int64  `json:"createdAt"`
}

func (f *Factor) listCredentials(w http.ResponseWriter, r *http.Request) {
	creds, err := f.Credentials(r.Context(), session.Of(r).UserID)
	if err != nil {
		httpkit.InternalError(f.opts.Logger, w, r, err)
		return
	}
	out := make([]credentialJSON, 0, len(creds))
	for _, c := range creds {
		out = append(out, credentialJSON{ID: c.ID, RelyingParty: c.RPID, RecipeUserID: c.RecipeUserID, CreatedAt: c.CreatedAt.UnixMilli()})
	}
	status(w, contract.StatusOK, "credentials", out)
}

func (f *Factor) removeCredential(w http.ResponseWriter, r *http.Request) {
	var body struct {
		ID string `json:"webauthnCredentialId"`
	}
	if !httpkit.Decode(w, r, &body) {
		return
	}
	if body.ID == "" {
		httpkit.WriteError(w, http.StatusBadRequest, "webauthnCredentialId", "A valid webauthnCredentialId is required")
		return
	}
	sess := session.Of(r)
	if err := f.RemoveCredential(r.Context(), sess, body.ID); err != nil {
		f.writeError(w, r, err, contract.StatusGeneralError)
		return
	}
	f.opts.Record(r, "Removed passkey", sess.TenantID, sess.UserID, "success", "factor", mfa.WebAuthn)
	status(w, contract.StatusOK)
}

// sendRecoveryEmail serves POST /user/webauthn/reset/token: SuperTokens'
// generateRecoverAccountToken. It answers OK whether the email has a passkey account or not.
func (f *Factor) sendRecoveryEmail(w http.ResponseWriter, r *http.Request) {
	t, ok := f.tenantOf(w, r)
	if !ok {
		return
	}
	var body struct {
		Email *string `json:"email"`
	}
	if !httpkit.Decode(w, r, &body) {
		return
	}
	if body.Email == nil {
		httpkit.WriteError(w, http.StatusBadRequest, "email", "Please provide the email")
		return
	}
	if err := f.opts.Recovery.SendPasskeyRecoveryEmail(r.Context(), f.opts.ClientOf(r), t, *body.Email, false); err != nil {
		f.opts.Recovery.WriteError(w, r, err)
		return
	}
	status(w, contract.StatusOK)
}

// recoverAccount serves POST /user/webauthn/reset: SuperTokens' recoverAccount.
func (f *Factor) recoverAccount(w http.ResponseWriter, r *http.Request) {
	t, ok := f.tenantOf(w, r)
	if !ok {
		return
	}
	var body struct {
		Token      *string         `json:"token"`
		OptionsID  string          `json:"webauthnGeneratedOptionsId"`
		Credential json.RawMessage `json:"credential"`
	}
	if !httpkit.Decode(w, r, &body) {
		return
	}
	switch {
	case body.Token == nil:
		httpkit.WriteError(w, http.StatusBadRequest, "token", "Please provide the recover account token")
		return
	case body.OptionsID == "":
		httpkit.WriteError(w, http.StatusBadRequest, "webauthnGeneratedOptionsId", "webauthnGeneratedOptionsId is required")
		return
	case len(body.Credential) == 0 || string(body.Credential) == "null":
		httpkit.WriteError(w, http.StatusBadRequest, "credential", "credential is required")
		return
	}
	u, err := f.RecoverAccount(r.Context(), t, *body.Token, body.OptionsID, body.Credential)
	switch {
	case errors.Is(err, ErrRecoveryTokenInvalid):
		f.opts.Record(r, "Refused passkey recovery", t.ID, "", "invalid_token")
		status(w, contract.StatusRecoverAccountTokenInvalid)
	case err != nil:
		f.opts.Record(r, "Refused passkey recovery", t.ID, "", "refused", "reason", err.Error())
		f.writeError(w, r, err, contract.StatusGeneralError)
	default:
		f.opts.Record(r, "Recovered passkey account", t.ID, u.ID, "success", "factor", mfa.WebAuthn)
		status(w, contract.StatusOK)
	}
}
