// The session endpoints: refresh and sign-out.

package httpapi

import (
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
		settings := a.defaultSettings(r, sess.TenantID)
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

// defaultSettings are the cookie settings used to clear cookies of a session whose tenant
// may be unknown.
func (a *API) defaultSettings(r *http.Request, tenantID string) session.Settings {
	if tenantID != "" {
		if t, err := a.opts.Tenants.Current(r.Context(), tenantID); err == nil {
			return a.settings(t)
		}
	}
	if t, err := a.opts.Tenants.Current(r.Context(), "public"); err == nil {
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
	settings := a.defaultSettings(r, sess.TenantID)
	if !session.CSRFProtected(r, transport, settings) {
		session.WriteError(w, session.ErrUnauthorised)
		return
	}
	if _, err := a.opts.Sessions.Revoke(r.Context(), sess.Handle); err != nil && !errors.Is(err, session.ErrUnauthorised) {
		a.internalError(w, r, err)
		return
	}
	a.metrics.sessions.WithLabelValues("signout", "success").Inc()
	a.auditEvent(r, "Signed out", sess.TenantID, sess.UserID, "success", "session", sess.Handle)
	a.opts.Sessions.ClearTokens(w, settings)
	httpkit.WriteJSON(w, http.StatusOK, map[string]string{"status": contract.StatusOK})
}
