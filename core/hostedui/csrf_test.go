package hostedui_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/twofold-dev/twofold/core/hostedui"
)

// plantCookie is what an attacker who controls a sibling subdomain can do: set a cookie the
// victim's browser then sends to the hosted pages, replacing the one it has (under either
// path the core has used).
func plantCookie(t *testing.T, b *browser, name, value string) {
	t.Helper()
	u, err := url.Parse(b.h.ts.URL + "/auth/")
	if err != nil {
		t.Fatal(err)
	}
	b.c.Jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value, Path: "/"}, {Name: name, Value: value, Path: "/auth"}})
}

// cookieValue returns the value b's jar sends to the hosted pages for name.
func cookieValue(t *testing.T, b *browser, name string) string {
	t.Helper()
	u, _ := url.Parse(b.h.ts.URL + "/auth/")
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	t.Fatalf("the browser has no %s cookie", name)
	return ""
}

func TestAnAttackerWhoCanSetCookiesCannotForgeAFormForSomeoneElsesBrowser(t *testing.T) {
	h := newHarness(t, tenantConfig(t, `{"firstFactors":["emailpassword"]}`))
	h.browser().signUp("mallory@example.com", "correct horse 9", "/")

	t.Run("a chosen cookie and the same value as the token (double submit) is refused", func(t *testing.T) {
		victim := h.browser()
		chosen := strings.Repeat("A", 43)
		plantCookie(t, victim, hostedui.CSRFCookie, chosen)
		// Login CSRF: sign the victim in as the attacker.
		p := victim.post("/auth/ui/action/signin", url.Values{"csrf": {chosen}, "email": {"mallory@example.com"}, "password": {"correct horse 9"}})
		if p.code != http.StatusForbidden || p.header.Get("Set-Cookie") != "" {
			t.Fatalf("answered %d with cookies %q, want 403 and no session", p.code, p.header.Values("Set-Cookie"))
		}
	})

	t.Run("the attacker's own cookie and token, planted in a signed-in victim's browser, are refused", func(t *testing.T) {
		attacker := h.browser()
		attacker.signIn("mallory@example.com", "correct horse 9", "/")
		attacker.get("/auth/account")
		token := attacker.form("/auth/ui/action/signout").Get("csrf")
		id := cookieValue(t, attacker, hostedui.CSRFCookie)

		victim := h.browser()
		victim.signUp("ada@example.com", "correct horse 1", "/")
		plantCookie(t, victim, hostedui.CSRFCookie, id)
		p := victim.post("/auth/ui/action/signout", url.Values{"csrf": {token}})
		if p.code != http.StatusForbidden {
			t.Fatalf("answered %d, want 403: a token made for another session signed the victim out", p.code)
		}
		if p := victim.get("/auth/account"); p.code != http.StatusOK {
			t.Fatalf("the victim's account page answered %d after the refused form", p.code)
		}
	})

	t.Run("a token from before sign-in is refused once the browser has a session", func(t *testing.T) {
		b := h.browser()
		b.get("/auth/signin")
		before := b.form("/auth/ui/action/signin").Get("csrf")
		b.follow(b.submit("/auth/ui/action/signin", "email", "mallory@example.com", "password", "correct horse 9"))
		if p := b.post("/auth/ui/action/signout", url.Values{"csrf": {before}}); p.code != http.StatusForbidden {
			t.Fatalf("answered %d, want 403", p.code)
		}
		// The pages rendered now carry a token for the session.
		b.get("/auth/account")
		wantRedirect(t, b.submit("/auth/ui/action/signout"), "/auth/signin")
	})
}

func TestTheCSRFCookieCannotBeSetFromASubdomainWhenCookiesAreSecure(t *testing.T) {
	h := newHarness(t, tenantConfig(t, `{"firstFactors":["emailpassword"]}`))
	yes := true
	c := tenantConfig(t, `{"firstFactors":["emailpassword"]}`)
	c.Session.CookieSecure = &yes
	h.putTenant("secure", c)
	p := h.browser().get("/auth/secure/signin")
	var got *http.Cookie
	for _, sc := range p.header.Values("Set-Cookie") {
		if ck, err := http.ParseSetCookie(sc); err == nil && strings.Contains(ck.Name, "csrf") {
			got = ck
		}
	}
	// Browsers only accept a __Host- cookie that is Secure, has Path=/ and no Domain, and never
	// from another host, so a sibling subdomain cannot plant one.
	if got == nil || got.Name != hostedui.SecureCSRFCookie || !got.Secure || got.Path != "/" || got.Domain != "" || !got.HttpOnly || got.SameSite != http.SameSiteStrictMode {
		t.Fatalf("CSRF cookie = %+v, want __Host-twofold-csrf, Secure, HttpOnly, SameSite=Strict, Path=/", got)
	}
}
