package otp_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/twofold-dev/twofold/core/coretest"
)

const reasonContactTaken = "Cannot complete factor setup as the account info is already associated with another primary user. Please contact support."

func TestAPersonWhoKnowsThePasswordCannotSendTheSecondFactorCodeToTheirOwnPhoneNumber(t *testing.T) {
	h := coretest.New(t)
	texts, sms := coretest.StartTwilio(t)
	tp := h.DeliveryTenant("acme", sms, `"mfa":{"requirement":["otp-phone"]}`)
	const realPhone, thiefPhone = "+14155550100", "+14155559999"

	victim := h.SignUpMFA(tp, "ada@example.com")
	victim.WantV(false)
	created := coretest.MustStatus(t, victim.SecondaryCode(map[string]any{"phoneNumber": realPhone}), http.StatusOK, "OK")
	if created["flowType"] != "USER_INPUT_CODE" {
		t.Fatalf("a secondary factor's flowType = %v, want USER_INPUT_CODE", created["flowType"])
	}
	coretest.MustStatus(t, victim.ConsumeSecondary(created, texts.Last(t, realPhone).Code(t)), http.StatusOK, "OK")
	victim.WantV(true)

	thief := victim.SignIn() // the password alone
	thief.WantV(false)
	before, sent := h.Snapshot(), texts.Count()
	attempts := []struct {
		name string
		body map[string]any
	}{
		{"linking asked for explicitly", map[string]any{"phoneNumber": thiefPhone, "shouldTryLinkingWithSessionUser": true}},
		{"linking left to the session", map[string]any{"phoneNumber": thiefPhone}},
	}
	for _, a := range attempts {
		t.Run(a.name, func(t *testing.T) {
			coretest.WantClaimError(t, thief.Call("POST", "/auth/acme/signinup/code", a.body), coretest.ReasonAlreadySatisfiable)
		})
	}
	t.Run("without linking, as a first factor the tenant does not offer", func(t *testing.T) {
		r := thief.Call("POST", "/auth/acme/signinup/code", map[string]any{"phoneNumber": thiefPhone, "shouldTryLinkingWithSessionUser": false})
		coretest.MustStatus(t, r, http.StatusOK, "SIGN_IN_UP_NOT_ALLOWED")
	})
	if texts.Count() != sent {
		t.Fatalf("an SMS was sent: %+v", texts.All()[sent:])
	}
	if h.Snapshot() != before {
		t.Fatalf("the refused attempts changed the store")
	}
	thief.WantV(false)

	t.Run("the code can only go to the phone already on the account", func(t *testing.T) {
		created := coretest.MustStatus(t, thief.SecondaryCode(map[string]any{"phoneNumber": realPhone}), http.StatusOK, "OK")
		if got := texts.All()[texts.Count()-1].To; got != realPhone {
			t.Fatalf("the code went to %s, want the user's own %s", got, realPhone)
		}
		coretest.MustStatus(t, thief.ConsumeSecondary(created, "000000"), http.StatusOK, "INCORRECT_USER_INPUT_CODE_ERROR")
		thief.WantV(false)
	})
}

