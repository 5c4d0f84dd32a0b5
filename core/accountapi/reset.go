package accountapi

import (
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

func fieldError(w http.ResponseWriter, id, msg string) {
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"status": contract.StatusFieldError,
		"formFields": emailpassword.FieldErrors{{ID: id, Error: msg}}})
}

// sendResetEmail serves POST /user/password/reset/token. It always answers OK once the form
// is valid and the tenant can send email, so the answer does not say whether the email has
// an account; looking the user up, storing the token and sending happen after the answer,
// so neither does its timing.
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
	email := emailpassword.NormaliseEmail(values["email"])
	if msg := emailpassword.ValidateEmail(email); msg != "" {
		fieldError(w, "email", msg)
		return
	}
	sender, templates, ok := a.sender(w, r, t, delivery.Email)
	if !ok {
		return
	}
	if t.Config.WebsiteDomain == "" {
		generalError(w, "tenant %q has no websiteDomain to send links to", t.ID)
		return
	}
	// The limit applies to every address alike, so a refusal says nothing about accounts.
	if !a.reserveSend(w, r, t, passwordless.Contact{Email: email}, "", delivery.Email) {
		return
	}
	release, ok := a.backgroundSlot(w)
	if !ok {
		return
	}
	hosted := fromHostedPages(r)
	ctx, cancel := background(r)
	r = r.Clone(ctx) // the audit lines below outlive the request
	go func() {
		defer release()
		defer cancel()
		u, _, err := a.opts.Store.GetEmailPasswordLogin(ctx, t.ID, email)
		if errors.Is(err, store.ErrNotFound) {
			a.opts.API.Audit(r, "Asked for a password reset", t.ID, "", "unknown_email")
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
			a.opts.API.Audit(r, "Asked for a password reset", t.ID, u.ID, "delivery_failed")
			return
		}
		a.opts.API.Audit(r, "Asked for a password reset", t.ID, u.ID, "success")
	}()
	status(w, contract.StatusOK)
}

// resetPassword serves POST /user/password/reset {method: "token", token, formFields:
// [{id: "password"}]}: the token is used up, the password replaced, the email marked
// verified (the link proved it) and every session of the user revoked.
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
	password := values["password"]
	if msg := emailpassword.ValidatePassword(password); msg != "" {
		fieldError(w, "password", msg)
		return
	}
	tok, err := a.opts.Store.ConsumeAccountToken(r.Context(), store.TokenPasswordReset, hashToken(body.Token), a.opts.Clock())
	if errors.Is(err, store.ErrNotFound) || (err == nil && tok.TenantID != t.ID) {
		a.opts.API.Audit(r, "Refused password reset", t.ID, "", "invalid_token")
		status(w, contract.StatusResetPasswordInvalidToken)
		return
	}
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	// The login method must still be an emailpassword one with the email the link went to.
	u, err := a.opts.Store.GetUser(r.Context(), tok.RecipeUserID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		a.internalError(w, r, err)
		return
	}
	if err != nil || !slices.ContainsFunc(u.LoginMethods, func(lm store.LoginMethod) bool {
		return lm.RecipeUserID == tok.RecipeUserID && lm.RecipeID == store.RecipeEmailPassword && lm.Email == tok.Email
	}) {
		status(w, contract.StatusResetPasswordInvalidToken)
		return
	}
	hash, err := a.opts.PasswordParams.Hash(password)
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	if _, err := a.opts.Store.SetPasswordHash(r.Context(), tok.RecipeUserID, hash); err != nil {
		a.internalError(w, r, fmt.Errorf("reset password: %w", err))
		return
	}
	u, err = a.opts.Store.SetEmailVerified(r.Context(), tok.RecipeUserID, tok.Email)
	if err != nil {
		a.internalError(w, r, fmt.Errorf("reset password: %w", err))
		return
	}
	n, err := a.opts.Sessions.RevokeUser(r.Context(), u.ID)
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	a.opts.API.Audit(r, "Reset password", t.ID, u.ID, "success", "revokedSessions", n)
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"status": contract.StatusOK, "user": httpapi.UserJSON(u)})
}
