package accountapi_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/core/attempts"
	"github.com/twofold-dev/twofold/core/coretest"
	"github.com/twofold-dev/twofold/core/server"
)

// One contact receives a bounded number of codes: asking for thirty sent five, and the rest
// were refused in the FDI's GENERAL_ERROR shape with retryAfterMs, so nobody can flood a
// mailbox or a phone (toll fraud) through the core.
func TestCodesToOneContactStopAtItsSendLimit(t *testing.T) {
	h := coretest.New(t)
	mails, email := coretest.StartSMTP(t)
	tp := h.DeliveryTenant("acme", email, `"firstFactors":["otp-email"]`)
	ask := func(to string) coretest.Response {
		return h.Do("POST", "/auth"+tp+"/signinup/code", map[string]any{"email": to})
	}
	var created map[string]any
	sent, refused := 0, 0
	for i := range 30 {
		h.Clock.Advance(time.Second)
		r := ask("victim@example.com")
		switch m := r.JSON(t); m["status"] {
		case "OK":
			sent++
			created = m
		case "GENERAL_ERROR":
			refused++
			if ms, _ := m["retryAfterMs"].(float64); ms <= 0 || ms > float64(15*time.Minute/time.Millisecond) {
				t.Fatalf("request %d: retryAfterMs = %v, want the time until the oldest send leaves the 15-minute window", i+1, m["retryAfterMs"])
			}
			if !strings.Contains(m["message"].(string), "Too many codes were sent to this email address") {
				t.Fatalf("request %d: message = %q", i+1, m["message"])
			}
		default:
			t.Fatalf("request %d = %d %s", i+1, r.Status, r.Body)
		}
	}
	if sent != 5 || refused != 25 || mails.Count() != 5 {
		t.Fatalf("%d sent, %d refused, %d emails delivered; want 5, 25, 5", sent, refused, mails.Count())
	}
	t.Run("a resend counts against the same contact", func(t *testing.T) {
		r := h.Do("POST", "/auth"+tp+"/signinup/code/resend", map[string]any{"deviceId": created["deviceId"], "preAuthSessionId": created["preAuthSessionId"]})
		coretest.MustStatus(t, r, http.StatusOK, "GENERAL_ERROR")
		if mails.Count() != 5 {
			t.Fatalf("the resend delivered an email")
		}
	})
	t.Run("another contact is not refused", func(t *testing.T) {
		coretest.MustStatus(t, ask("someone@example.com"), http.StatusOK, "OK")
	})
	t.Run("the contact receives codes again once its first sends leave the window", func(t *testing.T) {
		h.Clock.Advance(15 * time.Minute)
		coretest.MustStatus(t, ask("victim@example.com"), http.StatusOK, "OK")
	})
	t.Run("the refusals are counted in the metrics", func(t *testing.T) {
		metrics := string(h.Do("GET", "/metrics", nil).Body)
		for _, want := range []string{
			`twofold_core_codes_sent_total{channel="email",outcome="limited"} 26`,
			`twofold_core_codes_sent_total{channel="email",outcome="sent"} 7`,
		} {
			if !strings.Contains(metrics, want) {
				t.Fatalf("metrics lack %s", want)
			}
		}
	})
}

func TestATenantSetsItsOwnSendLimit(t *testing.T) {
	h := coretest.New(t)
	_, email := coretest.StartSMTP(t)
	tp := h.DeliveryTenant("acme", email, `"firstFactors":["otp-email"]`, `"codeSending":{"maxPerContact":2,"windowSeconds":60}`)
	for i, want := range []string{"OK", "OK", "GENERAL_ERROR"} {
		if got := h.Do("POST", "/auth"+tp+"/signinup/code", map[string]any{"email": "a@example.com"}).JSON(t)["status"]; got != want {
			t.Fatalf("code %d = %v, want %s", i+1, got, want)
		}
	}
	h.Clock.Advance(time.Minute)
	coretest.MustStatus(t, h.Do("POST", "/auth"+tp+"/signinup/code", map[string]any{"email": "a@example.com"}), http.StatusOK, "OK")

	for _, tt := range []struct{ name, block, field string }{
		{"a negative limit is refused", `"codeSending":{"maxPerContact":-1}`, "codeSending.maxPerContact"},
		{"a window longer than a day is refused", `"codeSending":{"windowSeconds":90000}`, "codeSending.windowSeconds"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := h.AdminDo("PUT", "/admin/v1/tenants/acme", `{"firstFactors":["otp-email"],`+tt.block+`}`)
			if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), tt.field) {
				t.Fatalf("PUT = %d %s, want 400 naming %s", r.Status, r.Body, tt.field)
			}
		})
	}
}

