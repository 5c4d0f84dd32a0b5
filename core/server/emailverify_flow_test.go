package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// evClaim returns the st-ev claim of an access token, nil when it has none.
func evClaim(t *testing.T, access string) map[string]any {
	t.Helper()
	c, _ := payloadOf(t, access)["st-ev"].(map[string]any)
	return c
}

// tokenOf returns the token query parameter of a link, checking the link's page and tenant.
func tokenOf(t *testing.T, link, page, tenantID string) string {
	t.Helper()
	u, err := url.Parse(link)
	if err != nil || u.Scheme+"://"+u.Host+u.Path != "https://app.acme.test/auth/"+page || u.Query().Get("tenantId") != tenantID || u.Query().Get("token") == "" {
		t.Fatalf("link = %q, want https://app.acme.test/auth/%s?token=...&tenantId=%s", link, page, tenantID)
	}
	return u.Query().Get("token")
}

func TestEmailVerificationUnderREQUIRED(t *testing.T) {
	h := newHarness(t)
	mails, email := startSMTP(t)
	tp := h.deliveryTenant("acme", email, `"emailVerification":"REQUIRED"`, `"firstFactors":["emailpassword","otp-email"]`)
	ada := h.signUpMFA(tp, "ada@example.com")
	other := ada.signIn()
	if c := evClaim(t, ada.access); c["v"] != false || c["t"] != float64(h.clock.Now().UnixMilli()) {
		t.Fatalf("st-ev of a new session = %v, want v false at the current time", c)
	}
	if feed := mustStatus(t, h.do("GET", "/auth/acme/enforcement", nil), 200, ""); feed["emailVerificationRequired"] != true {
		t.Fatalf("the enforcement feed does not require email verification: %v", feed)
	}
	m := mustStatus(t, ada.call("GET", "/auth/acme/user/email/verify", nil), http.StatusOK, "OK")
	if m["isVerified"] != false {
		t.Fatalf("isVerified = %v before verification", m["isVerified"])
	}

	mustStatus(t, ada.call("POST", "/auth/acme/user/email/verify/token", nil), http.StatusOK, "OK")
	msg := mails.last(t, "ada@example.com")
	if msg.Subject != "Verify your Twofold email address" {
		t.Fatalf("subject = %q", msg.Subject)
	}
	token := tokenOf(t, msg.link(t), "verify-email", "acme")
	if strings.Contains(h.snapshot(), token) {
		t.Fatalf("the store keeps the verification token in clear")
	}

	h.clock.Advance(time.Minute)
	r := ada.call("POST", "/auth/acme/user/email/verify", map[string]any{"method": "token", "token": token})
	m = mustStatus(t, r, http.StatusOK, "OK")
	if lm := m["user"].(map[string]any)["loginMethods"].([]any)[0].(map[string]any); lm["verified"] != true {
		t.Fatalf("login method after verification = %v", lm)
	}
	if c := evClaim(t, ada.access); c["v"] != true || c["t"] != float64(h.clock.Now().UnixMilli()) {
		t.Fatalf("st-ev after verification = %v, want v true now", c)
	}

	t.Run("the token is single-use", func(t *testing.T) {
		mustStatus(t, h.do("POST", "/auth/acme/user/email/verify", map[string]any{"method": "token", "token": token}), http.StatusOK, "EMAIL_VERIFICATION_INVALID_TOKEN_ERROR")
	})
	t.Run("asking again says the email is verified already", func(t *testing.T) {
		sent := mails.count()
		mustStatus(t, ada.call("POST", "/auth/acme/user/email/verify/token", nil), http.StatusOK, "EMAIL_ALREADY_VERIFIED_ERROR")
		if mails.count() != sent {
			t.Fatalf("an email was sent for a verified address")
		}
	})
	t.Run("another session learns it on its next check", func(t *testing.T) {
		if evClaim(t, other.access)["v"] != false {
			t.Fatalf("the other session's claim changed by itself")
		}
		r := other.call("GET", "/auth/acme/user/email/verify", nil)
		if mustStatus(t, r, http.StatusOK, "OK")["isVerified"] != true || evClaim(t, other.access)["v"] != true {
			t.Fatalf("GET verify = %s, claim %v", r.Body, evClaim(t, other.access))
		}
	})
	t.Run("a passwordless sign-in starts verified: the code proved the email", func(t *testing.T) {
		created := h.createCode(tp, map[string]any{"email": "bea@example.com"})
		r := h.consume(tp, created, mails.last(t, "bea@example.com").code(t))
		mustStatus(t, r, http.StatusOK, "OK")
		bea := &mfaUser{h: h, tenant: tp, access: r.Header.Get("st-access-token")}
		if c := evClaim(t, bea.access); c["v"] != true {
			t.Fatalf("st-ev = %v", c)
		}
		mustStatus(t, bea.call("POST", "/auth/acme/user/email/verify/token", nil), http.StatusOK, "EMAIL_ALREADY_VERIFIED_ERROR")
	})
	t.Run("a new session starts verified", func(t *testing.T) {
		if c := evClaim(t, ada.signIn().access); c["v"] != true {
			t.Fatalf("st-ev = %v", c)
		}
	})
}

