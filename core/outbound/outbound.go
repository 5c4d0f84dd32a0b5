// Package outbound is the one way the core calls a destination that tenant configuration
// names: OIDC discovery, token, userinfo and JWKS endpoints, the Twilio-style SMS API and the
// SMS webhook. Whoever may edit a tenant's configuration chooses those URLs, so without a
// guard the core would fetch whatever they point at from inside the cluster: the cloud
// metadata service, the Kubernetes API, other tenants' services (server-side request forgery).
//
// The rules:
//
//   - A destination is refused when its address is loopback, link-local (169.254.0.0/16 with
//     the cloud metadata service, fe80::/10), private (10/8, 172.16/12, 192.168/16, fc00::/7),
//     shared address space (100.64/10, CGNAT), unspecified, multicast, broadcast or otherwise
//     reserved, and when its name is cluster-internal: a single label (the resolver's search
//     list makes it a cluster name) or a name under localhost, .local, .localdomain,
//     .internal, .svc, .cluster.local, .home.arpa or .lan.
//   - The operator, never a tenant, may allow some of those destinations with an AllowList
//     (the core's -outbound-allow flag): CIDRs, single addresses, host names, and *.suffix
//     patterns. A name on the list may resolve to any address.
//   - The rule is enforced when connecting: the dialer resolves the name itself, checks every
//     address, connects only to a checked one, and a net.Dialer Control function checks the
//     address once more right before the socket connects. So a name that resolves to a
//     private address, a DNS answer that changes between checks (rebinding) and a redirect
//     to an internal URL are all refused, whatever the URL looked like when it was saved.
//   - CheckURL applies the same rule to a URL without resolving it, for what can be told from
//     the URL alone (an address literal, an internal name), so the admin API refuses such a
//     configuration with a clear error before any request is made.
//   - Clients built by Client follow at most MaxRedirects redirects (each checked again, none
//     by default), read at most MaxBodyBytes of any answer, and bound connecting, the TLS
//     handshake, waiting for the answer and the whole exchange. They use no proxy: a proxy's
//     address would be checked instead of the destination's.
package outbound

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// ErrForbidden is wrapped by every refusal of a destination.
var ErrForbidden = errors.New("destination not allowed")

// ErrBodyTooLarge is returned when reading an answer beyond the client's MaxBodyBytes.
var ErrBodyTooLarge = errors.New("the answer is larger than the core reads")

// Limits of the clients Client builds, when ClientOptions leave them zero.
const (
	DefaultTimeout         = 15 * time.Second
	DefaultDialTimeout     = 5 * time.Second
	DefaultTLSTimeout      = 5 * time.Second
	DefaultHeaderTimeout   = 10 * time.Second
	DefaultMaxBodyBytes    = 1 << 20
	maxResponseHeaderBytes = 64 << 10
)

// refused lists the address ranges tenant configuration may not reach, with what they are.
var refused = []struct {
	prefix netip.Prefix
	what   string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "an unspecified (this-network) address"},
	{netip.MustParsePrefix("10.0.0.0/8"), "a private address"},
	{netip.MustParsePrefix("100.64.0.0/10"), "a shared (CGNAT) address"},
	{netip.MustParsePrefix("127.0.0.0/8"), "a loopback address"},
	{netip.MustParsePrefix("169.254.0.0/16"), "a link-local address (this range holds the cloud metadata service)"},
	{netip.MustParsePrefix("172.16.0.0/12"), "a private address"},
	{netip.MustParsePrefix("192.0.0.0/24"), "a reserved address"},
	{netip.MustParsePrefix("192.168.0.0/16"), "a private address"},
	{netip.MustParsePrefix("198.18.0.0/15"), "a reserved (benchmarking) address"},
	{netip.MustParsePrefix("224.0.0.0/4"), "a multicast address"},
	{netip.MustParsePrefix("240.0.0.0/4"), "a reserved address"},
	{netip.MustParsePrefix("::/128"), "an unspecified address"},
	{netip.MustParsePrefix("::1/128"), "a loopback address"},
	{netip.MustParsePrefix("fc00::/7"), "a private (unique local) address"},
	{netip.MustParsePrefix("fe80::/10"), "a link-local address"},
	{netip.MustParsePrefix("fec0::/10"), "a reserved (site-local) address"},
	{netip.MustParsePrefix("ff00::/8"), "a multicast address"},
	{netip.MustParsePrefix("100::/64"), "a reserved (discard) address"},
}

