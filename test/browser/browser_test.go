package browser_test

import (
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/core/factors/totp"
	"github.com/twofold-dev/twofold/test/mailbox"
)

const password = "correct horse 1"

// totpCode is what an authenticator app shows for secret at t.
func totpCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.DefaultConfig().Code(strings.ReplaceAll(secret, " ", ""), at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wantApp checks that the browser reached the sample app as the user, with the factors.
func wantApp(t *testing.T, b *browser, tenantID string, factors ...string) string {
	t.Helper()
	b.step("reach the app", chromedp.WaitVisible(chromedp.ID("user-id")))
	if got := b.text("tenant-id"); got != tenantID {
		t.Fatalf("the app sees tenant %q, want %q", got, tenantID)
	}
	got := b.text("factors")
	for _, f := range factors {
		if !strings.Contains(got, f) {
			t.Fatalf("the app sees factors %q, want %v among them", got, factors)
		}
	}
	user := b.text("user-id")
	if user == "" {
		t.Fatal("the app sees no user id")
	}
	return user
}

// signIn signs in from the sign-in page the sidecar sends the browser to.
func signIn(b *browser, sys *system, path, email string) {
	b.step("open "+path, chromedp.Navigate(sys.sidecar+path), chromedp.WaitVisible(chromedp.ID("password-form")))
	b.step("sign in",
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("submit")))
}

var recoveryCodePattern = regexp.MustCompile(`[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4}`)

