package hostedui_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/twofold-dev/twofold/test/oidcprovider"
)

// getURL GETs an absolute URL (the provider's) with the browser's cookies.
func (b *browser) getURL(raw string) page {
	b.h.t.Helper()
	req, err := http.NewRequest(http.MethodGet, raw, nil)
	if err != nil {
		b.h.t.Fatal(err)
	}
	return b.do(req)
}

func TestAnOIDCProviderButtonSignsInThroughTheHostedCallback(t *testing.T) {
	h := newHarness(t, tenantConfig(t, `{"firstFactors":["emailpassword"]}`))
	idp := oidcprovider.New(t, h.clock.Now)
	idp.ClientID, idp.Secret, idp.Email = "hosted-client", "s3cret", "sso@example.com"
	h.putTenant("acme", tenantConfig(t, fmt.Sprintf(`{"firstFactors":["emailpassword","thirdparty"],"thirdPartyProviders":[
		{"id":"corp","name":"Corp SSO","type":"oidc","issuer":%q,"clientId":"hosted-client","clientSecret":"s3cret","scopes":["openid","email"]}]}`, idp.URL())))

	// start follows the button to the provider and returns where the provider sends back to.
	start := func(b *browser) string {
		t.Helper()
		p := b.get("/auth/acme/signin?redirectToPath=%2Fdashboard")
		mustContain(t, p.body, "Continue with Corp SSO", `href="/auth/ui/thirdparty/start?provider=corp&amp;tenantId=acme&amp;redirectToPath=%2fdashboard"`)
		p = b.get("/auth/ui/thirdparty/start?provider=corp&tenantId=acme&redirectToPath=%2Fdashboard")
		if p.code != http.StatusSeeOther || !strings.HasPrefix(p.location, idp.URL()+"/authorize?") {
			t.Fatalf("the button answered %d to %q", p.code, p.location)
		}
		auth, _ := url.Parse(p.location)
		if want := h.ts.URL + "/auth/ui/callback/corp"; auth.Query().Get("redirect_uri") != want || auth.Query().Get("state") == "" {
			t.Fatalf("authorisation URL %s: want redirect_uri %s and a state", p.location, want)
		}
		back := b.getURL(p.location)
		if back.code != http.StatusFound {
			t.Fatalf("provider answered %d", back.code)
		}
		return strings.TrimPrefix(back.location, h.ts.URL)
	}

	t.Run("the provider's answer signs the browser in and returns it", func(t *testing.T) {
		b := h.browser()
		wantRedirect(t, b.get(start(b)), "/dashboard")
		if p := b.get("/auth/account"); p.code != http.StatusOK || !strings.Contains(p.body, "sso@example.com") {
			t.Fatalf("the account page answered %d:\n%s", p.code, p.body)
		}
	})
	t.Run("a callback with another state is refused", func(t *testing.T) {
		b := h.browser()
		cb, _ := url.Parse(start(b))
		q := cb.Query()
		q.Set("state", "forged")
		cb.RawQuery = q.Encode()
		p := b.get(cb.String())
		if p.code != http.StatusBadRequest || strings.Contains(p.header.Get("Set-Cookie"), "sAccessToken=ey") {
			t.Fatalf("answered %d with cookies %q", p.code, p.header.Values("Set-Cookie"))
		}
	})
	t.Run("a callback in a browser that did not start the sign-in is refused", func(t *testing.T) {
		cb := start(h.browser())
		p := h.browser().get(cb)
		if p.code != http.StatusBadRequest || strings.Contains(p.header.Get("Set-Cookie"), "sAccessToken=ey") {
			t.Fatalf("answered %d with cookies %q", p.code, p.header.Values("Set-Cookie"))
		}
		mustContain(t, p.body, "Sign-in could not be finished")
	})
}