// internalSuffixes are name suffixes that only ever mean something inside a cluster, a
// cloud network or one machine.
var internalSuffixes = []string{
	"localhost", "local", "localdomain", "internal", "svc", "cluster.local", "home.arpa", "lan", "intranet",
}

// Embedded IPv4: these IPv6 ranges carry an IPv4 address that the network may reach.
var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// AllowList is the operator's list of internal destinations tenant configuration may reach
// anyway. The zero value allows none.
type AllowList struct {
	prefixes []netip.Prefix
	names    []string // exact, lower case
	suffixes []string // ".example.internal" for *.example.internal
	entries  []string
}

// ParseAllowList reads a comma- or space-separated list: CIDRs (10.20.0.0/16), addresses
// (127.0.0.1, ::1), host names (idp.corp.internal) and *.suffix patterns (*.corp.internal,
// which matches names under corp.internal but not corp.internal itself).
func ParseAllowList(s string) (AllowList, error) {
	var a AllowList
	for _, e := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' }) {
		if err := a.add(e); err != nil {
			return AllowList{}, err
		}
	}
	return a, nil
}

// MustParseAllowList is ParseAllowList for lists known to be valid, such as tests'.
func MustParseAllowList(s string) AllowList {
	a, err := ParseAllowList(s)
	if err != nil {
		panic(err)
	}
	return a
}

func (a *AllowList) add(e string) error {
	a.entries = append(a.entries, e)
	if strings.Contains(e, "/") {
		p, err := netip.ParsePrefix(e)
		if err != nil {
			return fmt.Errorf("outbound allow-list entry %q is not a CIDR such as 10.20.0.0/16: %w", e, err)
		}
		a.prefixes = append(a.prefixes, p.Masked())
		return nil
	}
	if ip, err := netip.ParseAddr(strings.Trim(e, "[]")); err == nil {
		a.prefixes = append(a.prefixes, netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen()))
		return nil
	}
	name := strings.TrimSuffix(strings.ToLower(e), ".")
	suffix, wildcard := strings.CutPrefix(name, "*.")
	if !validName(suffix) {
		return fmt.Errorf("outbound allow-list entry %q is not a CIDR, an IP address, a host name or a *.suffix pattern", e)
	}
	if wildcard {
		a.suffixes = append(a.suffixes, "."+suffix)
	} else {
		a.names = append(a.names, name)
	}
	return nil
}

// String lists the entries as given.
func (a AllowList) String() string { return strings.Join(a.entries, ",") }

func (a AllowList) allowsName(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	for _, n := range a.names {
		if host == n {
			return true
		}
	}
	for _, s := range a.suffixes {
		if strings.HasSuffix(host, s) {
			return true
		}
	}
	return false
}

func (a AllowList) allowsAddr(ip netip.Addr) bool {
	for _, p := range a.prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func validName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

// Resolver looks host names up; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Policy decides which destinations the core may reach for tenant configuration. The zero
// value refuses every internal destination and resolves with the system resolver.
type Policy struct {
	Allow AllowList
	// Resolver resolves names when dialing; net.DefaultResolver when nil. Tests set one to
	// make a public-looking name resolve to an internal address.
	Resolver Resolver
}

// checkAddr returns an error wrapping ErrForbidden unless ip may be reached.
func (p Policy) checkAddr(ip netip.Addr) error {
	if what := p.refusedAs(ip); what != "" {
		return forbidden(ip.Unmap().String(), what)
	}
	return nil
}

// refusedAs says what kind of internal address ip is, or "" when it may be reached.
func (p Policy) refusedAs(ip netip.Addr) string {
	ip = ip.Unmap()
	if p.Allow.allowsAddr(ip) {
		return ""
	}
	if ip.Is6() && (nat64.Contains(ip) || sixToFour.Contains(ip)) {
		b := ip.As16()
		v4 := netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]})
		if nat64.Contains(ip) {
			v4 = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
		}
		if what := p.refusedAs(v4); what != "" {
			return "an IPv6 address embedding " + v4.String() + ", " + what
		}
	}
	if ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return "the broadcast address"
	}
	for _, r := range refused {
		if r.prefix.Contains(ip) {
			return r.what
		}
	}
	return ""
}

