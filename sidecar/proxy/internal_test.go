package proxy

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/twofold-dev/twofold/sidecar/fakecore"
)

func TestReturnPathsAreSameOriginOnly(t *testing.T) {
	tests := []struct {
		path string
		safe bool
	}{
		{"/", true},
		{"/orders?page=2", true},
		{"/a/b%20c", true},
		{"", false},
		{"orders", false},
		{"//evil.example", false},
		{"/\\evil.example", false},
		{"\\/evil.example", false},
		{"https://evil.example", false},
		{"javascript:alert(1)", false},
		{"/%2F%2Fevil.example", false},
		{"/%2f/evil.example", false},
		{"/%5Cevil.example", false},
		{"/%252F%252Fevil.example", false},
		{"/%25252F%25252Fevil.example", false},
		{"/ok\r\nSet-Cookie: x=1", false},
		{"/ok%0d%0aSet-Cookie:%20x=1", false},
		{"/%zz", false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%q is safe: %v", tc.path, tc.safe), func(t *testing.T) {
			if got := isSafeReturnPath(tc.path); got != tc.safe {
				t.Errorf("isSafeReturnPath(%q) = %v", tc.path, got)
			}
		})
	}
}

func TestPathPrefixesMatchOnSegmentBoundaries(t *testing.T) {
	tests := []struct {
		path, prefix string
		match        bool
	}{
		{"/admin", "/admin", true},
		{"/admin/x", "/admin", true},
		{"/admin;jsessionid=1", "/admin", true},
		{"/administrator", "/admin", false},
		{"/static/app.js", "/static/", true},
		{"/static", "/static/", true},
		{"/staticfiles", "/static/", false},
		{"/", "/", true},
		{"/anything", "/", true},
	}
	for _, tc := range tests {
		if got := hasPathPrefix(tc.path, tc.prefix); got != tc.match {
			t.Errorf("hasPathPrefix(%q, %q) = %v", tc.path, tc.prefix, got)
		}
	}
}

func TestUncleanPathsAreCanonicalisedForMatching(t *testing.T) {
	tests := map[string]string{
		"/a/b":              "/a/b",
		"/healthz/../admin": "/admin",
		"//admin":           "/admin",
		"/x/./admin/":       "/x/admin/",
		"/x\\..\\admin":     "/admin",
		"/..":               "/",
		"/static/..;/admin": "/admin",
		"/x/.;a/admin":      "/x/admin",
		"/admin;x=1":        "/admin",
		"/admin;p/users":    "/admin/users",
		"/%61dmin":          "/admin",
		"/%2561dmin":        "/admin",
		"/x%2F..%2Fadmin":   "/admin",
		"/100%":             "/100%",
	}
	for in, want := range tests {
		if got := canonicalPath(in); got != want {
			t.Errorf("canonicalPath(%q) = %q, want %q", in, got, want)
		}
		if isCleanPath(in) != (in == want) && in != "/100%" {
			t.Errorf("isCleanPath(%q) = %v", in, isCleanPath(in))
		}
	}
}

func TestTokenCacheStaysWithinItsBound(t *testing.T) {
	c := newTokenCache(64)
	for i := range 1000 {
		c.put(fmt.Sprint("tok-", i), &session{exp: 100}, 50)
		if n := c.len(); n > 64 {
			t.Fatalf("after %d inserts the cache holds %d entries", i+1, n)
		}
	}
	if c.get("tok-999") == nil {
		t.Error("the newest entry was evicted")
	}
	// Expired entries go first: a full cache of expired sessions makes room without
	// dropping the live one.
	c.purge()
	c.put("live", &session{exp: 1000}, 50)
	for i := range 63 {
		c.put(fmt.Sprint("old-", i), &session{exp: 60}, 50)
	}
	c.put("new", &session{exp: 1000}, 70)
	if c.get("live") == nil || c.get("new") == nil {
		t.Error("a live session was evicted while expired ones could go")
	}
	if n := c.len(); n != 2 {
		t.Errorf("%d entries after the sweep, want 2", n)
	}
}

