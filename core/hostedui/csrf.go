package hostedui

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/twofold-dev/twofold/contract"
)

// CSRF protection of the hosted forms. Every browser gets a random id in a cookie; every form
// carries a token that is an HMAC, under a secret only the core holds, of that cookie's name
// and value and of the browser's session handle (empty before sign-in). A form is accepted
// only when its token matches the cookie and the session the browser sends with it, so:
//
//   - a cross-site page can make the browser send the cookies but cannot read the token;
//   - a token copied from one browser or session is refused with another's cookies;
//   - an attacker who can set cookies for the site (from a sibling subdomain) cannot make a
//     pair: planting their own id and token fails as soon as the victim has a session, and
//     with Secure cookies the id lives in a __Host- cookie, which no subdomain can set.
//
// The secret is derived from the signing key set (keys.Manager.DeriveSecret), so every
// replica checks what any other rendered, and a token names the key it was made with.
const (
	// CSRFCookie holds the browser's id on plain-http sites (tests, local demos).
	CSRFCookie = "twofold-csrf"
	// SecureCSRFCookie holds it when the tenant's cookies are Secure.
	SecureCSRFCookie = "__Host-twofold-csrf"
	csrfPurpose      = "hosted-ui csrf"
	csrfIDBytes      = 32
)

// SecretSource derives the secret that signs CSRF tokens and gives the public keys that
// access tokens are checked with; *keys.Manager is one.
type SecretSource interface {
	DeriveSecret(ctx context.Context, purpose string) (kid string, secret []byte, err error)
	DeriveSecretFor(ctx context.Context, kid, purpose string) ([]byte, error)
	Verify(ctx context.Context, token string) (payload []byte, kid string, err error)
}

func csrfCookieName(secure bool) string {
	if secure {
		return SecureCSRFCookie
	}
	return CSRFCookie
}

func csrfMAC(secret []byte, cookieName, id, handle string) []byte {
	mac := hmac.New(sha256.New, secret)
	fmt.Fprintf(mac, "%s\x00%s\x00%s", cookieName, id, handle)
	return mac.Sum(nil)
}

// csrfToken returns the token for the forms of the page being rendered, setting the browser
// id cookie when the browser has none.
func (u *UI) csrfToken(w http.ResponseWriter, r *http.Request, secure bool) (string, error) {
	name := csrfCookieName(secure)
	var id string
	if c, err := r.Cookie(name); err == nil && len(c.Value) >= 43 {
		id = c.Value
	} else {
		b := make([]byte, csrfIDBytes)
		if _, err := rand.Read(b); err != nil {
			return "", fmt.Errorf("csrf id: %w", err)
		}
		id = base64.RawURLEncoding.EncodeToString(b)
		// __Host- needs Path=/ and no Domain; Strict keeps the cookie off cross-site requests.
		http.SetCookie(w, &http.Cookie{Name: name, Value: id, Path: "/", HttpOnly: true, Secure: secure, SameSite: http.SameSiteStrictMode})
		// The request rendering the page uses it at once.
		r.AddCookie(&http.Cookie{Name: name, Value: id})
	}
	kid, secret, err := u.opts.Secrets.DeriveSecret(r.Context(), csrfPurpose)
	if err != nil {
		return "", fmt.Errorf("csrf token: %w", err)
	}
	return kid + "." + base64.RawURLEncoding.EncodeToString(csrfMAC(secret, name, id, u.csrfSession(w, r))), nil
}

// csrfSession is the session handle a token is bound to: that of the access token this
// response sets, if it sets one (a form rendered right after sign-in or sign-out), else of
// the browser's access-token cookie; "" without one signed by the core. An expired token
// still names its session: a page left open past the token's lifetime can still sign out.
func (u *UI) csrfSession(w http.ResponseWriter, r *http.Request) string {
	token := ""
	if c, err := r.Cookie(contract.CookieAccessToken); err == nil {
		token = c.Value
	}
	if w != nil {
		for _, sc := range w.Header().Values("Set-Cookie") {
			if c, err := http.ParseSetCookie(sc); err == nil && c.Name == contract.CookieAccessToken {
				token = c.Value
				if c.MaxAge < 0 {
					token = ""
				}
			}
		}
	}
	if token == "" {
		return ""
	}
	body, _, err := u.opts.Secrets.Verify(r.Context(), token)
	if err != nil {
		return ""
	}
	var p struct {
		SessionHandle string `json:"sessionHandle"`
	}
	if json.Unmarshal(body, &p) != nil {
		return ""
	}
	return p.SessionHandle
}

// validCSRF checks the form's csrf field against the browser's id cookie and session.
func (u *UI) validCSRF(r *http.Request) bool {
	kid, sig, ok := strings.Cut(r.PostFormValue("csrf"), ".")
	if !ok {
		return false
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || len(got) != sha256.Size {
		return false
	}
	secret, err := u.opts.Secrets.DeriveSecretFor(r.Context(), kid, csrfPurpose)
	if err != nil {
		return false
	}
	handle := u.csrfSession(nil, r)
	for _, name := range []string{SecureCSRFCookie, CSRFCookie} {
		c, err := r.Cookie(name)
		if err != nil || len(c.Value) < 43 {
			continue
		}
		if hmac.Equal(got, csrfMAC(secret, name, c.Value, handle)) {
			return true
		}
	}
	return false
}

// checkCSRF refuses a form POST whose csrf token was not made for this browser and session,
// or that a browser reports as cross-site, with 403 and a page saying so.
func (u *UI) checkCSRF(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		ok := u.validCSRF(r)
		if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" {
			ok = false
		}
		if !ok {
			u.opts.Logger.Info("Refused a hosted form without a valid CSRF token", "path", r.URL.Path)
			u.errorPage(w, r, http.StatusForbidden, "This form has expired",
				"The form was not sent from this site's own page, or it is too old. Go back, reload the page and try again.")
			return
		}
		next(w, r)
	}
}
