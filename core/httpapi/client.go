package httpapi

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// DefaultTrustedProxies are the peers whose X-Forwarded-For the core believes when no list is
// configured: loopback and the private ranges pods, sidecars and ingress controllers live in.
// An operator narrows it to the cluster's pod network with the core's -trusted-proxies flag.
var DefaultTrustedProxies = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"), netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("fc00::/7"),
}

// ParseTrustedProxies reads a comma-separated list of CIDRs and addresses.
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, err
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// clientAddr is the address a request came from: the peer, or, when the peer is a trusted
// proxy (a sidecar, an ingress controller), the rightmost X-Forwarded-For entry that is not
// itself a trusted proxy. Entries left of that one are the client's own words and ignored.
// The zero Addr when the peer address cannot be read.
func (a *API) clientAddr(r *http.Request) netip.Addr {
	peer := peerAddr(r.RemoteAddr)
	if !peer.IsValid() || !a.trusted(peer) {
		return peer
	}
	fwd := r.Header.Values("X-Forwarded-For")
	for i := len(fwd) - 1; i >= 0; i-- {
		hops := strings.Split(fwd[i], ",")
		for j := len(hops) - 1; j >= 0; j-- {
			hop, err := netip.ParseAddr(strings.TrimSpace(hops[j]))
			if err != nil {
				return peer // a hop we cannot read: stop at the last one we could trust
			}
			hop = hop.Unmap()
			if !a.trusted(hop) {
				return hop
			}
			peer = hop
		}
	}
	return peer
}

func (a *API) trusted(addr netip.Addr) bool {
	for _, p := range a.opts.TrustedProxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

func peerAddr(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return addr.Unmap()
}

// clientKey is the key of a client's sign-in budget: its IPv4 address, or its IPv6 /64 (one
// subscriber usually holds a whole /64). Empty when the address is unknown.
func clientKey(addr netip.Addr) string {
	switch {
	case !addr.IsValid():
		return ""
	case addr.Is4():
		return addr.String()
	default:
		return netip.PrefixFrom(addr, 64).Masked().String()
	}
}

// Client is who sent a request, as the audit log and the per-client sign-in budget see it.
// The edges read it from the request (ClientOf) and hand it to the operations, which never
// see the request itself.
type Client struct {
	// Addr is the client's address: the peer, or the first X-Forwarded-For hop no trusted
	// proxy vouches for (see clientAddr). The zero Addr when it cannot be read.
	Addr netip.Addr
	// Peer is the request's RemoteAddr, logged when Addr cannot be read.
	Peer string
	// ForwardedFor is the X-Forwarded-For header as received, logged apart and never trusted.
	ForwardedFor string
}

// ClientOf returns who sent r.
func (a *API) ClientOf(r *http.Request) Client {
	return Client{Addr: a.clientAddr(r), Peer: r.RemoteAddr, ForwardedFor: r.Header.Get("X-Forwarded-For")}
}
