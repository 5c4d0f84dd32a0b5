package hostedui

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
)

// CSRFCookie holds the browser's CSRF token; every form sends it back in the csrf field
// (double submit). A cross-site page can make the browser send the cookie but cannot read it,
// so it cannot fill in the field.
const CSRFCookie = "twofold-csrf"

// csrfToken returns the browser's CSRF token, setting a new cookie when it has none.
func csrfToken(w http.ResponseWriter, r *http.Request, secure bool) (string, error) {
	if c, err := r.Cookie(CSRFCookie); err == nil && len(c.Value) >= 32 {
		return c.Value, nil
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("csrf token: %w", err)
	}
	tok := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: CSRFCookie, Value: tok, Path: "/auth", HttpOnly: true, Secure: secure, SameSite: http.SameSiteStrictMode})
	// The request rendering the page uses it at once.
	r.AddCookie(&http.Cookie{Name: CSRFCookie, Value: tok})
	return tok, nil
}

// checkCSRF refuses a form POST whose csrf field does not match the CSRF cookie, or that a
// browser reports as cross-site, with 403 and a page saying so.
func (u *UI) checkCSRF(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		field := r.PostFormValue("csrf")
		c, err := r.Cookie(CSRFCookie)
		ok := err == nil && len(c.Value) >= 32 && subtle.ConstantTimeCompare([]byte(field), []byte(c.Value)) == 1
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
