package accountapi_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/twofold-dev/twofold/core/coretest"
)

func TestResetLinksKeepTheSDKFormatAndHostedOnesKeepTheTokenOutOfTheQuery(t *testing.T) {
	h := coretest.New(t)
	mails, email := coretest.StartSMTP(t)
	tp := h.DeliveryTenant("acme", email)
	h.SignUpMFA(tp, "ada@example.com")
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
			coretest.MustStatus(t, h.Do("POST", "/auth/acme/user/password/reset/token", coretest.EmailForm("ada@example.com"), tt.headers...), http.StatusOK, "OK")
			link := mails.Wait(t, i+1).Link(t)
			if tt.sdk {
				coretest.TokenOf(t, link, "reset-password", "acme")
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
			coretest.MustStatus(t, h.Do("POST", "/auth/acme/user/password/reset", coretest.ResetBody(frag.Get("token"), "new horse 22")), http.StatusOK, "OK")
		})
	}
}