func TestTOTPSignUpSignInAndRecoveryInABrowser(t *testing.T) {
	// TOTP alone is required: a recovery code stands in for it, in the core's st-mfa.v and in
	// the sidecar's check alike.
	sys := start(t, "acme", tenantConfig(t, `{"firstFactors":["emailpassword"],"mfa":{"requirement":["totp"]},
		"totp":{"issuer":"Acme"},"branding":{"appName":"Acme Portal","primaryColor":"#0b7285"}}`))
	b := newBrowser(t, "totp")
	email := "ada@example.com"

	// Sign up: the sidecar sends the browser to the hosted sign-in page for its tenant.
	b.step("open the app", chromedp.Navigate(sys.sidecar+"/orders?page=2"), chromedp.WaitVisible(chromedp.ID("password-form")))
	loc, err := url.Parse(b.location())
	if err != nil {
		t.Fatal(err)
	}
	if loc.Path != "/auth/signin" || loc.Query().Get("tenantId") != "acme" || loc.Query().Get("redirectToPath") != "/orders?page=2" {
		t.Fatalf("the sidecar sent the browser to %s", loc)
	}
	b.shot("sign-in")
	b.step("go to sign-up", chromedp.Click(chromedp.ID("to-signup")), chromedp.WaitVisible(chromedp.CSS(`input[autocomplete="new-password"]`)))
	b.shot("sign-up")
	b.step("sign up",
		chromedp.SendKeys(chromedp.ID("email"), email),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("submit")),
		chromedp.WaitVisible(chromedp.ID("start-setup")))
	b.shot("mfa-setup-start")

	// TOTP setup: the secret is read from the page, as a person would type it in an app.
	b.step("start TOTP setup", chromedp.Click(chromedp.ID("start-setup")), chromedp.WaitVisible(chromedp.ID("totp-qr")))
	secret := b.text("totp-secret")
	if strings.Contains(b.location(), strings.ReplaceAll(secret, " ", "")) {
		t.Fatal("the TOTP secret is in the URL")
	}
	b.shot("totp-setup")
	b.step("verify the first code",
		chromedp.SendKeys(chromedp.ID("code"), totpCode(t, secret, time.Now())),
		chromedp.Click(chromedp.ID("submit")),
		chromedp.WaitVisible(chromedp.ID("recovery-codes")))
	codes := recoveryCodePattern.FindAllString(b.text("recovery-codes"), -1)
	if len(codes) != 10 {
		t.Fatalf("the page shows %d recovery codes, want 10", len(codes))
	}
	b.step("the copy button appears with JavaScript", chromedp.WaitVisible(chromedp.ID("copy")))
	b.shot("recovery-codes")
	b.step("continue", chromedp.Click(chromedp.ID("continue")))
	user := wantApp(t, b, "acme", "emailpassword", "totp")
	if !strings.HasSuffix(b.location(), "/orders?page=2") {
		t.Fatalf("after MFA the browser is at %s, want /orders?page=2", b.location())
	}
	b.shot("app")

	// Sign in again: the TOTP prompt, a wrong code, then the right one. The code of the next
	// time step is accepted (skew 1) and was not used yet.
	b.clearCookies()
	signIn(b, sys, "/reports", email)
	b.step("TOTP prompt", chromedp.WaitVisible(chromedp.ID("totp-form")), chromedp.WaitVisible(chromedp.ID("use-recovery")))
	b.shot("totp-prompt")
	// A wrong code is one no step within the skew gives.
	valid := map[string]bool{}
	for _, d := range []time.Duration{-time.Minute, -30 * time.Second, 0, 30 * time.Second, time.Minute} {
		valid[totpCode(t, secret, time.Now().Add(d))] = true
	}
	wrong := "000000"
	for i := 1; valid[wrong]; i++ {
		wrong = strconv.Itoa(100000 + i)
	}
	b.step("enter a wrong code",
		chromedp.SendKeys(chromedp.ID("code"), wrong),
		chromedp.Click(chromedp.ID("submit")),
		chromedp.WaitVisible(chromedp.ID("code-error")))
	if msg := b.text("code-error"); !strings.Contains(msg, "That code is not right.") {
		t.Fatalf("the error says %q", msg)
	}
	b.shot("totp-wrong-code")
	b.step("enter the right code",
		chromedp.SendKeys(chromedp.ID("code"), totpCode(t, secret, time.Now().Add(30*time.Second))),
		chromedp.Click(chromedp.ID("submit")))
	if again := wantApp(t, b, "acme", "totp"); again != user {
		t.Fatalf("signed in as %s, signed up as %s", again, user)
	}

	// The phone is lost: a recovery code gets the user in.
	b.clearCookies()
	signIn(b, sys, "/reports", email)
	b.step("open the recovery page", chromedp.WaitVisible(chromedp.ID("use-recovery")), chromedp.Click(chromedp.ID("use-recovery")),
		chromedp.WaitVisible(chromedp.ID("recovery-form")))
	b.shot("recovery-code")
	b.step("enter a recovery code",
		chromedp.SendKeys(chromedp.ID("code"), codes[0]),
		chromedp.Click(chromedp.ID("submit")))
	wantApp(t, b, "acme", "recovery-code")
	if !strings.HasSuffix(b.location(), "/reports") {
		t.Fatalf("after the recovery code the browser is at %s, want /reports", b.location())
	}

	// The account page, through the sidecar.
	b.step("open the account page", chromedp.Navigate(sys.sidecar+"/auth/account"), chromedp.WaitVisible(chromedp.ID("totp-devices")))
	if got := b.text("codes-left"); got != "9 of 10 codes left." {
		t.Fatalf("the account page says %q", got)
	}
	if got := b.text("account-email"); got != email {
		t.Fatalf("the account page shows %q", got)
	}
	b.shot("account")

	// On a phone-sized screen, keyboard only: the email field has the focus, Tab moves to the
	// password and Enter submits the form.
	b.clearCookies()
	b.step("open the sign-in page on a phone", chromedp.EmulateViewport(390, 844), chromedp.Navigate(sys.sidecar+"/auth/signin?tenantId=acme&redirectToPath=%2Fphone"),
		chromedp.WaitVisible(chromedp.ID("password-form")))
	b.shot("sign-in-phone")
	if id := b.focused(); id != "email" {
		t.Fatalf("the focus is on %q, want the email field", id)
	}
	b.step("type the email and Tab", chromedp.KeyEvent(email+"\t"))
	if id := b.focused(); id != "password" {
		t.Fatalf("after Tab the focus is on %q, want the password field", id)
	}
	b.step("type the password and Enter", chromedp.KeyEvent(password+"\r"), chromedp.WaitVisible(chromedp.ID("totp-form")))
	b.shot("totp-prompt-phone")
}

