package hostedui_test

import (
	"net/http"
	"net/url"
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
	link, token := linkToken(t, box.Link(t), "/auth/reset-password")
	p = b.get(link)
	mustContain(t, p.body, "Choose a new password", `autocomplete="new-password"`, `data-from-fragment="token"`)
	// What the page's script does: the token goes from the fragment into the form.
	p = b.submit("/auth/ui/action/password/reset", "password", "short", "token", token)
	if p.code != http.StatusUnprocessableEntity || !strings.Contains(p.body, `id="password-error"`) {
		t.Fatalf("a weak password answered %d:\n%s", p.code, p.body)
	}
	p = b.submit("/auth/ui/action/password/reset", "password", "a new horse 2", "token", token)
	mustContain(t, p.body, "Your password was changed and every session was signed out.")
	wantRedirect(t, b.submit("/auth/ui/action/signin", "email", "ada@example.com", "password", "a new horse 2"), "/")

	b.get(link)
	p = b.submit("/auth/ui/action/password/reset", "password", "a third horse 3", "token", token)
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
	link, token := linkToken(t, box.Link(t), "/auth/verify-email")
	p = b.get(link)
	mustContain(t, p.body, `id="verify-form"`, `data-from-fragment="token"`)
	p = b.submit("/auth/ui/action/email/verify", "token", token)
	mustContain(t, p.body, "your email address is verified")
	wantRedirect(t, b.get("/auth/signin?redirectToPath=%2Finbox"), "/inbox")

	b.get(link)
	if p := b.submit("/auth/ui/action/email/verify", "token", token); p.code != http.StatusGone {
		t.Fatalf("a used link answered %d", p.code)
	}
}

// linkToken checks that an emailed link points at page with its token in the fragment only,
// where ingress and proxy logs never see it, and returns the link without the fragment (what
// the browser requests) and the token.
func linkToken(t *testing.T, link, page string) (string, string) {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	frag, err := url.ParseQuery(u.Fragment)
	if err != nil || u.Path != page || u.Query().Has("token") || frag.Get("token") == "" {
		t.Fatalf("the email links to %s, want %s with the token in the fragment and not in the query", link, page)
	}
	return u.RequestURI(), frag.Get("token")
}
