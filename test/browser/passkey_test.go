package browser_test

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/test/mailbox"
)

// addPasskeyAuthenticator plugs a virtual platform authenticator into the browser: it keeps
// discoverable credentials and verifies the user, as a laptop's fingerprint reader does.
func (b *browser) addPasskeyAuthenticator() webauthn.AuthenticatorID {
	b.t.Helper()
	if _, err := chromedp.Call(b.ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		b.t.Fatalf("enable the WebAuthn domain: %v", err)
	}
	res, err := chromedp.Call(b.ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{Options: &webauthn.VirtualAuthenticatorOptions{
		Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap21, Transport: webauthn.AuthenticatorTransportInternal,
		HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true,
		DefaultBackupEligibility: true, DefaultBackupState: true,
	}})
	if err != nil {
		b.t.Fatalf("add a virtual authenticator: %v", err)
	}
	return res.AuthenticatorID
}

// count is how many elements sel matches.
func (b *browser) count(sel string) int {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](fmt.Sprintf("document.querySelectorAll(%q).length", sel)))
	if err != nil {
		b.t.Fatal(err)
	}
	return n
}

// onLocalhost is the sidecar's URL with the host browsers accept as a passkey relying party:
// localhost, not an IP address.
func onLocalhost(sidecar string) string { return strings.Replace(sidecar, "127.0.0.1", "localhost", 1) }

func TestAPasskeyAsTheSecondFactorOnTheHostedPages(t *testing.T) {
	sys := startWith(t, "keys", func(sidecar string) contract.TenantConfig {
		c := tenantConfig(t, `{"firstFactors":["emailpassword"],"mfa":{"requirement":["webauthn"]}}`)
		c.WebsiteDomain = onLocalhost(sidecar)
		return c
	})
	sys.sidecar = onLocalhost(sys.sidecar)
	b := newBrowser(t, "passkey-second-factor")
	laptop := b.addPasskeyAuthenticator()
	b.step("open the app", chromedp.Navigate(sys.sidecar+"/orders"), chromedp.WaitVisible(chromedp.ID("to-signup")))
	b.step("sign up",
		chromedp.Click(chromedp.ID("to-signup")),
		chromedp.WaitVisible(chromedp.CSS(`input[autocomplete="new-password"]`)),
		chromedp.SendKeys(chromedp.ID("email"), "kim@example.com"),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("submit")),
		chromedp.WaitEnabled(chromedp.ID("passkey")))
	b.shot("passkey-setup")
	b.step("create a passkey", chromedp.Click(chromedp.ID("passkey")), chromedp.WaitVisible(chromedp.ID("recovery-codes")))
	b.step("continue", chromedp.Click(chromedp.ID("continue")))
	user := wantApp(t, b, "keys", mfa.EmailPassword, mfa.WebAuthn)
	if !strings.HasSuffix(b.location(), "/orders") {
		t.Fatalf("after the passkey set-up the browser is at %s, want /orders", b.location())
	}

	b.clearCookies()
	signIn(b, sys, "/reports", "kim@example.com")
	b.step("the passkey prompt", chromedp.WaitEnabled(chromedp.ID("passkey")))
	b.shot("passkey-prompt")
	b.step("use the passkey", chromedp.Click(chromedp.ID("passkey")))
	if again := wantApp(t, b, "keys", mfa.EmailPassword, mfa.WebAuthn); again != user {
		t.Fatalf("the passkey signed in %s, want %s", again, user)
	}
	if !strings.HasSuffix(b.location(), "/reports") {
		t.Fatalf("after the passkey the browser is at %s, want /reports", b.location())
	}

	// The account page lists the passkey; it is renamed, a second one is added from another
	// device, and the first removed.
	b.step("open the account page", chromedp.Navigate(sys.sidecar+"/auth/account"), chromedp.WaitVisible(chromedp.ID("passkeys")))
	if n := b.count("#passkeys > li"); n != 1 {
		t.Fatalf("the account page lists %d passkeys, want 1", n)
	}
	b.step("rename it",
		chromedp.SetValue(chromedp.CSS(`#passkeys input[name="name"]`), "Work laptop"),
		chromedp.Click(chromedp.CSS(`#passkeys button[aria-label^="Rename"]`)),
		chromedp.WaitVisible(chromedp.ID("notice")))
	if n := b.count(`#passkeys button[aria-label="Remove Work laptop"]`); n != 1 {
		t.Fatalf("after the rename %d passkeys are called Work laptop, want 1", n)
	}
	if _, err := chromedp.Call(b.ctx, webauthn.RemoveVirtualAuthenticator, webauthn.RemoveVirtualAuthenticatorParams{AuthenticatorID: laptop}); err != nil {
		t.Fatal(err)
	}
	b.addPasskeyAuthenticator()
	b.step("add a passkey", chromedp.Click(chromedp.ID("add-passkey")), chromedp.WaitEnabled(chromedp.ID("passkey")))
	b.step("create it on the new device", chromedp.Click(chromedp.ID("passkey")), chromedp.WaitVisible(chromedp.ID("passkeys")))
	if n := b.count("#passkeys > li"); n != 2 {
		t.Fatalf("the account page lists %d passkeys after adding one, want 2", n)
	}
	b.shot("account-passkeys")
	b.step("remove the first", chromedp.Click(chromedp.CSS(`#passkeys button[aria-label="Remove Work laptop"]`)), chromedp.WaitVisible(chromedp.ID("notice")))
	if n, left := b.count("#passkeys > li"), b.count(`#passkeys button[aria-label="Remove Work laptop"]`); n != 1 || left != 0 {
		t.Fatalf("after removing Work laptop the account page lists %d passkeys, %d of them Work laptop; want the other one", n, left)
	}
}

