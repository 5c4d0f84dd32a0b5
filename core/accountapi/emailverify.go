package accountapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/delivery"
	"github.com/twofold-dev/twofold/core/httpapi"
	"github.com/twofold-dev/twofold/core/httpkit"
	"github.com/twofold-dev/twofold/core/passwordless"
	"github.com/twofold-dev/twofold/core/session"
	"github.com/twofold-dev/twofold/core/store"
	"github.com/twofold-dev/twofold/core/tenant"
)

// evClaim is the st-ev claim (contract.EmailVerificationClaim) saying v at now.
func evClaim(v bool, now time.Time) json.RawMessage {
	b, _ := json.Marshal(contract.EmailVerificationClaim{V: &v, T: now.UnixMilli()})
	return b
}

// recipeOfFactor is the recipe of the login method a first factor signs in with.
func recipeOfFactor(completed mfa.Completed) string {
	for f := range completed {
		switch f {
		case mfa.EmailPassword:
			return store.RecipeEmailPassword
		case mfa.ThirdParty:
			return store.RecipeThirdParty
		case mfa.OTPEmail, mfa.OTPPhone, mfa.LinkEmail, mfa.LinkPhone:
			return store.RecipePasswordless
		}
	}
	return ""
}

// WithEmailVerification wraps the claims of new sessions: under the tenant's
// emailVerification REQUIRED it adds st-ev, true when every login method of the tenant that
// the first factor signs in with and that has an email is verified. (The claims function
// does not learn which login method of the recipe was used; GET /user/email/verify re-reads
// the session's own login method and corrects the claim.)
func WithEmailVerification(next httpapi.ClaimsFunc, clock func() time.Time) httpapi.ClaimsFunc {
	if clock == nil {
		clock = time.Now
	}
	return func(ctx context.Context, t tenant.Tenant, u store.User, completed mfa.Completed) (map[string]json.RawMessage, error) {
		claims, err := next(ctx, t, u, completed)
		if err != nil || t.Config.EmailVerification != contract.EmailVerificationRequired {
			return claims, err
		}
		if claims == nil {
			claims = map[string]json.RawMessage{}
		}
		recipe := recipeOfFactor(completed)
		verified := !slices.ContainsFunc(u.LoginMethods, func(lm store.LoginMethod) bool {
			return lm.TenantID == t.ID && lm.RecipeID == recipe && lm.Email != "" && !lm.Verified
		})
		claims[contract.EmailVerificationClaimKey] = evClaim(verified, clock())
		return claims, nil
	}
}

// sessionEmail returns the email of the session's login method and whether it is verified;
// a login method without an email (a phone number) counts as verified.
func (a *API) sessionEmail(ctx context.Context, sess session.Session) (u store.User, email string, verified bool, err error) {
	u, err = a.opts.Store.GetUser(ctx, sess.RecipeUserID)
	if err != nil {
		return store.User{}, "", false, fmt.Errorf("load the session's user: %w", err)
	}
	for _, lm := range u.LoginMethods {
		if lm.RecipeUserID == sess.RecipeUserID {
			return u, lm.Email, lm.Email == "" || lm.Verified, nil
		}
	}
	return u, "", true, nil
}

// syncClaim sets st-ev in the session to verified when the tenant requires verification and
// the claim says otherwise, and writes the new tokens.
func (a *API) syncClaim(w http.ResponseWriter, r *http.Request, t tenant.Tenant, sess session.Session, verified bool) error {
	if t.Config.EmailVerification != contract.EmailVerificationRequired {
		return nil
	}
	if raw, ok := sess.Claims[contract.EmailVerificationClaimKey]; ok {
		var c contract.EmailVerificationClaim
		if json.Unmarshal(raw, &c) == nil && c.Verified() == verified {
			return nil
		}
	}
	_, tokens, err := a.opts.Sessions.UpdateClaims(r.Context(), sess.Handle, func(claims map[string]json.RawMessage) error {
		claims[contract.EmailVerificationClaimKey] = evClaim(verified, a.opts.Clock())
		return nil
	})
	if err != nil {
		return fmt.Errorf("update the %s claim: %w", contract.EmailVerificationClaimKey, err)
	}
	_, transport := session.AccessTokenFrom(r)
	if transport == "" {
		transport = session.TransportHeader
	}
	a.opts.Sessions.WriteTokens(w, transport, tokens, httpapi.SessionSettings(t.Config))
	return nil
}

// verificationTenant returns the tenant with email verification on, or answers
// GENERAL_ERROR saying it is off. Endpoints with a session use the session's tenant (the
// SDKs call them without a tenant segment); POST /user/email/verify uses the link's.
func (a *API) verificationTenant(w http.ResponseWriter, r *http.Request) (tenant.Tenant, bool) {
	var t tenant.Tenant
	if sess, ok := session.FromContext(r.Context()); ok {
		var err error
		if t, err = a.opts.Tenants.Current(r.Context(), sess.TenantID); err != nil {
			// A session of a deleted tenant cannot be refreshed either.
			session.WriteError(w, fmt.Errorf("%w: %w", session.ErrUnauthorised, err))
			return tenant.Tenant{}, false
		}
	} else if t, ok = a.opts.API.TenantOf(w, r); !ok {
		return tenant.Tenant{}, false
	}
	if t.Config.EmailVerification == contract.EmailVerificationOff || t.Config.EmailVerification == "" {
		generalError(w, "email verification is OFF for tenant %q", t.ID)
		return tenant.Tenant{}, false
	}
	return t, true
}

