package hostedui_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/contract"
)

// tenantConfig parses a tenant configuration; cookies are not Secure because the test server
// is plain http.
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

const totpTenant = `{"firstFactors":["emailpassword"],"mfa":{"requirement":["totp"]},
	"branding":{"appName":"Acme Portal","primaryColor":"#0b7285"}}`

func mustContain(t *testing.T, body string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Fatalf("the page lacks %q:\n%s", w, body)
		}
	}
}

func wantRedirect(t *testing.T, p page, location string) {
	t.Helper()
	if p.code != http.StatusSeeOther || p.location != location {
		t.Fatalf("answer %d to %q, want 303 to %q; body:\n%s", p.code, p.location, location, p.body)
	}
}

// enrol signs a new user up and sets up TOTP; it returns the secret and the recovery codes.
func enrol(t *testing.T, b *browser, email string) (secret string, codes []string) {
	t.Helper()
	p := b.signUp(email, "correct horse 1", "/orders?page=2")
	mustContain(t, p.body, "Set up your authenticator app", `id="start-setup"`)
	p = b.follow(b.submit("/auth/ui/action/totp/setup"))
	secret = b.secret()
	mustContain(t, p.body, `src="/auth/ui/totp/qr.png"`)
	p = b.follow(b.submit("/auth/ui/action/totp/verify", "code", b.h.code(secret)))
	mustContain(t, p.body, "Save your recovery codes", `href="/orders?page=2"`)
	codes = b.codes()
	if len(codes) != 10 {
		t.Fatalf("the recovery-codes page shows %d codes, want 10", len(codes))
	}
	return secret, codes
}

func TestSignUpSetsUpTOTPShowsRecoveryCodesAndReturns(t *testing.T) {
	h := newHarness(t, tenantConfig(t, totpTenant))
	b := h.browser()
	p := b.get("/auth/signup?redirectToPath=%2Forders%3Fpage%3D2")
	mustContain(t, p.body, "Acme Portal", `autocomplete="email"`, `autocomplete="new-password"`, `name="csrf"`)
	p = b.follow(b.submit("/auth/ui/action/signup", "email", "ada@example.com", "password", "correct horse 1"))
	mustContain(t, p.body, "Set up your authenticator app")
	p = b.follow(b.submit("/auth/ui/action/totp/setup"))
	secret := b.secret()
	if strings.Contains(p.body, "otpauth://") {
		t.Fatal("the setup page shows the otpauth URI; only the QR image and the secret should be there")
	}
	qr := b.get("/auth/ui/totp/qr.png")
	if qr.code != http.StatusOK || qr.header.Get("Content-Type") != "image/png" || !strings.HasPrefix(qr.body, "\x89PNG") {
		t.Fatalf("QR code: %d %s", qr.code, qr.header.Get("Content-Type"))
	}
	if strings.Contains(qr.header.Get("Location")+p.body[strings.Index(p.body, "qr.png")-40:strings.Index(p.body, "qr.png")+10], secret) {
		t.Fatal("the QR code URL carries the secret")
	}
	p = b.submit("/auth/ui/action/totp/verify", "code", h.code(secret))
	mustContain(t, p.body, "Save your recovery codes", "will not be shown again")
	codes := b.codes()
	if len(codes) != 10 {
		t.Fatalf("%d codes", len(codes))
	}
	dl := b.submit("/auth/ui/action/recovery/download")
	if dl.header.Get("Content-Disposition") != `attachment; filename="recovery-codes.txt"` || !strings.Contains(dl.body, codes[0]) || !strings.Contains(dl.body, codes[9]) {
		t.Fatalf("download: %v\n%s", dl.header, dl.body)
	}
	if cont := b.follow(b.get("/auth/mfa?redirectToPath=%2Forders%3Fpage%3D2")); cont.location != "/orders?page=2" {
		t.Fatalf("a session that completed MFA is sent to %q, want /orders?page=2", cont.location)
	}
}

