// Package hostedui serves Twofold's hosted login and MFA pages from the core, under /auth, for
// the browsers the sidecar redirects: sign-in and sign-up with the tenant's first factors, the
// MFA step (factor chooser, email or SMS code, and the steps factor packages add: TOTP setup
// and entry, recovery codes), and an account security page.
//
// The pages are server-rendered with html/template from templates and assets embedded in the
// binary, and work without JavaScript (a small script only adds copy-to-clipboard). Every form
// carries a CSRF token bound to the browser's id cookie and session (csrf.go), every answer carries a strict
// Content-Security-Policy (no inline scripts or styles, no framing), and redirectToPath is only
// ever followed when it is a same-origin path.
//
// The pages are a frontend of the core's own rules: they call the same transport-free
// operations the FDI handlers call, and keep no rules of their own. A factor package serves
// its own steps (core/factors/totp: enter a code, set up an app, remove one;
// core/factors/recoverycode: use a code, a new set shown once) with the kit in factors.go. The
// forms of the rest call the operations of core/httpapi (sign in and up with a password or a
// provider, sign out) and core/accountapi (email and SMS codes, password reset, email
// verification) directly, with the browser's session, and send the session's new tokens as
// cookies. Either way the hosted pages get exactly the rules the endpoints apply (rate limits,
// the MFA setup rule, audit lines). Reads (the MFA state, devices, sessions, branding) use the
// Go APIs directly.
package hostedui

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/core/accountapi"
	"github.com/twofold-dev/twofold/core/httpapi"
	"github.com/twofold-dev/twofold/core/mfaengine"
	"github.com/twofold-dev/twofold/core/session"
	"github.com/twofold-dev/twofold/core/store"
	"github.com/twofold-dev/twofold/core/tenant"
	"github.com/twofold-dev/twofold/core/thirdparty"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Options are the hosted UI's dependencies.
type Options struct {
	Store      store.Store
	Tenants    *tenant.Service
	Sessions   *session.Manager
	MFA        *mfaengine.Engine
	ThirdParty *thirdparty.Recipe
	// Secrets signs the forms' CSRF tokens (the core's *keys.Manager).
	Secrets SecretSource
	// API runs the first-factor operations (password, third party, sign-out) and knows who
	// sent a request.
	API *httpapi.API
	// Account runs the passwordless, email verification and password reset operations.
	Account *accountapi.API
	// Audit writes an audit line for a security event the hosted pages handle themselves
	// (httpapi.API.Audit).
	Audit  func(r *http.Request, msg, tenantID, userID, outcome string, kv ...any)
	Clock  func() time.Time
	Logger logr.Logger
}

// UI serves the hosted pages.
type UI struct {
	opts   Options
	layout *template.Template
	pages  map[string]*template.Template
	// hosted are the second factors the MFA pages offer: those served here and those whose
	// package added its steps (AddFactor).
	hosted []string
	// afterFirstSetup is the step a factor package added to run after a user's first MFA
	// setup (AfterFirstSetup): the recovery codes shown once.
	afterFirstSetup FirstSetupStep
}

// New parses the embedded templates and returns the UI.
func New(opts Options) (*UI, error) {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Logger.GetSink() == nil {
		opts.Logger = logr.Discard()
	}
	if opts.Secrets == nil {
		return nil, errors.New("hostedui: Options.Secrets is required to sign CSRF tokens")
	}
	u := &UI{opts: opts, pages: map[string]*template.Template{}}
	var err error
	u.layout, err = template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, err
	}
	if err := u.parsePages(templateFS); err != nil {
		return nil, err
	}
	return u, nil
}

// parsePages parses every templates/*.html of fsys but the layout as a page inside the layout.
func (u *UI) parsePages(fsys fs.FS) error {
	names, err := fs.Glob(fsys, "templates/*.html")
	if err != nil {
		return err
	}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		if _, dup := u.pages[name]; dup {
			return fmt.Errorf("hosted page %q is defined twice", name)
		}
		t, err := template.Must(u.layout.Clone()).ParseFS(fsys, n)
		if err != nil {
			return err
		}
		u.pages[name] = t
	}
	return nil
}

// Paths of the pages; the sidecar's enforcement feed points browsers at SignInPath and MFAPath.
const (
	SignInPath  = "/auth/signin"
	SignUpPath  = "/auth/signup"
	MFAPath     = "/auth/mfa"
	AccountPath = "/auth/account"
	// MagicLinkPath is where passwordless sign-in links point (websiteBasePath + /verify).
	MagicLinkPath = "/auth/verify"
	// UIPrefix holds the assets, the QR code and the form actions. Its second segment is no
	// FDI path word, so these routes never overlap a tenant's FDI routes.
	UIPrefix = "/auth/ui"
)

