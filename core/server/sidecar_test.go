package server_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/core/coretest"
)

func TestTheFeedNamesNoRevokedSessionAndTheSidecarStillRefusesIt(t *testing.T) {
	h := coretest.New(t)
	sc, sidecar := h.ViaSidecar(contract.PublicTenantID)
	access := h.SignUp("", "a@example.com", "secret123").Header.Get("st-access-token")
	handle := coretest.PayloadOf(t, access)["sessionHandle"].(string)
	if r := sc.Do("GET", "/orders", nil, "Authorization", "Bearer "+access); r.Status != 200 {
		t.Fatalf("before revocation: %d %s", r.Status, r.Body)
	}
	if r := h.AdminDo("DELETE", "/admin/v1/sessions/"+handle, nil); r.Status != 204 {
		t.Fatalf("revoking: %d %s", r.Status, r.Body)
	}

	feed := h.Do("GET", "/auth/public/enforcement", nil)
	if strings.Contains(string(feed.Body), handle) {
		t.Fatalf("the feed, readable without credentials, names the revoked session's handle:\n%s", feed.Body)
	}
	if !strings.Contains(string(feed.Body), `"handleHash":"`+contract.SessionHandleHash(handle)+`"`) {
		t.Fatalf("the feed does not list the revoked session's hash:\n%s", feed.Body)
	}

	if err := sidecar.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if r := sc.Do("GET", "/orders", nil, "Authorization", "Bearer "+access); r.Status != 401 || r.JSON(t)["message"] != "unauthorised" {
		t.Fatalf("the revoked session through the sidecar: %d %s", r.Status, r.Body)
	}
}

func TestSignUpThroughATenantsSidecarCreatesAUserOfThatTenant(t *testing.T) {
	h := coretest.New(t)
	h.PutTenantJSON("demo", `{"firstFactors":["emailpassword"]}`)
	sc, _ := h.ViaSidecar("demo")

	r := sc.SignUp("", "dana@example.com", "secret123")
	coretest.MustStatus(t, r, 200, "OK")
	access := r.Header.Get("st-access-token")
	if tid := coretest.PayloadOf(t, access)["tId"]; tid != "demo" {
		t.Fatalf("a sign-up at /auth/signup through demo's sidecar made a session of tenant %v", tid)
	}
	app := sc.Do("GET", "/orders", nil, "Authorization", "Bearer "+access).JSON(t)
	if app["app"] != "yes" || app["tenant"] != "demo" {
		t.Fatalf("the new user's session through the sidecar: %v", app)
	}
	// The user signs in again the way a SuperTokens SDK without a tenant id would.
	coretest.MustStatus(t, sc.Do("POST", "/auth/signin", coretest.Form("dana@example.com", "secret123")), 200, "OK")

	t.Run("another tenant's sign-up is refused and creates nothing", func(t *testing.T) {
		r := sc.Do("POST", "/auth/public/signup", coretest.Form("eve@example.com", "secret123"))
		if r.Status != 404 || !strings.Contains(r.JSON(t)["message"].(string), "demo") {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
		coretest.MustStatus(t, h.Do("POST", "/auth/public/signin", coretest.Form("eve@example.com", "secret123")), 200, "WRONG_CREDENTIALS_ERROR")
	})
	t.Run("the hosted sign-in page is demo's whatever tenantId the query names", func(t *testing.T) {
		r := sc.Do("GET", "/auth/signin?tenantId=public", nil, "Accept", "text/html")
		if r.Status != 200 || !strings.Contains(string(r.Body), `name="tenantId" value="demo"`) {
			t.Fatalf("got %d, page without demo's tenantId:\n%s", r.Status, r.Body)
		}
	})
	t.Run("paths that are not tenant-scoped pass", func(t *testing.T) {
		for _, p := range []string{"/auth/jwt/jwks.json", "/auth/demo/enforcement"} {
			if r := sc.Do("GET", p, nil); r.Status != 200 {
				t.Errorf("GET %s: %d %s", p, r.Status, r.Body)
			}
		}
	})
	t.Run("an extra tenant configured on the sidecar is served", func(t *testing.T) {
		both, _ := h.ViaSidecar("demo", contract.PublicTenantID)
		r := both.SignUp("/public", "pat@example.com", "secret123")
		coretest.MustStatus(t, r, 200, "OK")
		if tid := coretest.PayloadOf(t, r.Header.Get("st-access-token"))["tId"]; tid != contract.PublicTenantID {
			t.Fatalf("tenant %v", tid)
		}
	})
}

// The hosted pages take a tenant from a tenantId form field, which a sidecar cannot rewrite:
// a hand-made form post on app demo's origin used to sign the browser into tenant other
// there. The sidecar now tells the core which tenants its origin serves, and the hosted pages
// refuse the rest.
func TestAHostedFormPostThroughASidecarCannotSignIntoAnotherTenant(t *testing.T) {
	h := coretest.New(t)
	for _, id := range []string{"demo", "other"} {
		h.PutTenantJSON(id, `{"firstFactors":["emailpassword"],"session":{"cookieSecure":false}}`)
	}
	coretest.MustStatus(t, h.SignUp("/other", "olga@example.com", "secret123"), 200, "OK")
	coretest.MustStatus(t, h.SignUp("/demo", "dana@example.com", "secret123"), 200, "OK")
	sc, _ := h.ViaSidecar("demo")

	page := sc.Do("GET", "/auth/signin", nil)
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindSubmatch(page.Body)
	if page.Status != 200 || m == nil {
		t.Fatalf("sign-in page through the sidecar: %d, csrf found %v", page.Status, m != nil)
	}
	var jar []string
	for _, c := range (&http.Response{Header: page.Header}).Cookies() {
		jar = append(jar, c.Name+"="+c.Value)
	}
	signIn := func(tenantID, email string) coretest.Response {
		form := url.Values{"tenantId": {tenantID}, "email": {email}, "password": {"secret123"}, "csrf": {string(m[1])}}
		return sc.Do("POST", "/auth/ui/action/signin", form.Encode(),
			"Content-Type", "application/x-www-form-urlencoded", "Cookie", strings.Join(jar, "; "))
	}
	if r := signIn("other", "olga@example.com"); r.Status != http.StatusNotFound || r.Cookie("sAccessToken") != nil {
		t.Fatalf("a form naming tenant other through demo's sidecar = %d, session cookie set: %v", r.Status, r.Cookie("sAccessToken") != nil)
	}
	if r := signIn("demo", "dana@example.com"); r.Status != http.StatusSeeOther || r.Cookie("sAccessToken") == nil {
		t.Fatalf("the sidecar's own tenant through the same form = %d %s", r.Status, r.Body)
	}
}