func TestSignInAgainAsksForTheTOTPCodeAndRefusesAWrongOne(t *testing.T) {
	h := newHarness(t, tenantConfig(t, totpTenant))
	secret, _ := enrol(t, h.browser(), "ada@example.com")
	h.clock.Advance(60e9)

	b := h.browser()
	p := b.signIn("ada@example.com", "correct horse 1", "/orders")
	mustContain(t, p.body, "Enter your code", `autocomplete="one-time-code"`, "Use a recovery code")
	// A wrong code is one no step within the skew gives.
	wrong := "000000"
	for i := 1; wrong == h.codeAt(secret, -30*time.Second) || wrong == h.code(secret) || wrong == h.codeAt(secret, 30*time.Second); i++ {
		wrong = strconv.Itoa(100000 + i)
	}
	p = b.submit("/auth/ui/action/totp/verify", "code", wrong)
	if p.code != http.StatusUnprocessableEntity {
		t.Fatalf("a wrong code answered %d", p.code)
	}
	mustContain(t, p.body, "That code is not right.", "Attempts left before a 15-minute lock: 4.", `aria-invalid="true"`)
	wantRedirect(t, b.submit("/auth/ui/action/totp/verify", "code", h.code(secret)), "/orders")
}

func TestARecoveryCodeGetsAUserWithoutTheirDeviceIn(t *testing.T) {
	h := newHarness(t, tenantConfig(t, totpTenant))
	_, codes := enrol(t, h.browser(), "ada@example.com")

	b := h.browser()
	b.signIn("ada@example.com", "correct horse 1", "/reports")
	p := b.get("/auth/mfa/recovery-code?redirectToPath=%2Freports")
	mustContain(t, p.body, "Use a recovery code")
	p = b.submit("/auth/ui/action/recovery/verify", "code", "zzzz-zzzz-zzzz")
	mustContain(t, p.body, "That recovery code is not right.")
	wantRedirect(t, b.submit("/auth/ui/action/recovery/verify", "code", strings.ToUpper(codes[3])), "/reports")

	again := h.browser()
	again.signIn("ada@example.com", "correct horse 1", "/reports")
	again.get("/auth/mfa/recovery-code")
	p = again.submit("/auth/ui/action/recovery/verify", "code", codes[3])
	mustContain(t, p.body, "That recovery code is not right.")
}

