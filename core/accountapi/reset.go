package accountapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/core/delivery"
	"github.com/twofold-dev/twofold/core/emailpassword"
	"github.com/twofold-dev/twofold/core/httpapi"
	"github.com/twofold-dev/twofold/core/httpkit"
	"github.com/twofold-dev/twofold/core/passwordless"
	"github.com/twofold-dev/twofold/core/store"
	"github.com/twofold-dev/twofold/core/tenant"
)

// formValues reads FDI's formFields list into a map of the string values, answering 400
// with SuperTokens' messages when its shape is wrong.
func formValues(w http.ResponseWriter, raw json.RawMessage) (map[string]string, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		httpkit.WriteError(w, http.StatusBadRequest, "", "Missing input param: formFields")
		return nil, false
	}
	var fields []struct {
		ID    string          `json:"id"`
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(raw, &fields); err != nil {
		httpkit.WriteError(w, http.StatusBadRequest, "", "formFields must be an array of {id, value} objects")
		return nil, false
	}
	out := map[string]string{}
	for _, f := range fields {
		var v string
		if f.ID == "" || json.Unmarshal(f.Value, &v) != nil {
			httpkit.WriteError(w, http.StatusBadRequest, "", "All elements of formFields must contain an 'id' and a string 'value'")
			return nil, false
		}
		out[f.ID] = v
	}
	return out, true
}

// HostedUIRecipeID is the rid header of the requests the hosted pages hand to the FDI in
// process. A reset or verification email asked for that way links to the hosted pages with
// the token in the URL fragment (hostedLink); one asked for by a SuperTokens SDK keeps the
// SDK's ?token= link (linkTo), which supertokens-web-js reads on the app's own page.
const HostedUIRecipeID = "hostedui"

// fromHostedPages reports whether the hosted pages handed r over.
func fromHostedPages(r *http.Request) bool { return r.Header.Get("rid") == HostedUIRecipeID }

// hostedLink builds {websiteDomain}{websiteBasePath}{page}?tenantId=...&link=1#token=...: a
// fragment never reaches a server, so the token stays out of ingress and proxy logs and
// Referer headers; the page's script reads it and POSTs it with the form.
func hostedLink(t tenant.Tenant, page, token string) string {
	base := strings.TrimSuffix(t.Config.WebsiteDomain, "/") + strings.TrimSuffix(t.Config.WebsiteBasePath, "/")
	return base + page + "?tenantId=" + url.QueryEscape(t.ID) + "&link=1#token=" + url.QueryEscape(token)
}

// fieldRefusal is a FIELD_ERROR about form field id.
func fieldRefusal(id, msg string) *Refusal {
	return &Refusal{Status: contract.StatusFieldError, Field: id, Message: msg}
}

// SendResetEmail sends a password reset link to email, when it has an emailpassword account in
// tenant t. It returns nil once the email is valid and the tenant can send email, whether the
// email has an account or not; looking the user up, storing the token and sending happen
// after it returned, so neither the answer nor its timing says whether the email has an
// account. hosted makes the link carry its token in the URL fragment for the hosted pages
// (hostedLink) instead of SuperTokens' ?token= (linkTo).
func (a *API) SendResetEmail(ctx context.Context, cl httpapi.Client, t tenant.Tenant, email string, hosted bool) error {
	return a.sendAccountLink(ctx, cl, t, email, accountLink{recipe: store.RecipeEmailPassword, kind: store.TokenPasswordReset,
		lifetime: PasswordResetTokenLifetime, page: "/reset-password", hosted: hosted, event: "Asked for a password reset",
		message: delivery.Templates.PasswordReset})
}

// accountLink is one kind of emailed single-use link to an account's login method.
type accountLink struct {
	// recipe is the login method's: the tenant's login method of that recipe with the email
	// gets the link.
	recipe string
	// kind and lifetime are the token's.
	kind     string
	lifetime time.Duration
	// page is the link's page under the website's base path; hosted puts the token in the
	// fragment (hostedLink) instead of the query (linkTo).
	page   string
	hosted bool
	// event is the audit event of the request.
	event   string
	message func(tpl delivery.Templates, to, link string, lifetime time.Duration) (delivery.Message, error)
}

