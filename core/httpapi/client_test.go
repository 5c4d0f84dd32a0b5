package httpapi

import (
	"net/http/httptest"
	"testing"
)

func TestTheClientAddressIsTheLastHopNoTrustedProxyVouchesFor(t *testing.T) {
	a := New(Options{})
	tests := []struct {
		name, peer string
		forwarded  []string
		want       string
	}{
		{"a direct client is its peer address", "203.0.113.7:5000", nil, "203.0.113.7"},
		{"a direct client cannot name another address in X-Forwarded-For", "203.0.113.7:5000", []string{"198.51.100.1"}, "203.0.113.7"},
		{"a sidecar's peer is the address it appended", "10.1.2.3:5000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"addresses a client put in front of the proxy's are ignored", "10.1.2.3:5000", []string{"192.0.2.66, 198.51.100.1"}, "198.51.100.1"},
		{"proxies behind proxies are walked back to the client", "10.1.2.3:5000", []string{"198.51.100.1, 10.9.9.9", "127.0.0.1"}, "198.51.100.1"},
		{"an unreadable hop stops the walk at the last trusted one", "10.1.2.3:5000", []string{"198.51.100.1, not-an-ip"}, "10.1.2.3"},
		{"an IPv4-mapped IPv6 peer is read as IPv4", "[::ffff:203.0.113.7]:5000", nil, "203.0.113.7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/auth/signin", nil)
			r.RemoteAddr = tt.peer
			for _, f := range tt.forwarded {
				r.Header.Add("X-Forwarded-For", f)
			}
			if got := a.clientAddr(r).String(); got != tt.want {
				t.Fatalf("client = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestAClientsBudgetKeyCoversItsIPv6Slash64(t *testing.T) {
	a := New(Options{})
	key := func(peer string) string {
		r := httptest.NewRequest("POST", "/auth/signin", nil)
		r.RemoteAddr = peer
		return clientKey(a.clientAddr(r))
	}
	if key("[2001:db8:1:2::1]:1") != key("[2001:db8:1:2:ffff::9]:1") {
		t.Fatal("two addresses of one IPv6 /64 have budgets of their own")
	}
	if key("[2001:db8:1:2::1]:1") == key("[2001:db8:1:3::1]:1") {
		t.Fatal("two IPv6 /64s share a budget")
	}
	if key("203.0.113.7:1") == key("203.0.113.8:1") {
		t.Fatal("two IPv4 addresses share a budget")
	}
}

func TestTrustedProxiesAreParsedFromCIDRsAndAddresses(t *testing.T) {
	got, err := ParseTrustedProxies(" 10.0.0.0/8, 192.0.2.1 ,fd00::/8,")
	if err != nil || len(got) != 3 || got[1].String() != "192.0.2.1/32" {
		t.Fatalf("ParseTrustedProxies = %v, %v", got, err)
	}
	for _, bad := range []string{"10.0.0.0/33", "sidecar", "10.0.0"} {
		if _, err := ParseTrustedProxies(bad); err == nil {
			t.Fatalf("%q was accepted", bad)
		}
	}
}
