package hostedui_test

import (
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/core/adminclient"
	"github.com/twofold-dev/twofold/core/coretest"
	"github.com/twofold-dev/twofold/core/factors/totp"
	"github.com/twofold-dev/twofold/core/outbound"
	"github.com/twofold-dev/twofold/core/server"
)

// adminKey is the core's admin API key.
const adminKey = coretest.AdminKey

type harness struct {
	t     *testing.T
	ts    *httptest.Server
	clock *coretest.Clock
	admin *adminclient.Client
	logs  *coretest.Logs
	core  *coretest.Core
}

// newHarness runs the whole core in process with a fake clock and puts cfg as the public
// tenant's configuration.
func newHarness(t *testing.T, cfg contract.TenantConfig) *harness {
	t.Helper()
	// The fake clock starts at the real time because the cookie jar expires cookies by the
	// real clock; tests then move it instead of sleeping.
	clock := coretest.NewClock(time.Now().UTC().Truncate(time.Minute))
	logs := &coretest.Logs{}
	core := coretest.Start(t, coretest.Options{Clock: clock, Server: func(o *server.Options) {
		o.Logger = funcr.New(logs.Add, funcr.Options{Verbosity: 10})
		// The fake OIDC provider listens on loopback, as a provider on an allowed address would.
		o.Outbound = outbound.Policy{Allow: outbound.MustParseAllowList("127.0.0.1/32")}
	}})
	h := &harness{t: t, ts: core.TS, clock: clock, admin: core.Admin, logs: logs, core: core}
	h.putTenant("public", cfg)
	return h
}

func (h *harness) putTenant(id string, cfg contract.TenantConfig) { h.core.PutTenant(id, cfg) }

// browser is an HTTP client with a cookie jar that does not follow redirects, so tests see
// each step.
type browser struct {
	h    *harness
	c    *http.Client
	last string // body of the last page
}

func (h *harness) browser() *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		h.t.Fatal(err)
	}
	return &browser{h: h, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// page is one answer.
type page struct {
	code     int
	header   http.Header
	body     string
	location string
}

func (b *browser) do(req *http.Request) page {
	b.h.t.Helper()
	resp, err := b.c.Do(req)
	if err != nil {
		b.h.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.h.t.Fatal(err)
	}
	p := page{code: resp.StatusCode, header: resp.Header, body: string(body), location: resp.Header.Get("Location")}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		b.last = p.body
	}
	return p
}

func (b *browser) get(path string) page {
	b.h.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.h.ts.URL+path, nil)
	if err != nil {
		b.h.t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html")
	return b.do(req)
}

// follow GETs redirects from p within /auth until a page that is not a redirect, or a
// redirect out of /auth (to the app), which it returns.
func (b *browser) follow(p page) page {
	b.h.t.Helper()
	for i := 0; (p.code == http.StatusSeeOther || p.code == http.StatusFound) && strings.HasPrefix(p.location, "/auth/"); i++ {
		if i > 10 {
			b.h.t.Fatalf("more than 10 redirects, last to %s", p.location)
		}
		if !strings.HasPrefix(p.location, "/") {
			b.h.t.Fatalf("redirect to %q leaves the site", p.location)
		}
		p = b.get(p.location)
	}
	return p
}

var (
	formPattern   = regexp.MustCompile(`(?s)<form method="post" action="([^"]+)"[^>]*>(.*?)</form>`)
	hiddenPattern = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
)

// form returns the hidden fields of the last page's form posting to action.
func (b *browser) form(action string) url.Values {
	b.h.t.Helper()
	for _, m := range formPattern.FindAllStringSubmatch(b.last, -1) {
		if m[1] != action {
			continue
		}
		v := url.Values{}
		for _, f := range hiddenPattern.FindAllStringSubmatch(m[2], -1) {
			v.Set(f[1], html.UnescapeString(f[2]))
		}
		return v
	}
	b.h.t.Fatalf("the page has no form posting to %s:\n%s", action, b.last)
	return nil
}

// submit posts the last page's form for action with its hidden fields and fields.
func (b *browser) submit(action string, fields ...string) page {
	b.h.t.Helper()
	v := b.form(action)
	for i := 0; i+1 < len(fields); i += 2 {
		v.Set(fields[i], fields[i+1])
	}
	return b.post(action, v)
}

func (b *browser) post(action string, v url.Values, header ...string) page {
	b.h.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.h.ts.URL+action, strings.NewReader(v.Encode()))
	if err != nil {
		b.h.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "text/html")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return b.do(req)
}

var secretPattern = regexp.MustCompile(`<code class="secret" id="totp-secret">([A-Z2-7 ]+)</code>`)

// secret reads the TOTP secret from the setup page.
func (b *browser) secret() string {
	b.h.t.Helper()
	m := secretPattern.FindStringSubmatch(b.last)
	if m == nil {
		b.h.t.Fatalf("no TOTP secret on the page:\n%s", b.last)
	}
	return strings.ReplaceAll(m[1], " ", "")
}

// code computes the TOTP code of secret at the harness's time.
func (h *harness) code(secret string) string {
	h.t.Helper()
	return h.codeAt(secret, 0)
}

// codeAt computes the TOTP code of secret at the harness's time moved by d.
func (h *harness) codeAt(secret string, d time.Duration) string {
	h.t.Helper()
	c, err := totp.DefaultConfig().Code(secret, h.clock.Now().Add(d))
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

var codesPattern = regexp.MustCompile(`<li><code>([a-z0-9-]+)</code></li>`)

// codes reads the recovery codes from the page.
func (b *browser) codes() []string {
	var out []string
	for _, m := range codesPattern.FindAllStringSubmatch(b.last, -1) {
		out = append(out, m[1])
	}
	return out
}

// signUp signs a new user up with email and password and follows to the next page.
func (b *browser) signUp(email, password, redirectTo string) page {
	b.h.t.Helper()
	b.get("/auth/signup?redirectToPath=" + url.QueryEscape(redirectTo))
	return b.follow(b.submit("/auth/ui/action/signup", "email", email, "password", password))
}

func (b *browser) signIn(email, password, redirectTo string) page {
	b.h.t.Helper()
	b.get("/auth/signin?redirectToPath=" + url.QueryEscape(redirectTo))
	return b.follow(b.submit("/auth/ui/action/signin", "email", email, "password", password))
}