func TestASecondFactorCodeIsLinkedToTheSessionsUser(t *testing.T) {
	h := coretest.New(t)
	mails, email := coretest.StartSMTP(t)
	// The tenant lets users enrol addresses that are not on their accounts, which is what
	// makes another user's address a question at all.
	tp := h.DeliveryTenant("acme", email, `"mfa":{"requirement":["otp-email"]}`, `"otpEmail":{"allowNewAddresses":true}`)
	ada := h.SignUpMFA(tp, "ada@example.com")
	handle := coretest.PayloadOf(t, ada.Access)["sessionHandle"]
	userID := coretest.PayloadOf(t, ada.Access)["sub"]

	t.Run("a code to an email not yet a passwordless login method sets the factor up", func(t *testing.T) {
		created := coretest.MustStatus(t, ada.SecondaryCode(map[string]any{"email": "Ada@Example.com"}), http.StatusOK, "OK")
		r := ada.ConsumeSecondary(created, mails.Last(t, "ada@example.com").Code(t))
		m := coretest.MustStatus(t, r, http.StatusOK, "OK")
		user := m["user"].(map[string]any)
		if m["createdNewRecipeUser"] != true || user["id"] != userID || len(user["loginMethods"].([]any)) != 2 {
			t.Fatalf("answer = %v, want a new passwordless login method of user %v", m, userID)
		}
		if r.Header.Get("st-refresh-token") != "" || coretest.PayloadOf(t, ada.Access)["sessionHandle"] != handle {
			t.Fatalf("completing a factor started a new session")
		}
		c, _ := ada.Claim()
		if c["otp-email"] == nil {
			t.Fatalf("st-mfa.c = %v, want otp-email", c)
		}
		ada.WantV(true)
	})
	t.Run("the next sign-in completes the factor with the same login method", func(t *testing.T) {
		again := ada.SignIn()
		again.WantV(false)
		created := coretest.MustStatus(t, again.SecondaryCode(map[string]any{"email": "ada@example.com"}), http.StatusOK, "OK")
		m := coretest.MustStatus(t, again.ConsumeSecondary(created, mails.Last(t, "ada@example.com").Code(t)), http.StatusOK, "OK")
		if m["createdNewRecipeUser"] != false || len(m["user"].(map[string]any)["loginMethods"].([]any)) != 2 {
			t.Fatalf("answer = %v, want the existing login method", m)
		}
		again.WantV(true)
	})
	t.Run("an email of another user is refused before any code is sent", func(t *testing.T) {
		h.SignUpMFA(tp, "bob@example.com")
		sent := mails.Count()
		r := ada.SecondaryCode(map[string]any{"email": "bob@example.com"})
		if m := coretest.MustStatus(t, r, http.StatusOK, "SIGN_IN_UP_NOT_ALLOWED"); m["reason"] != reasonContactTaken {
			t.Fatalf("reason = %v", m["reason"])
		}
		if mails.Count() != sent {
			t.Fatalf("an email was sent to another user's address")
		}
	})
	t.Run("an email another user took after the code was sent is refused at consume", func(t *testing.T) {
		carol := h.SignUpMFA(tp, "carol-first@example.com")
		created := coretest.MustStatus(t, carol.SecondaryCode(map[string]any{"email": "dave@example.com"}), http.StatusOK, "OK")
		code := mails.Last(t, "dave@example.com").Code(t)
		h.SignUpMFA(tp, "dave@example.com")
		r := carol.ConsumeSecondary(created, code)
		if m := coretest.MustStatus(t, r, http.StatusOK, "SIGN_IN_UP_NOT_ALLOWED"); m["reason"] != reasonContactTaken {
			t.Fatalf("reason = %v", m["reason"])
		}
		carol.WantV(false)
	})
	t.Run("another user signing up later with the email does not take the factor away", func(t *testing.T) {
		fay := h.SignUpMFA(tp, "fay-login@example.com")
		created := coretest.MustStatus(t, fay.SecondaryCode(map[string]any{"email": "fay@example.com"}), http.StatusOK, "OK")
		coretest.MustStatus(t, fay.ConsumeSecondary(created, mails.Last(t, "fay@example.com").Code(t)), http.StatusOK, "OK")
		h.SignUpMFA(tp, "fay@example.com") // a password account with Fay's code email
		again := fay.SignIn()
		created = coretest.MustStatus(t, again.SecondaryCode(map[string]any{"email": "fay@example.com"}), http.StatusOK, "OK")
		coretest.MustStatus(t, again.ConsumeSecondary(created, mails.Last(t, "fay@example.com").Code(t)), http.StatusOK, "OK")
		again.WantV(true)
	})
	t.Run("without linking the code signs a separate passwordless user in", func(t *testing.T) {
		h.DeliveryTenant("open", email, `"firstFactors":["emailpassword","otp-email"]`)
		erin := h.SignUpMFA("/open", "erin@example.com")
		created := coretest.MustStatus(t, erin.Call("POST", "/auth/open/signinup/code", map[string]any{"email": "erin@example.com", "shouldTryLinkingWithSessionUser": false}), http.StatusOK, "OK")
		r := h.Do("POST", "/auth/open/signinup/code/consume", map[string]any{"preAuthSessionId": created["preAuthSessionId"],
			"deviceId": created["deviceId"], "userInputCode": mails.Last(t, "erin@example.com").Code(t), "shouldTryLinkingWithSessionUser": false},
			"Authorization", "Bearer "+erin.Access)
		m := coretest.MustStatus(t, r, http.StatusOK, "OK")
		if m["user"].(map[string]any)["id"] == coretest.PayloadOf(t, erin.Access)["sub"] || r.Header.Get("st-refresh-token") == "" {
			t.Fatalf("answer = %v, want a new session of a new user", m)
		}
	})
}

