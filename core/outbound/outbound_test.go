package outbound_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/twofold-dev/twofold/core/outbound"
)

// fakeDNS resolves the names it holds and refuses the others, as a resolver an attacker
// controls would answer for their own domain.
type fakeDNS map[string][]netip.Addr

func (f fakeDNS) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := f[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// target is an internal service the attacker wants the core to reach; it counts requests.
type target struct {
	*httptest.Server
	hits atomic.Int32
	port string
}

func newTarget(t *testing.T, h http.HandlerFunc) *target {
	t.Helper()
	tg := &target{}
	tg.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tg.hits.Add(1)
		if h != nil {
			h(w, r)
			return
		}
		fmt.Fprint(w, `{"secret":"instance-credentials"}`)
	}))
	t.Cleanup(tg.Close)
	_, tg.port, _ = net.SplitHostPort(tg.Listener.Addr().String())
	return tg
}

func get(c *http.Client, u string) ([]byte, error) {
	resp, err := c.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

func TestTenantConfigurationCannotMakeTheCoreReachAnInternalAddress(t *testing.T) {
	tg := newTarget(t, nil)
	dns := fakeDNS{
		"idp.attacker.example":   {netip.MustParseAddr("127.0.0.1")},
		"mixed.attacker.example": {netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("127.0.0.1")},
	}
	p := outbound.Policy{Resolver: dns}
	c := p.Client(outbound.ClientOptions{MaxRedirects: 3})
	for _, tc := range []struct{ name, url string }{
		{"a loopback address literal", "http://127.0.0.1:" + tg.port + "/"},
		{"a loopback IPv6 literal", "http://[::1]:" + tg.port + "/"},
		{"an IPv4-mapped IPv6 loopback literal", "http://[::ffff:127.0.0.1]:" + tg.port + "/"},
		{"a NAT64 address embedding loopback", "http://[64:ff9b::7f00:1]:" + tg.port + "/"},
		{"the name localhost", "http://localhost:" + tg.port + "/"},
		{"a public-looking name that resolves to loopback", "http://idp.attacker.example:" + tg.port + "/"},
		{"a name that resolves to a private and a loopback address", "http://mixed.attacker.example:" + tg.port + "/"},
		{"a legacy numeric form of loopback", "http://2130706433:" + tg.port + "/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := get(c, tc.url)
			if !errors.Is(err, outbound.ErrForbidden) {
				t.Fatalf("GET %s = %v, want an error wrapping ErrForbidden", tc.url, err)
			}
			if n := tg.hits.Load(); n != 0 {
				t.Fatalf("the internal service received %d requests", n)
			}
		})
	}
}

func TestCheckURLRefusesInternalDestinationsItCanSeeWithoutResolving(t *testing.T) {
	p := outbound.Policy{}
	for _, tc := range []struct {
		name, url, want string
	}{
		{"the cloud metadata service", "http://169.254.169.254/latest/meta-data/", "link-local"},
		{"a private address", "https://10.1.2.3/token", "private"},
		{"a 172.16/12 address", "https://172.20.0.1/", "private"},
		{"a 192.168/16 address", "https://192.168.1.1/", "private"},
		{"a CGNAT address", "https://100.64.0.1/", "CGNAT"},
		{"the unspecified address", "http://0.0.0.0/", "unspecified"},
		{"a multicast address", "http://224.0.0.1/", "multicast"},
		{"a unique local IPv6 address", "https://[fd00::1]/", "unique local"},
		{"a link-local IPv6 address", "https://[fe80::1]/", "link-local"},
		{"a cluster service name", "https://kubernetes.default.svc/api", ".svc"},
		{"a fully qualified cluster name", "https://idp.auth.svc.cluster.local/", ".svc"},
		{"a cloud-internal name", "http://metadata.google.internal/computeMetadata/v1/", ".internal"},
		{"a single-label name", "http://redis:6379/", "single-label"},
		{"localhost", "http://localhost:8080/", "localhost"},
		{"a name under localhost", "http://app.localhost/", "localhost"},
		{"a relative URL", "/token", "not an absolute http(s) URL"},
		{"another scheme", "file:///etc/passwd", "not an absolute http(s) URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := p.CheckURL(tc.url)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("CheckURL(%q) = %v, want an error mentioning %q", tc.url, err, tc.want)
			}
		})
	}
	for _, ok := range []string{"https://accounts.google.com", "https://api.twilio.com", "https://8.8.8.8/", "https://[2001:4860:4860::8888]/"} {
		if err := p.CheckURL(ok); err != nil {
			t.Errorf("CheckURL(%q) = %v, want nil for a public destination", ok, err)
		}
	}
}

func TestTheOperatorsAllowListLetsTheCoreReachNamedInternalDestinations(t *testing.T) {
	tg := newTarget(t, nil)
	dns := fakeDNS{"idp.corp.internal": {netip.MustParseAddr("127.0.0.1")}, "sso.apps.corp.internal": {netip.MustParseAddr("127.0.0.1")}}
	for _, tc := range []struct{ name, allow, url string }{
		{"an address allowed by CIDR", "127.0.0.0/8", "http://127.0.0.1:" + tg.port + "/"},
		{"an address allowed by itself", "127.0.0.1", "http://127.0.0.1:" + tg.port + "/"},
		{"a name allowed by itself resolves to an internal address", "idp.corp.internal", "http://idp.corp.internal:" + tg.port + "/"},
		{"a name allowed by a suffix pattern", "*.apps.corp.internal", "http://sso.apps.corp.internal:" + tg.port + "/"},
		{"localhost allowed by its address", "127.0.0.1/32, ::1/128", "http://localhost:" + tg.port + "/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := outbound.Policy{Allow: outbound.MustParseAllowList(tc.allow), Resolver: dns}
			if !strings.Contains(tc.url, "localhost") {
				if err := p.CheckURL(tc.url); err != nil {
					t.Fatalf("CheckURL = %v", err)
				}
			}
			body, err := get(p.Client(outbound.ClientOptions{}), tc.url)
			if err != nil || !strings.Contains(string(body), "instance-credentials") {
				t.Fatalf("GET = %q, %v; want the answer", body, err)
			}
		})
	}
}