func TestSignInErrorsAreShownOnThePage(t *testing.T) {
	h := newHarness(t, tenantConfig(t, totpTenant))
	h.browser().signUp("ada@example.com", "correct horse 1", "/")
	for _, tc := range []struct {
		name, email, password string
		code                  int
		want                  []string
	}{
		{"a wrong password is wrong credentials", "ada@example.com", "wrong horse 1", http.StatusUnauthorized, []string{"Incorrect email or password."}},
		{"an unknown email is the same wrong credentials", "bob@example.com", "correct horse 1", http.StatusUnauthorized, []string{"Incorrect email or password."}},
		{"an invalid email is a field error next to the field", "not-an-email", "correct horse 1", http.StatusUnprocessableEntity,
			[]string{"Please correct the highlighted fields.", `id="email-error"`, `aria-invalid="true"`, `value="not-an-email"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := h.browser()
			b.get("/auth/signin")
			p := b.submit("/auth/ui/action/signin", "email", tc.email, "password", tc.password)
			if p.code != tc.code {
				t.Fatalf("answered %d, want %d", p.code, tc.code)
			}
			mustContain(t, p.body, tc.want...)
		})
	}
}

func TestAFormWithoutTheRightCSRFTokenIsRefused(t *testing.T) {
	h := newHarness(t, tenantConfig(t, totpTenant))
	h.browser().signUp("ada@example.com", "correct horse 1", "/")
	for _, tc := range []struct {
		name   string
		edit   func(v url.Values)
		header []string
	}{
		{"a form without a token", func(v url.Values) { v.Del("csrf") }, nil},
		{"a form with another token", func(v url.Values) { v.Set("csrf", strings.Repeat("A", 43)) }, nil},
		{"a form the browser says came from another site", func(url.Values) {}, []string{"Sec-Fetch-Site", "cross-site"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := h.browser()
			b.get("/auth/signin")
			v := b.form("/auth/ui/action/signin")
			v.Set("email", "ada@example.com")
			v.Set("password", "correct horse 1")
			tc.edit(v)
			p := b.post("/auth/ui/action/signin", v, tc.header...)
			if p.code != http.StatusForbidden || p.header.Get("Set-Cookie") != "" {
				t.Fatalf("answered %d with cookies %q, want 403 and no session", p.code, p.header.Values("Set-Cookie"))
			}
			mustContain(t, p.body, "This form has expired")
		})
	}
	t.Run("a form from another browser's page is refused", func(t *testing.T) {
		victim, attacker := h.browser(), h.browser()
		victim.get("/auth/signin")
		attacker.get("/auth/signin")
		v := attacker.form("/auth/ui/action/signin")
		v.Set("email", "ada@example.com")
		v.Set("password", "correct horse 1")
		if p := victim.post("/auth/ui/action/signin", v); p.code != http.StatusForbidden {
			t.Fatalf("answered %d, want 403", p.code)
		}
	})
	t.Run("the same form with the right token signs in", func(t *testing.T) {
		b := h.browser()
		b.get("/auth/signin")
		p := b.submit("/auth/ui/action/signin", "email", "ada@example.com", "password", "correct horse 1")
		wantRedirect(t, p, "/auth/mfa")
	})
}

func TestRedirectToPathNeverLeavesTheSite(t *testing.T) {
	h := newHarness(t, tenantConfig(t, `{"firstFactors":["emailpassword"]}`))
	h.browser().signUp("ada@example.com", "correct horse 1", "/")
	for _, target := range []string{"//evil.example/x", "/\\evil.example", "https://evil.example/", "/%2F%2Fevil.example", "javascript:alert(1)", "/\t/evil.example"} {
		t.Run("redirectToPath "+target+" is replaced by /", func(t *testing.T) {
			b := h.browser()
			b.get("/auth/signin?redirectToPath=" + url.QueryEscape(target))
			wantRedirect(t, b.submit("/auth/ui/action/signin", "email", "ada@example.com", "password", "correct horse 1"), "/")
			b2 := h.browser()
			b2.get("/auth/signin")
			wantRedirect(t, b2.submit("/auth/ui/action/signin", "email", "ada@example.com", "password", "correct horse 1", "redirectToPath", target), "/")
		})
	}
	t.Run("a same-origin path with a query is kept", func(t *testing.T) {
		b := h.browser()
		b.get("/auth/signin?redirectToPath=" + url.QueryEscape("/a/b?c=d&e=%2F"))
		wantRedirect(t, b.submit("/auth/ui/action/signin", "email", "ada@example.com", "password", "correct horse 1"), "/a/b?c=d&e=%2F")
	})
}

// inlineCode finds inline styles, inline scripts and event-handler attributes.
var inlineCode = regexp.MustCompile(`<style|\sstyle=|<script>|<script [^>]*>[^<]|\son[a-z]+=`)

func TestEveryHostedAnswerForbidsFramingAndInlineCode(t *testing.T) {
	h := newHarness(t, tenantConfig(t, totpTenant))
	b := h.browser()
	b.signUp("ada@example.com", "correct horse 1", "/")
	for _, path := range []string{"/auth/signin", "/auth/signup", "/auth/public/signin", "/auth/mfa/totp", "/auth/ui/static/style.css", "/auth/ui/theme.css"} {
		t.Run(path, func(t *testing.T) {
			p := b.get(path)
			csp := p.header.Get("Content-Security-Policy")
			for _, want := range []string{"default-src 'self'", "frame-ancestors 'none'"} {
				if !strings.Contains(csp, want) {
					t.Fatalf("CSP %q lacks %q", csp, want)
				}
			}
			if strings.Contains(csp, "unsafe-inline") {
				t.Fatalf("CSP %q allows inline code", csp)
			}
			if p.header.Get("X-Content-Type-Options") != "nosniff" || p.header.Get("Referrer-Policy") != "no-referrer" || p.header.Get("X-Frame-Options") != "DENY" {
				t.Fatalf("headers %v", p.header)
			}
			if inlineCode.MatchString(p.body) {
				t.Fatal("the page has inline style or script")
			}
		})
	}
}

func TestThePagesAreBrandedPerTenant(t *testing.T) {
	h := newHarness(t, tenantConfig(t, `{"firstFactors":["emailpassword"]}`))
	h.putTenant("acme", tenantConfig(t, `{"firstFactors":["emailpassword"],"branding":{"appName":"Acme","logoURL":"https://cdn.acme.example/logo.png","primaryColor":"#c92a2a"}}`))
	b := h.browser()
	for _, path := range []string{"/auth/acme/signin", "/auth/signin?tenantId=acme"} {
		p := b.get(path)
		mustContain(t, p.body, "<title>Sign in · Acme</title>", `src="https://cdn.acme.example/logo.png"`, `href="/auth/ui/theme.css?tenantId=acme"`, `name="tenantId" value="acme"`)
	}
	if css := b.get("/auth/ui/theme.css?tenantId=acme"); css.body != ":root{--primary:#c92a2a}\n" {
		t.Fatalf("theme %q", css.body)
	}
	if p := b.get("/auth/nope/signin"); p.code != http.StatusNotFound {
		t.Fatalf("an unknown tenant's page answered %d", p.code)
	}
	t.Run("a colour that is not a colour is not put in the stylesheet", func(t *testing.T) {
		h.putTenant("evil", tenantConfig(t, `{"branding":{"primaryColor":"red;}body{display:none"}}`))
		if css := b.get("/auth/ui/theme.css?tenantId=evil"); css.body != ":root{--primary:#3b5bdb}\n" {
			t.Fatalf("theme %q", css.body)
		}
	})
}

func TestTheAccountPageListsFactorsAndSessionsAndSignsOutOthers(t *testing.T) {
	h := newHarness(t, tenantConfig(t, totpTenant))
	first := h.browser()
	secret, _ := enrol(t, first, "ada@example.com")
	h.clock.Advance(60e9)
	second := h.browser()
	second.signIn("ada@example.com", "correct horse 1", "/")
	wantRedirect(t, second.submit("/auth/ui/action/totp/verify", "code", h.code(secret)), "/")

	p := second.get("/auth/account")
	mustContain(t, p.body, "Account security", "ada@example.com", "Authenticator app", "TOTP Device 1", "10 of 10 codes left", "(this browser)", `id="revoke-others"`)
	if n := strings.Count(p.body, "<li>Signed in "); n != 2 {
		t.Fatalf("the page lists %d sessions, want 2", n)
	}
	p = second.follow(second.submit("/auth/ui/action/sessions/revoke-others"))
	mustContain(t, p.body, "All other sessions were signed out.")
	if n := strings.Count(p.body, "<li>Signed in "); n != 1 {
		t.Fatalf("after signing out the others the page lists %d sessions, want 1", n)
	}
	if p := first.get("/auth/account"); p.code != http.StatusSeeOther || !strings.HasPrefix(p.location, "/auth/signin") {
		t.Fatalf("the signed-out browser's account page answered %d to %q", p.code, p.location)
	}

	second.get("/auth/account")
	p = second.follow(second.submit("/auth/ui/action/recovery/generate"))
	mustContain(t, p.body, "Save your recovery codes", `href="/auth/account"`)
}

func TestAnIncompleteSessionCannotOpenTheAccountPage(t *testing.T) {
	h := newHarness(t, tenantConfig(t, totpTenant))
	enrol(t, h.browser(), "ada@example.com")
	b := h.browser()
	b.signIn("ada@example.com", "correct horse 1", "/")
	wantRedirect(t, b.get("/auth/account"), "/auth/mfa?redirectToPath=%2Fauth%2Faccount")
}

func TestWithoutASessionTheMFAPageSendsToSignIn(t *testing.T) {
	h := newHarness(t, tenantConfig(t, totpTenant))
	wantRedirect(t, h.browser().get("/auth/mfa?redirectToPath=%2Fx"), "/auth/signin?redirectToPath=%2Fx")
}

func TestNoSecretReachesAURLOrTheLogs(t *testing.T) {
	h := newHarness(t, tenantConfig(t, totpTenant))
	b := h.browser()
	b.signUp("ada@example.com", "correct horse 1", "/")
	b.follow(b.submit("/auth/ui/action/totp/setup"))
	secret := b.secret()
	for _, src := range regexp.MustCompile(`(?:src|href|action)="([^"]*)"`).FindAllStringSubmatch(b.last, -1) {
		if strings.Contains(src[1], secret) {
			t.Fatalf("the URL %q carries the TOTP secret", src[1])
		}
	}
	b.submit("/auth/ui/action/totp/verify", "code", h.code(secret))
	codes := b.codes()
	b.submit("/auth/ui/action/recovery/download")
	b2 := h.browser()
	b2.signIn("ada@example.com", "correct horse 1", "/")
	b2.get("/auth/mfa/recovery-code")
	b2.submit("/auth/ui/action/recovery/verify", "code", codes[0])
	logs := h.logs.String()
	if !strings.Contains(logs, "Signed up") {
		t.Fatalf("the test did not capture the core's logs:\n%s", logs)
	}
	for _, s := range append([]string{secret, "correct horse 1"}, codes...) {
		if strings.Contains(logs, s) {
			t.Fatalf("the logs contain the secret %q:\n%s", s, logs)
		}
	}
}

