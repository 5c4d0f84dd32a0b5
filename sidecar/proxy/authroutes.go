package proxy

import (
	"fmt"
	"net/http"
	"strings"
)

// The core serves a tenant's FDI endpoints and hosted sign-in pages twice: as
// /auth/<tenantId>/<path>, and as /auth/<path> for the public tenant. So a sign-up sent to
// /auth/signup through the sidecar of tenant "acme" would create a user of tenant public,
// whose token this sidecar then refuses. The sidecar therefore sends the tenant-less form
// to its own tenant, and refuses another tenant's form unless told to serve that tenant too.
// Every other /auth path (sessions, JWKS, MFA, TOTP, recovery codes, the hosted MFA and
// account pages and their assets, the enforcement feed) passes unchanged: the core takes
// the tenant from the session or needs none.

// tenantScoped are the paths under /auth/ that the core serves in both forms, as registered
// by core/httpapi (FDI), core/accountapi (passwordless, email verification, password reset),
// core/factors/webauthn (passkeys) and core/hostedui (sign-in, sign-up and reset-password
// pages).
var tenantScoped = map[string]bool{
	"loginmethods":                    true,
	"signup":                          true,
	"signin":                          true,
	"emailpassword/email/exists":      true,
	"authorisationurl":                true,
	"signinup":                        true,
	"signinup/code":                   true,
	"signinup/code/resend":            true,
	"signinup/code/consume":           true,
	"passwordless/email/exists":       true,
	"passwordless/phoneNumber/exists": true,
	"user/email/verify/token":         true,
	"user/email/verify":               true,
	"user/password/reset/token":       true,
	"user/password/reset":             true,
	"reset-password":                  true,
	"webauthn/options/register":       true,
	"webauthn/options/signin":         true,
	"webauthn/signup":                 true,
	"webauthn/signin":                 true,
	"webauthn/email/exists":           true,
	"webauthn/credential":             true,
	"webauthn/credential/list":        true,
	"webauthn/credential/remove":      true,
	"user/webauthn/reset/token":       true,
	"user/webauthn/reset":             true,
}

// authTarget returns the path to send a clean /auth request to: the tenant-less form of a
// tenant-scoped path gets this sidecar's tenant; ok is false for another tenant's form
// (other is that tenant) unless it is among the extra tenants.
func (p *Proxy) authTarget(path string) (target, other string, ok bool) {
	rest, found := strings.CutPrefix(path, "/auth/")
	if !found {
		return path, "", true
	}
	if tenantScoped[rest] {
		return "/auth/" + p.tenant + "/" + rest, "", true
	}
	seg, sub, more := strings.Cut(rest, "/")
	if !more || !tenantScoped[sub] || seg == p.tenant || p.extraTenants[seg] {
		return path, "", true
	}
	return "", seg, false
}

// serveAuth forwards a request under /auth to the core, on the path authTarget gives.
func (p *Proxy) serveAuth(w http.ResponseWriter, r *http.Request) {
	target, other, ok := p.authTarget(r.URL.Path)
	if !ok {
		p.log.Info("Refused request", "outcome", OutcomeAuth.String(), "reason", "another tenant's /auth path",
			"method", r.Method, "path", truncate(r.URL.Path, 200), "tenant", p.tenant, "requestedTenant", truncate(other, 100))
		writeJSON(w, http.StatusNotFound, []byte(fmt.Sprintf(`{"message":%q}`,
			"this app serves the sign-in of tenant "+p.tenant+" only; /auth/<tenantId>/ paths of other tenants are not served here")))
		return
	}
	if target != r.URL.Path {
		u := *r.URL
		u.Path, u.RawPath = target, ""
		r = r.WithContext(r.Context()) // a shallow copy whose URL can be replaced
		r.URL = &u
	}
	p.core.ServeHTTP(w, r)
}
