package accountapi_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/core/coretest"
)

// evClaim returns the st-ev claim of an access token, nil when it has none.
func evClaim(t *testing.T, access string) map[string]any {
	t.Helper()
	c, _ := coretest.PayloadOf(t, access)["st-ev"].(map[string]any)
	return c
}

func TestEmailVerificationUnderREQUIRED(t *testing.T) {
	h := coretest.New(t)
	mails, email := coretest.StartSMTP(t)
	tp := h.DeliveryTenant("acme", email, `"emailVerification":"REQUIRED"`, `"firstFactors":["emailpassword","otp-email"]`)
	ada := h.SignUpMFA(tp, "ada@example.com")
	other := ada.SignIn()
	if c := evClaim(t, ada.Access); c["v"] != false || c["t"] != float64(h.Clock.Now().UnixMilli()) {
		t.Fatalf("st-ev of a new session = %v, want v false at the current time", c)
	}
	if feed := coretest.MustStatus(t, h.Do("GET", "/auth/acme/enforcement", nil), 200, ""); feed["emailVerificationRequired"] != true {
		t.Fatalf("the enforcement feed does not require email verification: %v", feed)
	}
	m := coretest.MustStatus(t, ada.Call("GET", "/auth/acme/user/email/verify", nil), http.StatusOK, "OK")
	if m["isVerified"] != false {
		t.Fatalf("isVerified = %v before verification", m["isVerified"])
	}

	coretest.MustStatus(t, ada.Call("POST", "/auth/acme/user/email/verify/token", nil), http.StatusOK, "OK")
	msg := mails.Last(t, "ada@example.com")
	if msg.Subject != "Verify your Twofold email address" {
		t.Fatalf("subject = %q", msg.Subject)
	}
	token := coretest.TokenOf(t, msg.Link(t), "verify-email", "acme")
	if strings.Contains(h.Snapshot(), token) {
		t.Fatalf("the store keeps the verification token in clear")
	}

	h.Clock.Advance(time.Minute)
	r := ada.Call("POST", "/auth/acme/user/email/verify", map[string]any{"method": "token", "token": token})
	m = coretest.MustStatus(t, r, http.StatusOK, "OK")
	if lm := m["user"].(map[string]any)["loginMethods"].([]any)[0].(map[string]any); lm["verified"] != true {
		t.Fatalf("login method after verification = %v", lm)
	}
	if c := evClaim(t, ada.Access); c["v"] != true || c["t"] != float64(h.Clock.Now().UnixMilli()) {
		t.Fatalf("st-ev after verification = %v, want v true now", c)
	}

	t.Run("the token is single-use", func(t *testing.T) {
		coretest.MustStatus(t, h.Do("POST", "/auth/acme/user/email/verify", map[string]any{"method": "token", "token": token}), http.StatusOK, "EMAIL_VERIFICATION_INVALID_TOKEN_ERROR")
	})
	t.Run("asking again says the email is verified already", func(t *testing.T) {
		sent := mails.Count()
		coretest.MustStatus(t, ada.Call("POST", "/auth/acme/user/email/verify/token", nil), http.StatusOK, "EMAIL_ALREADY_VERIFIED_ERROR")
		if mails.Count() != sent {
			t.Fatalf("an email was sent for a verified address")
		}
	})
	t.Run("another session learns it on its next check", func(t *testing.T) {
		if evClaim(t, other.Access)["v"] != false {
			t.Fatalf("the other session's claim changed by itself")
		}
		r := other.Call("GET", "/auth/acme/user/email/verify", nil)
		if coretest.MustStatus(t, r, http.StatusOK, "OK")["isVerified"] != true || evClaim(t, other.Access)["v"] != true {
			t.Fatalf("GET verify = %s, claim %v", r.Body, evClaim(t, other.Access))
		}
	})
	t.Run("a passwordless sign-in starts verified: the code proved the email", func(t *testing.T) {
		created := h.CreateCode(tp, map[string]any{"email": "bea@example.com"})
		r := h.Consume(tp, created, mails.Last(t, "bea@example.com").Code(t))
		coretest.MustStatus(t, r, http.StatusOK, "OK")
		bea := &coretest.MFAUser{Core: h, Tenant: tp, Access: r.Header.Get("st-access-token")}
		if c := evClaim(t, bea.Access); c["v"] != true {
			t.Fatalf("st-ev = %v", c)
		}
		coretest.MustStatus(t, bea.Call("POST", "/auth/acme/user/email/verify/token", nil), http.StatusOK, "EMAIL_ALREADY_VERIFIED_ERROR")
	})
	t.Run("a new session starts verified", func(t *testing.T) {
		if c := evClaim(t, ada.SignIn().Access); c["v"] != true {
			t.Fatalf("st-ev = %v", c)
		}
	})
}