func TestEmailVerificationTokensAndModes(t *testing.T) {
	h := newHarness(t)
	mails, email := startSMTP(t)
	h.deliveryTenant("acme", email, `"emailVerification":"OPTIONAL"`)
	h.deliveryTenant("off", email)
	h.deliveryTenant("nomail", `"emailVerification":"OPTIONAL"`)
	ada := h.signUpMFA("/acme", "ada@example.com")
	if c := evClaim(t, ada.access); c != nil {
		t.Fatalf("OPTIONAL added st-ev to the session: %v", c)
	}
	send := func(t *testing.T) string {
		t.Helper()
		mustStatus(t, ada.call("POST", "/auth/acme/user/email/verify/token", nil), http.StatusOK, "OK")
		return tokenOf(t, mails.last(t, "ada@example.com").link(t), "verify-email", "acme")
	}
	verify := func(body any) response { return h.do("POST", "/auth/acme/user/email/verify", body) }

	t.Run("a token older than 24 hours is invalid", func(t *testing.T) {
		token := send(t)
		h.clock.Advance(24 * time.Hour)
		mustStatus(t, verify(map[string]any{"method": "token", "token": token}), http.StatusOK, "EMAIL_VERIFICATION_INVALID_TOKEN_ERROR")
	})
	t.Run("a token of another tenant is invalid here", func(t *testing.T) {
		bob := h.signUpMFA("/acme", "bob@example.com")
		mustStatus(t, bob.call("POST", "/auth/acme/user/email/verify/token", nil), http.StatusOK, "OK")
		h.deliveryTenant("beta", email, `"emailVerification":"OPTIONAL"`)
		token := tokenOf(t, mails.last(t, "bob@example.com").link(t), "verify-email", "acme")
		r := h.do("POST", "/auth/beta/user/email/verify", map[string]any{"method": "token", "token": token})
		mustStatus(t, r, http.StatusOK, "EMAIL_VERIFICATION_INVALID_TOKEN_ERROR")
	})
	t.Run("a call without a tenant segment uses the session's tenant", func(t *testing.T) {
		carol := h.signUpMFA("/acme", "carol@example.com")
		mustStatus(t, carol.call("POST", "/auth/user/email/verify/token", nil), http.StatusOK, "OK")
		token := tokenOf(t, mails.last(t, "carol@example.com").link(t), "verify-email", "acme")
		mustStatus(t, verify(map[string]any{"method": "token", "token": token}), http.StatusOK, "OK")
		if m := mustStatus(t, carol.call("GET", "/auth/user/email/verify", nil), http.StatusOK, "OK"); m["isVerified"] != true {
			t.Fatalf("isVerified = %v", m["isVerified"])
		}
	})
	t.Run("a token works without a session", func(t *testing.T) {
		ada = ada.signIn() // the access token expired with the clock's 24 hours
		r := verify(map[string]any{"method": "token", "token": send(t)})
		if mustStatus(t, r, http.StatusOK, "OK"); r.Header.Get("st-access-token") != "" {
			t.Fatalf("a verification without a session issued tokens")
		}
		if m := mustStatus(t, ada.call("GET", "/auth/acme/user/email/verify", nil), http.StatusOK, "OK"); m["isVerified"] != true {
			t.Fatalf("isVerified = %v", m["isVerified"])
		}
	})
	offUser, nomailUser := h.signUpMFA("/off", "ada@example.com"), h.signUpMFA("/nomail", "ada@example.com")
	bad := []struct {
		name, method, path string
		body               any
		auth               *mfaUser
		wantStatus         int
		want               string // the status field, or the message of a non-200 answer
	}{
		{"an unknown token", "POST", "/auth/acme/user/email/verify", map[string]any{"method": "token", "token": "nope"}, nil, 200, "EMAIL_VERIFICATION_INVALID_TOKEN_ERROR"},
		{"a missing token", "POST", "/auth/acme/user/email/verify", map[string]any{"method": "token"}, nil, 400, "Please provide the email verification token"},
		{"another method", "POST", "/auth/acme/user/email/verify", map[string]any{"method": "otp", "token": "x"}, nil, 400, `Unsupported method for email verification: use "token"`},
		{"malformed JSON", "POST", "/auth/acme/user/email/verify", `{"method":`, nil, 400, "request body is not valid JSON: it ends too early"},
		{"a token request without a session", "POST", "/auth/acme/user/email/verify/token", nil, nil, 401, "unauthorised"},
		{"a tenant with verification OFF", "GET", "/auth/off/user/email/verify", nil, offUser, 200, "GENERAL_ERROR"},
		{"a tenant that cannot send email", "POST", "/auth/nomail/user/email/verify/token", nil, nomailUser, 200, "GENERAL_ERROR"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			before := h.snapshot()
			var headers []string
			if tt.auth != nil {
				headers = []string{"Authorization", "Bearer " + tt.auth.access}
			}
			r := h.do(tt.method, tt.path, tt.body, headers...)
			if r.Status != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", r.Status, tt.wantStatus, r.Body)
			}
			m := r.json(t)
			if got := m["status"]; r.Status == 200 && got != tt.want {
				t.Fatalf("status field = %v, want %s", got, tt.want)
			}
			if got := m["message"]; r.Status != 200 && got != tt.want {
				t.Fatalf("message = %v, want %q", got, tt.want)
			}
			if h.snapshot() != before {
				t.Fatalf("the refused request changed the store")
			}
		})
	}
}
