package server_test

import (
	"net/http"
	"net/url"
	"testing"
)

func TestResetLinksKeepTheSDKFormatAndHostedOnesKeepTheTokenOutOfTheQuery(t *testing.T) {
	h := newHarness(t)
	mails, email := startSMTP(t)
	tp := h.deliveryTenant("acme", email)
	h.signUpMFA(tp, "ada@example.com")
	tests := []struct {
		name    string
		headers []string
		sdk     bool
	}{
		{"a SuperTokens SDK's request gets the ?token= link its reset page reads", []string{"rid", "emailpassword"}, true},
		{"the hosted pages' request gets the token in the fragment only", []string{"rid", "hostedui"}, false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mustStatus(t, h.do("POST", "/auth/acme/user/password/reset/token", emailForm("ada@example.com"), tt.headers...), http.StatusOK, "OK")
			link := mails.wait(t, i+1).link(t)
			if tt.sdk {
				tokenOf(t, link, "reset-password", "acme")
				return
			}
			u, err := url.Parse(link)
			if err != nil {
				t.Fatal(err)
			}
			frag, _ := url.ParseQuery(u.Fragment)
			if u.Scheme+"://"+u.Host+u.Path != "https://app.acme.test/auth/reset-password" || u.Query().Has("token") ||
				u.Query().Get("tenantId") != "acme" || frag.Get("token") == "" {
				t.Fatalf("link = %q, want https://app.acme.test/auth/reset-password?tenantId=acme&link=1#token=...", link)
			}
			// The token from the fragment is a working reset token.
			mustStatus(t, h.do("POST", "/auth/acme/user/password/reset", resetBody(frag.Get("token"), "new horse 22")), http.StatusOK, "OK")
		})
	}
}