// Register adds the pages, assets and form actions to mux.
func (u *UI) Register(mux *http.ServeMux) {
	page, action := u.Page, u.Action
	for _, p := range []string{"/auth", "/auth/{tenant}"} {
		mux.Handle("GET "+p+"/signin", page(u.signInPage))
		mux.Handle("GET "+p+"/signup", page(u.signUpPage))
	}
	mux.Handle("GET "+MFAPath, page(u.mfaPage))
	mux.Handle("GET "+AccountPath, page(u.accountPage))
	mux.Handle("GET "+MagicLinkPath, page(u.magicLinkPage))
	mux.Handle("GET "+ResetPasswordPath, page(u.resetPasswordPage))
	mux.Handle("GET /auth/{tenant}/reset-password", page(u.resetPasswordPage))
	mux.Handle("GET "+VerifyEmailPath, page(u.verifyEmailPage))
	mux.Handle("GET "+UIPrefix+"/callback/{provider}", page(u.thirdPartyCallback))
	mux.Handle("GET /auth/session/refresh/ui", page(u.refreshPage))

	mux.Handle("GET "+UIPrefix+"/static/{file}", secure(http.HandlerFunc(serveStatic)))
	mux.Handle("GET "+UIPrefix+"/theme.css", secure(http.HandlerFunc(u.themeCSS)))
	mux.Handle("GET "+UIPrefix+"/thirdparty/start", page(u.thirdPartyStart))

	mux.Handle("POST "+UIPrefix+"/action/signin", action(u.signIn))
	mux.Handle("POST "+UIPrefix+"/action/signup", action(u.signUp))
	mux.Handle("POST "+UIPrefix+"/action/code/send", action(u.firstFactorCodeSend))
	mux.Handle("POST "+UIPrefix+"/action/code/resend", action(u.firstFactorCodeResend))
	mux.Handle("POST "+UIPrefix+"/action/code/consume", action(u.firstFactorCodeConsume))
	mux.Handle("POST "+UIPrefix+"/action/link/consume", action(u.magicLinkConsume))
	mux.Handle("POST "+UIPrefix+"/action/sessions/revoke-others", action(u.revokeOthers))
	mux.Handle("POST "+UIPrefix+"/action/signout", action(u.signOut))
	mux.Handle("POST "+UIPrefix+"/action/password/forgot", action(u.forgotPassword))
	mux.Handle("POST "+UIPrefix+"/action/password/reset", action(u.resetPassword))
	mux.Handle("POST "+UIPrefix+"/action/email/send", action(u.sendVerificationEmail))
	mux.Handle("POST "+UIPrefix+"/action/email/verify", action(u.verifyEmail))
}

// secure sets the security headers of every hosted answer: a CSP without inline code that
// forbids framing, no MIME sniffing, no referrer (URLs never leave the origin), no caching.
func secure(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' https:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		if hd.Get("Cache-Control") == "" {
			hd.Set("Cache-Control", "no-store")
		}
		h.ServeHTTP(w, r)
	})
}

func serveStatic(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	b, err := staticFS.ReadFile("static/" + name)
	if err != nil || strings.Contains(name, "/") {
		http.NotFound(w, r)
		return
	}
	switch {
	case strings.HasSuffix(name, ".css"):
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
	case strings.HasSuffix(name, ".js"):
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	}
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Write(b)
}

var colorPattern = regexp.MustCompile(`^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$`)

// DefaultPrimaryColor is the accent colour of tenants without branding.
const DefaultPrimaryColor = "#3b5bdb"

// themeCSS serves the tenant's accent colour as a stylesheet, so that no page needs an inline
// style (the CSP forbids them).
func (u *UI) themeCSS(w http.ResponseWriter, r *http.Request) {
	color := DefaultPrimaryColor
	if t, err := u.opts.Tenants.Current(r.Context(), tenantIDOf(r)); err == nil {
		color = brandingOf(t).PrimaryColor
	}
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write([]byte(":root{--primary:" + color + "}\n"))
}

// Branding is a tenant's branding with defaults filled in and unsafe values dropped.
type Branding struct {
	AppName      string
	LogoURL      string
	PrimaryColor string
}

