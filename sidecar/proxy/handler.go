package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
)

// Reasons a request is refused besides the token errors of jwt.go.
var (
	// ErrNoToken is a protected request without an access token.
	ErrNoToken = errors.New("no access token")
	// ErrRevoked is a token of a session the feed lists as revoked.
	ErrRevoked = errors.New("session revoked")
	// ErrEmailNotVerified is a token without st-ev.v true while the tenant requires email
	// verification.
	ErrEmailNotVerified = errors.New("st-ev.v is not true (email verification required)")
	// ErrMFANotVerified is a token whose st-mfa.v is false (or missing).
	ErrMFANotVerified = errors.New("st-mfa.v is false")
	// ErrRequirement is a session whose completed factors do not meet the tenant's current
	// requirement.
	ErrRequirement = errors.New("tenant MFA requirement not met")
	// ErrStepUp is a session that does not meet the stricter requirement of a route rule.
	ErrStepUp = errors.New("route step-up requirement not met")
	// ErrFactorTooOld is a session whose factors would meet the requirement but are older
	// than the maximum factor age.
	ErrFactorTooOld = errors.New("completed factors older than the maximum factor age")
	// ErrNoFeed refuses protected requests before the first enforcement feed arrived.
	ErrNoFeed = errors.New("no enforcement feed from the core yet")
	// ErrNoKeys refuses protected requests before the first JWKS arrived.
	ErrNoKeys = errors.New("no signing keys from the core yet")
)

// decision is the outcome of checking one request.
type decision struct {
	outcome Outcome
	reason  error
	sess    *session
	pol     *policy
	next    []string // next factors, when the sidecar computed them
}

// ServeHTTP decides and then forwards or refuses the request.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if isCleanPath(r.URL.Path) && hasPathPrefix(r.URL.Path, "/auth") {
		p.metrics.observe(OutcomeAuth, time.Since(start))
		p.serveAuth(w, r)
		return
	}
	d := p.decide(r)
	p.metrics.observe(d.outcome, time.Since(start))
	switch d.outcome {
	case OutcomeAllowed:
		h := r.Header
		h[contract.HeaderUserID] = d.sess.hdrUser
		h[contract.HeaderTenantID] = d.sess.hdrTenant
		h[contract.HeaderSession] = d.sess.hdrSession
		h[contract.HeaderFactors] = d.sess.hdrFactors
		if isUpgrade(r) {
			p.serveUpgrade(w, r, d.sess)
			return
		}
		p.app.ServeHTTP(w, r)
	case OutcomePublic:
		stripIdentity(r.Header)
		p.app.ServeHTTP(w, r)
	default:
		p.refuse(w, r, d)
	}
}

// decide runs the checks in the order docs/sidecar.md lists them.
func (p *Proxy) decide(r *http.Request) decision {
	if p.preflight && r.Method == http.MethodOptions && r.Header.Get("Origin") != "" &&
		r.Header.Get("Access-Control-Request-Method") != "" {
		return decision{outcome: OutcomePublic}
	}
	raw := r.URL.Path
	cp := canonicalPath(raw)
	clean := cp == raw
	if clean {
		for _, pp := range p.publicPaths {
			if hasPathPrefix(cp, pp) {
				return decision{outcome: OutcomePublic}
			}
		}
	}
	pol := p.feed.load()
	if pol == nil {
		return decision{outcome: OutcomeUnavailable, reason: ErrNoFeed}
	}
	rt := pol.match(cp, r.Method, clean)
	if rt != nil && rt.public {
		return decision{outcome: OutcomePublic, pol: pol}
	}
	if !p.keys.hasKeys() {
		return decision{outcome: OutcomeUnavailable, reason: ErrNoKeys, pol: pol}
	}
	tok := tokenFrom(r)
	if tok == "" {
		return decision{outcome: OutcomeUnauthorised, reason: ErrNoToken, pol: pol}
	}
	now := p.now()
	s, err := p.verify(r.Context(), tok, pol, now.Unix())
	if err != nil {
		// Only what a refresh can fix asks for one: an expired token, or a kid the sidecar
		// could not look up yet. A wrong issuer or tenant stays wrong after a refresh.
		if errors.Is(err, ErrExpired) || errors.Is(err, ErrKeysNotRefetched) {
			return decision{outcome: OutcomeTryRefresh, reason: err, pol: pol}
		}
		return decision{outcome: OutcomeUnauthorised, reason: err, pol: pol}
	}
	if pol.isRevoked(s) {
		p.cache.remove(tok)
		return decision{outcome: OutcomeRevoked, reason: ErrRevoked, sess: s, pol: pol}
	}
	if pol.emailVerification && (s.ev == nil || !*s.ev) {
		return decision{outcome: OutcomeInvalidClaim, reason: ErrEmailNotVerified, sess: s, pol: pol}
	}
	if next, err := checkMFA(s, pol, rt, now); err != nil {
		return decision{outcome: OutcomeInvalidClaim, reason: err, sess: s, pol: pol, next: next}
	}
	return decision{outcome: OutcomeAllowed, sess: s, pol: pol}
}

// verify returns the session of a token, from the cache when it was verified before.
func (p *Proxy) verify(ctx context.Context, tok string, pol *policy, now int64) (*session, error) {
	iss := p.issuer
	if iss == "" {
		iss = pol.issuer
	}
	if s := p.cache.get(tok); s != nil && p.keyStillValid(s) {
		if iss == "" || s.issuer != iss {
			return nil, fmt.Errorf("%w: %q", ErrIssuer, s.issuer)
		}
		if now >= s.exp {
			p.cache.remove(tok)
			return nil, ErrExpired
		}
		return s, nil
	}
	h, pl, sig, err := splitToken(tok)
	if err != nil {
		return nil, err
	}
	hdr, err := parseHeader(h)
	if err != nil {
		return nil, err
	}
	// The fetch an unknown kid may cause serves every waiting request: it must not fail
	// because the client that triggered it went away.
	key, err := p.keys.lookup(context.WithoutCancel(ctx), hdr.Kid)
	if err != nil {
		return nil, err
	}
	if err := key.verify(hdr.Alg, h, pl, sig); err != nil {
		return nil, err
	}
	var c jwtClaims
	if err := decodeJSONPart(pl, &c); err != nil {
		return nil, err
	}
	switch {
	case c.Exp == nil:
		return nil, fmt.Errorf("%w: no exp", ErrMalformedToken)
	case c.Sub == "" || c.SessionHandle == "":
		return nil, fmt.Errorf("%w: no sub or sessionHandle", ErrMalformedToken)
	case iss == "" || c.Iss != iss:
		return nil, fmt.Errorf("%w: %q", ErrIssuer, c.Iss)
	case c.TenantID != p.tenant:
		return nil, fmt.Errorf("%w: %q", ErrTenant, c.TenantID)
	case now >= *c.Exp:
		return nil, ErrExpired
	}
	s := newSession(&c, hdr.Kid, key)
	p.cache.put(tok, s, now)
	return s, nil
}

// keyStillValid reports whether the key a cached session was verified with is still the
// JWKS's key for its kid. A retired or replaced key invalidates the cached verification at
// once, even for an entry cached while the key set was being swapped.
func (p *Proxy) keyStillValid(s *session) bool {
	k, ok := p.keys.get(s.kid)
	return ok && k == s.key
}

// checkMFA applies st-mfa.v, the tenant's current requirement (when enforcement is
// Required) with its maximum factor age, and the step-up rule of the route. It returns the
// next factors when it computed them.
func checkMFA(s *session, pol *policy, rt *route, now time.Time) ([]string, error) {
	if !s.claim.V {
		return nil, ErrMFANotVerified
	}
	if pol.required && len(pol.requirement) > 0 {
		// The tenant's requirement accepts a used recovery code in place of a lost factor,
		// exactly as the core's st-mfa.v does; step-up routes do not.
		if next, err := meets(s.claim.C, pol.requirement, pol.maxAge, now, true, ErrRequirement); err != nil {
			return next, err
		}
	}
	if rt != nil {
		req, age := rt.requirement, rt.maxAge
		if len(req) == 0 {
			req = pol.requirement
		}
		if age == 0 {
			age = pol.maxAge
		}
		if next, err := meets(s.claim.C, req, age, now, false, ErrStepUp); err != nil {
			return next, err
		}
	}
	return nil, nil
}

func meets(c mfa.Completed, req mfa.Requirement, maxAge time.Duration, now time.Time, recoveryStandIn bool, unmet error) ([]string, error) {
	fresh := c
	if maxAge > 0 && !allFresh(c, now, maxAge) {
		fresh = c.Fresh(now, maxAge) // allocates, so only when some factor is too old
	}
	next := nextOf(req, fresh, recoveryStandIn)
	if len(next) == 0 {
		return nil, nil
	}
	if maxAge > 0 && len(nextOf(req, c, recoveryStandIn)) == 0 {
		return next, fmt.Errorf("%w: %w", unmet, ErrFactorTooOld)
	}
	return next, unmet
}

// hostedFactorPages are the factors the hosted MFA pages serve at <mfa page>/<factor>.
var hostedFactorPages = map[string]bool{mfa.TOTP: true, mfa.OTPEmail: true, mfa.OTPPhone: true}

// reverifyPage is where a browser goes whose st-mfa.v is true but whose completed factors do
// not meet the route's step-up rule or the tenant's current requirement (next is known only
// then). The hosted MFA page returns a complete session straight back, so such a browser is
// sent to the one factor to complete again, or to the page's chooser.
func reverifyPage(mfaPage string, next []string) string {
	if len(next) == 0 || strings.Contains(mfaPage, "?") {
		return mfaPage
	}
	if len(next) == 1 && hostedFactorPages[next[0]] {
		return mfaPage + "/" + next[0]
	}
	return mfaPage + "?choose=1"
}

