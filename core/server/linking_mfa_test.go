package server_test

import (
	"fmt"
	"net/http"
	"testing"
)

const reasonContactTaken = "Cannot complete factor setup as the account info is already associated with another primary user. Please contact support."

// secondaryCode asks for a second-factor code with the user's session.
func (u *mfaUser) secondaryCode(contact map[string]any) response {
	u.h.t.Helper()
	body := map[string]any{"shouldTryLinkingWithSessionUser": true}
	for k, v := range contact {
		body[k] = v
	}
	return u.call("POST", "/auth"+u.tenant+"/signinup/code", body)
}

// consumeSecondary submits the code of created with the user's session.
func (u *mfaUser) consumeSecondary(created map[string]any, code string) response {
	u.h.t.Helper()
	return u.call("POST", "/auth"+u.tenant+"/signinup/code/consume", map[string]any{"preAuthSessionId": created["preAuthSessionId"],
		"deviceId": created["deviceId"], "userInputCode": code, "shouldTryLinkingWithSessionUser": true})
}

func TestAPersonWhoKnowsThePasswordCannotSendTheSecondFactorCodeToTheirOwnPhoneNumber(t *testing.T) {
	h := newHarness(t)
	texts, sms := startTwilio(t)
	tp := h.deliveryTenant("acme", sms, `"mfa":{"requirement":["otp-phone"]}`)
	const realPhone, thiefPhone = "+14155550100", "+14155559999"

	victim := h.signUpMFA(tp, "ada@example.com")
	victim.wantV(false)
	created := mustStatus(t, victim.secondaryCode(map[string]any{"phoneNumber": realPhone}), http.StatusOK, "OK")
	if created["flowType"] != "USER_INPUT_CODE" {
		t.Fatalf("a secondary factor's flowType = %v, want USER_INPUT_CODE", created["flowType"])
	}
	mustStatus(t, victim.consumeSecondary(created, texts.last(t, realPhone).code(t)), http.StatusOK, "OK")
	victim.wantV(true)

	thief := victim.signIn() // the password alone
	thief.wantV(false)
	before, sent := h.snapshot(), texts.count()
	attempts := []struct {
		name string
		body map[string]any
	}{
		{"linking asked for explicitly", map[string]any{"phoneNumber": thiefPhone, "shouldTryLinkingWithSessionUser": true}},
		{"linking left to the session", map[string]any{"phoneNumber": thiefPhone}},
	}
	for _, a := range attempts {
		t.Run(a.name, func(t *testing.T) {
			wantClaimError(t, thief.call("POST", "/auth/acme/signinup/code", a.body), reasonAlreadySatisfiable)
		})
	}
	t.Run("without linking, as a first factor the tenant does not offer", func(t *testing.T) {
		r := thief.call("POST", "/auth/acme/signinup/code", map[string]any{"phoneNumber": thiefPhone, "shouldTryLinkingWithSessionUser": false})
		mustStatus(t, r, http.StatusOK, "SIGN_IN_UP_NOT_ALLOWED")
	})
	if texts.count() != sent {
		t.Fatalf("an SMS was sent: %+v", texts.all()[sent:])
	}
	if h.snapshot() != before {
		t.Fatalf("the refused attempts changed the store")
	}
	thief.wantV(false)

	t.Run("the code can only go to the phone already on the account", func(t *testing.T) {
		created := mustStatus(t, thief.secondaryCode(map[string]any{"phoneNumber": realPhone}), http.StatusOK, "OK")
		if got := texts.all()[texts.count()-1].To; got != realPhone {
			t.Fatalf("the code went to %s, want the user's own %s", got, realPhone)
		}
		mustStatus(t, thief.consumeSecondary(created, "000000"), http.StatusOK, "INCORRECT_USER_INPUT_CODE_ERROR")
		thief.wantV(false)
	})
}

