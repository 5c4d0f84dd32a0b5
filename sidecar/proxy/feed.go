package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
)

// Hosted UI paths used when the feed names none.
const (
	DefaultSignInPath = "/auth/signin"
	DefaultMFAPath    = "/auth/mfa"
	// DefaultVerifyEmailPath is the hosted page that sends a signed-in user the verification
	// link, used when the feed names none.
	DefaultVerifyEmailPath = "/auth/verify-email"
)

// ErrFeed wraps every reason an enforcement feed answer is refused.
var ErrFeed = errors.New("invalid enforcement feed")

// policy is one compiled snapshot of the enforcement feed. It is immutable once published,
// so the request path reads it without locks.
type policy struct {
	version     int64
	issuer      string
	required    bool
	requirement mfa.Requirement
	maxAge      time.Duration
	routes      []route // longest prefix first
	revoked     *revokedSet
	// lifetime is the tenant's access-token lifetime: a revocation older than that concerns
	// no token that is still valid.
	lifetime time.Duration
	// emailVerification requires st-ev.v to be true (the tenant's emailVerification is REQUIRED).
	emailVerification bool
	signIn            string
	mfaPage           string
	verifyEmail       string
}

// isRevoked reports whether the feed lists the session as revoked.
func (p *policy) isRevoked(s *session) bool { return p.revoked.has(s.handleHash) }

// keepSince is the unix second before which a revocation concerns no token that can still be
// valid (0, keep everything, when the feed named no lifetime).
func (p *policy) keepSince(now time.Time) int64 {
	if p.lifetime <= 0 {
		return 0
	}
	return now.Add(-p.lifetime - revocationMargin).Unix()
}

// withRevoked returns a copy of p holding revoked instead of its list.
func (p *policy) withRevoked(revoked *revokedSet) *policy {
	q := *p
	q.revoked = revoked
	return &q
}

// route is a compiled step-up rule.
type route struct {
	prefix      string
	methods     []string // upper case; empty means every method
	public      bool
	requirement mfa.Requirement
	maxAge      time.Duration
}

// matchesMethod reports whether the rule applies to method, in any case: Go's server passes
// "get" through as it came, and an app may route it as GET. A rule for GET also covers HEAD,
// which returns the same resource without a body.
func (rt *route) matchesMethod(method string) bool {
	if len(rt.methods) == 0 {
		return true
	}
	for _, m := range rt.methods {
		if strings.EqualFold(m, method) || (m == http.MethodGet && strings.EqualFold(method, http.MethodHead)) {
			return true
		}
	}
	return false
}

// match returns the rule with the longest prefix that covers path and method, or nil.
// Public rules are skipped unless allowPublic (the request path was clean).
func (p *policy) match(path, method string, allowPublic bool) *route {
	for i := range p.routes {
		rt := &p.routes[i]
		if (allowPublic || !rt.public) && hasPathPrefix(path, rt.prefix) && rt.matchesMethod(method) {
			return rt
		}
	}
	return nil
}

// compilePolicy validates a full feed answer (version 2) for tenant and turns it into a
// snapshot.
func compilePolicy(e *contract.Enforcement, tenant string) (*policy, error) {
	if e.V != contract.EnforcementVersion {
		return nil, fmt.Errorf("%w: version %d, this sidecar understands %d and %d", ErrFeed, e.V,
			contract.EnforcementVersion, contract.EnforcementChangesVersion)
	}
	if e.TenantID != tenant {
		return nil, fmt.Errorf("%w: tenant %q, want %q", ErrFeed, e.TenantID, tenant)
	}
	p, err := compileEnforcementPolicy(&e.EnforcementPolicy, e.ConfigVersion)
	if err != nil {
		return nil, err
	}
	// A full answer is taken whole: the core lists only what the lifetime still needs.
	revoked, err := (&revokedSet{}).with(e.RevokedSessions, true, 0)
	if err != nil {
		return nil, err
	}
	return p.withRevoked(revoked), nil
}

// compileEnforcementPolicy validates the policy part of a feed answer and turns it into a
// snapshot with an empty revocation list.
func compileEnforcementPolicy(e *contract.EnforcementPolicy, version int64) (*policy, error) {
	if err := e.MFA.Requirement.Validate(); err != nil {
		return nil, fmt.Errorf("%w: requirement: %w", ErrFeed, err)
	}
	p := &policy{
		version: version,
		issuer:  e.Issuer,
		// Anything but an explicit UserOptIn is enforced for everyone: an unknown mode
		// must not switch enforcement off.
		required:          e.MFA.Enforcement != contract.EnforcementUserOptIn,
		requirement:       e.MFA.Requirement,
		maxAge:            time.Duration(max(e.MFA.MaxFactorAgeSeconds, 0)) * time.Second,
		revoked:           &revokedSet{},
		lifetime:          time.Duration(max(e.AccessTokenLifetimeSeconds, 0)) * time.Second,
		emailVerification: e.EmailVerificationRequired,
		signIn:            DefaultSignInPath,
		mfaPage:           DefaultMFAPath,
		verifyEmail:       DefaultVerifyEmailPath,
	}
	if isSafeReturnPath(e.HostedUI.SignIn) {
		p.signIn = e.HostedUI.SignIn
	}
	if isSafeReturnPath(e.HostedUI.MFA) {
		p.mfaPage = e.HostedUI.MFA
	}
	if isSafeReturnPath(e.HostedUI.VerifyEmail) {
		p.verifyEmail = e.HostedUI.VerifyEmail
	}
	for i, r := range e.MFA.Routes {
		if !strings.HasPrefix(r.PathPrefix, "/") {
			return nil, fmt.Errorf("%w: route %d: path prefix %q must start with /", ErrFeed, i, r.PathPrefix)
		}
		if err := r.Requirement.Validate(); err != nil {
			return nil, fmt.Errorf("%w: route %d: %w", ErrFeed, i, err)
		}
		rt := route{
			prefix:      r.PathPrefix,
			public:      r.Public,
			requirement: r.Requirement,
			maxAge:      time.Duration(max(r.MaxFactorAgeSeconds, 0)) * time.Second,
		}
		for _, m := range r.Methods {
			rt.methods = append(rt.methods, strings.ToUpper(m))
		}
		p.routes = append(p.routes, rt)
	}
	// Longest prefix first; among equal prefixes a protected rule sorts before a public one,
	// so an ambiguous policy is resolved towards checking more.
	sort.SliceStable(p.routes, func(i, j int) bool {
		a, b := p.routes[i], p.routes[j]
		if len(a.prefix) != len(b.prefix) {
			return len(a.prefix) > len(b.prefix)
		}
		return !a.public && b.public
	})
	return p, nil
}

// feed polls the core's enforcement feed and publishes compiled snapshots. It asks for the
// changes since the revocation cursor and configuration version it holds (version 3), with
// If-None-Match, and takes a version 2 answer (a core older than this sidecar) as a full one.
type feed struct {
	url    string
	tenant string
	client *http.Client
	now    func() time.Time

	current atomic.Pointer[policy]

	mu          sync.Mutex // serialises polls and guards etag and cursor
	etag        string
	cursor      int64        // revocation cursor of the current snapshot; 0 asks for everything
	resync      bool         // the last incremental answer was refused: ask for everything
	lastSuccess atomic.Int64 // unix nanoseconds of the last 200 or 304

	polls       atomic.Uint64
	notModified atomic.Uint64
	failures    atomic.Uint64
}

// load returns the current snapshot, nil before the first successful poll.
func (f *feed) load() *policy { return f.current.Load() }