func TestAUserWithTOTPCannotAddOTPEmailWhileTheRequirementIsUnmet(t *testing.T) {
	h := coretest.New(t)
	mails, email := coretest.StartSMTP(t)
	tp := h.DeliveryTenant("acme", email, `"mfa":{"requirement":[{"oneOf":["totp","otp-email"]}]}`)
	ada := h.SignUpMFA(tp, "ada@example.com")
	ada.EnrolTOTP("phone")

	next := ada.SignIn()
	next.WantV(false)
	before := h.Snapshot()
	coretest.WantClaimError(t, next.SecondaryCode(map[string]any{"email": "ada@example.com"}), coretest.ReasonAlreadySatisfiable)
	if mails.Count() != 0 || h.Snapshot() != before {
		t.Fatalf("the refused setup sent an email or changed the store")
	}

	next.VerifyTOTP()
	next.WantV(true)
	created := coretest.MustStatus(t, next.SecondaryCode(map[string]any{"email": "ada@example.com"}), http.StatusOK, "OK")
	coretest.MustStatus(t, next.ConsumeSecondary(created, mails.Last(t, "ada@example.com").Code(t)), http.StatusOK, "OK")
	if c, _ := next.Claim(); c["otp-email"] == nil || c["totp"] == nil {
		t.Fatalf("st-mfa.c = %v, want totp and otp-email", c)
	}
}

// Someone who knows only a user's password, signing in before the user ever set otp-email up,
// used to be able to enrol an address of their own as the user's second factor. Unless the
// tenant allows new addresses, otp-email is set up only with an address on the account.
func TestAPersonWhoKnowsThePasswordCannotEnrolTheirOwnEmailAsTheSecondFactor(t *testing.T) {
	h := coretest.New(t)
	mails, email := coretest.StartSMTP(t)
	h.DeliveryTenant("strict", email, `"mfa":{"requirement":["otp-email"]}`)
	h.DeliveryTenant("open", email, `"mfa":{"requirement":["otp-email"]}`, `"otpEmail":{"allowNewAddresses":true}`)
	tests := []struct {
		name, tenant, to, want string
	}{
		{"an address not on the account is refused before any code is sent", "strict", "attacker@evil.example", "SIGN_IN_UP_NOT_ALLOWED"},
		{"the account's own address is accepted", "strict", "victim@example.com", "OK"}, // the victim's address
		{"a tenant that allows new addresses accepts one", "open", "attacker@evil.example", "OK"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The victim signed up with a password and has not set otp-email up yet.
			victim := h.SignUpMFA("/"+tt.tenant, fmt.Sprintf("victim%d@example.com", i))
			if tt.to == "victim@example.com" {
				tt.to = victim.Email
			}
			sent := mails.Count()
			m := coretest.MustStatus(t, victim.SignIn().SecondaryCode(map[string]any{"email": tt.to}), http.StatusOK, tt.want)
			if tt.want == "OK" {
				return
			}
			if m["reason"] != "Email codes can only be set up with an email address already on your account." {
				t.Fatalf("reason = %v", m["reason"])
			}
			if mails.Count() != sent {
				t.Fatalf("a code was sent to an address that is not on the account")
			}
		})
	}
}
