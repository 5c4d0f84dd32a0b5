// Package httpapi is the auth core's HTTP surface: the public API under /auth, wire-compatible
// with SuperTokens' frontend driver interface (FDI 3.1), the admin API under /admin/v1 that
// the controllers drive, the enforcement feed and JWKS the sidecars poll, and the health,
// readiness and metrics endpoints.
package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/audit"
	"github.com/twofold-dev/twofold/core/emailpassword"
	"github.com/twofold-dev/twofold/core/httpkit"
	"github.com/twofold-dev/twofold/core/keys"
	"github.com/twofold-dev/twofold/core/session"
	"github.com/twofold-dev/twofold/core/store"
	"github.com/twofold-dev/twofold/core/tenant"
	"github.com/twofold-dev/twofold/core/thirdparty"
)

// ClaimsFunc computes the custom claims of a new session: the st-mfa claim, given the first
// factor the user just completed. The MFA engine replaces DefaultClaims with one that knows
// per-user factors.
type ClaimsFunc func(ctx context.Context, r store.MFAReader, t tenant.Tenant, u store.User, completed mfa.Completed) (map[string]json.RawMessage, error)

// DefaultClaims computes st-mfa from the tenant's requirement when enforcement is Required;
// with UserOptIn no user has opted in until per-user factors exist, so v is true.
func DefaultClaims(_ context.Context, _ store.MFAReader, t tenant.Tenant, _ store.User, completed mfa.Completed) (map[string]json.RawMessage, error) {
	claim := mfa.Claim{C: completed, V: true}
	if t.Config.MFA.Enforcement == contract.EnforcementRequired {
		claim.V = t.Config.MFA.Requirement.Satisfied(completed)
	}
	b, err := json.Marshal(claim)
	if err != nil {
		return nil, err
	}
	return map[string]json.RawMessage{mfa.ClaimKey: b}, nil
}

// Options are the API's dependencies.
type Options struct {
	Store         store.Store
	Tenants       *tenant.Service
	Sessions      *session.Manager
	Keys          *keys.Manager
	EmailPassword *emailpassword.Recipe
	ThirdParty    *thirdparty.Recipe
	// AdminKey authenticates the admin API; empty turns the admin API off.
	AdminKey string
	// Claims computes a new session's claims; DefaultClaims when nil.
	Claims ClaimsFunc
	// Registry receives the metrics and is served on /metrics.
	Registry *prometheus.Registry
	Logger   logr.Logger
	Clock    func() time.Time
	// TrustedProxies are the peers whose X-Forwarded-For names the client (for the audit log
	// and the per-client sign-in budget); DefaultTrustedProxies when nil.
	TrustedProxies []netip.Prefix
	// SignInLimits bound password sign-in attempts; DefaultSignInLimits when zero.
	SignInLimits store.SignInLimits
	// AuditSink receives every audit event (docs/audit.md) besides the audit log, e.g. an
	// audit.Webhook; none when nil.
	AuditSink audit.Sink
}

// API serves the core's HTTP endpoints.
type API struct {
	opts    Options
	log     logr.Logger
	audit   logr.Logger
	metrics *Metrics
	keyHash [32]byte
	// revocations serves the incremental enforcement feed.
	revocations revocationCache
}

