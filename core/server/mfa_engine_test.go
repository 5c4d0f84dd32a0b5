package server_test

import (
	"net/http"
	"slices"
	"testing"
	"time"
)

func TestMFARequirementsThroughHTTP(t *testing.T) {
	tests := []struct {
		name string
		mfa  string
		run  func(t *testing.T, u *mfaUser)
	}{
		{"an ordered requirement asks for totp first and recovery-code after it", `{"requirement":["totp","recovery-code"]}`, func(t *testing.T, u *mfaUser) {
			u.wantV(false)
			u.wantNext("totp")
			wantClaimError(t, u.call("POST", "/auth/recovery-codes", nil), reasonNotInNextSet)
			u.enrolTOTP("phone")
			u.wantV(false)
			u.wantNext("recovery-code")
			codes := u.recoveryCodes()
			mustStatus(t, u.call("POST", "/auth/recovery-codes/verify", map[string]any{"code": codes[0]}), http.StatusOK, "OK")
			u.wantV(true)
			u.wantNext()
		}},
		{"a oneOf requirement is met by whichever factor the user sets up", `{"requirement":[{"oneOf":["totp","recovery-code"]}]}`, func(t *testing.T, u *mfaUser) {
			u.wantNext("totp", "recovery-code")
			codes := u.recoveryCodes()
			mustStatus(t, u.call("POST", "/auth/recovery-codes/verify", map[string]any{"code": codes[3]}), http.StatusOK, "OK")
			u.wantV(true)
			// A later session can use the codes, and may no longer set up totp instead.
			s2 := u.signIn()
			s2.wantV(false)
			wantClaimError(t, s2.call("POST", "/auth/totp/device", map[string]any{}), reasonAlreadySatisfiable)
		}},
		{"an allOfInAnyOrder requirement needs every member, in either order", `{"requirement":[{"allOfInAnyOrder":["totp","recovery-code"]}]}`, func(t *testing.T, u *mfaUser) {
			u.wantNext("totp", "recovery-code")
			codes := u.recoveryCodes()
			mustStatus(t, u.call("POST", "/auth/recovery-codes/verify", map[string]any{"code": codes[0]}), http.StatusOK, "OK")
			u.wantV(false)
			u.wantNext("totp")
			u.enrolTOTP("phone")
			u.wantV(true)
			c, _ := u.claim()
			if c["totp"] == nil || c["recovery-code"] == nil || c["emailpassword"] == nil {
				t.Fatalf("c = %v, want emailpassword, totp and recovery-code", c)
			}
		}},
		{"a tenant without a requirement gives v true at sign-up", `{}`, func(t *testing.T, u *mfaUser) {
			u.wantV(true)
			u.wantNext()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			tp := h.mfaTenant("acme", tt.mfa)
			tt.run(t, h.signUpMFA(tp, "ada@example.com"))
		})
	}
}

func TestUserOptInAppliesTheRequirementOnlyToUsersWhoEnabledMFA(t *testing.T) {
	h := newHarness(t)
	tp := h.mfaTenant("acme", `{"requirement":["totp"],"enforcement":"UserOptIn"}`)
	u := h.signUpMFA(tp, "ada@example.com")
	u.wantV(true)
	other := h.signUpMFA(tp, "bob@example.com")

	// Requiring a factor that is not set up is refused, so nobody locks themselves out.
	r := u.call("PUT", "/auth/user/mfa", map[string]any{"requiredSecondaryFactors": []string{"totp"}})
	if m := r.json(t); r.Status != http.StatusBadRequest || m["field"] != "requiredSecondaryFactors[0]" {
		t.Fatalf("requiring an unset factor = %d %s", r.Status, r.Body)
	}
	u.enrolTOTP("phone")
	m := mustStatus(t, u.call("PUT", "/auth/user/mfa", map[string]any{"requiredSecondaryFactors": []string{"totp"}}), http.StatusOK, "OK")
	if !slices.Equal(strs(m["requiredSecondaryFactors"]), []string{"totp"}) || m["enforcement"] != "UserOptIn" {
		t.Fatalf("PUT /auth/user/mfa = %v", m)
	}
	u.wantV(true) // this session completed totp already

	s2 := u.signIn()
	s2.wantV(false)
	s2.wantNext("totp")
	// Turning MFA off needs the requirement met.
	before := h.snapshot()
	wantClaimError(t, s2.call("PUT", "/auth/user/mfa", map[string]any{"requiredSecondaryFactors": []string{}}), reasonNotSatisfied)
	if h.snapshot() != before {
		t.Fatalf("a refused opt-out changed the store")
	}
	s2.verifyTOTP()
	s2.wantV(true)
	mustStatus(t, s2.call("PUT", "/auth/user/mfa", map[string]any{"requiredSecondaryFactors": []string{}}), http.StatusOK, "OK")
	u.signIn().wantV(true)

	// The other user never opted in: the tenant's requirement does not apply to them.
	other.signIn().wantV(true)
	g := mustStatus(t, other.call("GET", "/auth/user/mfa", nil), http.StatusOK, "OK")
	if len(strs(g["requiredSecondaryFactors"])) != 0 {
		t.Fatalf("GET /auth/user/mfa = %v", g)
	}
}

