package proxy

import (
	"net/url"
	"path"
	"strings"
	"testing"
)

// FuzzReturnPathStaysOnTheOrigin checks the property the redirect relies on: a return path
// judged safe, resolved against the app's origin by a browser, even after the hosted page
// decodes it once more, never names another host.
func FuzzReturnPathStaysOnTheOrigin(f *testing.F) {
	for _, s := range []string{"/", "/a?b=c", "//evil", "/\\evil", "/%2F%2Fevil", "/%252F%252Fevil", "/..//evil", "/%09/evil", "https://evil", "/@evil"} {
		f.Add(s)
	}
	base, _ := url.Parse("https://app.example/x/y")
	f.Fuzz(func(t *testing.T, s string) {
		if !isSafeReturnPath(s) {
			return
		}
		for _, candidate := range []string{s, unescapeOrSelf(s)} {
			u, err := base.Parse(candidate)
			if err != nil {
				continue
			}
			if u.Host != "app.example" || u.Scheme != "https" {
				t.Fatalf("safe return path %q resolves to %q", s, u)
			}
		}
	})
}

func unescapeOrSelf(s string) string {
	if d, err := url.PathUnescape(s); err == nil {
		return d
	}
	return s
}

// FuzzVerifyNeverAcceptsGarbage feeds arbitrary tokens to the parsing steps: they must not
// panic, and nothing but an RS256 header passes the header policy.
func FuzzVerifyNeverAcceptsGarbage(f *testing.F) {
	for _, s := range []string{"", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.e30.AAAA", "..", "a.b.c.d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		h, _, _, err := splitToken(tok)
		if err != nil {
			return
		}
		hdr, err := parseHeader(h)
		if err == nil && (hdr.Alg != "RS256" || hdr.Kid == "" || len(hdr.Crit) > 0) {
			t.Fatalf("header %+v passed the policy", hdr)
		}
	})
}

// FuzzCanonicalPathCoversWhatTheAppReads checks the property route rules rely on: however an
// app reads a request path (percent-decoded once, backslashes as slashes, ";" parameters
// dropped, dot segments resolved), a rule prefix that covers the app's reading also covers
// the path the sidecar matches rules against. Otherwise "/%61dmin" or "/x/..;/admin" would
// reach the app's /admin without meeting the /admin rule.
func FuzzCanonicalPathCoversWhatTheAppReads(f *testing.F) {
	for _, s := range []string{"/admin", "/%61dmin", "/x/..;/admin", "/admin;x=1/y", "/a\\..\\admin", "/%2561dmin", "//admin", "/./admin/", "/admin%2fx", "/%2e%2e/admin"} {
		f.Add(s, "/admin")
	}
	f.Fuzz(func(t *testing.T, p, prefix string) {
		if p == "" || p[0] != '/' || !isCleanPath(prefix) {
			return
		}
		c := canonicalPath(p)
		if c == "" || c[0] != '/' || strings.Contains(c, "\\") {
			t.Fatalf("canonicalPath(%q) = %q, not an absolute slash path", p, c)
		}
		read, err := url.PathUnescape(p)
		if err != nil {
			return // the app's server refuses a malformed escape too
		}
		segs := strings.Split(strings.ReplaceAll(read, "\\", "/"), "/")
		for i, seg := range segs {
			segs[i], _, _ = strings.Cut(seg, ";")
		}
		appReads := path.Clean("/" + strings.Join(segs, "/"))
		if hasPathPrefix(appReads, prefix) && !hasPathPrefix(c, prefix) {
			t.Fatalf("the app reads %q as %q, under %q, but the rules see %q", p, appReads, prefix, c)
		}
	})
}
