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
	return func(ctx context.Context, r store.MFAReader, t tenant.Tenant, u store.User, completed mfa.Completed) (map[string]json.RawMessage, error) {
		claims, err := next(ctx, r, t, u, completed)
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
// the claim says otherwise, and returns the session's new tokens (nil when nothing changed).
func (a *API) syncClaim(ctx context.Context, t tenant.Tenant, sess session.Session, verified bool) (*session.Tokens, error) {
	if t.Config.EmailVerification != contract.EmailVerificationRequired {
		return nil, nil
	}
	if raw, ok := sess.Claims[contract.EmailVerificationClaimKey]; ok {
		var c contract.EmailVerificationClaim
		if json.Unmarshal(raw, &c) == nil && c.Verified() == verified {
			return nil, nil
		}
	}
	_, tokens, err := a.opts.Sessions.UpdateClaims(ctx, sess.Handle, func(claims map[string]json.RawMessage) error {
		claims[contract.EmailVerificationClaimKey] = evClaim(verified, a.opts.Clock())
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("update the %s claim: %w", contract.EmailVerificationClaimKey, err)
	}
	return &tokens, nil
}

// writeClaimTokens sends the tokens syncClaim returned in the transport the request used
// (header when it carried none).
func (a *API) writeClaimTokens(w http.ResponseWriter, r *http.Request, t tenant.Tenant, tokens *session.Tokens) {
	if tokens == nil {
		return
	}
	_, transport := session.AccessTokenFrom(r)
	if transport == "" {
		transport = session.TransportHeader
	}
	a.opts.Sessions.WriteTokens(w, transport, *tokens, httpapi.SessionSettings(t.Config))
}

// verificationOff is the refusal of a tenant whose email verification is off, nil otherwise.
func verificationOff(t tenant.Tenant) error {
	if t.Config.EmailVerification == contract.EmailVerificationOff || t.Config.EmailVerification == "" {
		return refused("email verification is OFF for tenant %q", t.ID)
	}
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
	if err := verificationOff(t); err != nil {
		a.WriteError(w, r, err)
		return tenant.Tenant{}, false
	}
	return t, true
}

// VerificationSent is the outcome of SendVerificationEmail.
type VerificationSent struct {
	// AlreadyVerified says no email was sent: the session's email is verified already.
	AlreadyVerified bool
	// Tokens are the session's new tokens when its st-ev claim was brought up to date.
	Tokens *session.Tokens
}

// SendVerificationEmail sends the email of the session's login method a verification link,
// or, when it is verified already, brings the session's st-ev claim up to date. hosted makes
// the link carry its token in the URL fragment for the hosted pages.
func (a *API) SendVerificationEmail(ctx context.Context, cl httpapi.Client, t tenant.Tenant, sess session.Session, hosted bool) (VerificationSent, error) {
	if err := verificationOff(t); err != nil {
		return VerificationSent{}, err
	}
	u, email, verified, err := a.sessionEmail(ctx, sess)
	if err != nil {
		return VerificationSent{}, err
	}
	if verified {
		tokens, err := a.syncClaim(ctx, t, sess, true)
		return VerificationSent{AlreadyVerified: true, Tokens: tokens}, err
	}
	sender, templates, err := a.sender(t, delivery.Email)
	if err != nil {
		return VerificationSent{}, err
	}
	if err := a.reserveSend(ctx, cl, t, passwordless.Contact{Email: email}, u.ID, delivery.Email); err != nil {
		return VerificationSent{}, err
	}
	token, hash, err := newToken()
	if err != nil {
		return VerificationSent{}, err
	}
	if t.Config.WebsiteDomain == "" {
		return VerificationSent{}, refused("tenant %q has no websiteDomain to send links to", t.ID)
	}
	link := linkTo(t, "/verify-email", token)
	if hosted {
		link = hostedLink(t, "/verify-email", token)
	}
	msg, err := templates.EmailVerification(email, link)
	if err != nil {
		return VerificationSent{}, err
	}
	if err := sender.Send(ctx, msg); err != nil {
		a.log.Error(err, "Failed to send an email verification email", "tenant", t.ID)
		return VerificationSent{}, refused("the verification email could not be sent; try again later")
	}
	now := a.opts.Clock()
	if err := a.opts.Store.CreateAccountToken(ctx, store.AccountToken{Hash: hash, Kind: store.TokenEmailVerification,
		TenantID: t.ID, RecipeUserID: sess.RecipeUserID, Email: email, CreatedAt: now, ExpiresAt: now.Add(EmailVerificationTokenLifetime)}); err != nil {
		return VerificationSent{}, err
	}
	a.opts.API.AuditClient(cl, "Sent an email verification email", t.ID, u.ID, "success")
	return VerificationSent{}, nil
}

// invalidVerificationToken is the refusal of a verification token that is unknown, used,
// expired, of another tenant, or whose login method changed its email.
var invalidVerificationToken = &Refusal{Status: contract.StatusEmailVerificationInvalidToken}

// VerifyEmail uses up an email verification token of tenant t and marks the email verified.
// sess, when not nil, is the session the request carried: a session of the same login method
// gets its st-ev claim updated, and its new tokens are returned.
func (a *API) VerifyEmail(ctx context.Context, cl httpapi.Client, t tenant.Tenant, token string, sess *session.Session) (store.User, *session.Tokens, error) {
	if err := verificationOff(t); err != nil {
		return store.User{}, nil, err
	}
	tok, err := a.opts.Store.ConsumeAccountToken(ctx, store.TokenEmailVerification, hashToken(token), a.opts.Clock())
	if errors.Is(err, store.ErrNotFound) || (err == nil && tok.TenantID != t.ID) {
		return store.User{}, nil, invalidVerificationToken
	}
	if err != nil {
		return store.User{}, nil, err
	}
	u, err := a.opts.Store.SetEmailVerified(ctx, tok.RecipeUserID, tok.Email)
	if errors.Is(err, store.ErrNotFound) {
		// The login method changed its email, or is gone, since the token was sent.
		return store.User{}, nil, invalidVerificationToken
	}
	if err != nil {
		return store.User{}, nil, err
	}
	a.opts.API.AuditClient(cl, "Verified email", t.ID, u.ID, "success")
	if sess == nil || sess.RecipeUserID != tok.RecipeUserID {
		return u, nil, nil
	}
	tokens, err := a.syncClaim(ctx, t, *sess, true)
	return u, tokens, err
}

// sendVerificationEmail serves POST /user/email/verify/token (session required).
func (a *API) sendVerificationEmail(w http.ResponseWriter, r *http.Request) {
	t, ok := a.verificationTenant(w, r)
	if !ok {
		return
	}
	res, err := a.SendVerificationEmail(r.Context(), a.opts.API.ClientOf(r), t, session.Of(r), fromHostedPages(r))
	if err != nil {
		a.WriteError(w, r, err)
		return
	}
	a.writeClaimTokens(w, r, t, res.Tokens)
	if res.AlreadyVerified {
		status(w, contract.StatusEmailAlreadyVerified)
		return
	}
	status(w, contract.StatusOK)
}

// verifyEmail serves POST /user/email/verify {method: "token", token}.
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
	var sess *session.Session
	if token, _ := session.AccessTokenFrom(r); token != "" {
		if s, err := a.opts.Sessions.Verify(r.Context(), token, session.VerifyOptions{CheckDatabase: true}); err == nil {
			sess = &s
		}
	}
	u, tokens, err := a.VerifyEmail(r.Context(), a.opts.API.ClientOf(r), t, body.Token, sess)
	if err != nil {
		a.WriteError(w, r, err)
		return
	}
	a.writeClaimTokens(w, r, t, tokens)
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"status": contract.StatusOK, "user": httpapi.UserJSON(u)})
}

// isEmailVerified serves GET /user/email/verify (session required) and brings the session's
// st-ev claim up to date.
func (a *API) isEmailVerified(w http.ResponseWriter, r *http.Request) {
	t, ok := a.verificationTenant(w, r)
	if !ok {
		return
	}
	sess := session.Of(r)
	_, _, verified, err := a.sessionEmail(r.Context(), sess)
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	tokens, err := a.syncClaim(r.Context(), t, sess, verified)
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	a.writeClaimTokens(w, r, t, tokens)
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{"status": contract.StatusOK, "isVerified": verified})
}
