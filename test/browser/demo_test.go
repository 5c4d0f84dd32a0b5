package browser_test

import (
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/twofold-dev/twofold/test/proc"
	"github.com/twofold-dev/twofold/test/testenv"
)

// TestTheDemoLetsAPersonSignUpWithTOTPAndReachTheApp runs the demo as `make demo` does —
// control plane, manager, core, sample app behind the injected sidecar — and follows the
// instructions it prints: sign up, set up TOTP, reach the app.
func TestTheDemoLetsAPersonSignUpWithTOTPAndReachTheApp(t *testing.T) {
	assets, err := testenv.AssetsDir()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	for name, pkg := range map[string]string{"twofold-core": "./cmd/core", "twofold-sidecar": "./cmd/sidecar", "sampleapp": "./test/sampleapp", "demo": "./hack/demo"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(bin, name), pkg)
		cmd.Dir = testenv.RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building %s: %v\n%s", pkg, err, out)
		}
	}
	ports := freePorts(t, 4)
	demo := proc.Start(t, "demo", filepath.Join(bin, "demo"), nil,
		"-root", testenv.RepoRoot(), "-bin", bin, "-state", t.TempDir(), "-assets", assets,
		"-port", ports[0], "-core-port", ports[1], "-app-port", ports[2], "-proxy-admin-port", ports[3])
	demo.WaitHTTP(t, "http://127.0.0.1:"+ports[3]+"/readyz", 200, 90*time.Second)
	if !strings.Contains(demo.Output(), "Twofold is running") {
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(demo.Output(), "Twofold is running") && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
	}
	app := "http://localhost:" + ports[0]
	if !strings.Contains(demo.Output(), "Open "+app+"/") {
		t.Fatalf("the demo did not print where to go:\n%s", demo.Output())
	}

	b := newBrowser(t, "demo")
	b.step("open the app as the demo says", chromedp.Navigate(app+"/"), chromedp.WaitVisible(chromedp.ID("password-form")))
	b.shot("demo-sign-in")
	b.step("go to sign-up", chromedp.Click(chromedp.ID("to-signup")), chromedp.WaitVisible(chromedp.CSS(`input[autocomplete="new-password"]`)))
	b.step("sign up",
		chromedp.SendKeys(chromedp.ID("email"), "grace@example.com"),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("submit")),
		chromedp.WaitVisible(chromedp.ID("start-setup")))
	b.step("start TOTP setup", chromedp.Click(chromedp.ID("start-setup")), chromedp.WaitVisible(chromedp.ID("totp-qr")))
	b.shot("demo-totp-setup")
	secret := b.text("totp-secret")
	b.step("enter the code an authenticator app shows",
		chromedp.SendKeys(chromedp.ID("code"), totpCode(t, secret, time.Now())),
		chromedp.Click(chromedp.ID("submit")),
		chromedp.WaitVisible(chromedp.ID("recovery-codes")))
	b.step("continue to the app", chromedp.Click(chromedp.ID("continue")))
	wantApp(t, b, "demo", "emailpassword", "totp")
	b.shot("demo-app")
}

// freePorts returns n loopback ports that nothing listens on right now.
func freePorts(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	var held []net.Listener
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, l)
		out = append(out, strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
	}
	for _, l := range held {
		l.Close()
	}
	return out
}