// checkName returns an error wrapping ErrForbidden when host is a name that only means
// something inside the cluster or the machine, unless the allow-list names it.
func (p Policy) checkName(host string) error {
	if p.Allow.allowsName(host) {
		return nil
	}
	name := strings.TrimSuffix(strings.ToLower(host), ".")
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		// Always the machine itself: allowed exactly when its loopback address is.
		if p.Allow.allowsAddr(netip.MustParseAddr("127.0.0.1")) || p.Allow.allowsAddr(netip.IPv6Loopback()) {
			return nil
		}
		return forbidden(host, "the machine itself (loopback)")
	}
	if !strings.Contains(name, ".") {
		return forbidden(host, "a single-label name, which the resolver completes to a cluster-internal name")
	}
	for _, s := range internalSuffixes {
		if name == s || strings.HasSuffix(name, "."+s) {
			return forbidden(host, "a cluster-internal name (."+s+")")
		}
	}
	return nil
}

func forbidden(dest, what string) error {
	return fmt.Errorf("%w: %s is %s; tenant configuration may not reach it unless the core's outbound allow-list (-outbound-allow) permits it", ErrForbidden, dest, what)
}

// CheckHost applies the rule to a host name or address literal without resolving it.
func (p Policy) CheckHost(host string) error {
	host = strings.Trim(host, "[]")
	if ip, err := netip.ParseAddr(host); err == nil {
		return p.checkAddr(ip)
	}
	return p.checkName(host)
}

// CheckURL checks what can be told from an http(s) URL without resolving its host: an
// internal address literal or an internal name is refused.
func (p Policy) CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Hostname() == "" {
		return fmt.Errorf("%q is not an absolute http(s) URL", raw)
	}
	if err := checkLegacyIPv4(u.Hostname()); err != nil {
		return err
	}
	return p.CheckHost(u.Hostname())
}

// checkLegacyIPv4 refuses hosts such as 0x7f.1 or 2130706433, which some resolvers read as
// IPv4 addresses although netip does not.
func checkLegacyIPv4(host string) error {
	if host == "" || strings.Contains(host, ":") {
		return nil
	}
	allNumeric := true
	for _, label := range strings.Split(host, ".") {
		l := strings.ToLower(label)
		if l == "" {
			continue
		}
		numeric := strings.Trim(l, "0123456789") == "" || (strings.HasPrefix(l, "0x") && strings.Trim(l[2:], "0123456789abcdef") == "")
		allNumeric = allNumeric && numeric
	}
	if allNumeric {
		if _, err := netip.ParseAddr(host); err != nil {
			return fmt.Errorf("%w: %s is an address written in a legacy numeric form; write it as a dotted IPv4 address or use a host name", ErrForbidden, host)
		}
	}
	return nil
}

func (p Policy) resolver() Resolver {
	if p.Resolver != nil {
		return p.Resolver
	}
	return net.DefaultResolver
}

