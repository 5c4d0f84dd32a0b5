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
	"net"
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