// nextOf is the requirement's next set, with or without the recovery-code stand-in.
func nextOf(req mfa.Requirement, c mfa.Completed, recoveryStandIn bool) []string {
	if recoveryStandIn {
		return req.NextSetWithRecovery(c, false)
	}
	return req.NextSet(c)
}

// allFresh reports whether every factor in c was completed within maxAge, with the same
// boundary as mfa.Completed.Fresh.
func allFresh(c mfa.Completed, now time.Time, maxAge time.Duration) bool {
	oldest := now.Add(-maxAge).Unix()
	for _, at := range c {
		if at < oldest {
			return false
		}
	}
	return true
}

// tokenFrom returns the access token: Authorization: Bearer wins over the sAccessToken
// cookie. It parses the Cookie header by hand to avoid allocating every cookie.
func tokenFrom(r *http.Request) string {
	if v := r.Header["Authorization"]; len(v) > 0 {
		if a := v[0]; len(a) > 7 && strings.EqualFold(a[:7], "Bearer ") {
			return strings.TrimSpace(a[7:])
		}
	}
	for _, line := range r.Header["Cookie"] {
		for line != "" {
			var part string
			part, line, _ = strings.Cut(line, ";")
			name, val, ok := strings.Cut(strings.TrimSpace(part), "=")
			if ok && name == contract.CookieAccessToken {
				if len(val) > 1 && val[0] == '"' && val[len(val)-1] == '"' {
					val = val[1 : len(val)-1]
				}
				return val
			}
		}
	}
	return ""
}

// Response bodies, as SuperTokens sends them, encoded once.
var (
	bodyUnauthorised = mustJSON(contract.MessageBody{Message: contract.MessageUnauthorised})
	bodyTryRefresh   = mustJSON(contract.MessageBody{Message: contract.MessageTryRefreshToken})
	bodyInvalidClaim = mustJSON(contract.InvalidClaim(contract.MFARefusal(mfa.ClaimNotSatisfiedMessage, nil)))
)

// mustJSON encodes v, which cannot fail for the bodies above.
func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// refuse logs the decision and answers: 503 when the sidecar cannot decide, a redirect to
// the hosted UI for browsers, the SuperTokens-shaped JSON for everything else.
func (p *Proxy) refuse(w http.ResponseWriter, r *http.Request, d decision) {
	attrs := []slog.Attr{
		slog.String("outcome", d.outcome.String()),
		slog.String("reason", truncate(d.reason.Error(), 200)),
		slog.String("method", r.Method),
		slog.String("path", truncate(r.URL.Path, 200)),
		slog.String("tenant", p.tenant),
	}
	if d.sess != nil {
		attrs = append(attrs, slog.String("session", d.sess.handle), slog.String("user", d.sess.userID))
	}
	p.log.LogAttrs(r.Context(), slog.LevelInfo, "Refused request", attrs...)

	h := w.Header()
	h.Set("Cache-Control", "no-store")
	if d.outcome == OutcomeUnavailable {
		h.Set("Content-Type", "application/json")
		h.Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"message":"authentication unavailable"}`))
		return
	}
	emailUnverified := errors.Is(d.reason, ErrEmailNotVerified)
	if isBrowser(r) {
		target := DefaultSignInPath
		if d.pol != nil {
			target = d.pol.signIn
		}
		switch {
		case emailUnverified:
			target = DefaultVerifyEmailPath
			if d.pol != nil {
				target = d.pol.verifyEmail
			}
		case d.outcome == OutcomeInvalidClaim:
			target = DefaultMFAPath
			if d.pol != nil {
				target = d.pol.mfaPage
			}
			target = reverifyPage(target, d.next)
		}
		sep := "?"
		if strings.Contains(target, "?") {
			sep = "&"
		}
		h.Set("Location", target+sep+"redirectToPath="+url.QueryEscape(returnPath(r.URL)))
		w.WriteHeader(http.StatusFound)
		return
	}
	h.Set("Content-Type", "application/json")
	switch d.outcome {
	case OutcomeTryRefresh:
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write(bodyTryRefresh)
	case OutcomeInvalidClaim:
		w.WriteHeader(http.StatusForbidden)
		if emailUnverified {
			_ = json.NewEncoder(w).Encode(contract.InvalidClaim(contract.EmailVerificationRefusal(d.sess.ev)))
			return
		}
		if len(d.next) == 0 {
			_, _ = w.Write(bodyInvalidClaim)
			return
		}
		_ = json.NewEncoder(w).Encode(contract.InvalidClaim(contract.MFARefusal(mfa.ClaimNotSatisfiedMessage, d.next)))
	default:
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write(bodyUnauthorised)
	}
}

// isBrowser reports whether a refused request should be redirected rather than answered
// with JSON: a navigation (GET or HEAD) that accepts HTML.
func isBrowser(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	for _, a := range r.Header["Accept"] {
		if strings.Contains(a, "text/html") {
			return true
		}
	}
	return false
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
