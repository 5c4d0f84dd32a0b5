package hostedui

import (
	"fmt"
	"io/fs"
	"net/http"
	"slices"

	"github.com/go-logr/logr"

	"github.com/twofold-dev/twofold/core/mfaengine"
)

// A factor package (core/factors/<factor>) serves its own hosted steps with what this file
// exports: it adds its page templates and its factor id (AddFactor), registers its pages and
// form actions wrapped in Page and Action, loads the browser's MFA state with LoadMFA (or
// AccountSession on the account page), renders with MFAView and Render, and hands a completed
// factor to AfterFactor, which continues the flow. It calls its own operations directly.

// AddFactor makes the MFA pages offer factorID, served by the caller's pages, and parses the
// caller's page templates (templates/*.html of fsys, each rendered inside the layout, named
// after its file). Call it before serving.
func (u *UI) AddFactor(factorID string, fsys fs.FS) error {
	if slices.Contains(u.hosted, factorID) {
		return fmt.Errorf("hosted factor %q is added twice", factorID)
	}
	if err := u.parsePages(fsys); err != nil {
		return fmt.Errorf("hosted pages of %s: %w", factorID, err)
	}
	u.hosted = append(u.hosted, factorID)
	return nil
}

// Logger is the hosted pages' logger.
func (u *UI) Logger() logr.Logger { return u.opts.Logger }

// Page wraps a hosted page with the security headers every hosted answer carries.
func (u *UI) Page(h http.HandlerFunc) http.Handler { return secure(h) }

// Action wraps a form action: the security headers and the CSRF check.
func (u *UI) Action(h http.HandlerFunc) http.Handler { return secure(u.checkCSRF(h)) }

// AfterFactor continues once the factor of page m is completed (upd from the MFA engine's
// Complete): the browser gets the session's new cookies and goes to the next factor while the
// requirement is not met, to its recovery codes after a first MFA setup (firstSetup), else
// back to where it was going.
func (u *UI) AfterFactor(w http.ResponseWriter, r *http.Request, m MFAPage, upd mfaengine.Update, firstSetup bool) {
	c := u.newCall(w, r)
	if upd.Tokens != nil {
		settings, err := u.opts.Sessions.Settings(r.Context(), upd.Session.TenantID)
		if err != nil {
			u.InternalError(w, r, err)
			return
		}
		// The hosted pages keep the session in cookies, whatever else the request carries.
		u.opts.Sessions.WriteCookies(w, *upd.Tokens, settings)
		c.access = upd.Tokens.AccessToken
	}
	u.afterMFA(c, m, firstSetup)
}
