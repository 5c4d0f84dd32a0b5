package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
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
	routes      []route             // longest prefix first
	revoked     map[string]struct{} // by contract.SessionHandleHash
	// emailVerification requires st-ev.v to be true (the tenant's emailVerification is REQUIRED).
	emailVerification bool
	signIn            string
	mfaPage           string
	verifyEmail       string
}

// isRevoked reports whether the feed lists the session as revoked.
func (p *policy) isRevoked(s *session) bool {
	_, revoked := p.revoked[s.handleHash]
	return revoked
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

// compilePolicy validates a feed answer for tenant and turns it into a snapshot.
func compilePolicy(e *contract.Enforcement, tenant string) (*policy, error) {
	if e.V != contract.EnforcementVersion {
		return nil, fmt.Errorf("%w: version %d, this sidecar understands %d", ErrFeed, e.V, contract.EnforcementVersion)
	}
	if e.TenantID != tenant {
		return nil, fmt.Errorf("%w: tenant %q, want %q", ErrFeed, e.TenantID, tenant)
	}
	if err := e.MFA.Requirement.Validate(); err != nil {
		return nil, fmt.Errorf("%w: requirement: %w", ErrFeed, err)
	}
	p := &policy{
		version: e.ConfigVersion,
		issuer:  e.Issuer,
		// Anything but an explicit UserOptIn is enforced for everyone: an unknown mode
		// must not switch enforcement off.
		required:          e.MFA.Enforcement != contract.EnforcementUserOptIn,
		requirement:       e.MFA.Requirement,
		maxAge:            time.Duration(max(e.MFA.MaxFactorAgeSeconds, 0)) * time.Second,
		revoked:           make(map[string]struct{}, len(e.RevokedSessions)),
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
	for i, r := range e.RevokedSessions {
		if r.HandleHash == "" {
			return nil, fmt.Errorf("%w: revoked session %d has no handleHash", ErrFeed, i)
		}
		p.revoked[r.HandleHash] = struct{}{}
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

// feed polls the core's enforcement feed with If-None-Match and publishes compiled snapshots.
type feed struct {
	url    string
	tenant string
	client *http.Client
	now    func() time.Time

	current atomic.Pointer[policy]

	mu          sync.Mutex // serialises polls and guards etag
	etag        string
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

func (f *feed) pollLocked(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.url, nil)
	if err != nil {
		return fmt.Errorf("building feed request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if f.etag != "" && f.current.Load() != nil {
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
	var e contract.Enforcement
	if err := json.Unmarshal(body, &e); err != nil {
		return fmt.Errorf("%w: %w", ErrFeed, err)
	}
	p, err := compilePolicy(&e, f.tenant)
	if err != nil {
		return err
	}
	f.current.Store(p)
	f.etag = resp.Header.Get("ETag")
	return nil
}