func TestEmailVerificationTokensAndModes(t *testing.T) {
	h := coretest.New(t)
	mails, email := coretest.StartSMTP(t)
	h.DeliveryTenant("acme", email, `"emailVerification":"OPTIONAL"`)
	h.DeliveryTenant("off", email)
	h.DeliveryTenant("nomail", `"emailVerification":"OPTIONAL"`)
	ada := h.SignUpMFA("/acme", "ada@example.com")
	if c := evClaim(t, ada.Access); c != nil {
		t.Fatalf("OPTIONAL added st-ev to the session: %v", c)
	}
	send := func(t *testing.T) string {
		t.Helper()
		coretest.MustStatus(t, ada.Call("POST", "/auth/acme/user/email/verify/token", nil), http.StatusOK, "OK")
		return coretest.TokenOf(t, mails.Last(t, "ada@example.com").Link(t), "verify-email", "acme")
	}
	verify := func(body any) coretest.Response { return h.Do("POST", "/auth/acme/user/email/verify", body) }

	t.Run("a token older than 24 hours is invalid", func(t *testing.T) {
		token := send(t)
		h.Clock.Advance(24 * time.Hour)
		coretest.MustStatus(t, verify(map[string]any{"method": "token", "token": token}), http.StatusOK, "EMAIL_VERIFICATION_INVALID_TOKEN_ERROR")
	})
	t.Run("a token of another tenant is invalid here", func(t *testing.T) {
		bob := h.SignUpMFA("/acme", "bob@example.com")
		coretest.MustStatus(t, bob.Call("POST", "/auth/acme/user/email/verify/token", nil), http.StatusOK, "OK")
		h.DeliveryTenant("beta", email, `"emailVerification":"OPTIONAL"`)
		token := coretest.TokenOf(t, mails.Last(t, "bob@example.com").Link(t), "verify-email", "acme")
		r := h.Do("POST", "/auth/beta/user/email/verify", map[string]any{"method": "token", "token": token})
		coretest.MustStatus(t, r, http.StatusOK, "EMAIL_VERIFICATION_INVALID_TOKEN_ERROR")
	})
	t.Run("a call without a tenant segment uses the session's tenant", func(t *testing.T) {
		carol := h.SignUpMFA("/acme", "carol@example.com")
		coretest.MustStatus(t, carol.Call("POST", "/auth/user/email/verify/token", nil), http.StatusOK, "OK")
		token := coretest.TokenOf(t, mails.Last(t, "carol@example.com").Link(t), "verify-email", "acme")
		coretest.MustStatus(t, verify(map[string]any{"method": "token", "token": token}), http.StatusOK, "OK")
		if m := coretest.MustStatus(t, carol.Call("GET", "/auth/user/email/verify", nil), http.StatusOK, "OK"); m["isVerified"] != true {
			t.Fatalf("isVerified = %v", m["isVerified"])
		}
	})
	t.Run("a token works without a session", func(t *testing.T) {
		ada = ada.SignIn() // the access token expired with the clock's 24 hours
		r := verify(map[string]any{"method": "token", "token": send(t)})
		if coretest.MustStatus(t, r, http.StatusOK, "OK"); r.Header.Get("st-access-token") != "" {
			t.Fatalf("a verification without a session issued tokens")
		}
		if m := coretest.MustStatus(t, ada.Call("GET", "/auth/acme/user/email/verify", nil), http.StatusOK, "OK"); m["isVerified"] != true {
			t.Fatalf("isVerified = %v", m["isVerified"])
		}
	})
	offUser, nomailUser := h.SignUpMFA("/off", "ada@example.com"), h.SignUpMFA("/nomail", "ada@example.com")
	bad := []struct {
		name, method, path string
		body               any
		auth               *coretest.MFAUser
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
			before := h.Snapshot()
			var headers []string
			if tt.auth != nil {
				headers = []string{"Authorization", "Bearer " + tt.auth.Access}
			}
			r := h.Do(tt.method, tt.path, tt.body, headers...)
			checkAnswer(t, r, tt.wantStatus, tt.want)
			if h.Snapshot() != before {
				t.Fatalf("the refused request changed the store")
			}
		})
	}
}
