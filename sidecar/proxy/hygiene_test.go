package proxy_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// spoofedIdentity are identity headers spelled the ways CGI, WSGI, Rack and some proxies
// read as X-Twofold-*: underscores for dashes, any case.
var spoofedIdentity = []string{
	"X_Twofold_User_Id", "mallory",
	"x_twofold_tenant_id", "other",
	"X-Twofold_Session", "stolen",
	"X_TWOFOLD-FACTORS", "totp,webauthn",
	"X_twofold_role", "root",
}

// identityLike returns the header names in h that a CGI-style server would read as
// X-Twofold-*.
func identityLike(h http.Header) []string {
	var names []string
	for k := range h {
		n := strings.ToLower(strings.ReplaceAll(k, "_", "-"))
		if strings.HasPrefix(n, "x-twofold-") {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	return names
}

func TestIdentityHeadersSpelledWithUnderscoresNeverReachTheApp(t *testing.T) {
	e := newEnv(t)
	e.refresh()
	tests := []struct {
		name string
		path string
		auth bool
		want []string // identity-like headers the app may see
	}{
		{
			name: "on a protected path only the verified identity reaches the app",
			path: "/orders", auth: true,
			want: []string{"X-Twofold-Factors", "X-Twofold-Session", "X-Twofold-Tenant-Id", "X-Twofold-User-Id"},
		},
		{
			name: "on a public path no identity-like header reaches the app",
			path: "/healthz",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := e.request("GET", tc.path)
			for i := 0; i < len(spoofedIdentity); i += 2 {
				// Set directly: http.Header.Set would canonicalise the spelling away.
				req.Header[spoofedIdentity[i]] = []string{spoofedIdentity[i+1]}
			}
			if tc.auth {
				req.Header.Set("Authorization", "Bearer "+e.token())
			}
			r := e.do(req)
			if r.status != 200 {
				t.Fatalf("%d %s", r.status, r.body)
			}
			h := r.seen(t).Headers
			if got := identityLike(h); !slices.Equal(got, tc.want) {
				t.Errorf("identity-like headers at the app = %q, want %q", got, tc.want)
			}
			if tc.auth && (h.Get("X-Twofold-User-Id") != "user-1" || h.Get("X-Twofold-Factors") != "emailpassword") {
				t.Errorf("identity at the app: %v", h)
			}
		})
	}
	t.Run("requests to the core carry no identity-like header either", func(t *testing.T) {
		req := e.request("GET", "/auth/signin")
		for i := 0; i < len(spoofedIdentity); i += 2 {
			req.Header[spoofedIdentity[i]] = []string{spoofedIdentity[i+1]}
		}
		if r := e.do(req); r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		if got := identityLike(*e.core.LastOtherHeaders.Load()); len(got) > 0 {
			t.Errorf("identity-like headers at the core: %q", got)
		}
	})
}
