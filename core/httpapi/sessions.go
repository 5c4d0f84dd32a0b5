// The session endpoints: refresh and sign-out.

package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/core/httpkit"
	"github.com/twofold-dev/twofold/core/session"
	"github.com/twofold-dev/twofold/core/tenant"
)

func (a *API) refresh(w http.ResponseWriter, r *http.Request) {
	token, transport := session.RefreshTokenFrom(r)
	sess, tokens, err := a.opts.Sessions.Refresh(r.Context(), token)
	if errors.Is(err, session.ErrUnauthorised) && transport == session.TransportHeader {
		// The Authorization header may be the application's own; a refresh cookie still counts.
		if c, cerr := r.Cookie(contract.CookieRefreshToken); cerr == nil && c.Value != "" {
			transport = session.TransportCookie
			sess, tokens, err = a.opts.Sessions.Refresh(r.Context(), c.Value)
		}
	}
	if err != nil {
		settings := a.ClearSettings(r.Context(), sess.TenantID)
		switch {
		case errors.Is(err, session.ErrTokenTheft):
			a.metrics.sessions.WithLabelValues("refresh", "theft").Inc()
			a.auditEvent(r, "Revoked session after refresh-token theft", sess.TenantID, sess.UserID, "token_theft", "session", sess.Handle)
		case errors.Is(err, session.ErrUnauthorised), errors.Is(err, tenant.ErrUnknownTenant):
			// A session of a deleted tenant cannot be refreshed either.
			err = fmt.Errorf("%w: %w", session.ErrUnauthorised, err)
			a.metrics.sessions.WithLabelValues("refresh", "unauthorised").Inc()
		default:
			a.internalError(w, r, err)
			return
		}
		a.opts.Sessions.ClearTokens(w, settings)
		session.WriteError(w, err)
		return
	}
	t, err := a.opts.Tenants.Current(r.Context(), sess.TenantID)
	if err != nil {
		a.internalError(w, r, err)
		return
	}
	a.metrics.sessions.WithLabelValues("refresh", "success").Inc()
	a.opts.Sessions.WriteTokens(w, transport, tokens, a.settings(t))
	httpkit.WriteJSON(w, http.StatusOK, map[string]any{})
}

// ClearSettings are the cookie settings to clear the cookies of a session of tenantID with:
// its tenant's, else the public tenant's, else the defaults.
func (a *API) ClearSettings(ctx context.Context, tenantID string) session.Settings {
	if tenantID != "" {
		if t, err := a.opts.Tenants.Current(ctx, tenantID); err == nil {
			return a.settings(t)
		}
	}
	if t, err := a.opts.Tenants.Current(ctx, contract.PublicTenantID); err == nil {
		return a.settings(t)
	}
	return session.Settings{CookieSameSite: http.SameSiteLaxMode, CookieSecure: true}
}

func (a *API) signOut(w http.ResponseWriter, r *http.Request) {
	token, transport := session.AccessTokenFrom(r)
	if token == "" {
		httpkit.WriteJSON(w, http.StatusOK, map[string]string{"status": contract.StatusOK})
		return
	}
	sess, err := a.opts.Sessions.Verify(r.Context(), token, session.VerifyOptions{})
	if err != nil {
		session.WriteError(w, err)
		return
	}
	settings := a.ClearSettings(r.Context(), sess.TenantID)
	if !session.CSRFProtected(r, transport, settings) {
		session.WriteError(w, session.ErrUnauthorised)
		return
	}
	if err := a.SignOut(r.Context(), a.ClientOf(r), sess); err != nil {
		a.internalError(w, r, err)
		return
	}
	a.opts.Sessions.ClearTokens(w, settings)
	httpkit.WriteJSON(w, http.StatusOK, map[string]string{"status": contract.StatusOK})
}