func TestAnExpiredAccessTokenIsRefreshedAndTheBrowserReturns(t *testing.T) {
	h := newHarness(t, tenantConfig(t, `{"firstFactors":["emailpassword"]}`))
	b := h.browser()
	b.signUp("ada@example.com", "correct horse 1", "/")
	h.clock.Advance(2 * time.Hour)
	p := b.get("/auth/account")
	wantRedirect(t, p, "/auth/session/refresh/ui?redirectToPath=%2Fauth%2Faccount")
	p = b.get(p.location)
	wantRedirect(t, p, "/auth/account")
	if !strings.Contains(strings.Join(p.header.Values("Set-Cookie"), ";"), "sAccessToken=ey") {
		t.Fatalf("the refresh set no new access token: %v", p.header.Values("Set-Cookie"))
	}
	if p := b.get("/auth/account"); p.code != http.StatusOK {
		t.Fatalf("after the refresh the account page answered %d", p.code)
	}

	t.Run("without a refresh token the browser goes to sign in, once", func(t *testing.T) {
		stranger := h.browser()
		wantRedirect(t, stranger.get("/auth/session/refresh/ui?redirectToPath=%2Fx"), "/auth/signin?redirectToPath=%2Fx&refreshed=1")
		if p := stranger.get("/auth/signin?redirectToPath=%2Fx&refreshed=1"); p.code != http.StatusOK {
			t.Fatalf("the sign-in page answered %d", p.code)
		}
	})
}

