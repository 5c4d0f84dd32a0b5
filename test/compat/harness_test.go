// Package compat_test keeps Twofold's promise of SuperTokens compatibility: the real
// supertokens-web-js SDK (pinned in js/package.json, bundled by hack/compat-sdk.sh) runs in a
// headless Chromium on the sidecar's origin, in front of a small app, with the real core
// behind the sidecar; each test drives one family of SDK calls and checks what the app then
// lets through. WebAuthn ceremonies use Chromium's virtual authenticator (the DevTools
// WebAuthn domain), so the browser's own WebAuthn code signs them.
//
// The SDK bundle needs npm and the npm registry the first time; without them the tests fail
// with a message naming what is missing, never skip.
package compat_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/core/adminclient"
	"github.com/twofold-dev/twofold/test/chrome"
	"github.com/twofold-dev/twofold/test/coreproc"
	"github.com/twofold-dev/twofold/test/proc"
	"github.com/twofold-dev/twofold/test/testenv"
)

var (
	bundleOnce sync.Once
	bundle     string
	bundleErr  error
)

// sdkBundle builds (or reuses) the SDK bundle with hack/compat-sdk.sh.
func sdkBundle(t *testing.T) string {
	t.Helper()
	bundleOnce.Do(func() {
		out, err := exec.Command("bash", filepath.Join(testenv.RepoRoot(), "hack", "compat-sdk.sh")).Output()
		if err != nil {
			var stderr string
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = string(ee.Stderr)
			}
			bundleErr = fmt.Errorf("hack/compat-sdk.sh: %w\n%s", err, stderr)
			return
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		bundle = lines[len(lines)-1]
	})
	if bundleErr != nil {
		t.Fatalf("the compatibility tests need the supertokens-web-js bundle: %v", bundleErr)
	}
	return bundle
}

// page is the app's SDK page: it loads the bundle and initialises every recipe against its
// own origin, the sidecar's.
const page = `<!doctype html><html><head><meta charset="utf-8"><title>SDK</title>
<script src="/sdk/sdk.js"></script><script>compat.init(location.origin)</script></head>
<body><p id="ready">ready</p></body></html>`

// reactPage mounts supertokens-auth-react's prebuilt UI (js/react.jsx) for every path under
// /sdk/react/, as a single-page application does.
const reactPage = `<!doctype html><html><head><meta charset="utf-8"><title>auth-react</title></head>
<body><div id="root"></div><script src="/sdk/react.js"></script></body></html>`

// app is the protected application: /sdk/ is public (the SDK pages and bundles), /api/me
// answers with the identity the sidecar forwarded.
func app(t *testing.T, bundle string) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /sdk/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(page))
	})
	mux.HandleFunc("GET /sdk/sdk.js", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, bundle) })
	mux.HandleFunc("GET /sdk/react/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(reactPage))
	})
	mux.HandleFunc("GET /sdk/react.js", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, filepath.Join(filepath.Dir(bundle), "react.js"))
	})
	mux.HandleFunc("/api/me", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"userId": r.Header.Get(contract.HeaderUserID), "factors": r.Header.Get(contract.HeaderFactors)})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// system is a core, the app and a sidecar in front of it for the public tenant.
type system struct {
	core  *coreproc.Core
	admin *adminclient.Client
	// origin is the sidecar's, as the browser sees it: localhost, because a WebAuthn relying
	// party id cannot be an IP address.
	origin string
}