// sendAccountLink emails link's kind of link to email when the tenant has a login method of
// link.recipe with it, as SendResetEmail says.
func (a *API) sendAccountLink(ctx context.Context, cl httpapi.Client, t tenant.Tenant, email string, link accountLink) error {
	email = emailpassword.NormaliseEmail(email)
	if msg := emailpassword.ValidateEmail(email); msg != "" {
		return fieldRefusal("email", msg)
	}
	sender, templates, err := a.sender(t, delivery.Email)
	if err != nil {
		return err
	}
	if t.Config.WebsiteDomain == "" {
		return refused("tenant %q has no websiteDomain to send links to", t.ID)
	}
	// The limit applies to every address alike, so a refusal says nothing about accounts.
	if err := a.reserveSend(ctx, cl, t, passwordless.Contact{Email: email}, "", delivery.Email); err != nil {
		return err
	}
	release, err := a.backgroundSlot()
	if err != nil {
		return err
	}
	ctx, cancel := background(ctx)
	go func() {
		defer release()
		defer cancel()
		userID, recipeUserID, err := a.loginMethodWith(ctx, t.ID, link.recipe, email)
		if errors.Is(err, store.ErrNotFound) {
			a.opts.API.AuditClient(cl, link.event, t.ID, "", "unknown_email")
			return
		}
		if err != nil {
			a.log.Error(err, "Failed to look up an account link's user", "tenant", t.ID, "kind", link.kind)
			return
		}
		token, hash, err := newToken()
		if err != nil {
			a.log.Error(err, "Failed to make an account link token", "kind", link.kind)
			return
		}
		// Stored before it is sent, so the link works as soon as it arrives; a token whose
		// email failed is never seen by anyone and expires unused.
		now := a.opts.Clock()
		if err := a.opts.Store.CreateAccountToken(ctx, store.AccountToken{Hash: hash, Kind: link.kind, TenantID: t.ID,
			RecipeUserID: recipeUserID, Email: email, CreatedAt: now, ExpiresAt: now.Add(link.lifetime)}); err != nil {
			a.log.Error(err, "Failed to store an account link token", "tenant", t.ID, "user", userID, "kind", link.kind)
			return
		}
		url := linkTo(t, link.page, token)
		if link.hosted {
			url = hostedLink(t, link.page, token)
		}
		msg, err := link.message(templates, email, url, link.lifetime)
		if err != nil {
			a.log.Error(err, "Failed to write an account link email", "kind", link.kind)
			return
		}
		if err := sender.Send(ctx, msg); err != nil {
			a.log.Error(err, "Failed to send an account link email", "tenant", t.ID, "user", userID, "kind", link.kind)
			a.opts.API.AuditClient(cl, link.event, t.ID, userID, "delivery_failed")
			return
		}
		a.opts.API.AuditClient(cl, link.event, t.ID, userID, "success")
	}()
	return nil
}

// loginMethodWith finds tenantID's login method of recipe with email: its user and its id.
func (a *API) loginMethodWith(ctx context.Context, tenantID, recipe, email string) (userID, recipeUserID string, err error) {
	users, err := a.opts.Store.UsersByEmail(ctx, tenantID, email)
	if err != nil {
		return "", "", err
	}
	for _, u := range users {
		for _, lm := range u.LoginMethods {
			if lm.RecipeID == recipe && lm.TenantID == tenantID && lm.Email == email {
				return u.ID, lm.RecipeUserID, nil
			}
		}
	}
	return "", "", store.ErrNotFound
}

// invalidResetToken is the refusal of a reset token that is unknown, used, expired, of
// another tenant, or whose login method changed.
var invalidResetToken = &Refusal{Status: contract.StatusResetPasswordInvalidToken}

// ResetPassword uses up a password reset token of tenant t and sets password: the password is
// replaced, the email marked verified (the link proved it) and every session of the user
// revoked. It returns the user.
func (a *API) ResetPassword(ctx context.Context, cl httpapi.Client, t tenant.Tenant, token, password string) (store.User, error) {
	if msg := emailpassword.ValidatePassword(password); msg != "" {
		return store.User{}, fieldRefusal("password", msg)
	}
	tok, err := a.opts.Store.ConsumeAccountToken(ctx, store.TokenPasswordReset, hashToken(token), a.opts.Clock())
	if errors.Is(err, store.ErrNotFound) || (err == nil && tok.TenantID != t.ID) {
		a.opts.API.AuditClient(cl, "Refused password reset", t.ID, "", "invalid_token")
		return store.User{}, invalidResetToken
	}
	if err != nil {
		return store.User{}, err
	}
	// The login method must still be an emailpassword one with the email the link went to.
	u, err := a.opts.Store.GetUser(ctx, tok.RecipeUserID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return store.User{}, err
	}
	if err != nil || !slices.ContainsFunc(u.LoginMethods, func(lm store.LoginMethod) bool {
		return lm.RecipeUserID == tok.RecipeUserID && lm.RecipeID == store.RecipeEmailPassword && lm.Email == tok.Email
	}) {
		return store.User{}, invalidResetToken
	}
	hash, err := a.opts.PasswordParams.Hash(password)
	if err != nil {
		return store.User{}, err
	}
	if _, err := a.opts.Store.SetPasswordHash(ctx, tok.RecipeUserID, hash); err != nil {
		return store.User{}, fmt.Errorf("reset password: %w", err)
	}
	u, err = a.opts.Store.SetEmailVerified(ctx, tok.RecipeUserID, tok.Email)
	if err != nil {
		return store.User{}, fmt.Errorf("reset password: %w", err)
	}
	n, err := a.opts.Sessions.RevokeUser(ctx, u.ID)
	if err != nil {
		return store.User{}, err
	}
	a.opts.API.AuditClient(cl, "Reset password", t.ID, u.ID, "success", "revokedSessions", n)
	return u, nil
}