func TestAWrongPasswordIsShownInTheBrowser(t *testing.T) {
	sys := start(t, "public", tenantConfig(t, `{"firstFactors":["emailpassword"]}`))
	b := newBrowser(t, "errors")
	signIn(b, sys, "/", "nobody@example.com")
	b.step("wrong credentials", chromedp.WaitVisible(chromedp.ID("error")))
	if msg := b.text("error"); msg != "Incorrect email or password." {
		t.Fatalf("the error says %q", msg)
	}
	b.shot("wrong-password")
}

var sixDigits = regexp.MustCompile(`\b\d{6}\b`)

func TestEmailCodeAsSecondFactorInABrowser(t *testing.T) {
	box := mailbox.Start(t)
	sys := start(t, "mail", tenantConfig(t, `{"firstFactors":["emailpassword"],"mfa":{"requirement":["otp-email"]},
		"branding":{"appName":"Mail Co"},
		"email":{"smtp":{"host":"127.0.0.1","port":`+strconv.Itoa(box.Port)+`,"from":"Mail Co <no-reply@mail.test>","tls":"none"}}}`))
	b := newBrowser(t, "email-otp")
	b.step("open the app", chromedp.Navigate(sys.sidecar+"/inbox"), chromedp.WaitVisible(chromedp.ID("to-signup")))
	b.step("sign up",
		chromedp.Click(chromedp.ID("to-signup")),
		chromedp.WaitVisible(chromedp.CSS(`input[autocomplete="new-password"]`)),
		chromedp.SendKeys(chromedp.ID("email"), "grace@example.com"),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("submit")),
		chromedp.WaitVisible(chromedp.ID("send-code")))
	b.shot("otp-send")
	b.step("send the code", chromedp.Click(chromedp.ID("send-code")), chromedp.WaitVisible(chromedp.ID("code-form")))
	first := sixDigits.FindString(box.Next(t))
	b.step("ask for a new code", chromedp.Click(chromedp.ID("resend")), chromedp.WaitVisible(chromedp.ID("notice")))
	code := sixDigits.FindString(box.Next(t))
	if first == "" || code == "" {
		t.Fatal("the emails carry no six-digit code")
	}
	b.shot("otp-code")
	b.step("enter the code",
		chromedp.SendKeys(chromedp.ID("code"), code),
		chromedp.Click(chromedp.ID("submit")))
	wantApp(t, b, "mail", "otp-email")
	if !strings.HasSuffix(b.location(), "/inbox") {
		t.Fatalf("after the email code the browser is at %s, want /inbox", b.location())
	}
	b.shot("app")
}

var signInLink = regexp.MustCompile(`http://\S+/auth/verify\?\S+#\S+`)