// DialContext connects to addr ("host:port") when the policy allows it: a name on the
// allow-list is dialed as it resolves; any other name is resolved here, and only an allowed
// address is connected to. The socket's address is checked once more before it connects.
func (p Policy) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("outbound: %w", err)
	}
	d := &net.Dialer{Timeout: DefaultDialTimeout, KeepAlive: 30 * time.Second}
	// A name on the allow-list may resolve to any address.
	allowedName := p.Allow.allowsName(host)
	if err := checkLegacyIPv4(host); err != nil && !allowedName {
		return nil, err
	}
	var addrs []netip.Addr
	lower := strings.TrimSuffix(strings.ToLower(host), ".")
	if ip, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{ip}
	} else if lower == "localhost" || strings.HasSuffix(lower, ".localhost") {
		// RFC 6761: always loopback, whatever a resolver says.
		addrs = []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.IPv6Loopback()}
	} else {
		// Only addresses decide here: a cluster name the operator allowed by its address
		// range is as reachable as the address.
		addrs, err = p.resolver().LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, fmt.Errorf("outbound: resolve %s: %w", host, err)
		}
	}
	if !allowedName {
		d.Control = func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: cannot read the address %q being connected to", ErrForbidden, address)
			}
			return p.checkAddr(ap.Addr())
		}
	}
	var firstErr error
	for _, ip := range addrs {
		if what := p.refusedAs(ip); what != "" && !allowedName {
			if firstErr == nil {
				dest := host
				if ip.Unmap().String() != host {
					dest = host + " (resolved to " + ip.Unmap().String() + ")"
				}
				firstErr = forbidden(dest, what)
			}
			continue
		}
		conn, err := d.DialContext(ctx, network, net.JoinHostPort(ip.Unmap().String(), port))
		if err == nil {
			return conn, nil
		}
		if firstErr == nil || errors.Is(firstErr, ErrForbidden) {
			firstErr = err
		}
	}
	if firstErr == nil {
		firstErr = fmt.Errorf("outbound: %s has no address", host)
	}
	return nil, firstErr
}

// ClientOptions shape a client; zero values take the defaults.
type ClientOptions struct {
	// MaxRedirects is how many redirects are followed, each checked like the first request;
	// zero follows none and hands the 3xx answer back as it is.
	MaxRedirects int
	// MaxBodyBytes bounds how much of any answer is read; DefaultMaxBodyBytes when zero.
	MaxBodyBytes int64
	// Timeout bounds a whole exchange, redirects and body included; DefaultTimeout when zero.
	Timeout time.Duration
}

// Client returns an HTTP client that reaches only what the policy allows.
func (p Policy) Client(o ClientOptions) *http.Client {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	tr := &http.Transport{
		Proxy:                  nil,
		DialContext:            p.DialContext,
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    DefaultTLSTimeout,
		ResponseHeaderTimeout:  DefaultHeaderTimeout,
		ExpectContinueTimeout:  time.Second,
		MaxIdleConns:           64,
		MaxIdleConnsPerHost:    4,
		IdleConnTimeout:        90 * time.Second,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
	}
	maxRedirects := o.MaxRedirects
	return &http.Client{
		Transport: limitBody{next: tr, max: o.MaxBodyBytes},
		Timeout:   o.Timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if maxRedirects == 0 {
				return http.ErrUseLastResponse
			}
			if len(via) > maxRedirects {
				return fmt.Errorf("outbound: stopped after %d redirects", maxRedirects)
			}
			if err := p.CheckURL(req.URL.String()); err != nil {
				return fmt.Errorf("outbound: redirect to %s: %w", req.URL.Redacted(), err)
			}
			return nil
		},
	}
}

// limitBody makes every answer's body fail with ErrBodyTooLarge past max bytes, so no
// caller, ours or a library's, reads an unbounded answer.
type limitBody struct {
	next http.RoundTripper
	max  int64
}

func (l limitBody) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := l.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.ContentLength > l.max {
		resp.Body.Close()
		return nil, fmt.Errorf("outbound: %s %s: %w (%d bytes announced, %d read at most)", req.Method, req.URL.Redacted(), ErrBodyTooLarge, resp.ContentLength, l.max)
	}
	resp.Body = &limitedBody{rc: resp.Body, left: l.max}
	return resp, nil
}

type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One byte more tells a body of exactly the limit from a longer one.
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			return 0, ErrBodyTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }
