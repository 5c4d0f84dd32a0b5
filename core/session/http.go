package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/twofold-dev/twofold/contract"
)

// Transport is how tokens travel: in cookies or in headers.
type Transport string

// The two transports.
const (
	TransportCookie Transport = "cookie"
	TransportHeader Transport = "header"
)

// RequestedTransport is the transport a client asks for when a session is created: the
// st-auth-mode header, header mode when it is absent.
func RequestedTransport(r *http.Request) Transport {
	if strings.EqualFold(strings.TrimSpace(r.Header.Get(contract.HeaderAuthMode)), "cookie") {
		return TransportCookie
	}
	return TransportHeader
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

func cookie(r *http.Request, name string) string {
	c, err := r.Cookie(name)
	if err != nil {
		return ""
	}
	return c.Value
}

// AccessTokenFrom returns the request's access token; a Bearer header wins over the cookie.
func AccessTokenFrom(r *http.Request) (string, Transport) {
	if t := bearer(r); t != "" {
		return t, TransportHeader
	}
	if t := cookie(r, contract.CookieAccessToken); t != "" {
		return t, TransportCookie
	}
	return "", ""
}

// RefreshTokenFrom returns the request's refresh token; a Bearer header wins over the cookie.
func RefreshTokenFrom(r *http.Request) (string, Transport) {
	if t := bearer(r); t != "" {
		return t, TransportHeader
	}
	if t := cookie(r, contract.CookieRefreshToken); t != "" {
		return t, TransportCookie
	}
	return "", ""
}

// CSRFProtected reports whether a request carrying its token in a cookie is safe from
// cross-site request forgery: SameSite lax or strict cookies are, and with SameSite=none a
// state-changing request must carry the custom rid header, which a cross-site form cannot set.
func CSRFProtected(r *http.Request, t Transport, s Settings) bool {
	if t != TransportCookie || s.CookieSameSite != http.SameSiteNoneMode {
		return true
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	return r.Header.Get("rid") != ""
}

// exposeHeaders lists names in the one Access-Control-Expose-Headers header, so browsers let
// the frontend SDK read them.
func exposeHeaders(w http.ResponseWriter, names ...string) {
	h := w.Header()
	var list []string
	for _, v := range h.Values("Access-Control-Expose-Headers") {
		for _, n := range strings.Split(v, ",") {
			if n = strings.TrimSpace(n); n != "" {
				list = append(list, n)
			}
		}
	}
	for _, n := range names {
		if !slices.Contains(list, n) {
			list = append(list, n)
		}
	}
	h.Set("Access-Control-Expose-Headers", strings.Join(list, ", "))
}

func (m *Manager) setCookie(w http.ResponseWriter, s Settings, name, value, path string, expires time.Time) {
	c := &http.Cookie{Name: name, Value: value, Path: path, Domain: s.CookieDomain, Expires: expires,
		HttpOnly: true, Secure: s.CookieSecure, SameSite: s.CookieSameSite}
	if value == "" {
		c.MaxAge = -1
		c.Expires = time.Unix(0, 0)
	}
	http.SetCookie(w, c)
}

func (m *Manager) refreshPath() string {
	return strings.TrimSuffix(m.opts.APIBasePath, "/") + "/session/refresh"
}

// WriteTokens puts tokens in the response: cookies or headers according to t, and the
// front-token header in both modes. A Tokens without a refresh token leaves the client's as is.
func (m *Manager) WriteTokens(w http.ResponseWriter, t Transport, tokens Tokens, s Settings) {
	// No shared cache may keep an answer that carries tokens.
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set(contract.HeaderFrontToken, tokens.FrontToken())
	exposed := []string{contract.HeaderFrontToken}
	if t == TransportCookie {
		m.WriteCookies(w, tokens, s)
	} else {
		w.Header().Set(contract.HeaderAccessToken, tokens.AccessToken)
		exposed = append(exposed, contract.HeaderAccessToken)
		if tokens.RefreshToken != "" {
			w.Header().Set(contract.HeaderRefreshToken, tokens.RefreshToken)
			exposed = append(exposed, contract.HeaderRefreshToken)
		}
	}
	exposeHeaders(w, exposed...)
}

// WriteCookies sets the token cookies alone, without the front-token header the SDKs read:
// for pages that keep the session in cookies (the hosted pages). A Tokens without a refresh
// token leaves the client's as is.
func (m *Manager) WriteCookies(w http.ResponseWriter, tokens Tokens, s Settings) {
	expiry := tokens.RefreshTokenExpiry
	if expiry.IsZero() {
		expiry = tokens.AccessTokenExpiry
	}
	m.setCookie(w, s, contract.CookieAccessToken, tokens.AccessToken, "/", expiry)
	if tokens.RefreshToken != "" {
		m.setCookie(w, s, contract.CookieRefreshToken, tokens.RefreshToken, m.refreshPath(), tokens.RefreshTokenExpiry)
	}
}

// WriteTokensFor puts tokens of a session of tenantID in the response to r, in the transport
// r used for its access token (headers when it used none), with the tenant's cookie settings.
func (m *Manager) WriteTokensFor(w http.ResponseWriter, r *http.Request, tenantID string, tokens Tokens) error {
	settings, err := m.Settings(r.Context(), tenantID)
	if err != nil {
		return fmt.Errorf("session settings: %w", err)
	}
	_, transport := AccessTokenFrom(r)
	if transport == "" {
		transport = TransportHeader
	}
	m.WriteTokens(w, transport, tokens, settings)
	return nil
}

// ClearTokens tells the client to drop its tokens, in both modes.
func (m *Manager) ClearTokens(w http.ResponseWriter, s Settings) {
	w.Header().Set("Cache-Control", "no-store")
	m.setCookie(w, s, contract.CookieAccessToken, "", "/", time.Time{})
	m.setCookie(w, s, contract.CookieRefreshToken, "", m.refreshPath(), time.Time{})
	// An empty token header is how the SDKs are told to drop a stored token.
	w.Header().Set(contract.HeaderAccessToken, "")
	w.Header().Set(contract.HeaderRefreshToken, "")
	w.Header().Set(contract.HeaderFrontToken, "remove")
	exposeHeaders(w, contract.HeaderFrontToken, contract.HeaderAccessToken, contract.HeaderRefreshToken)
}

// WriteError answers a session error in FDI's shape: 401 {"message":"try refresh token"},
// {"message":"unauthorised"} or {"message":"token theft detected"}.
func WriteError(w http.ResponseWriter, err error) {
	msg := ErrUnauthorised.Error()
	switch {
	case errors.Is(err, ErrTryRefreshToken):
		msg = ErrTryRefreshToken.Error()
	case errors.Is(err, ErrTokenTheft):
		msg = ErrTokenTheft.Error()
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusUnauthorized)
	json.NewEncoder(w).Encode(contract.MessageBody{Message: msg})
}

type ctxKey struct{}

// FromContext returns the session Require verified for this request.
func FromContext(ctx context.Context) (Session, bool) {
	s, ok := ctx.Value(ctxKey{}).(Session)
	return s, ok
}

// Of returns the session Require verified for r: the handlers Require wraps use it.
func Of(r *http.Request) Session {
	s, _ := FromContext(r.Context())
	return s
}

// WithSession returns ctx carrying s, as Require does.
func WithSession(ctx context.Context, s Session) context.Context {
	return context.WithValue(ctx, ctxKey{}, s)
}

// Require wraps an endpoint that needs a session: the access token (Bearer header or
// sAccessToken cookie) is verified, including against revocation in the store, and the
// session is put in the request context (FromContext). Failures answer 401 in FDI's shape.
// Requirement checks on the st-mfa claim are the endpoint's business: MFA endpoints must
// work while v is false.
func (m *Manager) Require(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess, has, err := m.FromRequest(r)
		if err == nil && !has {
			err = ErrUnauthorised
		}
		if err != nil {
			WriteError(w, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithSession(r.Context(), sess)))
	})
}

// FromRequest returns the session of the request's access token, checked against the store;
// has is false when the request carries no token. A token that does not verify, or a cookie
// without the tenant's CSRF protection, is an error to answer with WriteError (401: the
// client refreshes).
func (m *Manager) FromRequest(r *http.Request) (sess Session, has bool, err error) {
	token, transport := AccessTokenFrom(r)
	if token == "" {
		return Session{}, false, nil
	}
	sess, err = m.Verify(r.Context(), token, VerifyOptions{CheckDatabase: true})
	if err != nil {
		return Session{}, false, err
	}
	settings, err := m.opts.Settings(r.Context(), sess.TenantID)
	if err != nil || !CSRFProtected(r, transport, settings) {
		return Session{}, false, ErrUnauthorised
	}
	return sess, true, nil
}