func TestTheSignInLinkPageReadsTheCodeOnlyFromTheFragment(t *testing.T) {
	h := newHarness(t, tenantConfig(t, `{"firstFactors":["link-email"]}`))
	b := h.browser()
	p := b.get("/auth/verify?preAuthSessionId=abc&tenantId=public")
	mustContain(t, p.body, `name="preAuthSessionId" value="abc"`, `id="link-code" data-from-fragment`, "<noscript>")
	p = b.submit("/auth/ui/action/link/consume")
	if p.code != http.StatusGone {
		t.Fatalf("a link without its code answered %d", p.code)
	}
	mustContain(t, p.body, "This sign-in link is incomplete.")
	p = b.get("/auth/verify?preAuthSessionId=abc&tenantId=public")
	p = b.submit("/auth/ui/action/link/consume", "linkCode", "not-a-real-code")
	mustContain(t, p.body, "This sign-in link has expired or was already used.")
}

func TestTheMFAPageOffersAChoiceWhenSeveralFactorsWould(t *testing.T) {
	h := newHarness(t, tenantConfig(t, `{"firstFactors":["emailpassword"],"mfa":{"requirement":[{"oneOf":["totp","otp-email"]}]}}`))
	b := h.browser()
	p := b.signUp("ada@example.com", "correct horse 1", "/x")
	mustContain(t, p.body, "Confirm it&#39;s you", `href="/auth/mfa/totp?redirectToPath=%2fx"`, `href="/auth/mfa/otp-email?redirectToPath=%2fx"`, "Authenticator app", "Code by email")
	p = b.get("/auth/mfa/otp-email?redirectToPath=%2Fx")
	mustContain(t, p.body, "Get a code by email", "ada@example.com", `id="send-code"`)
}

