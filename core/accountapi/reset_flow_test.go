package accountapi_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/core/coretest"
)

func TestPasswordReset(t *testing.T) {
	h := coretest.New(t)
	mails, email := coretest.StartSMTP(t)
	tp := h.DeliveryTenant("acme", email)
	ada := h.SignUpMFA(tp, "ada@example.com")
	other := ada.SignIn()
	askReset := func(t *testing.T, addr string) {
		t.Helper()
		coretest.MustStatus(t, h.Do("POST", "/auth/acme/user/password/reset/token", coretest.EmailForm(addr)), http.StatusOK, "OK")
	}

	// An unknown email is answered exactly like a known one and sends nothing: the email for
	// the known one, asked for afterwards, is the only one that arrives.
	askReset(t, "nobody@example.com")
	askReset(t, " Ada@Example.com")
	msg := mails.Wait(t, 1)
	if msg.To != "ada@example.com" || msg.Subject != "Reset your Twofold password" || !strings.Contains(msg.Text, "It expires in 1 hour") {
		t.Fatalf("email = %+v", msg)
	}
	token := coretest.TokenOf(t, msg.Link(t), "reset-password", "acme")
	if strings.Contains(h.Snapshot(), token) {
		t.Fatalf("the store keeps the reset token in clear")
	}

	t.Run("a password that breaks the policy is a field error and keeps the token", func(t *testing.T) {
		m := coretest.MustStatus(t, h.Do("POST", "/auth/acme/user/password/reset", coretest.ResetBody(token, "short")), http.StatusOK, "FIELD_ERROR")
		fe := m["formFields"].([]any)[0].(map[string]any)
		if fe["id"] != "password" || fe["error"] != "Password must contain at least 8 characters, including a number" {
			t.Fatalf("formFields = %v", m["formFields"])
		}
	})
	t.Run("a good password resets, verifies the email and revokes every session", func(t *testing.T) {
		m := coretest.MustStatus(t, h.Do("POST", "/auth/acme/user/password/reset", coretest.ResetBody(token, "new horse 22")), http.StatusOK, "OK")
		if lm := m["user"].(map[string]any)["loginMethods"].([]any)[0].(map[string]any); lm["verified"] != true || lm["email"] != "ada@example.com" {
			t.Fatalf("login method = %v", lm)
		}
		for _, u := range []*coretest.MFAUser{ada, other} {
			if r := u.Call("PUT", "/auth/mfa/info", nil); r.Status != http.StatusUnauthorized {
				t.Fatalf("a session from before the reset still works: %d %s", r.Status, r.Body)
			}
		}
		coretest.MustStatus(t, h.Do("POST", "/auth/acme/signin", coretest.Form("ada@example.com", coretest.MFAPassword)), http.StatusOK, "WRONG_CREDENTIALS_ERROR")
		coretest.MustStatus(t, h.Do("POST", "/auth/acme/signin", coretest.Form("ada@example.com", "new horse 22")), http.StatusOK, "OK")
	})
	t.Run("the token is single-use", func(t *testing.T) {
		coretest.MustStatus(t, h.Do("POST", "/auth/acme/user/password/reset", coretest.ResetBody(token, "third horse 3")), http.StatusOK, "RESET_PASSWORD_INVALID_TOKEN_ERROR")
	})
	t.Run("a token older than an hour is invalid", func(t *testing.T) {
		askReset(t, "ada@example.com")
		late := coretest.TokenOf(t, mails.Wait(t, 2).Link(t), "reset-password", "acme")
		h.Clock.Advance(time.Hour)
		coretest.MustStatus(t, h.Do("POST", "/auth/acme/user/password/reset", coretest.ResetBody(late, "third horse 3")), http.StatusOK, "RESET_PASSWORD_INVALID_TOKEN_ERROR")
	})
	t.Run("using one token ends the user's other reset tokens", func(t *testing.T) {
		askReset(t, "ada@example.com")
		first := coretest.TokenOf(t, mails.Wait(t, 3).Link(t), "reset-password", "acme")
		askReset(t, "ada@example.com")
		second := coretest.TokenOf(t, mails.Wait(t, 4).Link(t), "reset-password", "acme")
		coretest.MustStatus(t, h.Do("POST", "/auth/acme/user/password/reset", coretest.ResetBody(second, "fourth horse 4")), http.StatusOK, "OK")
		coretest.MustStatus(t, h.Do("POST", "/auth/acme/user/password/reset", coretest.ResetBody(first, "fifth horse 5")), http.StatusOK, "RESET_PASSWORD_INVALID_TOKEN_ERROR")
	})
}

func TestBadPasswordResetInputIsRefusedWithoutChangingTheStore(t *testing.T) {
	h := coretest.New(t)
	mails, email := coretest.StartSMTP(t)
	h.DeliveryTenant("acme", email)
	h.DeliveryTenant("nomail")
	h.SignUpMFA("/acme", "ada@example.com")
	tests := []struct {
		name, path string
		body       any
		wantStatus int
		want       string // the status field of a 200 answer, else the message
	}{
		{"an invalid email", "/auth/acme/user/password/reset/token", coretest.EmailForm("not-an-email"), 200, "FIELD_ERROR"},
		{"no formFields", "/auth/acme/user/password/reset/token", map[string]any{}, 400, "Missing input param: formFields"},
		{"formFields that are not a list", "/auth/acme/user/password/reset/token", map[string]any{"formFields": "x"}, 400, "formFields must be an array of {id, value} objects"},
		{"malformed JSON", "/auth/acme/user/password/reset/token", `{"formFields":[`, 400, "request body is not valid JSON: it ends too early"},
		{"a tenant that cannot send email", "/auth/nomail/user/password/reset/token", coretest.EmailForm("ada@example.com"), 200, "GENERAL_ERROR"},
		{"an unknown tenant", "/auth/nope/user/password/reset/token", coretest.EmailForm("ada@example.com"), 404, `unknown tenant "nope"`},
		{"an unknown token", "/auth/acme/user/password/reset", coretest.ResetBody("nope", "new horse 22"), 200, "RESET_PASSWORD_INVALID_TOKEN_ERROR"},
		{"a missing token", "/auth/acme/user/password/reset", coretest.ResetBody("", "new horse 22"), 400, "Please provide the password reset token"},
		{"another method", "/auth/acme/user/password/reset", map[string]any{"method": "otp", "token": "x", "formFields": []any{}}, 400, `Unsupported method for password reset: use "token"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.Snapshot()
			r := h.Do("POST", tt.path, tt.body)
			checkAnswer(t, r, tt.wantStatus, tt.want)
			if h.Snapshot() != before {
				t.Fatalf("the refused request changed the store")
			}
		})
	}
	if n := mails.Count(); n != 0 {
		t.Fatalf("refused requests sent %d emails", n)
	}
}

// checkAnswer checks a refused request's answer: its HTTP status and, for a 200, its status
// field, otherwise its message.
func checkAnswer(t *testing.T, r coretest.Response, wantStatus int, want string) {
	t.Helper()
	if r.Status != wantStatus {
		t.Fatalf("status = %d, want %d; body %s", r.Status, wantStatus, r.Body)
	}
	m := r.JSON(t)
	if got := m["status"]; r.Status == 200 && got != want {
		t.Fatalf("status field = %v, want %s", got, want)
	}
	if got := m["message"]; r.Status != 200 && got != want {
		t.Fatalf("message = %v, want %q", got, want)
	}
}