func TestACachedTokenNeedsItsKeyToStayInTheJWKS(t *testing.T) {
	k1, err := fakecore.NewKey("k1")
	if err != nil {
		t.Fatal(err)
	}
	k2, err := fakecore.NewKey("k1") // the same kid, another key
	if err != nil {
		t.Fatal(err)
	}
	ks := &keyStore{}
	first := &publicKey{alg: algRS256, rsa: &k1.Private.PublicKey}
	set := map[string]*publicKey{"k1": first}
	ks.keys.Store(&set)
	p := &Proxy{keys: ks}
	s := &session{kid: "k1", key: first}
	if !p.keyStillValid(s) {
		t.Fatal("the verifying key is in the JWKS, yet the entry is invalid")
	}
	replaced := map[string]*publicKey{"k1": {alg: algRS256, rsa: &k2.Private.PublicKey}}
	ks.keys.Store(&replaced)
	if p.keyStillValid(s) {
		t.Error("an entry verified with a replaced key still counts")
	}
	ks.keys.Store(&map[string]*publicKey{})
	if p.keyStillValid(s) {
		t.Error("an entry verified with a removed key still counts")
	}
}

func TestTokensFromHeadersAndCookies(t *testing.T) {
	tests := []struct {
		name          string
		authorization string
		cookie        string
		want          string
	}{
		{"a bearer token is read", "Bearer abc", "", "abc"},
		{"the scheme is case-insensitive", "bearer abc", "", "abc"},
		{"a bearer token wins over the cookie", "Bearer abc", "sAccessToken=def", "abc"},
		{"a non-bearer authorization falls back to the cookie", "Basic Zm9vOmJhcg==", "sAccessToken=def", "def"},
		{"the cookie is found among others", "", "a=1; sAccessToken=def; b=2", "def"},
		{"a quoted cookie value is unquoted", "", `sAccessToken="def"`, "def"},
		{"a cookie with a similar name is ignored", "", "xsAccessToken=def; sAccessTokenx=ghi", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := newRequest(tc.authorization, tc.cookie)
			if err != nil {
				t.Fatal(err)
			}
			if got := tokenFrom(r); got != tc.want {
				t.Errorf("token %q, want %q", got, tc.want)
			}
		})
	}
}

func newRequest(authorization, cookie string) (*http.Request, error) {
	r, err := http.NewRequest(http.MethodGet, "http://app/", nil)
	if err != nil {
		return nil, err
	}
	if authorization != "" {
		r.Header.Set("Authorization", authorization)
	}
	if cookie != "" {
		r.Header.Set("Cookie", cookie)
	}
	return r, nil
}

func TestStrippingIdentityHeadersAllocatesNothing(t *testing.T) {
	h := http.Header{
		"Accept": {"*/*"}, "Authorization": {"Bearer x"}, "Cookie": {"a=b"}, "User-Agent": {"test"},
		"X-Request-Id": {"1"}, "X_forwarded_for": {"10.0.0.1"}, "X-Twofold": {"short"},
	}
	if n := testing.AllocsPerRun(100, func() { stripIdentity(h) }); n != 0 {
		t.Errorf("stripIdentity allocated %v times per request", n)
	}
	if len(h) != 7 {
		t.Errorf("headers that are not identity headers were deleted: %v", h)
	}
	for _, tc := range []struct {
		name string
		is   bool
	}{
		{"X-Twofold-User-Id", true}, {"x_twofold_user_id", true}, {"X_TWOFOLD-", true},
		{"X-Twofold", false}, {"X-Twofolder-Id", false}, {"Y-Twofold-User-Id", false}, {"X.Twofold-User-Id", false},
	} {
		if got := isIdentityHeader(tc.name); got != tc.is {
			t.Errorf("isIdentityHeader(%q) = %v, want %v", tc.name, got, tc.is)
		}
	}
}
