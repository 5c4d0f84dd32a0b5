package passwordless

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// ErrInvalidLink is wrapped by errors about the parts of a magic link.
var ErrInvalidLink = errors.New("invalid magic link settings")

// MagicLink builds the URL sent to the user:
//
//	{websiteDomain}{websiteBasePath}/verify?preAuthSessionId=...&tenantId=...#<linkCode>
//
// websiteDomain is an http(s) origin such as https://app.example.com (a trailing slash is
// ignored); websiteBasePath is empty or starts with a slash, such as /auth. The link code goes
// in the fragment, which browsers do not send to servers or put in Referer headers.
func MagicLink(websiteDomain, websiteBasePath, tenantID, preAuthSessionID, linkCode string) (string, error) {
	origin := strings.TrimSuffix(websiteDomain, "/")
	u, err := url.Parse(origin)
	if err != nil {
		return "", fmt.Errorf("%w: website domain %q: %w", ErrInvalidLink, websiteDomain, err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("%w: website domain %q must be an origin like https://app.example.com", ErrInvalidLink, websiteDomain)
	}
	base := strings.TrimSuffix(websiteBasePath, "/")
	if base != "" && !strings.HasPrefix(base, "/") {
		return "", fmt.Errorf("%w: website base path %q must start with a slash", ErrInvalidLink, websiteBasePath)
	}
	if strings.ContainsAny(base, "?#") {
		return "", fmt.Errorf("%w: website base path %q must not contain ? or #", ErrInvalidLink, websiteBasePath)
	}
	switch {
	case tenantID == "":
		return "", fmt.Errorf("%w: empty tenant id", ErrInvalidLink)
	case preAuthSessionID == "":
		return "", fmt.Errorf("%w: empty preAuthSessionId", ErrInvalidLink)
	case linkCode == "":
		return "", fmt.Errorf("%w: empty link code", ErrInvalidLink)
	}
	return origin + base + "/verify?preAuthSessionId=" + url.QueryEscape(preAuthSessionID) +
		"&tenantId=" + url.QueryEscape(tenantID) + "#" + url.PathEscape(linkCode), nil
}
