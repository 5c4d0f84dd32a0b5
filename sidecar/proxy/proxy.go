// Package proxy is Twofold's enforcing reverse proxy, the sidecar in front of a protected app.
//
// Requests under /auth/ go to the auth core, so its cookies stay on the app's origin. Every
// other request must carry a SuperTokens-style access token (Authorization: Bearer, else the
// sAccessToken cookie) that is RS256-signed by a key of the core's JWKS, unexpired, of the
// expected issuer and tenant, of a session that is not revoked, and whose st-mfa claim meets
// the tenant's current requirement and the step-up rule of the route, as published by the
// core's enforcement feed. Allowed requests reach the app with identity headers; refused
// ones get the SuperTokens-shaped 401/403 bodies, or a redirect to the hosted sign-in or MFA
// page for browsers. See docs/sidecar.md.
//
// The package uses only the standard library and Twofold's contract packages, so the
// sidecar binary stays small and free of Kubernetes client libraries.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twofold-dev/twofold/contract"
)

// Defaults applied by New to zero Options fields.
const (
	DefaultTenant              = contract.PublicTenantID
	DefaultPollInterval        = time.Second
	DefaultJWKSRefreshInterval = 5 * time.Minute
	DefaultJWKSMinRefetch      = 5 * time.Second
	DefaultTokenCacheSize      = 10000
	DefaultCoreTimeout         = 5 * time.Second
)

// Options configure a Proxy. CoreURL and Upstream are required.
type Options struct {
	// CoreURL is the auth core's base URL, e.g. http://twofold-core.twofold-system:3567.
	CoreURL string
	// Tenant is the tenant whose tokens and policy this sidecar enforces.
	Tenant string
	// Upstream is the app's URL, e.g. http://127.0.0.1:8081.
	Upstream string
	// Issuer is the iss tokens must carry. Empty means the issuer the enforcement feed
	// publishes (the feed and the JWKS come from the same core).
	Issuer string
	// PublicPaths are path prefixes (segment-aware) that pass without a token, for health
	// checks and static assets; they work even before the core has been reached.
	PublicPaths []string
	// ExtraAuthTenants are tenants besides Tenant whose /auth/<tenantId>/... sign-in
	// endpoints and pages are forwarded to the core; those of any other tenant are refused
	// with 404, so this app's origin serves no other tenant's sign-in.
	ExtraAuthTenants []string
	// SkipAuthPreflight lets CORS preflight requests (OPTIONS with Origin and
	// Access-Control-Request-Method) reach the app without a token: browsers never send
	// credentials on a preflight, so a cross-origin frontend needs this. Off by default,
	// because an app that does not tell OPTIONS apart would then serve it unauthenticated.
	SkipAuthPreflight bool
	// PollInterval is how often Run polls the enforcement feed.
	PollInterval time.Duration
	// JWKSRefreshInterval is how often Run refetches the JWKS to learn rotated keys early.
	JWKSRefreshInterval time.Duration
	// JWKSMinRefetch is the least time between two JWKS fetches caused by an unknown kid,
	// so a flood of tokens with made-up kids cannot turn into a flood of requests to the core.
	JWKSMinRefetch time.Duration
	// TokenCacheSize bounds the verified-token cache.
	TokenCacheSize int
	// Now is the clock for token expiry, factor age and refetch rate limits; time.Now when nil.
	Now func() time.Time
	// Logger receives the decision log and feed/key events; slog.Default() when nil.
	Logger *slog.Logger
	// CoreClient fetches the feed and the JWKS; a client with a 5 s timeout when nil.
	CoreClient *http.Client
	// Transport carries requests to the app and to the core's /auth/ API; a tuned
	// keep-alive transport when nil.
	Transport http.RoundTripper
}

// Proxy is the enforcing reverse proxy. It is an http.Handler; Run keeps its view of the
// core (keys and enforcement feed) current.
type Proxy struct {
	tenant       string
	extraTenants map[string]bool
	issuer       string
	publicPaths  []string
	preflight    bool
	now          func() time.Time
	log          *slog.Logger
	pollInterval time.Duration
	jwksInterval time.Duration

	keys    *keyStore
	feed    *feed
	cache   *tokenCache
	tunnels tunnels
	metrics metrics

	app  *httputil.ReverseProxy
	core *httputil.ReverseProxy

	coreState atomic.Int32
}

