package hostedui

import (
	"fmt"
	"io/fs"
	"net/http"
	"slices"

	"github.com/go-logr/logr"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/core/mfaengine"
	"github.com/twofold-dev/twofold/core/session"
	"github.com/twofold-dev/twofold/core/tenant"
)

// A factor package (core/factors/<factor>) serves its own hosted steps with what this file
// exports: it adds its page templates and its factor id (AddFactor), registers its pages and
// form actions wrapped in Page and Action, loads the browser's MFA state with LoadMFA (or
// AccountSession on the account page), renders with MFAView and Render, and hands a completed
// factor to AfterFactor, which continues the flow. It calls its own operations directly.
// NewView, ErrorPage and AppName serve steps that are not MFA pages (the recovery codes shown
// once, their download), and AfterFirstSetup adds the step after a user's first MFA setup.

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
	access := ""
	if c, err := r.Cookie(contract.CookieAccessToken); err == nil {
		access = c.Value
	}
	if upd.Tokens != nil {
		settings, err := u.opts.Sessions.Settings(r.Context(), upd.Session.TenantID)
		if err != nil {
			u.InternalError(w, r, err)
			return
		}
		// The hosted pages keep the session in cookies, whatever else the request carries.
		u.opts.Sessions.WriteCookies(w, *upd.Tokens, settings)
		access = upd.Tokens.AccessToken
	}
	u.afterMFA(w, r, m, access, firstSetup)
}

// A FirstSetupStep runs once a user's first MFA setup is completed and the requirement met,
// before the browser goes on to next; it reports whether it answered the request (else the
// browser is sent on).
type FirstSetupStep func(w http.ResponseWriter, r *http.Request, sess session.Session, t tenant.Tenant, next string) bool

// AfterFirstSetup sets the step that runs after a user's first MFA setup, when the tenant
// offers recovery codes. Call it before serving.
func (u *UI) AfterFirstSetup(step FirstSetupStep) { u.afterFirstSetup = step }

// NewView starts the data of a page of tenant t that is not an MFA page.
func (u *UI) NewView(w http.ResponseWriter, r *http.Request, t tenant.Tenant, title string) (View, error) {
	return u.newView(w, r, t, title)
}

// ErrorPage renders an error page with the public tenant's branding.
func (u *UI) ErrorPage(w http.ResponseWriter, r *http.Request, status int, title, msg string) {
	u.errorPage(w, r, status, title, msg)
}

// AppName is the application name of the request's tenant (the public tenant's when the
// request names none), "Twofold" when it has none or is unknown.
func (u *UI) AppName(r *http.Request) string {
	if t, err := u.opts.Tenants.Current(r.Context(), tenantIDOf(r)); err == nil {
		return brandingOf(t).AppName
	}
	return "Twofold"
}