// sendResetEmail serves POST /user/password/reset/token.
func (a *API) sendResetEmail(w http.ResponseWriter, r *http.Request) {
	t, ok := a.opts.API.TenantOf(w, r)
	if !ok {
		return
	}
	var body struct {
		FormFields json.RawMessage `json:"formFields"`
	}
	if !httpkit.Decode(w, r, &body) {
		return
	}
	values, ok := formValues(w, body.FormFields)
	if !ok {
		return
	}
	if err := a.SendResetEmail(r.Context(), a.opts.API.ClientOf(r), t, values["email"], fromHostedPages(r)); err != nil {
		a.WriteError(w, r, err)
		return
	}
	status(w, contract.StatusOK)
}

// resetPassword serves POST /user/password/reset {method: "token", token, formFields:
// [{id: "password"}]}.
func (a *API) resetPassword(w http.ResponseWriter, r *http.Request) {
	t, ok := a.opts.API.TenantOf(w, r)
	if !ok {
		return
	}
	var body struct {
		Method     string          `json:"method"`
		Token      string          `json:"token"`
		FormFields json.RawMessage `json:"formFields"`
	}
	if !httpkit.Decode(w, r, &body) {
		return
	}
	if body.Method != "" && body.Method != "token" {
		httpkit.WriteError(w, http.StatusBadRequest, "method", "Unsupported method for password reset: use \"token\"")
		return
	}
	values, ok := formValues(w, body.FormFields)
	if !ok {
		return
	}
	if body.Token == "" {
		httpkit.WriteError(w, http.StatusBadRequest, "token", "Please provide the password reset token")
		return
	}
	u, err := a.ResetPassword(r.Context(), a.opts.API.ClientOf(r), t, body.Token, values["password"])
	if err != nil {
		a.WriteError(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"status": contract.StatusOK, "user": httpapi.UserJSON(u)})
}

// PasskeyRecoveryTokenLifetime is how long a passkey recovery link works.
const PasskeyRecoveryTokenLifetime = time.Hour

// SendPasskeyRecoveryEmail sends a link to create a new passkey to email, when it has a
// webauthn login method in tenant t (SuperTokens' recover-account email). As SendResetEmail,
// its answer says nothing about whether the email has an account. hosted makes the link open
// the hosted recovery page with its token in the URL fragment.
func (a *API) SendPasskeyRecoveryEmail(ctx context.Context, cl httpapi.Client, t tenant.Tenant, email string, hosted bool) error {
	return a.sendAccountLink(ctx, cl, t, email, accountLink{recipe: store.RecipeWebAuthn, kind: store.TokenPasskeyRecovery,
		lifetime: PasskeyRecoveryTokenLifetime, page: "/webauthn/recover", hosted: hosted, event: "Asked for a passkey recovery",
		message: delivery.Templates.PasskeyRecovery})
}

// PasskeyRecoveryToken returns tenant t's passkey recovery token, using it up when consume is
// set; store.ErrNotFound when it is unknown, used, expired or of another tenant.
func (a *API) PasskeyRecoveryToken(ctx context.Context, t tenant.Tenant, token string, consume bool) (store.AccountToken, error) {
	read := a.opts.Store.GetAccountToken
	if consume {
		read = a.opts.Store.ConsumeAccountToken
	}
	tok, err := read(ctx, store.TokenPasskeyRecovery, hashToken(token), a.opts.Clock())
	if err == nil && tok.TenantID != t.ID {
		return store.AccountToken{}, fmt.Errorf("passkey recovery token of tenant %q: %w", tok.TenantID, store.ErrNotFound)
	}
	return tok, err
}
