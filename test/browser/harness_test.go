// Package browser_test drives the hosted login and MFA pages in a real headless Chromium,
// through the real sidecar in front of the sample app, with the real core behind it: every
// part is a separate process talking over loopback HTTP, and the browser only ever talks to
// the sidecar, as it would in a cluster.
//
// Chromium is Debian's package (/usr/bin/chromium). When it is missing the tests run
// hack/chromium.sh to install it, and fail — never skip — if it still is not there.
package browser_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/core/adminclient"
	"github.com/twofold-dev/twofold/test/chrome"
	"github.com/twofold-dev/twofold/test/coreproc"
	"github.com/twofold-dev/twofold/test/proc"
	"github.com/twofold-dev/twofold/test/testenv"
)

// system is a core, the sample app and a sidecar for one tenant, running as processes.
type system struct {
	core    *coreproc.Core
	admin   *adminclient.Client
	sidecar string // the only URL the browser uses
}

// start runs the core, puts tenantID's configuration, and starts the sample app and a
// sidecar for the tenant in front of it.
func start(t *testing.T, tenantID string, cfg contract.TenantConfig) *system {
	t.Helper()
	return startWith(t, tenantID, func(string) contract.TenantConfig { return cfg })
}

// startWith is start for a configuration that needs the sidecar's URL (the website domain
// of sign-in links).
func startWith(t *testing.T, tenantID string, cfg func(sidecarURL string) contract.TenantConfig) *system {
	t.Helper()
	sidecarAddr, adminAddr := proc.FreeAddr(t), proc.FreeAddr(t)
	core := coreproc.Start(t, coreproc.Options{})
	admin := adminclient.New(core.URL, func() (string, error) { return core.AdminKey, nil }, nil)
	if _, err := admin.PutTenant(context.Background(), tenantID, cfg("http://"+sidecarAddr)); err != nil {
		t.Fatalf("put tenant %s: %v", tenantID, err)
	}
	appAddr := proc.FreeAddr(t)
	app := proc.Start(t, "sampleapp", proc.Build(t, "./test/sampleapp"), nil, "-listen", appAddr)
	app.WaitHTTP(t, "http://"+appAddr+"/healthz", 200, 30*time.Second)
	sc := proc.Start(t, "twofold-sidecar", proc.Build(t, "./cmd/sidecar"), []string{
		"TWOFOLD_LISTEN=" + sidecarAddr,
		"TWOFOLD_ADMIN_LISTEN=" + adminAddr,
		"TWOFOLD_UPSTREAM=http://" + appAddr,
		"TWOFOLD_CORE_URL=" + core.URL,
		"TWOFOLD_TENANT=" + tenantID,
		"TWOFOLD_POLL_INTERVAL=1s",
	})
	sc.WaitHTTP(t, "http://"+adminAddr+"/readyz", 200, 30*time.Second)
	return &system{core: core, admin: admin, sidecar: "http://" + sidecarAddr}
}

// tenantConfig parses a tenant configuration; cookies are not Secure because the sidecar
// serves plain http on loopback.
func tenantConfig(t *testing.T, s string) contract.TenantConfig {
	t.Helper()
	var c contract.TenantConfig
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		t.Fatal(err)
	}
	no := false
	c.Session.CookieSecure = &no
	return c
}

// browser is one headless Chromium with a fresh profile.
type browser struct {
	t     *testing.T
	ctx   context.Context
	shots string
	n     int
}

// newBrowser starts Chromium with the flags the project uses and a fresh user-data-dir.
func newBrowser(t *testing.T, name string) *browser {
	t.Helper()
	ctx := chrome.Start(t)
	dir := filepath.Join(testenv.RepoRoot(), "test", "artifacts", "browser", name)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, ctx: ctx, shots: dir}
}

// step runs actions with a time limit; a failure ends the test with a screenshot of where
// the browser was.
func (b *browser) step(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
		html, _ := b.run(chromedp.OuterHTML(chromedp.CSS("html")))
		loc, _ := b.run(chromedp.Location())
		b.t.Fatalf("%s: %v\nat %s:\n%s", what, err, loc, html)
	}
}

func (b *browser) run(a chromedp.Action[string]) (string, error) {
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	return chromedp.Run(ctx, a)
}

// text returns the text of the element with id.
func (b *browser) text(id string) string {
	b.t.Helper()
	s, err := b.run(chromedp.Text(chromedp.ID(id)))
	if err != nil {
		b.t.Fatalf("text of #%s: %v", id, err)
	}
	return strings.TrimSpace(s)
}

// focused is the id of the element that has the keyboard focus.
func (b *browser) focused() string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	id, err := chromedp.Run(ctx, chromedp.Evaluate[string]("document.activeElement ? document.activeElement.id : ''"))
	if err != nil {
		b.t.Fatal(err)
	}
	return id
}

// location is the browser's URL.
func (b *browser) location() string {
	b.t.Helper()
	s, err := b.run(chromedp.Location())
	if err != nil {
		b.t.Fatal(err)
	}
	return s
}

// shot saves a full-page screenshot as a test artifact.
func (b *browser) shot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	b.n++
	path := filepath.Join(b.shots, fmt.Sprintf("%02d-%s.png", b.n, name))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// clearCookies forgets every session, as a new browser would.
func (b *browser) clearCookies() {
	b.t.Helper()
	if _, err := chromedp.Call(b.ctx, network.ClearBrowserCookies, cdp.Empty{}); err != nil {
		b.t.Fatal(err)
	}
}