// sendVerificationEmail serves POST /user/email/verify/token (session required).
func (a *API) sendVerificationEmail(w http.ResponseWriter, r *http.Request) {
	t, ok := a.verificationTenant(w, r)
	if !ok {
		return
	}
	sess, _ := session.FromContext(r.Context())
	u, email, verified, err := a.sessionEmail(r.Context(), sess)
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	if verified {
		if err := a.syncClaim(w, r, t, sess, true); err != nil {
			a.internalError(w, r, err)
			return
		}
		status(w, contract.StatusEmailAlreadyVerified)
		return
	}
	sender, templates, ok := a.sender(w, r, t, delivery.Email)
	if !ok {
		return
	}
	if !a.reserveSend(w, r, t, passwordless.Contact{Email: email}, u.ID, delivery.Email) {
		return
	}
	token, hash, err := newToken()
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	link, ok := websiteLink(w, t, "/verify-email", token)
	if !ok {
		return
	}
	if fromHostedPages(r) {
		link = hostedLink(t, "/verify-email", token)
	}
	msg, err := templates.EmailVerification(email, link)
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	if err := sender.Send(r.Context(), msg); err != nil {
		a.log.Error(err, "Failed to send an email verification email", "tenant", t.ID)
		generalError(w, "the verification email could not be sent; try again later")
		return
	}
	now := a.opts.Clock()
	if err := a.opts.Store.CreateAccountToken(r.Context(), store.AccountToken{Hash: hash, Kind: store.TokenEmailVerification,
		TenantID: t.ID, RecipeUserID: sess.RecipeUserID, Email: email, CreatedAt: now, ExpiresAt: now.Add(EmailVerificationTokenLifetime)}); err != nil {
		a.internalError(w, r, err)
		return
	}
	a.opts.API.Audit(r, "Sent an email verification email", t.ID, u.ID, "success")
	status(w, contract.StatusOK)
}

// verifyEmail serves POST /user/email/verify {method: "token", token}; a session, when the
// request has one for the same login method, gets its st-ev claim updated.
func (a *API) verifyEmail(w http.ResponseWriter, r *http.Request) {
	t, ok := a.verificationTenant(w, r)
	if !ok {
		return
	}
	var body struct {
		Method string `json:"method"`
		Token  string `json:"token"`
	}
	if !httpkit.Decode(w, r, &body) {
		return
	}
	switch {
	case body.Method != "token":
		httpkit.WriteError(w, http.StatusBadRequest, "method", "Unsupported method for email verification: use \"token\"")
		return
	case body.Token == "":
		httpkit.WriteError(w, http.StatusBadRequest, "token", "Please provide the email verification token")
		return
	}
	tok, err := a.opts.Store.ConsumeAccountToken(r.Context(), store.TokenEmailVerification, hashToken(body.Token), a.opts.Clock())
	if errors.Is(err, store.ErrNotFound) || (err == nil && tok.TenantID != t.ID) {
		status(w, contract.StatusEmailVerificationInvalidToken)
		return
	}
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	u, err := a.opts.Store.SetEmailVerified(r.Context(), tok.RecipeUserID, tok.Email)
	if errors.Is(err, store.ErrNotFound) {
		// The login method changed its email, or is gone, since the token was sent.
		status(w, contract.StatusEmailVerificationInvalidToken)
		return
	}
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	a.opts.API.Audit(r, "Verified email", t.ID, u.ID, "success")
	if token, _ := session.AccessTokenFrom(r); token != "" {
		if sess, err := a.opts.Sessions.Verify(r.Context(), token, session.VerifyOptions{CheckDatabase: true}); err == nil && sess.RecipeUserID == tok.RecipeUserID {
			if err := a.syncClaim(w, r, t, sess, true); err != nil {
				a.internalError(w, r, err)
				return
			}
		}
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"status": contract.StatusOK, "user": httpapi.UserJSON(u)})
}

// isEmailVerified serves GET /user/email/verify (session required) and brings the session's
// st-ev claim up to date.
func (a *API) isEmailVerified(w http.ResponseWriter, r *http.Request) {
	t, ok := a.verificationTenant(w, r)
	if !ok {
		return
	}
	sess, _ := session.FromContext(r.Context())
	_, _, verified, err := a.sessionEmail(r.Context(), sess)
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	if err := a.syncClaim(w, r, t, sess, verified); err != nil {
		a.internalError(w, r, err)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"status": contract.StatusOK, "isVerified": verified})
}
