package hostedui

import (
	"bytes"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/tenant"
)

// View is what every page template gets; each page uses the fields it needs.
type View struct {
	Title          string
	Brand          Branding
	TenantID       string
	CSRF           string
	RedirectToPath string
	Error          string
	Notice         string
	// FieldErrors are per-field messages by field name (email, password, code).
	FieldErrors map[string]string
	Email       string

	// Sign-in and sign-up.
	PasswordEnabled bool
	// PasskeySignIn offers signing in (and up) with a passkey.
	PasskeySignIn bool
	Providers     []contract.Provider
	CodeByEmail   bool
	CodeByPhone   bool
	// EmailSends and PhoneSends say what a passwordless sign-in sends: code, link, or both.
	EmailSends string
	PhoneSends string
	SignUp     bool

	// Code entry (passwordless first factor and email/SMS second factor).
	DeviceID         string
	PreAuthSessionID string
	Contact          string
	LinkOnly         bool

	// MFA.
	Factors    []string
	Factor     string
	SetupMode  bool
	DeviceName string
	Secret     string
	QRURL      string
	CanUseCode bool
	// PasskeyOptions is the JSON of a passkey ceremony's options, for the page's script.
	PasskeyOptions string

	// Password reset and email verification. Token is set from a form (or an older link's
	// query); TokenInFragment means the page was opened from an emailed link whose token is in
	// the URL fragment, which the page's script copies into the form.
	Token           string
	TokenInFragment bool
	Sent            bool
	Verified        bool

	// Recovery codes shown once.
	Codes     []string
	CodesText string
	Continue  string

	// Account page.
	Devices       []deviceView
	SetUp         []string
	Sessions      []sessionView
	CodesLeft     int
	CodesTotal    int
	CanAddTOTP    bool
	RecoveryOffer bool
	Passkeys      []passkeyView
	CanAddPasskey bool
}

type passkeyView struct {
	ID, Name          string
	Created, LastUsed time.Time
}

type deviceView struct {
	Name     string
	Verified bool
}

type sessionView struct {
	Handle  string
	Created time.Time
	Current bool
}

var funcs = template.FuncMap{
	"factorName": factorName,
	"date":       func(t time.Time) string { return t.UTC().Format("2 Jan 2006, 15:04 UTC") },
	"initial": func(s string) string {
		if s == "" {
			return "?"
		}
		return strings.ToUpper(s[:1])
	},
}

// factorName is how a factor is called on the pages.
func factorName(f string) string {
	switch f {
	case mfa.TOTP:
		return "Authenticator app"
	case mfa.WebAuthn:
		return "Passkey"
	case mfa.RecoveryCode:
		return "Recovery code"
	case mfa.OTPEmail:
		return "Code by email"
	case mfa.OTPPhone:
		return "Code by text message"
	case mfa.LinkEmail:
		return "Link by email"
	case mfa.LinkPhone:
		return "Link by text message"
	case mfa.EmailPassword:
		return "Password"
	case mfa.ThirdParty:
		return "Single sign-on"
	}
	return f
}

// newView starts a page's data for tenant t: branding, the CSRF token and the validated
// redirectToPath of the request.
func (u *UI) newView(w http.ResponseWriter, r *http.Request, t tenant.Tenant, title string) (View, error) {
	settings, err := u.opts.Sessions.Settings(r.Context(), t.ID)
	if err != nil {
		return View{}, err
	}
	tok, err := u.csrfToken(w, r, settings.CookieSecure)
	if err != nil {
		return View{}, err
	}
	return View{Title: title, Brand: brandingOf(t), TenantID: t.ID, CSRF: tok,
		RedirectToPath: SafeRedirect(r.FormValue("redirectToPath")), FieldErrors: map[string]string{}}, nil
}

// Render writes page name with status.
func (u *UI) Render(w http.ResponseWriter, r *http.Request, status int, name string, v View) {
	t, ok := u.pages[name]
	if !ok {
		u.opts.Logger.Error(nil, "No such hosted page template", "page", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		u.opts.Logger.Error(err, "Failed to render a hosted page", "page", name)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// errorPage renders a page that only says what went wrong, with the public tenant's look.
func (u *UI) errorPage(w http.ResponseWriter, r *http.Request, status int, title, msg string) {
	v := View{Title: title, Error: msg, Brand: Branding{AppName: "Twofold", PrimaryColor: DefaultPrimaryColor}, RedirectToPath: "/"}
	if t, err := u.opts.Tenants.Current(r.Context(), contract.PublicTenantID); err == nil {
		v.Brand = brandingOf(t)
	}
	u.Render(w, r, status, "error", v)
}