func TestUsersOwnFactorsAddToARequiredPolicy(t *testing.T) {
	h := newHarness(t)
	tp := h.mfaTenant("acme", `{"requirement":[],"enforcement":"Required"}`)
	u := h.signUpMFA(tp, "ada@example.com")
	u.wantV(true)
	u.enrolTOTP("phone")
	mustStatus(t, u.call("PUT", "/auth/user/mfa", map[string]any{"requiredSecondaryFactors": []string{"totp"}}), http.StatusOK, "OK")
	s2 := u.signIn()
	s2.wantV(false)
	s2.wantNext("totp")
	s2.verifyTOTP()
	s2.wantV(true)
}

func TestACompletedFactorOlderThanTheMaximumAgeNoLongerCounts(t *testing.T) {
	h := newHarness(t)
	tp := h.mfaTenant("acme", `{"requirement":["totp"],"maxFactorAgeSeconds":300}`)
	u := h.signUpMFA(tp, "ada@example.com")
	u.enrolTOTP("phone")
	u.wantV(true)
	h.clock.Advance(299 * time.Second)
	u.wantNext()
	u.wantV(true)
	h.clock.Advance(2 * time.Second)
	u.wantNext("totp") // mfa/info re-syncs the claim and sends a new token
	u.wantV(false)
	u.verifyTOTP()
	u.wantV(true)
}

func TestTheEnrolmentGracePeriod(t *testing.T) {
	h := newHarness(t)
	tp := h.mfaTenant("acme", `{"requirement":["totp"],"enrollmentGracePeriodSeconds":86400}`)
	t.Run("a user with nothing set up signs in with v true during the grace period and is told to set up totp", func(t *testing.T) {
		u := h.signUpMFA(tp, "new@example.com")
		u.wantV(true)
		u.wantNext("totp")
		h.clock.Advance(23 * time.Hour)
		u.signIn().wantV(true)
		h.clock.Advance(2 * time.Hour)
		late := u.signIn()
		late.wantV(false)
		late.wantNext("totp")
		// The lapsed user can still set up totp (the setup rule allows it) and get through.
		late.enrolTOTP("phone")
		late.wantV(true)
	})
	t.Run("a user who set up a required factor gets no grace", func(t *testing.T) {
		u := h.signUpMFA(tp, "enrolled@example.com")
		u.enrolTOTP("phone")
		s2 := u.signIn()
		s2.wantV(false)
		wantClaimError(t, s2.call("POST", "/auth/totp/device", map[string]any{"deviceName": "mine"}), reasonAlreadySatisfiable)
	})
}

func TestMFAInfoReportsFactorsAndContacts(t *testing.T) {
	h := newHarness(t)
	tp := h.mfaTenant("acme", `{"requirement":["totp"],"allowedSecondaryFactors":["totp","otp-email","recovery-code"]}`)
	u := h.signUpMFA(tp, "ada@example.com")
	r := u.call("PUT", "/auth/mfa/info", nil)
	m := mustStatus(t, r, http.StatusOK, "OK")
	f := m["factors"].(map[string]any)
	if !slices.Equal(strs(f["next"]), []string{"totp"}) || !slices.Equal(strs(f["alreadySetup"]), []string{"emailpassword"}) ||
		!slices.Equal(strs(f["allowedToSetup"]), []string{"totp"}) {
		t.Fatalf("factors = %v", f)
	}
	emails := m["emails"].(map[string]any)
	if !slices.Equal(strs(emails["otp-email"]), []string{"ada@example.com"}) || len(m["phoneNumbers"].(map[string]any)) != 0 {
		t.Fatalf("emails = %v, phoneNumbers = %v", m["emails"], m["phoneNumbers"])
	}
	if r.Header.Get("st-access-token") != "" {
		t.Fatalf("mfa/info sent new tokens although the claim did not change")
	}
	u.enrolTOTP("phone")
	_, setup, allowed := u.info()
	if !slices.Equal(setup, []string{"emailpassword", "totp"}) || !hasAll(allowed, "totp", "otp-email", "recovery-code") {
		t.Fatalf("after enrolment alreadySetup = %v, allowedToSetup = %v", setup, allowed)
	}
	if h.do("PUT", "/auth/mfa/info", nil).Status != http.StatusUnauthorized {
		t.Fatalf("mfa/info without a session must be 401")
	}
}
