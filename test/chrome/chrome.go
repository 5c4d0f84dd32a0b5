// Package chrome starts the headless Chromium the browser tests drive (test/browser,
// test/compat): Debian's package, installed by hack/chromium.sh when it is missing. A test
// that cannot get it fails, naming the package; it never skips.
package chrome

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/twofold-dev/twofold/test/testenv"
)

// Bin is where Debian's chromium package puts the browser.
const Bin = "/usr/bin/chromium"

var (
	once sync.Once
	err  error
)

// Path returns the browser's path, installing it with hack/chromium.sh when missing.
func Path(t testing.TB) string {
	t.Helper()
	once.Do(func() {
		if _, statErr := os.Stat(Bin); statErr == nil {
			return
		}
		cmd := exec.Command("bash", filepath.Join(testenv.RepoRoot(), "hack", "chromium.sh"))
		out, runErr := cmd.CombinedOutput()
		if runErr != nil {
			err = fmt.Errorf("hack/chromium.sh could not install Chromium: %w\n%s", runErr, out)
			return
		}
		if _, statErr := os.Stat(Bin); statErr != nil {
			err = fmt.Errorf("hack/chromium.sh ran but %s is missing: %w\n%s", Bin, statErr, out)
		}
	})
	if err != nil {
		t.Fatalf("the browser tests need Debian's chromium package (%s): %v", Bin, err)
	}
	return Bin
}

// Start starts Chromium headless with a fresh profile and returns its context; the browser
// stops when the test ends.
func Start(t testing.TB) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(Path(t)),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1024, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first Run starts the browser; it must not carry a timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	return ctx
}