func brandingOf(t tenant.Tenant) Branding {
	b := Branding{AppName: "Twofold", PrimaryColor: DefaultPrimaryColor}
	if c := t.Config.Branding; c != nil {
		if c.AppName != "" {
			b.AppName = c.AppName
		}
		if colorPattern.MatchString(c.PrimaryColor) {
			b.PrimaryColor = c.PrimaryColor
		}
		if l, err := url.Parse(c.LogoURL); err == nil && (l.Scheme == "https" || (l.Scheme == "" && l.Host == "" && strings.HasPrefix(l.Path, "/") && !strings.HasPrefix(l.Path, "//"))) {
			b.LogoURL = c.LogoURL
		}
	}
	return b
}

// tenantIDOf is the tenant a page is for: the {tenant} path segment, else the tenantId query
// parameter or form field, else public.
func tenantIDOf(r *http.Request) string {
	if id := r.PathValue("tenant"); id != "" {
		return id
	}
	if id := r.FormValue("tenantId"); id != "" {
		return id
	}
	return contract.PublicTenantID
}

// TenantOf is the request's tenant (tenantId of the query or form, the public tenant without
// one); it answers an unknown tenant itself and returns false.
func (u *UI) TenantOf(w http.ResponseWriter, r *http.Request) (tenant.Tenant, bool) {
	return u.tenantOf(w, r)
}

// tenantOf loads the request's tenant; an unknown one is answered with an error page.
func (u *UI) tenantOf(w http.ResponseWriter, r *http.Request) (tenant.Tenant, bool) {
	id := tenantIDOf(r)
	// Behind a sidecar the app's origin serves only the sidecar's tenants: a tenantId field
	// naming another must not sign the browser into that tenant on this origin.
	if served := r.Header.Get(contract.HeaderServedTenants); served != "" && !slices.Contains(strings.Split(served, ","), id) {
		u.errorPage(w, r, http.StatusNotFound, "Unknown organisation", "This app does not offer the sign-in of "+id+".")
		return tenant.Tenant{}, false
	}
	t, err := u.opts.Tenants.Current(r.Context(), id)
	if errors.Is(err, tenant.ErrUnknownTenant) {
		u.errorPage(w, r, http.StatusNotFound, "Unknown organisation", "There is no sign-in page for "+id+".")
		return tenant.Tenant{}, false
	}
	if err != nil {
		u.InternalError(w, r, err)
		return tenant.Tenant{}, false
	}
	return t, true
}

// currentSession verifies the browser's access-token cookie (revocation included). ok is
// false without a usable session; refresh reports that the token expired and a refresh may
// bring the session back.
func (u *UI) currentSession(ctx context.Context, r *http.Request) (sess session.Session, refresh, ok bool) {
	c, err := r.Cookie(contract.CookieAccessToken)
	if err != nil || c.Value == "" {
		return session.Session{}, false, false
	}
	sess, err = u.opts.Sessions.Verify(ctx, c.Value, session.VerifyOptions{CheckDatabase: true})
	if err != nil {
		return session.Session{}, errors.Is(err, session.ErrTryRefreshToken), false
	}
	return sess, false, true
}

// RequireSession returns the browser's session, or redirects to the refresh page (expired
// token) or the sign-in page, which then sends the browser to back, and returns false.
func (u *UI) RequireSession(w http.ResponseWriter, r *http.Request) (session.Session, bool) {
	sess, refresh, ok := u.currentSession(r.Context(), r)
	if ok {
		return sess, true
	}
	back := SafeRedirect(r.FormValue("redirectToPath"))
	if r.URL.Path == AccountPath {
		back = AccountPath
	}
	if refresh && r.Method == http.MethodGet {
		Redirect(w, WithQuery("/auth/session/refresh/ui", "redirectToPath", r.URL.RequestURI()))
		return session.Session{}, false
	}
	Redirect(w, WithQuery(SignInPath, "redirectToPath", back, "tenantId", r.FormValue("tenantId")))
	return session.Session{}, false
}

// Redirect answers 303 See Other to a same-origin location the caller built or validated.
func Redirect(w http.ResponseWriter, location string) {
	w.Header().Set("Location", location)
	w.WriteHeader(http.StatusSeeOther)
}

// WithQuery appends the non-empty key, value pairs to path as a query string.
func WithQuery(path string, kv ...string) string {
	q := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" && !(kv[i] == "redirectToPath" && kv[i+1] == "/") && !(kv[i] == "tenantId" && kv[i+1] == contract.PublicTenantID) {
			q.Set(kv[i], kv[i+1])
		}
	}
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}

// InternalError logs err and answers the error page without details.
func (u *UI) InternalError(w http.ResponseWriter, r *http.Request, err error) {
	u.opts.Logger.Error(err, "Failed hosted page", "method", r.Method, "path", r.URL.Path)
	u.errorPage(w, r, http.StatusInternalServerError, "Something went wrong", "The request could not be completed. Please try again.")
}
