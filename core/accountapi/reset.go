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
		u, _, err := a.opts.Store.GetEmailPasswordLogin(ctx, t.ID, email)
		if errors.Is(err, store.ErrNotFound) {
			a.opts.API.AuditClient(cl, "Asked for a password reset", t.ID, "", "unknown_email")
			return
		}
		if err != nil {
			a.log.Error(err, "Failed to look up a password reset", "tenant", t.ID)
			return
		}
		recipeUserID := ""
		for _, lm := range u.LoginMethods {
			if lm.RecipeID == store.RecipeEmailPassword && lm.TenantID == t.ID && lm.Email == email {
				recipeUserID = lm.RecipeUserID
			}
		}
		token, hash, err := newToken()
		if err != nil {
			a.log.Error(err, "Failed to make a password reset token")
			return
		}
		// Stored before it is sent, so the link works as soon as it arrives; a token whose
		// email failed is never seen by anyone and expires unused.
		now := a.opts.Clock()
		if err := a.opts.Store.CreateAccountToken(ctx, store.AccountToken{Hash: hash, Kind: store.TokenPasswordReset, TenantID: t.ID,
			RecipeUserID: recipeUserID, Email: email, CreatedAt: now, ExpiresAt: now.Add(PasswordResetTokenLifetime)}); err != nil {
			a.log.Error(err, "Failed to store a password reset token", "tenant", t.ID, "user", u.ID)
			return
		}
		link := linkTo(t, "/reset-password", token)
		if hosted {
			link = hostedLink(t, "/reset-password", token)
		}
		msg, err := templates.PasswordReset(email, link, PasswordResetTokenLifetime)
		if err != nil {
			a.log.Error(err, "Failed to write a password reset email")
			return
		}
		if err := sender.Send(ctx, msg); err != nil {
			a.log.Error(err, "Failed to send a password reset email", "tenant", t.ID, "user", u.ID)
			a.opts.API.AuditClient(cl, "Asked for a password reset", t.ID, u.ID, "delivery_failed")
			return
		}
		a.opts.API.AuditClient(cl, "Asked for a password reset", t.ID, u.ID, "success")
	}()
	return nil
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
