package server_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/sidecar/proxy"
)

// viaSidecar puts a real sidecar for tenant in front of an app that echoes the identity it
// receives, with the harness's core behind it, and returns a harness whose requests go
// through that sidecar, and the sidecar.
func (h *harness) viaSidecar(tenant string, extraTenants ...string) (*harness, *proxy.Proxy) {
	h.t.Helper()
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{
			"app": "yes", "user": r.Header.Get(contract.HeaderUserID), "tenant": r.Header.Get(contract.HeaderTenantID),
		})
	}))
	h.t.Cleanup(app.Close)
	p, err := proxy.New(proxy.Options{CoreURL: h.ts.URL, Tenant: tenant, Upstream: app.URL,
		ExtraAuthTenants: extraTenants, Now: h.clock.Now})
	if err != nil {
		h.t.Fatal(err)
	}
	if err := p.Refresh(h.t.Context()); err != nil {
		h.t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	h.t.Cleanup(srv.Close)
	via := *h
	via.ts = srv
	return &via, p
}

func TestTheFeedNamesNoRevokedSessionAndTheSidecarStillRefusesIt(t *testing.T) {
	h := newHarness(t)
	sc, sidecar := h.viaSidecar(contract.PublicTenantID)
	access := h.signUp("", "a@example.com", "secret123").Header.Get("st-access-token")
	handle := payloadOf(t, access)["sessionHandle"].(string)
	if r := sc.do("GET", "/orders", nil, "Authorization", "Bearer "+access); r.Status != 200 {
		t.Fatalf("before revocation: %d %s", r.Status, r.Body)
	}
	if r := h.admin("DELETE", "/admin/v1/sessions/"+handle, nil); r.Status != 204 {
		t.Fatalf("revoking: %d %s", r.Status, r.Body)
	}

	feed := h.do("GET", "/auth/public/enforcement", nil)
	if strings.Contains(string(feed.Body), handle) {
		t.Fatalf("the feed, readable without credentials, names the revoked session's handle:\n%s", feed.Body)
	}
	if !strings.Contains(string(feed.Body), `"handleHash":"`+contract.SessionHandleHash(handle)+`"`) {
		t.Fatalf("the feed does not list the revoked session's hash:\n%s", feed.Body)
	}

	if err := sidecar.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if r := sc.do("GET", "/orders", nil, "Authorization", "Bearer "+access); r.Status != 401 || r.json(t)["message"] != "unauthorised" {
		t.Fatalf("the revoked session through the sidecar: %d %s", r.Status, r.Body)
	}
}

func TestSignUpThroughATenantsSidecarCreatesAUserOfThatTenant(t *testing.T) {
	h := newHarness(t)
	h.putTenant("demo", `{"firstFactors":["emailpassword"]}`)
	sc, _ := h.viaSidecar("demo")

	r := sc.signUp("", "dana@example.com", "secret123")
	mustStatus(t, r, 200, "OK")
	access := r.Header.Get("st-access-token")
	if tid := payloadOf(t, access)["tId"]; tid != "demo" {
		t.Fatalf("a sign-up at /auth/signup through demo's sidecar made a session of tenant %v", tid)
	}
	app := sc.do("GET", "/orders", nil, "Authorization", "Bearer "+access).json(t)
	if app["app"] != "yes" || app["tenant"] != "demo" {
		t.Fatalf("the new user's session through the sidecar: %v", app)
	}
	// The user signs in again the way a SuperTokens SDK without a tenant id would.
	mustStatus(t, sc.do("POST", "/auth/signin", form("dana@example.com", "secret123")), 200, "OK")

	t.Run("another tenant's sign-up is refused and creates nothing", func(t *testing.T) {
		r := sc.do("POST", "/auth/public/signup", form("eve@example.com", "secret123"))
		if r.Status != 404 || !strings.Contains(r.json(t)["message"].(string), "demo") {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
		mustStatus(t, h.do("POST", "/auth/public/signin", form("eve@example.com", "secret123")), 200, "WRONG_CREDENTIALS_ERROR")
	})
	t.Run("the hosted sign-in page is demo's whatever tenantId the query names", func(t *testing.T) {
		r := sc.do("GET", "/auth/signin?tenantId=public", nil, "Accept", "text/html")
		if r.Status != 200 || !strings.Contains(string(r.Body), `name="tenantId" value="demo"`) {
			t.Fatalf("got %d, page without demo's tenantId:\n%s", r.Status, r.Body)
		}
	})
	t.Run("paths that are not tenant-scoped pass", func(t *testing.T) {
		for _, p := range []string{"/auth/jwt/jwks.json", "/auth/demo/enforcement"} {
			if r := sc.do("GET", p, nil); r.Status != 200 {
				t.Errorf("GET %s: %d %s", p, r.Status, r.Body)
			}
		}
	})
	t.Run("an extra tenant configured on the sidecar is served", func(t *testing.T) {
		both, _ := h.viaSidecar("demo", contract.PublicTenantID)
		r := both.signUp("/public", "pat@example.com", "secret123")
		mustStatus(t, r, 200, "OK")
		if tid := payloadOf(t, r.Header.Get("st-access-token"))["tId"]; tid != contract.PublicTenantID {
			t.Fatalf("tenant %v", tid)
		}
	})
}

// The hosted pages take a tenant from a tenantId form field, which a sidecar cannot rewrite:
// a hand-made form post on app demo's origin used to sign the browser into tenant other
// there. The sidecar now tells the core which tenants its origin serves, and the hosted pages
// refuse the rest.
func TestAHostedFormPostThroughASidecarCannotSignIntoAnotherTenant(t *testing.T) {
	h := newHarness(t)
	for _, id := range []string{"demo", "other"} {
		h.putTenant(id, `{"firstFactors":["emailpassword"],"session":{"cookieSecure":false}}`)
	}
	mustStatus(t, h.signUp("/other", "olga@example.com", "secret123"), 200, "OK")
	mustStatus(t, h.signUp("/demo", "dana@example.com", "secret123"), 200, "OK")
	sc, _ := h.viaSidecar("demo")

	page := sc.do("GET", "/auth/signin", nil)
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(page.Body)
	if page.Status != 200 || m == nil {
		t.Fatalf("sign-in page through the sidecar: %d, csrf found %v", page.Status, m != nil)
	}
	var jar []string
	for _, c := range (&http.Response{Header: page.Header}).Cookies() {
		jar = append(jar, c.Name+"="+c.Value)
	}
	signIn := func(tenantID, email string) response {
		form := url.Values{"tenantId": {tenantID}, "email": {email}, "password": {"secret123"}, "csrf": {string(m[1])}}
		return sc.do("POST", "/auth/ui/action/signin", form.Encode(),
			"Content-Type", "application/x-www-form-urlencoded", "Cookie", strings.Join(jar, "; "))
	}
	if r := signIn("other", "olga@example.com"); r.Status != http.StatusNotFound || r.cookie("sAccessToken") != nil {
		t.Fatalf("a form naming tenant other through demo's sidecar = %d, session cookie set: %v", r.Status, r.cookie("sAccessToken") != nil)
	}
	if r := signIn("demo", "dana@example.com"); r.Status != http.StatusSeeOther || r.cookie("sAccessToken") == nil {
		t.Fatalf("the sidecar's own tenant through the same form = %d %s", r.Status, r.Body)
	}
}