// New validates opts and builds a Proxy. It does not contact the core: until Refresh or Run
// has fetched keys and the feed, every protected request is refused with 503.
func New(opts Options) (*Proxy, error) {
	core, err := parseBaseURL("core URL", opts.CoreURL)
	if err != nil {
		return nil, err
	}
	upstream, err := parseBaseURL("upstream", opts.Upstream)
	if err != nil {
		return nil, err
	}
	p := &Proxy{
		tenant:       opts.Tenant,
		issuer:       opts.Issuer,
		now:          opts.Now,
		log:          opts.Logger,
		pollInterval: opts.PollInterval,
		jwksInterval: opts.JWKSRefreshInterval,
		preflight:    opts.SkipAuthPreflight,
	}
	if p.tenant == "" {
		p.tenant = DefaultTenant
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	if p.pollInterval <= 0 {
		p.pollInterval = DefaultPollInterval
	}
	if p.jwksInterval <= 0 {
		p.jwksInterval = DefaultJWKSRefreshInterval
	}
	for _, pp := range opts.PublicPaths {
		pp = strings.TrimSpace(pp)
		if pp == "" {
			continue
		}
		if !strings.HasPrefix(pp, "/") || !isCleanPath(pp) {
			return nil, fmt.Errorf("public path %q: must be a clean absolute path", pp)
		}
		if hasPathPrefix("/auth", pp) || hasPathPrefix(pp, "/auth") {
			return nil, fmt.Errorf("public path %q: /auth/ is the core's and always forwarded", pp)
		}
		p.publicPaths = append(p.publicPaths, pp)
	}
	for _, id := range opts.ExtraAuthTenants {
		id = strings.TrimSpace(id)
		if id == "" {
			continue
		}
		if strings.ContainsAny(id, "/%;?#\\ ") {
			return nil, fmt.Errorf("extra auth tenant %q: a tenant id is one path segment", id)
		}
		if p.extraTenants == nil {
			p.extraTenants = make(map[string]bool)
		}
		p.extraTenants[id] = true
	}
	cacheSize := opts.TokenCacheSize
	if cacheSize <= 0 {
		cacheSize = DefaultTokenCacheSize
	}
	p.cache = newTokenCache(cacheSize)
	minRefetch := opts.JWKSMinRefetch
	if minRefetch <= 0 {
		minRefetch = DefaultJWKSMinRefetch
	}
	transport := opts.Transport
	if transport == nil {
		transport = NewTransport()
	}
	client := opts.CoreClient
	if client == nil {
		client = &http.Client{Timeout: DefaultCoreTimeout, Transport: NewTransport()}
	}
	p.keys = &keyStore{
		url:        core.String() + "/auth/jwt/jwks.json",
		client:     client,
		now:        p.now,
		minRefetch: minRefetch,
		onRemoved:  p.cache.purge,
	}
	p.feed = &feed{
		url:    core.String() + "/auth/" + url.PathEscape(p.tenant) + "/enforcement",
		tenant: p.tenant,
		client: client,
		now:    p.now,
	}
	buffers := &bufferPool{}
	// Go's default flushing: event streams and responses of unknown length are flushed as
	// they are written, others when the handler returns, with no flush per write.
	p.app = &httputil.ReverseProxy{
		Rewrite:      func(pr *httputil.ProxyRequest) { rewriteToApp(pr, upstream) },
		Transport:    transport,
		BufferPool:   buffers,
		ErrorHandler: p.upstreamError("app"),
	}
	served := []string{p.tenant}
	for id := range p.extraTenants {
		served = append(served, id)
	}
	slices.Sort(served[1:])
	servedTenants := []string{strings.Join(served, ",")}
	p.core = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(core)
			stripIdentity(pr.Out.Header)
			pr.Out.Header[contract.HeaderServedTenants] = servedTenants
			pr.SetXForwarded()
		},
		Transport:    transport,
		BufferPool:   buffers,
		ErrorHandler: p.upstreamError("core"),
	}
	return p, nil
}