func TestSigningUpAndInWithOnlyAPasskeyOnTheHostedPages(t *testing.T) {
	sys := startWith(t, "keys", func(sidecar string) contract.TenantConfig {
		c := tenantConfig(t, `{"firstFactors":["webauthn","emailpassword"]}`)
		c.WebsiteDomain = onLocalhost(sidecar)
		return c
	})
	sys.sidecar = onLocalhost(sys.sidecar)
	b := newBrowser(t, "passkey-first-factor")
	b.addPasskeyAuthenticator()
	b.step("open the app", chromedp.Navigate(sys.sidecar+"/orders"), chromedp.WaitEnabled(chromedp.ID("passkey-first-button")))
	if got := b.attr("email", "autocomplete"); got != "username webauthn" {
		t.Fatalf("the sign-in page's email field has autocomplete %q, want passkeys offered in its autofill", got)
	}
	b.step("go to sign-up", chromedp.Click(chromedp.ID("to-signup")), chromedp.WaitEnabled(chromedp.ID("passkey-first-button")))
	b.step("create an account with a passkey",
		chromedp.SendKeys(chromedp.ID("email"), "noa@example.com"),
		chromedp.Click(chromedp.ID("passkey-first-button")))
	b.shot("signed-up")
	user := wantApp(t, b, "keys", mfa.WebAuthn)

	b.clearCookies()
	// The sign-in page offers the passkey in the email field's autofill; Chromium's virtual
	// authenticator answers such a conditional request at once.
	b.step("open the app again", chromedp.Navigate(sys.sidecar+"/reports"))
	if again := wantApp(t, b, "keys", mfa.WebAuthn); again != user {
		t.Fatalf("the passkey from the autofill signed in %s, want %s", again, user)
	}
	if !strings.HasSuffix(b.location(), "/reports") {
		t.Fatalf("after the passkey sign-in the browser is at %s, want /reports", b.location())
	}

	// A browser without autofill for passkeys uses the button.
	b.clearCookies()
	if _, err := chromedp.Call(b.ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
		Source: `PublicKeyCredential.isConditionalMediationAvailable = () => Promise.resolve(false)`}); err != nil {
		t.Fatal(err)
	}
	b.step("open the app once more", chromedp.Navigate(sys.sidecar+"/invoices"), chromedp.WaitEnabled(chromedp.ID("passkey-first-button")))
	b.shot("passkey-sign-in")
	b.step("sign in with the passkey button", chromedp.Click(chromedp.ID("passkey-first-button")))
	if again := wantApp(t, b, "keys", mfa.WebAuthn); again != user {
		t.Fatalf("the passkey button signed in %s, want %s", again, user)
	}
}

// attr is the value of an attribute of the element with id.
func (b *browser) attr(id, name string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.ID(id), name))
	if err != nil {
		b.t.Fatalf("attribute %s of #%s: %v", name, id, err)
	}
	return v.Value
}

func TestALostPasskeyIsReplacedFromTheHostedPages(t *testing.T) {
	box := mailbox.Start(t)
	sys := startWith(t, "keys", func(sidecar string) contract.TenantConfig {
		c := tenantConfig(t, `{"firstFactors":["webauthn"],"email":{"smtp":{"host":"127.0.0.1","port":`+strconv.Itoa(box.Port)+`,"from":"Keys <no-reply@keys.test>","tls":"none"}}}`)
		c.WebsiteDomain = onLocalhost(sidecar)
		return c
	})
	sys.sidecar = onLocalhost(sys.sidecar)
	b := newBrowser(t, "passkey-recovery")
	old := b.addPasskeyAuthenticator()
	b.step("open the sign-up page", chromedp.Navigate(sys.sidecar+"/auth/signup?tenantId=keys&redirectToPath=/orders"), chromedp.WaitEnabled(chromedp.ID("passkey-first-button")))
	b.step("sign up with a passkey", chromedp.SendKeys(chromedp.ID("email"), "rosa@example.com"), chromedp.Click(chromedp.ID("passkey-first-button")))
	user := wantApp(t, b, "keys", mfa.WebAuthn)

	// The device is lost: a new one, no session.
	b.clearCookies()
	if _, err := chromedp.Call(b.ctx, webauthn.RemoveVirtualAuthenticator, webauthn.RemoveVirtualAuthenticatorParams{AuthenticatorID: old}); err != nil {
		t.Fatal(err)
	}
	b.addPasskeyAuthenticator()
	b.step("open the app", chromedp.Navigate(sys.sidecar+"/orders"), chromedp.WaitVisible(chromedp.ID("lost-passkey")))
	b.step("ask for a recovery link",
		chromedp.Click(chromedp.ID("lost-passkey")),
		chromedp.WaitVisible(chromedp.ID("recover-form")),
		chromedp.SendKeys(chromedp.ID("email"), "rosa@example.com"),
		chromedp.Click(chromedp.ID("submit")),
		chromedp.WaitVisible(chromedp.ID("notice")))
	link := regexp.MustCompile(`http://\S+/auth/webauthn/recover\?\S+#token=\S+`).FindString(box.Next(t))
	if link == "" {
		t.Fatal("the recovery email has no link to the hosted recovery page with its token in the fragment")
	}
	b.step("open the link", chromedp.Navigate(link), chromedp.WaitEnabled(chromedp.ID("passkey-first-button")))
	b.shot("recover")
	b.step("create the new passkey", chromedp.Click(chromedp.ID("passkey-first-button")))
	// Back on the sign-in page, the new passkey is offered in the autofill and signs in.
	if again := wantApp(t, b, "keys", mfa.WebAuthn); again != user {
		t.Fatalf("the new passkey signed in %s, want %s", again, user)
	}
}
