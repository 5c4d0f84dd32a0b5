package compat_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
)

// attr reads an attribute of the element sel.
func (b *sdk) attr(sel, name string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(sel), name))
	if err != nil {
		b.t.Fatalf("attribute %s of %s: %v", name, sel, err)
	}
	return v.Value
}

// text reads the text of the element sel.
func (b *sdk) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(v)
}

// waitPath waits until the page's path contains part. A navigation ends a poll, so the
// poll starts again in the new page.
func (b *sdk) waitPath(part string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	var err error
	for ctx.Err() == nil {
		if _, err = chromedp.Run(ctx, chromedp.Poll[bool](fmt.Sprintf("location.pathname.includes(%q)", part))); err == nil {
			return
		}
	}
	loc, _ := chromedp.Run(b.ctx, chromedp.Location())
	b.t.Fatalf("waiting for a path with %q: %v (at %s)", part, err, loc)
}

// clearCookies forgets the session, as a new browser would.
func (b *sdk) clearCookies() {
	b.t.Helper()
	if _, err := chromedp.Call(b.ctx, network.ClearBrowserCookies, cdp.Empty{}); err != nil {
		b.t.Fatal(err)
	}
}

// signUpOnTheScreens signs up with email and password on auth-react's sign-up screen.
func (b *sdk) signUpOnTheScreens(origin, email string) {
	b.t.Helper()
	b.do("open the app", chromedp.Navigate(origin+"/sdk/react/"), chromedp.WaitVisible(chromedp.CSS(`input[name="email"]`)))
	b.do("go to sign-up", chromedp.Click(chromedp.CSS(`[data-supertokens~="link"]`)), chromedp.WaitVisible(chromedp.CSS(`input[name="password"]`)))
	b.do("sign up",
		chromedp.SendKeys(chromedp.CSS(`input[name="email"]`), email),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), password),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)))
}

func TestAuthReactSignsUpAndSetsUpTOTPThroughItsScreens(t *testing.T) {
	sys := start(t, func(origin string) contract.TenantConfig {
		return contract.TenantConfig{FirstFactors: []string{mfa.EmailPassword}, WebsiteDomain: origin,
			MFA: contract.MFA{Requirement: mfa.Requirement{{Factor: mfa.TOTP}}}}
	})
	b := sys.open(t)
	b.signUpOnTheScreens(sys.origin, "ada@example.com")
	b.do("the TOTP set-up screen", chromedp.WaitVisible(chromedp.CSS(`[data-supertokens~="showTOTPSecretBtn"]`)))
	b.do("show the secret", chromedp.Click(chromedp.CSS(`[data-supertokens~="showTOTPSecretBtn"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-supertokens~="totpSecret"]`)))
	secret := b.text(`[data-supertokens~="totpSecret"]`)
	code, err := totp.GenerateCode(secret, time.Now())
	if err != nil {
		t.Fatalf("the screen's secret %q: %v", secret, err)
	}
	b.do("enter the code",
		chromedp.SendKeys(chromedp.CSS(`input[name="totp"]`), code),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("home")))
	if got := b.attr("#home", "data-code"); got != "200" {
		t.Fatalf("the app after the TOTP set-up answered %s, want 200", got)
	}
	if factors := b.attr("#home", "data-factors"); !strings.Contains(factors, mfa.TOTP) {
		t.Fatalf("the app saw factors %q, want totp", factors)
	}
}

func TestAuthReactSetsUpAndUsesAPasskeyAsTheSecondFactorThroughItsScreens(t *testing.T) {
	sys := start(t, func(origin string) contract.TenantConfig {
		return contract.TenantConfig{FirstFactors: []string{mfa.EmailPassword}, WebsiteDomain: origin,
			MFA: contract.MFA{Requirement: mfa.Requirement{{Factor: mfa.WebAuthn}}}}
	})
	b := sys.open(t)
	b.signUpOnTheScreens(sys.origin, "grace@example.com")
	b.waitPath("/mfa/webauthn")
	b.do("register a passkey",
		chromedp.WaitVisible(chromedp.CSS(`input[name="email"]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name="email"]`), "grace@example.com"),
		chromedp.Click(chromedp.CSS(`button[data-supertokens~="button"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-supertokens~="passkeyConfirmationFooter"] button`)))
	b.do("confirm it", chromedp.Click(chromedp.CSS(`[data-supertokens~="passkeyConfirmationFooter"] button`)), chromedp.WaitVisible(chromedp.ID("home")))
	if got := b.attr("#home", "data-code"); got != "200" {
		t.Fatalf("the app after the passkey set-up answered %s, want 200", got)
	}

	// Signed out, the password alone leads to the passkey screen, and the passkey to the app.
	b.clearCookies()
	b.do("open the app", chromedp.Navigate(sys.origin+"/sdk/react/"), chromedp.WaitVisible(chromedp.CSS(`input[name="password"]`)))
	b.do("sign in",
		chromedp.SendKeys(chromedp.CSS(`input[name="email"]`), "grace@example.com"),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), password),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)))
	b.waitPath("/mfa/webauthn")
	b.do("use the passkey", chromedp.WaitVisible(chromedp.CSS(`button[data-supertokens~="buttonWithIcon"]`)),
		chromedp.Click(chromedp.CSS(`button[data-supertokens~="buttonWithIcon"]`)), chromedp.WaitVisible(chromedp.ID("home")))
	if got := b.attr("#home", "data-code"); got != "200" {
		t.Fatalf("the app after the passkey as the second factor answered %s, want 200", got)
	}
	if factors := b.attr("#home", "data-factors"); !strings.Contains(factors, mfa.WebAuthn) {
		t.Fatalf("the app saw factors %q, want webauthn", factors)
	}
}