// poll fetches the feed once. A 304 keeps the snapshot; a 200 replaces it after validation;
// anything else is an error and keeps the last good snapshot.
func (f *feed) poll(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.polls.Add(1)
	err := f.pollLocked(ctx)
	if err != nil {
		f.failures.Add(1)
		return err
	}
	f.lastSuccess.Store(f.now().UnixNano())
	return nil
}

// requestURL asks for the changes since what the current snapshot holds.
func (f *feed) requestURL(current *policy) string {
	u := f.url + "?v=" + strconv.Itoa(contract.EnforcementChangesVersion) + "&since=" + strconv.FormatInt(f.cursor, 10)
	if current != nil && !f.resync {
		u += "&cv=" + strconv.FormatInt(current.version, 10)
	}
	return u
}

func (f *feed) pollLocked(ctx context.Context) error {
	current := f.current.Load()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.requestURL(current), nil)
	if err != nil {
		return fmt.Errorf("building feed request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if f.etag != "" && current != nil {
		req.Header.Set("If-None-Match", f.etag)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return fmt.Errorf("fetching enforcement feed: %w", err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotModified:
		f.notModified.Add(1)
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxCoreBody))
		return nil
	case http.StatusOK:
	default:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxCoreBody))
		return fmt.Errorf("fetching enforcement feed: status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxCoreBody))
	if err != nil {
		return fmt.Errorf("reading enforcement feed: %w", err)
	}
	next, cursor, err := f.decide(current, body)
	if err != nil {
		// Start again from a full answer rather than ask for changes to a state that could
		// not take them.
		f.cursor, f.resync = 0, true
		return err
	}
	f.current.Store(next)
	f.cursor, f.resync = cursor, false
	f.etag = resp.Header.Get("ETag")
	return nil
}

// decide turns an answer into the next snapshot and the cursor to ask with next time.
func (f *feed) decide(current *policy, body []byte) (*policy, int64, error) {
	var version struct {
		V int `json:"v"`
	}
	if err := json.Unmarshal(body, &version); err != nil {
		return nil, 0, fmt.Errorf("%w: %w", ErrFeed, err)
	}
	if version.V == contract.EnforcementChangesVersion {
		var c contract.EnforcementChanges
		if err := json.Unmarshal(body, &c); err != nil {
			return nil, 0, fmt.Errorf("%w: %w", ErrFeed, err)
		}
		next, err := f.applyChanges(current, &c)
		return next, c.Cursor, err
	}
	var e contract.Enforcement
	if err := json.Unmarshal(body, &e); err != nil {
		return nil, 0, fmt.Errorf("%w: %w", ErrFeed, err)
	}
	next, err := compilePolicy(&e, f.tenant)
	return next, 0, err
}

// applyChanges validates an incremental answer and applies it to the current snapshot.
func (f *feed) applyChanges(current *policy, c *contract.EnforcementChanges) (*policy, error) {
	if c.TenantID != f.tenant {
		return nil, fmt.Errorf("%w: tenant %q, want %q", ErrFeed, c.TenantID, f.tenant)
	}
	if c.Cursor < 0 {
		return nil, fmt.Errorf("%w: negative revocation cursor %d", ErrFeed, c.Cursor)
	}
	next := current
	if c.Policy != nil {
		p, err := compileEnforcementPolicy(c.Policy, c.ConfigVersion)
		if err != nil {
			return nil, err
		}
		if current != nil {
			p.revoked = current.revoked
		}
		next = p
	} else if current == nil || current.version != c.ConfigVersion || f.resync {
		return nil, fmt.Errorf("%w: no policy for configuration version %d", ErrFeed, c.ConfigVersion)
	}
	if !c.Full && (current == nil || f.resync) {
		return nil, fmt.Errorf("%w: changes without a full list to apply them to", ErrFeed)
	}
	revoked, err := next.revoked.with(c.RevokedSessions, c.Full, next.keepSince(f.now()))
	if err != nil {
		return nil, err
	}
	return next.withRevoked(revoked), nil
}