func TestASecondFactorCodeIsLinkedToTheSessionsUser(t *testing.T) {
	h := newHarness(t)
	mails, email := startSMTP(t)
	// The tenant lets users enrol addresses that are not on their accounts, which is what
	// makes another user's address a question at all.
	tp := h.deliveryTenant("acme", email, `"mfa":{"requirement":["otp-email"]}`, `"otpEmail":{"allowNewAddresses":true}`)
	ada := h.signUpMFA(tp, "ada@example.com")
	handle := payloadOf(t, ada.access)["sessionHandle"]
	userID := payloadOf(t, ada.access)["sub"]

	t.Run("a code to an email not yet a passwordless login method sets the factor up", func(t *testing.T) {
		created := mustStatus(t, ada.secondaryCode(map[string]any{"email": "Ada@Example.com"}), http.StatusOK, "OK")
		r := ada.consumeSecondary(created, mails.last(t, "ada@example.com").code(t))
		m := mustStatus(t, r, http.StatusOK, "OK")
		user := m["user"].(map[string]any)
		if m["createdNewRecipeUser"] != true || user["id"] != userID || len(user["loginMethods"].([]any)) != 2 {
			t.Fatalf("answer = %v, want a new passwordless login method of user %v", m, userID)
		}
		if r.Header.Get("st-refresh-token") != "" || payloadOf(t, ada.access)["sessionHandle"] != handle {
			t.Fatalf("completing a factor started a new session")
		}
		c, _ := ada.claim()
		if c["otp-email"] == nil {
			t.Fatalf("st-mfa.c = %v, want otp-email", c)
		}
		ada.wantV(true)
	})
	t.Run("the next sign-in completes the factor with the same login method", func(t *testing.T) {
		again := ada.signIn()
		again.wantV(false)
		created := mustStatus(t, again.secondaryCode(map[string]any{"email": "ada@example.com"}), http.StatusOK, "OK")
		m := mustStatus(t, again.consumeSecondary(created, mails.last(t, "ada@example.com").code(t)), http.StatusOK, "OK")
		if m["createdNewRecipeUser"] != false || len(m["user"].(map[string]any)["loginMethods"].([]any)) != 2 {
			t.Fatalf("answer = %v, want the existing login method", m)
		}
		again.wantV(true)
	})
	t.Run("an email of another user is refused before any code is sent", func(t *testing.T) {
		h.signUpMFA(tp, "bob@example.com")
		sent := mails.count()
		r := ada.secondaryCode(map[string]any{"email": "bob@example.com"})
		if m := mustStatus(t, r, http.StatusOK, "SIGN_IN_UP_NOT_ALLOWED"); m["reason"] != reasonContactTaken {
			t.Fatalf("reason = %v", m["reason"])
		}
		if mails.count() != sent {
			t.Fatalf("an email was sent to another user's address")
		}
	})
	t.Run("an email another user took after the code was sent is refused at consume", func(t *testing.T) {
		carol := h.signUpMFA(tp, "carol-first@example.com")
		created := mustStatus(t, carol.secondaryCode(map[string]any{"email": "dave@example.com"}), http.StatusOK, "OK")
		code := mails.last(t, "dave@example.com").code(t)
		h.signUpMFA(tp, "dave@example.com")
		r := carol.consumeSecondary(created, code)
		if m := mustStatus(t, r, http.StatusOK, "SIGN_IN_UP_NOT_ALLOWED"); m["reason"] != reasonContactTaken {
			t.Fatalf("reason = %v", m["reason"])
		}
		carol.wantV(false)
	})
	t.Run("another user signing up later with the email does not take the factor away", func(t *testing.T) {
		fay := h.signUpMFA(tp, "fay-login@example.com")
		created := mustStatus(t, fay.secondaryCode(map[string]any{"email": "fay@example.com"}), http.StatusOK, "OK")
		mustStatus(t, fay.consumeSecondary(created, mails.last(t, "fay@example.com").code(t)), http.StatusOK, "OK")
		h.signUpMFA(tp, "fay@example.com") // a password account with Fay's code email
		again := fay.signIn()
		created = mustStatus(t, again.secondaryCode(map[string]any{"email": "fay@example.com"}), http.StatusOK, "OK")
		mustStatus(t, again.consumeSecondary(created, mails.last(t, "fay@example.com").code(t)), http.StatusOK, "OK")
		again.wantV(true)
	})
	t.Run("without linking the code signs a separate passwordless user in", func(t *testing.T) {
		h.deliveryTenant("open", email, `"firstFactors":["emailpassword","otp-email"]`)
		erin := h.signUpMFA("/open", "erin@example.com")
		created := mustStatus(t, erin.call("POST", "/auth/open/signinup/code", map[string]any{"email": "erin@example.com", "shouldTryLinkingWithSessionUser": false}), http.StatusOK, "OK")
		r := h.do("POST", "/auth/open/signinup/code/consume", map[string]any{"preAuthSessionId": created["preAuthSessionId"],
			"deviceId": created["deviceId"], "userInputCode": mails.last(t, "erin@example.com").code(t), "shouldTryLinkingWithSessionUser": false},
			"Authorization", "Bearer "+erin.access)
		m := mustStatus(t, r, http.StatusOK, "OK")
		if m["user"].(map[string]any)["id"] == payloadOf(t, erin.access)["sub"] || r.Header.Get("st-refresh-token") == "" {
			t.Fatalf("answer = %v, want a new session of a new user", m)
		}
	})
}