// parseBaseURL accepts http(s)://host[:port] with no path, query or fragment.
func parseBaseURL(what, raw string) (*url.URL, error) {
	if raw == "" {
		return nil, fmt.Errorf("%s is required", what)
	}
	u, err := url.Parse(strings.TrimSuffix(raw, "/"))
	if err != nil {
		return nil, fmt.Errorf("%s %q: %w", what, raw, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("%s %q: want http(s)://host[:port] without a path", what, raw)
	}
	return u, nil
}

// NewTransport returns the keep-alive transport the sidecar uses for the app and the core:
// no proxy from the environment, a large idle pool per host (the app is one host), and no
// transparent compression (bodies pass through unchanged).
func NewTransport() *http.Transport {
	return &http.Transport{
		DialContext: (&net.Dialer{
			Timeout:   5 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:          0,
		MaxIdleConnsPerHost:   1024,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
	}
}

// rewriteToApp points the outgoing request at the app, keeps the client's Host, replaces
// the X-Twofold-* headers by the identity the handler put on the incoming request (none on
// public paths), and sets X-Forwarded-*. It runs after ReverseProxy removed hop-by-hop
// headers, so "Connection: X-Twofold-User-Id" cannot remove the identity.
func rewriteToApp(pr *httputil.ProxyRequest, upstream *url.URL) {
	pr.Out.URL.Scheme = upstream.Scheme
	pr.Out.URL.Host = upstream.Host
	out, in := pr.Out.Header, pr.In.Header
	stripIdentity(out)
	for _, k := range [...]string{contract.HeaderUserID, contract.HeaderTenantID, contract.HeaderSession, contract.HeaderFactors} {
		if v, ok := in[k]; ok {
			out[k] = v
		}
	}
	pr.SetXForwarded()
}

// stripIdentity deletes every header whose name starts with X-Twofold-, in any case and with
// "_" read as "-": CGI, WSGI and Rack turn both X-Twofold-User-Id and X_Twofold_User_Id into
// HTTP_X_TWOFOLD_USER_ID, and some proxies pass underscores through, so either spelling would
// reach the app as the identity.
func stripIdentity(h http.Header) {
	for k := range h {
		if isIdentityHeader(k) {
			delete(h, k)
		}
	}
}

// isIdentityHeader reports whether name starts with contract.IdentityHeaderPrefix, ignoring case and
// reading "_" as "-". It compares byte by byte and allocates nothing: it runs on every header
// of every request.
func isIdentityHeader(name string) bool {
	if len(name) < len(contract.IdentityHeaderPrefix) {
		return false
	}
	for i := 0; i < len(contract.IdentityHeaderPrefix); i++ {
		c, want := name[i], contract.IdentityHeaderPrefix[i]
		switch {
		case c == want:
		case c == '_' && want == '-':
		case 'a' <= c && c <= 'z' && c-('a'-'A') == want:
		case 'A' <= c && c <= 'Z' && c+('a'-'A') == want:
		default:
			return false
		}
	}
	return true
}

func (p *Proxy) upstreamError(name string) func(http.ResponseWriter, *http.Request, error) {
	return func(w http.ResponseWriter, r *http.Request, err error) {
		if errors.Is(err, context.Canceled) {
			// The client went away; there is nobody to answer.
			w.WriteHeader(499)
			return
		}
		p.log.LogAttrs(r.Context(), slog.LevelError, "Failed to reach upstream",
			slog.String("upstream", name), slog.String("path", r.URL.Path), slog.String("error", err.Error()))
		if name == "core" {
			// The SDKs and the hosted pages read a JSON message; an empty 502 reads as a
			// broken app rather than an auth service that is briefly away.
			w.Header().Set("Retry-After", "1")
			writeJSON(w, http.StatusServiceUnavailable, bodyCoreUnavailable)
			return
		}
		w.WriteHeader(http.StatusBadGateway)
	}
}

// bodyCoreUnavailable answers /auth/ requests while the core cannot be reached.
var bodyCoreUnavailable = []byte(`{"message":"the authentication service is unavailable; try again shortly"}`)

// writeJSON writes a JSON answer of the sidecar's own that no cache may keep.
func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// bufferPool recycles the copy buffers of httputil.ReverseProxy.
type bufferPool struct{ p sync.Pool }

// NewBufferPool returns the pool of 32 KiB copy buffers the sidecar gives its reverse
// proxies, so that a baseline proxy can be configured the same way.
func NewBufferPool() httputil.BufferPool { return &bufferPool{} }

const copyBufferSize = 32 << 10

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[copyBufferSize]byte); ok {
		return v[:]
	}
	return make([]byte, copyBufferSize)
}

// Put keeps buffers of the pool's own size; the array pointer costs no allocation.
func (b *bufferPool) Put(buf []byte) {
	if len(buf) == copyBufferSize {
		b.p.Put((*[copyBufferSize]byte)(buf))
	}
}
