package proxy

import (
	"net/url"
	"path"
	"strings"
)

// hasPathPrefix reports whether prefix covers p on segment boundaries: "/admin" covers
// "/admin", "/admin/x" and "/admin;x" but not "/administrator"; a prefix ending in "/"
// covers everything below it and the folder itself ("/admin/" covers "/admin").
func hasPathPrefix(p, prefix string) bool {
	if !strings.HasPrefix(p, prefix) {
		return len(prefix) > 1 && prefix[len(prefix)-1] == '/' && p == prefix[:len(prefix)-1]
	}
	if len(p) == len(prefix) || strings.HasSuffix(prefix, "/") {
		return true
	}
	c := p[len(prefix)]
	return c == '/' || c == ';'
}

// isCleanPath reports whether p is a canonical absolute path: no "." or ".." segments, no
// empty segments, no backslashes, no ";" parameters (Tomcat-style servers drop them, so
// "/admin;x=1/y" reaches "/admin/y" and "..;" is read as ".."), and no "%" left after the
// URL's own decoding (an app that decodes again would read "/%61dmin" as "/admin"). Apps
// and frameworks normalise such paths in different ways, so an unclean path is never treated
// as public and is matched against the rules in its canonical form.
func isCleanPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	segStart := 1
	for i := 1; i <= len(p); i++ {
		if i < len(p) {
			switch p[i] {
			case '\\', ';', '%':
				return false
			case '/':
			default:
				continue
			}
		}
		// p[segStart:i] is one segment.
		switch seg := p[segStart:i]; {
		case seg == "" && i < len(p): // "//"
			return false
		case seg == "." || seg == "..":
			return false
		}
		segStart = i + 1
	}
	return true
}

// canonicalPath is the path rules are matched against, read the way the most lenient app
// would read it: percent-decoded again (up to three times), backslashes as slashes, ";"
// parameters dropped from segments, dot and empty segments resolved. So "/x/../admin",
// "/x/..;/admin", "/admin;x=1" and "/%61dmin" all meet the rules of "/admin".
func canonicalPath(p string) string {
	if isCleanPath(p) {
		return p
	}
	for range 3 {
		d, err := url.PathUnescape(p)
		if err != nil || d == p {
			break
		}
		p = d
	}
	segs := strings.Split(strings.ReplaceAll(p, "\\", "/"), "/")
	for i, seg := range segs {
		segs[i], _, _ = strings.Cut(seg, ";")
	}
	c := path.Clean("/" + strings.Join(segs, "/"))
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

// isSafeReturnPath reports whether s is a same-origin path a browser may be sent back to:
// it starts with exactly one "/", and neither it nor its percent-decodings start with "//"
// or "/\", contain a backslash or a control character. Anything else ("//evil",
// "/\evil", "https://evil", "/%2F%2Fevil", "javascript:...") could leave the origin.
func isSafeReturnPath(s string) bool {
	for range 3 { // decoded repeatedly: a page may decode the parameter again
		if !safeOnce(s) {
			return false
		}
		d, err := url.PathUnescape(s)
		if err != nil {
			return false
		}
		if d == s {
			return true
		}
		s = d
	}
	return safeOnce(s)
}

func safeOnce(s string) bool {
	if len(s) == 0 || s[0] != '/' {
		return false
	}
	if len(s) > 1 && (s[1] == '/' || s[1] == '\\') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return false
		}
	}
	return true
}

// returnPath is the redirectToPath for a refused browser request: the request's own path and
// query when that is a safe same-origin path, "/" otherwise.
func returnPath(u *url.URL) string {
	p := u.EscapedPath()
	if u.RawQuery != "" {
		p += "?" + u.RawQuery
	}
	if !isSafeReturnPath(p) {
		return "/"
	}
	return p
}