func TestAnAllowListEntryThatIsNeitherAnAddressNorANameIsRefused(t *testing.T) {
	for _, bad := range []string{"10.0.0.0/33", "not a host!", "*.", "http://idp.example"} {
		if _, err := outbound.ParseAllowList(bad); err == nil {
			t.Errorf("ParseAllowList(%q) accepted it", bad)
		}
	}
}

func TestARedirectFromAnAllowedServerToAnInternalOneIsNotFollowed(t *testing.T) {
	internal := newTarget(t, nil)
	var public *target
	public = newTarget(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/to-loopback":
			http.Redirect(w, r, "http://127.0.0.1:"+internal.port+"/latest/meta-data/", http.StatusFound)
		case "/to-a-name-resolving-to-loopback":
			http.Redirect(w, r, "http://rebind.attacker.example:"+internal.port+"/", http.StatusFound)
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		default:
			fmt.Fprint(w, "public")
		}
	})
	// The "public" provider runs on loopback too, so the test reaches it by a name that only it
	// is allowed under; the internal one shares its address but not its name.
	dns := fakeDNS{"idp.example.test": {netip.MustParseAddr("127.0.0.1")}, "rebind.attacker.example": {netip.MustParseAddr("127.0.0.1")}}
	p := outbound.Policy{Allow: outbound.MustParseAllowList("idp.example.test"), Resolver: dns}
	c := p.Client(outbound.ClientOptions{MaxRedirects: 3})
	base := "http://idp.example.test:" + public.port
	for _, tc := range []struct{ name, path string }{
		{"a redirect to a loopback address", "/to-loopback"},
		{"a redirect to a name that resolves to loopback", "/to-a-name-resolving-to-loopback"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := get(c, base+tc.path)
			if !errors.Is(err, outbound.ErrForbidden) {
				t.Fatalf("GET = %v, want ErrForbidden", err)
			}
			if n := internal.hits.Load(); n != 0 {
				t.Fatalf("the internal service received %d requests", n)
			}
		})
	}
	t.Run("an endless redirect loop stops after three redirects", func(t *testing.T) {
		before := public.hits.Load()
		_, err := get(c, base+"/loop")
		if err == nil || !strings.Contains(err.Error(), "stopped after 3 redirects") {
			t.Fatalf("GET = %v", err)
		}
		if n := public.hits.Load() - before; n != 4 {
			t.Fatalf("the server received %d requests, want 4 (the first and three redirects)", n)
		}
	})
	t.Run("a client that follows no redirects hands the 3xx back", func(t *testing.T) {
		resp, err := p.Client(outbound.ClientOptions{}).Get(base + "/to-loopback")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound || internal.hits.Load() != 0 {
			t.Fatalf("status %d, internal hits %d", resp.StatusCode, internal.hits.Load())
		}
	})
}

func TestAHugeAnswerIsCutOffAtTheLimit(t *testing.T) {
	huge := strings.Repeat("x", 2<<20)
	tg := newTarget(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("chunked") != "" {
			w.(http.Flusher).Flush() // no Content-Length: the body is streamed
		}
		io.WriteString(w, huge)
	})
	c := outbound.Policy{Allow: outbound.MustParseAllowList("127.0.0.1")}.Client(outbound.ClientOptions{MaxBodyBytes: 1 << 20})
	for _, q := range []string{"", "?chunked=1"} {
		body, err := get(c, tg.URL+q)
		if !errors.Is(err, outbound.ErrBodyTooLarge) {
			t.Fatalf("GET %s read %d bytes, err %v; want ErrBodyTooLarge", q, len(body), err)
		}
		if len(body) > 1<<20 {
			t.Fatalf("read %d bytes, more than the limit", len(body))
		}
	}
	exact := newTarget(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, huge[:1<<20]) })
	if body, err := get(c, exact.URL); err != nil || len(body) != 1<<20 {
		t.Fatalf("an answer of exactly the limit: %d bytes, %v", len(body), err)
	}
}

func TestCheckURLAcceptsWhatTheAllowListNames(t *testing.T) {
	p := outbound.Policy{Allow: outbound.MustParseAllowList("10.20.0.0/16,idp.auth.svc.cluster.local,*.corp.internal")}
	for _, u := range []string{"https://10.20.3.4/", "https://idp.auth.svc.cluster.local/", "https://sso.corp.internal/x"} {
		if err := p.CheckURL(u); err != nil {
			t.Errorf("CheckURL(%q) = %v", u, err)
		}
	}
	for _, u := range []string{"https://10.21.0.1/", "https://other.auth.svc.cluster.local/", "https://corp.internal/"} {
		if err := p.CheckURL(u); err == nil {
			t.Errorf("CheckURL(%q) accepted a destination the list does not name", u)
		}
	}
}