// New returns the API; Register adds its endpoints to the core's router and Handler wraps it.
func New(opts Options) *API {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Claims == nil {
		opts.Claims = DefaultClaims
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	if opts.TrustedProxies == nil {
		opts.TrustedProxies = DefaultTrustedProxies
	}
	if opts.SignInLimits == (store.SignInLimits{}) {
		opts.SignInLimits = emailpassword.DefaultSignInLimits
	}
	// The audit logger records each line as an audit event: counted, and handed to the sink.
	auditLog := audit.NewRecorder(opts.Registry, opts.AuditSink, opts.Clock).Logger(opts.Logger.WithName("audit"))
	a := &API{opts: opts, log: opts.Logger, audit: auditLog.WithCallDepth(2), metrics: NewMetrics(opts.Registry)}
	a.keyHash = sha256.Sum256([]byte(opts.AdminKey))
	a.metrics.registerReadiness(opts.Registry, a.notReady)
	return a
}

// Register adds the API's endpoints to mux: FDI sign-in and sessions, the admin API, the
// enforcement feed, JWKS, health, readiness and metrics.
func (a *API) Register(mux *http.ServeMux) {
	// FDI: each tenant-scoped route is served with and without the /<tenantId> segment.
	for _, prefix := range []string{"/auth", "/auth/{tenant}"} {
		mux.HandleFunc("GET "+prefix+"/loginmethods", a.loginMethods)
		mux.HandleFunc("POST "+prefix+"/signup", a.signUp)
		mux.HandleFunc("POST "+prefix+"/signin", a.signIn)
		mux.HandleFunc("GET "+prefix+"/emailpassword/email/exists", a.emailExists)
		mux.HandleFunc("GET "+prefix+"/authorisationurl", a.authorisationURL)
		mux.HandleFunc("POST "+prefix+"/signinup", a.thirdPartySignInUp)
		mux.HandleFunc("GET "+prefix+"/enforcement", a.enforcementFeed)
	}
	mux.HandleFunc("POST /auth/session/refresh", a.refresh)
	mux.HandleFunc("POST /auth/signout", a.signOut)
	mux.HandleFunc("GET /auth/jwt/jwks.json", a.jwks)
	mux.HandleFunc("GET /auth/.well-known/openid-configuration", a.openIDConfiguration)
	mux.HandleFunc("GET /.well-known/openid-configuration", a.openIDConfiguration)

	mux.Handle("PUT /admin/v1/tenants/{tenant}", a.admin(a.putTenant))
	mux.Handle("GET /admin/v1/tenants/{tenant}", a.admin(a.getTenant))
	mux.Handle("GET /admin/v1/tenants", a.admin(a.listTenants))
	mux.Handle("DELETE /admin/v1/tenants/{tenant}", a.admin(a.deleteTenant))
	mux.Handle("DELETE /admin/v1/tenants/{tenant}/owner", a.admin(a.releaseTenant))
	mux.Handle("POST /admin/v1/users/{user}/sessions/revoke", a.admin(a.revokeUserSessions))
	mux.Handle("DELETE /admin/v1/sessions/{handle}", a.admin(a.revokeSession))
	mux.Handle("/admin/", a.admin(func(w http.ResponseWriter, r *http.Request) {
		httpkit.WriteError(w, http.StatusNotFound, "", "no admin endpoint %s %s", r.Method, r.URL.Path)
	}))

	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		httpkit.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", a.ready)
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.opts.Registry, promhttp.HandlerOpts{}))
}

// Handler returns mux, on which every part of the core has registered, with a JSON 404 or 405
// for any other request, instrumented and body-limited, so that every endpoint shares them.
func (a *API) Handler(mux *http.ServeMux) http.Handler {
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if allowed := allowedMethods(mux, r); len(allowed) > 0 {
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			httpkit.WriteError(w, http.StatusMethodNotAllowed, "", "method %s is not allowed on %s; use %s", r.Method, r.URL.Path, strings.Join(allowed, " or "))
			return
		}
		httpkit.WriteError(w, http.StatusNotFound, "", "no endpoint %s %s", r.Method, r.URL.Path)
	})
	return a.metrics.instrument(mux)
}

func (a *API) ready(w http.ResponseWriter, r *http.Request) {
	if reason := a.notReady(r.Context()); reason != "" {
		httpkit.WriteError(w, http.StatusServiceUnavailable, "", "%s", reason)
		return
	}
	httpkit.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// notReady says why the core cannot serve, or "" when it can: the store answers and signing
// keys are loaded. /readyz and the twofold_core_ready gauge share it.
func (a *API) notReady(ctx context.Context) string {
	if err := a.opts.Store.Ping(ctx); err != nil {
		a.log.Error(err, "Failed readiness check")
		return "the store does not answer"
	}
	if _, err := a.opts.Keys.JWKS(ctx); err != nil {
		return "no signing keys loaded"
	}
	return ""
}

// auditEvent writes one audit log line for a security event of request r.
func (a *API) auditEvent(r *http.Request, msg, tenantID, userID, outcome string, kv ...any) {
	a.auditLine(a.ClientOf(r), msg, tenantID, userID, outcome, kv...)
}

// auditLine writes one audit log line for a security event of client c.
func (a *API) auditLine(c Client, msg, tenantID, userID, outcome string, kv ...any) {
	ip := c.Peer
	if c.Addr.IsValid() {
		ip = c.Addr.String()
	}
	kv = append([]any{"tenant", tenantID, "user", userID, "ip", ip, "outcome", outcome}, kv...)
	if c.ForwardedFor != "" {
		kv = append(kv, "forwardedFor", c.ForwardedFor)
	}
	a.audit.Info(msg, kv...)
}

// internalError logs err and answers 500 without details.
func (a *API) internalError(w http.ResponseWriter, r *http.Request, err error) {
	httpkit.InternalError(a.log, w, r, err)
}

// tenantOf returns the request's tenant (the {tenant} segment, public when absent), or
// answers 404 and returns false.
func (a *API) tenantOf(w http.ResponseWriter, r *http.Request) (tenant.Tenant, bool) {
	id := r.PathValue("tenant")
	if id == "" {
		id = contract.PublicTenantID
	}
	t, err := a.opts.Tenants.Current(r.Context(), id)
	if errors.Is(err, tenant.ErrUnknownTenant) {
		httpkit.WriteError(w, http.StatusNotFound, "", "unknown tenant %q", id)
		return tenant.Tenant{}, false
	}
	if err != nil {
		a.internalError(w, r, err)
		return tenant.Tenant{}, false
	}
	return t, true
}

// DefaultAdminKeyName is the name of the key the core starts with (TWOFOLD_ADMIN_KEY): the
// audit trail names it "default".
const DefaultAdminKeyName = "default"

type adminKeyContextKey struct{}

// AdminKeyName returns the name of the admin key that authenticated the request of ctx; empty
// outside the admin API.
func AdminKeyName(ctx context.Context) string {
	name, _ := ctx.Value(adminKeyContextKey{}).(string)
	return name
}

// Admin authenticates an admin API handler: the core's own key (TWOFOLD_ADMIN_KEY, named
// "default") or an unrevoked named key of the store. Without the core's own key the admin API
// is off. The handler finds the key's name with AdminKeyName.
func (a *API) Admin(h http.HandlerFunc) http.Handler { return a.admin(h) }

// admin authenticates the admin API with the bearer key, or answers that it is off.
func (a *API) admin(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.opts.AdminKey == "" {
			httpkit.WriteError(w, http.StatusNotFound, "", "the admin API is off: start the core with an admin key (TWOFOLD_ADMIN_KEY or TWOFOLD_ADMIN_KEY_FILE)")
			return
		}
		got := ""
		if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
			got = h[7:]
		} else if h := r.Header.Get(contract.HeaderAdminKey); h != "" {
			// Through the Kubernetes API server's service proxy, which takes Authorization
			// for itself (kubectl-twofold).
			got = h
		}
		// Compare hashes so the comparison time does not depend on the key's length either.
		gotHash := sha256.Sum256([]byte(got))
		name := ""
		switch {
		case got == "":
		case subtle.ConstantTimeCompare(gotHash[:], a.keyHash[:]) == 1:
			name = DefaultAdminKeyName
		default:
			// Named keys are looked up by their hash: the store never sees a key.
			k, err := a.opts.Store.AdminKeyByHash(r.Context(), hex.EncodeToString(gotHash[:]))
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				a.internalError(w, r, err)
				return
			}
			name = k.Name
		}
		if name == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="twofold-admin"`)
			httpkit.WriteError(w, http.StatusUnauthorized, "", "missing, wrong or revoked admin key: send Authorization: Bearer <admin key>")
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), adminKeyContextKey{}, name)))
	})
}

// AdminAudit writes the audit event of an admin action of request r: Audit with "by", the
// name of the admin key that did it.
func (a *API) AdminAudit(r *http.Request, msg, tenantID, userID, outcome string, kv ...any) {
	a.auditLine(a.ClientOf(r), msg, tenantID, userID, outcome, append(kv, "by", AdminKeyName(r.Context()))...)
}

func (a *API) settings(t tenant.Tenant) session.Settings { return SessionSettings(t.Config) }

// SessionSettings converts a tenant configuration's session block.
func SessionSettings(c contract.TenantConfig) session.Settings {
	s := c.Session
	same := http.SameSiteLaxMode
	switch s.CookieSameSite {
	case "strict":
		same = http.SameSiteStrictMode
	case "none":
		same = http.SameSiteNoneMode
	}
	secure := s.CookieSecure == nil || *s.CookieSecure
	return session.Settings{
		AccessTokenLifetime:  time.Duration(s.AccessTokenLifetimeSeconds) * time.Second,
		RefreshTokenLifetime: time.Duration(s.RefreshTokenLifetimeSeconds) * time.Second,
		CookieDomain:         s.CookieDomain, CookieSameSite: same, CookieSecure: secure,
	}
}

// TenantOf returns the tenant of a request to /auth/{tenant}/... (public without the
// segment), or answers 404 for an unknown tenant and returns false.
func (a *API) TenantOf(w http.ResponseWriter, r *http.Request) (tenant.Tenant, bool) {
	return a.tenantOf(w, r)
}

// Audit writes an audit log line for a security event of request r, with the tenant, user,
// client IP and outcome, followed by kv.
func (a *API) Audit(r *http.Request, msg, tenantID, userID, outcome string, kv ...any) {
	a.auditLine(a.ClientOf(r), msg, tenantID, userID, outcome, kv...)
}

// AuditClient writes an audit log line for a security event of client c, as Audit does for a
// request: the operations below the edges know the client, not the request.
func (a *API) AuditClient(c Client, msg, tenantID, userID, outcome string, kv ...any) {
	a.auditLine(c, msg, tenantID, userID, outcome, kv...)
}

// allowedMethods lists the methods that have an endpoint at the request's path, for a 405.
func allowedMethods(mux *http.ServeMux, r *http.Request) []string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "" && pattern != "/" {
			out = append(out, m)
		}
	}
	return out
}