func TestAUserWithTOTPCannotAddOTPEmailWhileTheRequirementIsUnmet(t *testing.T) {
	h := newHarness(t)
	mails, email := startSMTP(t)
	tp := h.deliveryTenant("acme", email, `"mfa":{"requirement":[{"oneOf":["totp","otp-email"]}]}`)
	ada := h.signUpMFA(tp, "ada@example.com")
	ada.enrolTOTP("phone")

	next := ada.signIn()
	next.wantV(false)
	before := h.snapshot()
	wantClaimError(t, next.secondaryCode(map[string]any{"email": "ada@example.com"}), reasonAlreadySatisfiable)
	if mails.count() != 0 || h.snapshot() != before {
		t.Fatalf("the refused setup sent an email or changed the store")
	}

	next.verifyTOTP()
	next.wantV(true)
	created := mustStatus(t, next.secondaryCode(map[string]any{"email": "ada@example.com"}), http.StatusOK, "OK")
	mustStatus(t, next.consumeSecondary(created, mails.last(t, "ada@example.com").code(t)), http.StatusOK, "OK")
	if c, _ := next.claim(); c["otp-email"] == nil || c["totp"] == nil {
		t.Fatalf("st-mfa.c = %v, want totp and otp-email", c)
	}
}

// Someone who knows only a user's password, signing in before the user ever set otp-email up,
// used to be able to enrol an address of their own as the user's second factor. Unless the
// tenant allows new addresses, otp-email is set up only with an address on the account.
func TestAPersonWhoKnowsThePasswordCannotEnrolTheirOwnEmailAsTheSecondFactor(t *testing.T) {
	h := newHarness(t)
	mails, email := startSMTP(t)
	h.deliveryTenant("strict", email, `"mfa":{"requirement":["otp-email"]}`)
	h.deliveryTenant("open", email, `"mfa":{"requirement":["otp-email"]}`, `"otpEmail":{"allowNewAddresses":true}`)
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
			victim := h.signUpMFA("/"+tt.tenant, fmt.Sprintf("victim%d@example.com", i))
			if tt.to == "victim@example.com" {
				tt.to = victim.email
			}
			sent := mails.count()
			m := mustStatus(t, victim.signIn().secondaryCode(map[string]any{"email": tt.to}), http.StatusOK, tt.want)
			if tt.want == "OK" {
				return
			}
			if m["reason"] != "Email codes can only be set up with an email address already on your account." {
				t.Fatalf("reason = %v", m["reason"])
			}
			if mails.count() != sent {
				t.Fatalf("a code was sent to an address that is not on the account")
			}
		})
	}
}