// start runs the system with the public tenant configured by cfg, which gets the origin.
func start(t *testing.T, cfg func(origin string) contract.TenantConfig, coreEnv ...string) *system {
	t.Helper()
	bundle := sdkBundle(t)
	sidecarAddr, adminAddr := proc.FreeAddr(t), proc.FreeAddr(t)
	_, port, _ := net.SplitHostPort(sidecarAddr)
	origin := "http://localhost:" + port
	core := coreproc.Start(t, coreproc.Options{Env: coreEnv})
	admin := adminclient.New(core.URL, func() (string, error) { return core.AdminKey, nil }, nil)
	c := cfg(origin)
	no := false
	c.Session.CookieSecure = &no
	if _, err := admin.PutTenant(context.Background(), contract.PublicTenantID, c); err != nil {
		t.Fatalf("put the public tenant: %v", err)
	}
	sc := proc.Start(t, "twofold-sidecar", proc.Build(t, "./cmd/sidecar"), []string{
		"TWOFOLD_LISTEN=" + sidecarAddr,
		"TWOFOLD_ADMIN_LISTEN=" + adminAddr,
		"TWOFOLD_UPSTREAM=" + app(t, bundle),
		"TWOFOLD_CORE_URL=" + core.URL,
		"TWOFOLD_TENANT=" + contract.PublicTenantID,
		"TWOFOLD_PUBLIC_PATHS=/sdk/",
		"TWOFOLD_POLL_INTERVAL=1s",
	})
	sc.WaitHTTP(t, "http://"+adminAddr+"/readyz", 200, 30*time.Second)
	return &system{core: core, admin: admin, origin: origin}
}

// sdk is a browser tab with the SDK page open and a virtual authenticator plugged in.
type sdk struct {
	t   *testing.T
	ctx context.Context
	// authenticator is the virtual authenticator's id.
	authenticator webauthn.AuthenticatorID
}

// open starts Chromium on the system's SDK page with a virtual platform authenticator that
// keeps discoverable credentials and verifies the user.
func (s *system) open(t *testing.T) *sdk {
	t.Helper()
	b := &sdk{t: t, ctx: chrome.Start(t)}
	b.do("open the SDK page", chromedp.Navigate(s.origin+"/sdk/"), chromedp.WaitVisible(chromedp.ID("ready")))
	if _, err := chromedp.Call(b.ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		t.Fatalf("enable the WebAuthn domain: %v", err)
	}
	res, err := chromedp.Call(b.ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{Options: &webauthn.VirtualAuthenticatorOptions{
		Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap21, Transport: webauthn.AuthenticatorTransportInternal,
		HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true,
		DefaultBackupEligibility: true, DefaultBackupState: true,
	}})
	if err != nil {
		t.Fatalf("add a virtual authenticator: %v", err)
	}
	b.authenticator = res.AuthenticatorID
	return b
}

func (b *sdk) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		html, _ := chromedp.Run(b.ctx, chromedp.OuterHTML(chromedp.CSS("body")))
		loc, _ := chromedp.Run(b.ctx, chromedp.Location())
		b.t.Fatalf("%s: %v\nat %s:\n%s", what, err, loc, html)
	}
}

// call runs recipe.fn(input) in the SDK and returns its answer (without the fetch response),
// or {thrown, message} when it threw.
func (b *sdk) call(recipe, fn string, input any) map[string]any {
	b.t.Helper()
	in, err := json.Marshal(input)
	if err != nil {
		b.t.Fatal(err)
	}
	if input == nil {
		in = []byte("undefined")
	}
	return b.eval(fmt.Sprintf("compat.call(%q, %q, %s)", recipe, fn, in))
}

func (b *sdk) eval(expr string) map[string]any {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[any](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("%s: %v", expr, err)
	}
	if m, ok := v.(map[string]any); ok {
		return m
	}
	return map[string]any{"value": v}
}

// ok fails the test unless the answer's status is OK, and returns the answer.
func (b *sdk) ok(what string, res map[string]any) map[string]any {
	b.t.Helper()
	if res["status"] != "OK" {
		b.t.Fatalf("%s: %v", what, res)
	}
	return res
}

// me fetches the protected /api/me from the page, through the SDK's interception of fetch
// (which adds the session and refreshes it on 401), and returns the status and body.
func (b *sdk) me() (int, map[string]any) {
	b.t.Helper()
	res := b.eval(`fetch("/api/me").then(async r => ({code: r.status, body: r.status === 200 ? await r.json() : await r.text()}))`)
	code, _ := res["code"].(float64)
	body, _ := res["body"].(map[string]any)
	return int(code), body
}

// userID is the user id of the SDK's current session.
func (b *sdk) userID() string {
	b.t.Helper()
	return b.eval(`compat.call("Session", "getUserId")`)["value"].(string)
}
