package compat_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/delivery/webhook"
	"github.com/twofold-dev/twofold/test/mailbox"
	"github.com/twofold-dev/twofold/test/oidcprovider"
)

var sixDigits = regexp.MustCompile(`\b\d{6}\b`)

// smsGateway is the tenant's SMS webhook: it verifies each message and hands over its code.
func smsGateway(t *testing.T, secret string) (string, <-chan string) {
	t.Helper()
	codes := make(chan string, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := webhook.VerifyRequest(r, secret, time.Now(), webhook.DefaultTolerance)
		if err != nil {
			t.Errorf("the SMS webhook got a request that does not verify: %v", err)
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		codes <- p.Code
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, codes
}

func smtp(box *mailbox.Mailbox) *contract.Email {
	return &contract.Email{SMTP: &contract.SMTP{Host: "127.0.0.1", Port: box.Port, From: "Compat <no-reply@compat.test>", TLS: "none"}}
}

// loopback lets the core reach the in-process OIDC provider and SMS gateway.
const loopback = "TWOFOLD_OUTBOUND_ALLOW=127.0.0.1"

func TestTheSDKSignsInWithAMagicLinkAnEmailCodeAndAnOIDCProvider(t *testing.T) {
	box := mailbox.Start(t)
	idp := oidcprovider.New(t, time.Now)
	idp.Email = "sso@example.com"
	sys := start(t, func(origin string) contract.TenantConfig {
		return contract.TenantConfig{FirstFactors: []string{mfa.OTPEmail, mfa.LinkEmail, mfa.ThirdParty}, WebsiteDomain: origin, Email: smtp(box),
			ThirdPartyProviders: []contract.Provider{{ID: "idp", Name: "Corporate SSO", Type: contract.ProviderOIDC, Issuer: idp.URL(), ClientID: idp.ClientID, ClientSecret: idp.Secret}}}
	}, loopback)
	b := sys.open(t)

	// A magic link: the SDK reads the link code from the page the link opens.
	code := b.ok("createCode", b.call("Passwordless", "createCode", map[string]any{"email": "lin@example.com"}))
	if code["flowType"] != "USER_INPUT_CODE_AND_MAGIC_LINK" {
		t.Fatalf("createCode = %v, want both a code and a link", code)
	}
	mail := box.Next(t)
	link := regexp.MustCompile(`https?://\S+`).FindString(mail)
	u, err := url.Parse(link)
	if err != nil || u.Fragment == "" || u.Query().Get("preAuthSessionId") == "" {
		t.Fatalf("the email's link %q carries no link code", link)
	}
	b.do("open the magic link on the app", chromedp.Navigate(sys.origin+"/sdk/?"+u.RawQuery+"#"+u.Fragment), chromedp.WaitVisible(chromedp.ID("ready")))
	b.ok("consumeCode with the link", b.call("Passwordless", "consumeCode", nil))
	if c, _ := b.me(); c != 200 {
		t.Fatalf("the app after the magic link answered %d", c)
	}

	// The same email's code, typed in.
	b.call("Session", "signOut", map[string]any{})
	b.ok("createCode", b.call("Passwordless", "createCode", map[string]any{"email": "lin@example.com"}))
	typed := sixDigits.FindString(box.Next(t))
	if res := b.call("Passwordless", "consumeCode", map[string]any{"userInputCode": "000000"}); res["status"] != contract.StatusIncorrectUserInputCode {
		t.Fatalf("a wrong code = %v", res)
	}
	b.ok("consumeCode with the typed code", b.call("Passwordless", "consumeCode", map[string]any{"userInputCode": typed}))
	if c, _ := b.me(); c != 200 {
		t.Fatalf("the app after the email code answered %d", c)
	}

	// An OIDC provider: the browser goes there and comes back to the app with a code.
	b.call("Session", "signOut", map[string]any{})
	auth := b.eval(`compat.call("ThirdParty", "getAuthorisationURLWithQueryParamsAndSetState", {thirdPartyId: "idp", frontendRedirectURI: location.origin + "/sdk/callback"})`)
	authURL, _ := auth["value"].(string)
	if !strings.HasPrefix(authURL, idp.URL()+"/authorize?") {
		t.Fatalf("getAuthorisationURLWithQueryParamsAndSetState = %v, want the provider's authorization endpoint", auth)
	}
	b.do("sign in at the provider", chromedp.Navigate(authURL), chromedp.WaitVisible(chromedp.ID("ready")))
	in := b.ok("signInAndUp", b.call("ThirdParty", "signInAndUp", map[string]any{}))
	user, _ := in["user"].(map[string]any)
	if emails, _ := user["emails"].([]any); len(emails) != 1 || emails[0] != "sso@example.com" {
		t.Fatalf("signInAndUp = %v, want the provider's user", in)
	}
	if c, _ := b.me(); c != 200 {
		t.Fatalf("the app after the provider answered %d", c)
	}
}

func TestTheSDKCompletesEmailAndSMSCodesAsSecondFactors(t *testing.T) {
	box := mailbox.Start(t)
	gateway, texts := smsGateway(t, "gateway-secret")
	sys := start(t, func(origin string) contract.TenantConfig {
		return contract.TenantConfig{FirstFactors: []string{mfa.EmailPassword}, WebsiteDomain: origin, Email: smtp(box),
			SMS:      &contract.SMS{Provider: "webhook", Webhook: &contract.SMSWebhook{URL: gateway, Secret: "gateway-secret"}},
			OTPEmail: contract.OTPEmail{AllowNewAddresses: true},
			MFA:      contract.MFA{Requirement: mfa.Requirement{{Factor: mfa.OTPPhone}, {Factor: mfa.OTPEmail}}}}
	}, loopback)
	b := sys.open(t)
	b.ok("signUp", b.call("EmailPassword", "signUp", formFields("ada@example.com", password)))
	if c, _ := b.me(); c != 403 {
		t.Fatalf("the app with the password alone answered %d, want 403", c)
	}

	b.ok("createCode by SMS", b.call("Passwordless", "createCode", map[string]any{"phoneNumber": "+14155550100", "shouldTryLinkingWithSessionUser": true}))
	var text string
	select {
	case text = <-texts:
	case <-time.After(30 * time.Second):
		t.Fatal("no text message reached the SMS gateway")
	}
	b.ok("consumeCode from the text", b.call("Passwordless", "consumeCode", map[string]any{"userInputCode": text, "shouldTryLinkingWithSessionUser": true}))
	if c, _ := b.me(); c != 403 {
		t.Fatalf("the app after the SMS code alone answered %d, want 403: the email code is required too", c)
	}

	b.ok("createCode by email", b.call("Passwordless", "createCode", map[string]any{"email": "ada@example.com", "shouldTryLinkingWithSessionUser": true}))
	mailed := sixDigits.FindString(box.Next(t))
	b.ok("consumeCode from the email", b.call("Passwordless", "consumeCode", map[string]any{"userInputCode": mailed, "shouldTryLinkingWithSessionUser": true}))
	c, me := b.me()
	if c != 200 {
		t.Fatalf("the app after both codes answered %d", c)
	}
	factors, _ := me["factors"].(string)
	if !strings.Contains(factors, mfa.OTPPhone) || !strings.Contains(factors, mfa.OTPEmail) {
		t.Fatalf("the app saw factors %v, want otp-phone and otp-email", factors)
	}
}
