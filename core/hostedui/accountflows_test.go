package hostedui_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/twofold-dev/twofold/test/mailbox"
)

func TestAForgottenPasswordIsResetFromTheEmailedLink(t *testing.T) {
	box := mailbox.Start(t)
	h := newHarness(t, tenantConfig(t, `{"firstFactors":["emailpassword"],`+box.SMTPConfig()+`}`))
	h.putTenant("public", tenantConfig(t, `{"firstFactors":["emailpassword"],"websiteDomain":"`+h.ts.URL+`",`+box.SMTPConfig()+`}`))
	old := h.browser()
	old.signUp("ada@example.com", "correct horse 1", "/")

	b := h.browser()
	p := b.get("/auth/signin")
	mustContain(t, p.body, `id="forgot"`)
	b.get("/auth/reset-password")
	p = b.submit("/auth/ui/action/password/forgot", "email", "ada@example.com")
	mustContain(t, p.body, "Check your email", "If ada@example.com has an account, we sent it a link")
	link := box.Link(t)
	if !strings.HasPrefix(link, "/auth/reset-password?token=") {
		t.Fatalf("the email links to %s", link)
	}
	p = b.get(link)
	mustContain(t, p.body, "Choose a new password", `autocomplete="new-password"`)
	p = b.submit("/auth/ui/action/password/reset", "password", "short")
	if p.code != http.StatusUnprocessableEntity || !strings.Contains(p.body, `id="password-error"`) {
		t.Fatalf("a weak password answered %d:\n%s", p.code, p.body)
	}
	p = b.submit("/auth/ui/action/password/reset", "password", "a new horse 2")
	mustContain(t, p.body, "Your password was changed and every session was signed out.")
	wantRedirect(t, b.submit("/auth/ui/action/signin", "email", "ada@example.com", "password", "a new horse 2"), "/")

	b.get(link)
	p = b.submit("/auth/ui/action/password/reset", "password", "a third horse 3")
	if p.code != http.StatusGone || !strings.Contains(p.body, "This link has expired or was already used.") {
		t.Fatalf("a used link answered %d:\n%s", p.code, p.body)
	}
	if p := old.get("/auth/account"); p.code != http.StatusSeeOther || !strings.HasPrefix(p.location, "/auth/signin") {
		t.Fatalf("the session from before the reset still opens the account page: %d %s", p.code, p.location)
	}
}

func TestARequiredEmailVerificationIsDoneFromTheHostedPages(t *testing.T) {
	box := mailbox.Start(t)
	h := newHarness(t, tenantConfig(t, `{"firstFactors":["emailpassword"]}`))
	h.putTenant("public", tenantConfig(t, `{"firstFactors":["emailpassword"],"emailVerification":"REQUIRED","websiteDomain":"`+h.ts.URL+`",`+box.SMTPConfig()+`}`))
	b := h.browser()
	p := b.signUp("ada@example.com", "correct horse 1", "/inbox")
	mustContain(t, p.body, "Verify your email", "needs to know that <strong>ada@example.com</strong> is yours")
	p = b.submit("/auth/ui/action/email/send")
	mustContain(t, p.body, "We sent a link to ada@example.com.")
	link := box.Link(t)
	if !strings.HasPrefix(link, "/auth/verify-email?token=") {
		t.Fatalf("the email links to %s", link)
	}
	p = b.get(link)
	mustContain(t, p.body, `id="verify-form"`)
	p = b.submit("/auth/ui/action/email/verify")
	mustContain(t, p.body, "your email address is verified")
	wantRedirect(t, b.get("/auth/signin?redirectToPath=%2Finbox"), "/inbox")

	b.get(link)
	if p := b.submit("/auth/ui/action/email/verify"); p.code != http.StatusGone {
		t.Fatalf("a used link answered %d", p.code)
	}
}