// Someone who knows a user's password used to get five more guesses at the otp-email second
// factor with every device (every code sent). Wrong codes now count in the user's lockout that
// TOTP and recovery codes share: five wrong codes lock the user, whatever the device.
func TestAPersonWhoKnowsThePasswordCannotGrindTheEmailCodeByOpeningDevices(t *testing.T) {
	h := coretest.New(t)
	mails, email := coretest.StartSMTP(t)
	tp := h.DeliveryTenant("acme", email, `"mfa":{"requirement":["otp-email"]}`, `"codeSending":{"maxPerContact":20,"maxPerUser":20}`)
	ada := h.SignUpMFA(tp, "ada@example.com")
	created := coretest.MustStatus(t, ada.SecondaryCode(map[string]any{"email": "ada@example.com"}), http.StatusOK, "OK")
	coretest.MustStatus(t, ada.ConsumeSecondary(created, mails.Last(t, "ada@example.com").Code(t)), http.StatusOK, "OK")
	userID := coretest.PayloadOf(t, ada.Access)["sub"].(string)

	attacker := ada.SignIn()
	wrong, locked := 0, false
	var last map[string]any
	for device := 0; device < 4 && !locked; device++ {
		last = coretest.MustStatus(t, attacker.SecondaryCode(map[string]any{"email": "ada@example.com"}), http.StatusOK, "OK")
		for guess := 0; guess < 3 && !locked; guess++ {
			m := attacker.ConsumeSecondary(last, fmt.Sprintf("%06d", 100000+device*10+guess)).JSON(t)
			switch m["status"] {
			case "INCORRECT_USER_INPUT_CODE_ERROR":
				wrong++
			case "GENERAL_ERROR":
				if m["retryAfterMs"] == nil {
					t.Fatalf("the lockout does not say when to retry: %v", m)
				}
				locked = true
			default:
				t.Fatalf("guess = %v", m)
			}
		}
	}
	if !locked || wrong != attempts.MaxFailures {
		t.Fatalf("%d wrong codes were evaluated before the lockout (locked: %v), want %d", wrong, locked, attempts.MaxFailures)
	}
	if l, err := h.Srv.Store.GetAttemptLimit(context.Background(), userID); err != nil || l.LockedUntil.IsZero() {
		t.Fatalf("the user's shared MFA lockout = %+v, %v; want locked, so TOTP and recovery codes are refused too", l, err)
	}
	t.Run("even the right code is refused while the user is locked", func(t *testing.T) {
		r := attacker.ConsumeSecondary(last, mails.Last(t, "ada@example.com").Code(t))
		coretest.MustStatus(t, r, http.StatusOK, "GENERAL_ERROR")
		attacker.WantV(false)
	})
	t.Run("after the lockout the right code is accepted and the count starts again", func(t *testing.T) {
		h.Clock.Advance(attempts.LockDuration)
		again := ada.SignIn()
		created := coretest.MustStatus(t, again.SecondaryCode(map[string]any{"email": "ada@example.com"}), http.StatusOK, "OK")
		coretest.MustStatus(t, again.ConsumeSecondary(created, mails.Last(t, "ada@example.com").Code(t)), http.StatusOK, "OK")
		again.WantV(true)
		if l, _ := h.Srv.Store.GetAttemptLimit(context.Background(), userID); l.Failures != 0 {
			t.Fatalf("failures after a right code = %d, want 0", l.Failures)
		}
	})
}