func TestAnotherAuthenticatorIsAddedAndRemovedFromTheAccountPage(t *testing.T) {
	h := newHarness(t, tenantConfig(t, totpTenant))
	b := h.browser()
	enrol(t, b, "ada@example.com")
	h.clock.Advance(time.Minute)
	b.get("/auth/account")
	p := b.follow(b.submit("/auth/ui/action/totp/setup"))
	mustContain(t, p.body, "Set up your authenticator app", `name="redirectToPath" value="/auth/account"`)
	secret := b.secret()
	p = b.follow(b.submit("/auth/ui/action/totp/verify", "code", h.code(secret)))
	mustContain(t, p.body, "TOTP Device 1", "TOTP Device 2")
	if strings.Contains(p.body, "(not finished)") {
		t.Fatal("the new authenticator is listed as not finished")
	}
	p = b.follow(b.post("/auth/ui/action/totp/remove", url.Values{"csrf": {b.form("/auth/ui/action/totp/remove").Get("csrf")}, "deviceName": {"TOTP Device 1"}}))
	mustContain(t, p.body, "The authenticator app was removed.", "TOTP Device 2")
	if strings.Contains(p.body, "TOTP Device 1") {
		t.Fatal("the removed authenticator is still listed")
	}
}

func TestSigningOutEndsTheSession(t *testing.T) {
	h := newHarness(t, tenantConfig(t, `{"firstFactors":["emailpassword"]}`))
	for _, tc := range []struct {
		name   string
		before time.Duration
	}{
		{"a live session is revoked", 0},
		{"with an expired access token the browser still forgets the session", 2 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := h.browser()
			b.signUp("user"+strings.ReplaceAll(tc.name, " ", "")[:6]+"@example.com", "correct horse 1", "/")
			b.get("/auth/account")
			h.clock.Advance(tc.before)
			wantRedirect(t, b.submit("/auth/ui/action/signout"), "/auth/signin")
			wantRedirect(t, b.get("/auth/account"), "/auth/signin?redirectToPath=%2Fauth%2Faccount")
		})
	}
}

// A thief who signed in with the password alone while the user was scanning the QR code of her
// first authenticator used to be shown the same secret on the setup page, and so to hold her
// authenticator for good once she verified it. The hosted pages show a device's secret only in
// the session that created it.
func TestAPasswordThiefDoesNotSeeTheSecretOfTheAuthenticatorTheUserIsSettingUp(t *testing.T) {
	h := newHarness(t, tenantConfig(t, totpTenant))
	user := h.browser()
	user.signUp("ada@example.com", "correct horse 1", "/")
	user.follow(user.submit("/auth/ui/action/totp/setup"))
	secret := user.secret()

	thief := h.browser()
	thief.signIn("ada@example.com", "correct horse 1", "/")
	for _, path := range []string{"/auth/mfa/totp?setup=1", "/auth/mfa/totp"} {
		if p := thief.get(path); strings.Contains(strings.ReplaceAll(p.body, " ", ""), secret) {
			t.Fatalf("%s shows the thief the secret of the user's device", path)
		}
	}
	if qr := thief.get("/auth/ui/totp/qr.png"); qr.code == http.StatusOK && strings.HasPrefix(qr.body, "\x89PNG") {
		t.Fatal("the thief's session got the QR code of the user's device")
	}
	// The user still finishes her own setup.
	p := user.follow(user.submit("/auth/ui/action/totp/verify", "code", h.code(secret)))
	mustContain(t, p.body, "Save your recovery codes")
}