func TestEmailCodeAndLinkSignInInABrowser(t *testing.T) {
	box := mailbox.Start(t)
	sys := startWith(t, "links", func(sidecar string) contract.TenantConfig {
		return tenantConfig(t, `{"firstFactors":["otp-email","link-email"],"websiteDomain":"`+sidecar+`",
			"email":{"smtp":{"host":"127.0.0.1","port":`+strconv.Itoa(box.Port)+`,"from":"Links <no-reply@links.test>","tls":"none"}}}`)
	})
	b := newBrowser(t, "passwordless")

	// A code typed in.
	b.step("open the app", chromedp.Navigate(sys.sidecar+"/projects"), chromedp.WaitVisible(chromedp.ID("email-code-form")))
	b.shot("sign-in")
	b.step("ask for a code",
		chromedp.SendKeys(chromedp.ID("code-email"), "lin@example.com"),
		chromedp.Click(chromedp.ID("send-email-code")),
		chromedp.WaitVisible(chromedp.ID("code-form")))
	code := sixDigits.FindString(box.Next(t))
	b.shot("code")
	b.step("enter the code", chromedp.SendKeys(chromedp.ID("code"), code), chromedp.Click(chromedp.ID("submit")))
	user := wantApp(t, b, "links", "otp-email")

	// A link opened from the email.
	b.clearCookies()
	b.step("open the app again", chromedp.Navigate(sys.sidecar+"/projects/7"), chromedp.WaitVisible(chromedp.ID("email-code-form")))
	b.step("ask for a link",
		chromedp.SendKeys(chromedp.ID("code-email"), "lin@example.com"),
		chromedp.Click(chromedp.ID("send-email-code")),
		chromedp.WaitVisible(chromedp.ID("code-form")))
	link := signInLink.FindString(box.Next(t))
	if !strings.HasPrefix(link, sys.sidecar+"/auth/verify?") {
		t.Fatalf("the email's link %q does not lead to the hosted page", link)
	}
	b.step("open the link", chromedp.Navigate(link), chromedp.WaitVisible(chromedp.ID("link-form")))
	if loc := b.location(); strings.Contains(loc, "#") {
		t.Fatalf("the link's code stays in the address bar: %s", loc)
	}
	b.shot("link")
	b.step("finish signing in", chromedp.Click(chromedp.ID("submit")))
	if again := wantApp(t, b, "links", "link-email"); again != user {
		t.Fatalf("the link signed in %s, the code %s", again, user)
	}
}

// A step-up route asks a signed-in user for one more factor: the sidecar sends the browser
// straight to that factor's page, and completing it there leads back to the route.
func TestStepUpToAnEmailCodeInABrowser(t *testing.T) {
	box := mailbox.Start(t)
	sys := start(t, "stepup", tenantConfig(t, `{"firstFactors":["emailpassword"],
		"mfa":{"routes":[{"pathPrefix":"/admin","requirement":["otp-email"]}]},
		"email":{"smtp":{"host":"127.0.0.1","port":`+strconv.Itoa(box.Port)+`,"from":"Step <no-reply@step.test>","tls":"none"}}}`))
	b := newBrowser(t, "step-up")
	b.step("open the app", chromedp.Navigate(sys.sidecar+"/"), chromedp.WaitVisible(chromedp.ID("to-signup")))
	b.step("sign up",
		chromedp.Click(chromedp.ID("to-signup")),
		chromedp.WaitVisible(chromedp.CSS(`input[autocomplete="new-password"]`)),
		chromedp.SendKeys(chromedp.ID("email"), "lin@example.com"),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("submit")))
	wantApp(t, b, "stepup", "emailpassword")

	b.step("open the admin area", chromedp.Navigate(sys.sidecar+"/admin"), chromedp.WaitVisible(chromedp.ID("send-code")))
	if loc := b.location(); !strings.Contains(loc, "/auth/mfa/otp-email") {
		t.Fatalf("the sidecar sent the browser to %s, want the email-code page", loc)
	}
	b.shot("step-up-send")
	b.step("send the code", chromedp.Click(chromedp.ID("send-code")), chromedp.WaitVisible(chromedp.ID("code-form")))
	code := sixDigits.FindString(box.Next(t))
	b.step("enter the code", chromedp.SendKeys(chromedp.ID("code"), code), chromedp.Click(chromedp.ID("submit")))
	wantApp(t, b, "stepup", "emailpassword", "otp-email")
	if !strings.HasSuffix(b.location(), "/admin") {
		t.Fatalf("after the step-up the browser is at %s, want /admin", b.location())
	}
	b.shot("step-up-admin")
}