func TestOneUsersSecondFactorCodesAreLimitedOverAllTheirContacts(t *testing.T) {
	h := coretest.New(t)
	_, email := coretest.StartSMTP(t)
	tp := h.DeliveryTenant("acme", email, `"mfa":{"requirement":[{"oneOf":["otp-email","totp"]}]}`, `"codeSending":{"maxPerContact":10,"maxPerUser":3}`)
	ada := h.SignUpMFA(tp, "ada@example.com")
	for i, want := range []string{"OK", "OK", "OK", "GENERAL_ERROR"} {
		r := ada.SecondaryCode(map[string]any{"email": "ada@example.com"})
		if got := r.JSON(t)["status"]; got != want {
			t.Fatalf("second-factor code %d = %v, want %s: %s", i+1, got, want, r.Body)
		}
	}
}

// A mail server that accepts connections and never answers used to let every password reset
// request leave a goroutine and a connection waiting for it. The sends in flight are capped;
// past the cap a request is refused at once, and the slots come back as sends end.
func TestPasswordResetEmailsInFlightAreCapped(t *testing.T) {
	h := coretest.New(t, func(o *server.Options) { o.MaxBackgroundSends = 2 })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	held := make(chan net.Conn, 8)
	// The requests' sends all wait on this server, so none ends while the test runs.
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held <- c // accepted and never answered: the SMTP greeting never comes
		}
	}()
	release := func() {
		ln.Close()
		for {
			select {
			case c := <-held:
				c.Close()
			default:
				return
			}
		}
	}
	t.Cleanup(release)
	tp := h.DeliveryTenant("acme", fmt.Sprintf(`"email":{"smtp":{"host":"127.0.0.1","port":%d,"from":"a@acme.test","tls":"none"}}`, ln.Addr().(*net.TCPAddr).Port),
		`"firstFactors":["emailpassword"]`)
	for i := range 3 {
		coretest.MustStatus(t, h.SignUp(tp, fmt.Sprintf("u%d@example.com", i), "secret123"), http.StatusOK, "OK")
	}
	reset := func(i int) coretest.Response {
		return h.Do("POST", "/auth"+tp+"/user/password/reset/token", coretest.EmailForm(fmt.Sprintf("u%d@example.com", i)))
	}
	coretest.MustStatus(t, reset(0), http.StatusOK, "OK")
	coretest.MustStatus(t, reset(1), http.StatusOK, "OK")
	// Both slots are taken when the answers are given; the sends hang on the mail server.
	m := coretest.MustStatus(t, reset(2), http.StatusOK, "GENERAL_ERROR")
	if !strings.Contains(m["message"].(string), "too many emails are being sent") {
		t.Fatalf("message = %q", m["message"])
	}
}

// Password reset and verification emails count against the same per-contact limit as codes,
// so they cannot be used to flood a mailbox either; the limit applies to unknown addresses
// alike, so a refusal says nothing about which addresses have accounts.
func TestAccountEmailsCountAgainstTheContactsSendLimit(t *testing.T) {
	h := coretest.New(t)
	mails, email := coretest.StartSMTP(t)
	tp := h.DeliveryTenant("acme", email, `"firstFactors":["emailpassword"]`, `"codeSending":{"maxPerContact":2}`)
	coretest.MustStatus(t, h.SignUp(tp, "ada@example.com", "secret123"), http.StatusOK, "OK")
	for _, to := range []string{"ada@example.com", "nobody@example.com"} {
		t.Run(to, func(t *testing.T) {
			for i, want := range []string{"OK", "OK", "GENERAL_ERROR"} {
				m := coretest.MustStatus(t, h.Do("POST", "/auth"+tp+"/user/password/reset/token", coretest.EmailForm(to)), http.StatusOK, want)
				if want == "GENERAL_ERROR" && m["retryAfterMs"] == nil {
					t.Fatalf("request %d: no retryAfterMs in %v", i+1, m)
				}
			}
		})
	}
	mails.Wait(t, 2)
	if n := mails.Count(); n != 2 {
		t.Fatalf("%d reset emails were delivered, want 2", n)
	}
}
