package hostedui

import (
	"net/url"
	"strings"
)

// SafeRedirect returns target when it is a same-origin path and "/" otherwise, so that
// redirectToPath can never send a browser to another site. A same-origin path starts with
// exactly one "/", is not "//host" or "/\host" (which browsers treat as another host), has no
// scheme, host, backslash or control character, and stays so once percent-decoded.
func SafeRedirect(target string) string {
	if !safePath(target) {
		return "/"
	}
	decoded, err := url.PathUnescape(target)
	if err != nil || !safePath(decoded) {
		return "/"
	}
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return "/"
	}
	return target
}

func safePath(s string) bool {
	if s == "" || s[0] != '/' {
		return false
	}
	if strings.HasPrefix(s, "//") || strings.HasPrefix(s, "/\\") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return false
		}
	}
	return true
}
