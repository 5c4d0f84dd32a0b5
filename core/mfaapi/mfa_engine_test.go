package mfaapi_test

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/core/coretest"
)

func TestMFARequirementsThroughHTTP(t *testing.T) {
	tests := []struct {
		name string
		mfa  string
		run  func(t *testing.T, u *coretest.MFAUser)
	}{
		{"an ordered requirement asks for totp first and recovery-code after it", `{"requirement":["totp","recovery-code"]}`, func(t *testing.T, u *coretest.MFAUser) {
			u.WantV(false)
			u.WantNext("totp")
			coretest.WantClaimError(t, u.Call("POST", "/auth/recovery-codes", nil), coretest.ReasonNotInNextSet)
			u.EnrolTOTP("phone")
			u.WantV(false)
			u.WantNext("recovery-code")
			codes := u.RecoveryCodes()
			coretest.MustStatus(t, u.Call("POST", "/auth/recovery-codes/verify", map[string]any{"code": codes[0]}), http.StatusOK, "OK")
			u.WantV(true)
			u.WantNext()
		}},
		{"a oneOf requirement is met by whichever factor the user sets up", `{"requirement":[{"oneOf":["totp","recovery-code"]}]}`, func(t *testing.T, u *coretest.MFAUser) {
			u.WantNext("totp", "recovery-code")
			codes := u.RecoveryCodes()
			coretest.MustStatus(t, u.Call("POST", "/auth/recovery-codes/verify", map[string]any{"code": codes[3]}), http.StatusOK, "OK")
			u.WantV(true)
			// A later session can use the codes, and may no longer set up totp instead.
			s2 := u.SignIn()
			s2.WantV(false)
			coretest.WantClaimError(t, s2.Call("POST", "/auth/totp/device", map[string]any{}), coretest.ReasonAlreadySatisfiable)
		}},
		{"an allOfInAnyOrder requirement needs every member, in either order", `{"requirement":[{"allOfInAnyOrder":["totp","recovery-code"]}]}`, func(t *testing.T, u *coretest.MFAUser) {
			u.WantNext("totp", "recovery-code")
			codes := u.RecoveryCodes()
			coretest.MustStatus(t, u.Call("POST", "/auth/recovery-codes/verify", map[string]any{"code": codes[0]}), http.StatusOK, "OK")
			u.WantV(false)
			u.WantNext("totp")
			u.EnrolTOTP("phone")
			u.WantV(true)
			c, _ := u.Claim()
			if c["totp"] == nil || c["recovery-code"] == nil || c["emailpassword"] == nil {
				t.Fatalf("c = %v, want emailpassword, totp and recovery-code", c)
			}
		}},
		{"a tenant without a requirement gives v true at sign-up", `{}`, func(t *testing.T, u *coretest.MFAUser) {
			u.WantV(true)
			u.WantNext()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := coretest.New(t)
			tp := h.MFATenant("acme", tt.mfa)
			tt.run(t, h.SignUpMFA(tp, "ada@example.com"))
		})
	}
}

func TestUserOptInAppliesTheRequirementOnlyToUsersWhoEnabledMFA(t *testing.T) {
	h := coretest.New(t)
	tp := h.MFATenant("acme", `{"requirement":["totp"],"enforcement":"UserOptIn"}`)
	u := h.SignUpMFA(tp, "ada@example.com")
	u.WantV(true)
	other := h.SignUpMFA(tp, "bob@example.com")

	// Requiring a factor that is not set up is refused, so nobody locks themselves out.
	r := u.Call("PUT", "/auth/user/mfa", map[string]any{"requiredSecondaryFactors": []string{"totp"}})
	if m := r.JSON(t); r.Status != http.StatusBadRequest || m["field"] != "requiredSecondaryFactors[0]" {
		t.Fatalf("requiring an unset factor = %d %s", r.Status, r.Body)
	}
	u.EnrolTOTP("phone")
	m := coretest.MustStatus(t, u.Call("PUT", "/auth/user/mfa", map[string]any{"requiredSecondaryFactors": []string{"totp"}}), http.StatusOK, "OK")
	if !slices.Equal(coretest.Strs(m["requiredSecondaryFactors"]), []string{"totp"}) || m["enforcement"] != "UserOptIn" {
		t.Fatalf("PUT /auth/user/mfa = %v", m)
	}
	u.WantV(true) // this session completed totp already

	s2 := u.SignIn()
	s2.WantV(false)
	s2.WantNext("totp")
	// Turning MFA off needs the requirement met.
	before := h.Snapshot()
	coretest.WantClaimError(t, s2.Call("PUT", "/auth/user/mfa", map[string]any{"requiredSecondaryFactors": []string{}}), coretest.ReasonNotSatisfied)
	if h.Snapshot() != before {
		t.Fatalf("a refused opt-out changed the store")
	}
	s2.VerifyTOTP()
	s2.WantV(true)
	coretest.MustStatus(t, s2.Call("PUT", "/auth/user/mfa", map[string]any{"requiredSecondaryFactors": []string{}}), http.StatusOK, "OK")
	u.SignIn().WantV(true)

	// The other user never opted in: the tenant's requirement does not apply to them.
	other.SignIn().WantV(true)
	g := coretest.MustStatus(t, other.Call("GET", "/auth/user/mfa", nil), http.StatusOK, "OK")
	if len(coretest.Strs(g["requiredSecondaryFactors"])) != 0 {
		t.Fatalf("GET /auth/user/mfa = %v", g)
	}
}

func TestUsersOwnFactorsAddToARequiredPolicy(t *testing.T) {
	h := coretest.New(t)
	tp := h.MFATenant("acme", `{"requirement":[],"enforcement":"Required"}`)
	u := h.SignUpMFA(tp, "ada@example.com")
	u.WantV(true)
	u.EnrolTOTP("phone")
	coretest.MustStatus(t, u.Call("PUT", "/auth/user/mfa", map[string]any{"requiredSecondaryFactors": []string{"totp"}}), http.StatusOK, "OK")
	s2 := u.SignIn()
	s2.WantV(false)
	s2.WantNext("totp")
	s2.VerifyTOTP()
	s2.WantV(true)
}

func TestACompletedFactorOlderThanTheMaximumAgeNoLongerCounts(t *testing.T) {
	h := coretest.New(t)
	tp := h.MFATenant("acme", `{"requirement":["totp"],"maxFactorAgeSeconds":300}`)
	u := h.SignUpMFA(tp, "ada@example.com")
	u.EnrolTOTP("phone")
	u.WantV(true)
	h.Clock.Advance(299 * time.Second)
	u.WantNext()
	u.WantV(true)
	h.Clock.Advance(2 * time.Second)
	u.WantNext("totp") // mfa/info re-syncs the claim and sends a new token
	u.WantV(false)
	u.VerifyTOTP()
	u.WantV(true)
}

func TestTheEnrolmentGracePeriod(t *testing.T) {
	h := coretest.New(t)
	tp := h.MFATenant("acme", `{"requirement":["totp"],"enrollmentGracePeriodSeconds":86400}`)
	t.Run("a user with nothing set up signs in with v true during the grace period and is told to set up totp", func(t *testing.T) {
		u := h.SignUpMFA(tp, "new@example.com")
		u.WantV(true)
		u.WantNext("totp")
		h.Clock.Advance(23 * time.Hour)
		u.SignIn().WantV(true)
		h.Clock.Advance(2 * time.Hour)
		late := u.SignIn()
		late.WantV(false)
		late.WantNext("totp")
		// The lapsed user can still set up totp (the setup rule allows it) and get through.
		late.EnrolTOTP("phone")
		late.WantV(true)
	})
	t.Run("a user who set up a required factor gets no grace", func(t *testing.T) {
		u := h.SignUpMFA(tp, "enrolled@example.com")
		u.EnrolTOTP("phone")
		s2 := u.SignIn()
		s2.WantV(false)
		coretest.WantClaimError(t, s2.Call("POST", "/auth/totp/device", map[string]any{"deviceName": "mine"}), coretest.ReasonAlreadySatisfiable)
	})
}

func TestMFAInfoReportsFactorsAndContacts(t *testing.T) {
	h := coretest.New(t)
	tp := h.MFATenant("acme", `{"requirement":["totp"],"allowedSecondaryFactors":["totp","otp-email","recovery-code"]}`)
	u := h.SignUpMFA(tp, "ada@example.com")
	r := u.Call("PUT", "/auth/mfa/info", nil)
	m := coretest.MustStatus(t, r, http.StatusOK, "OK")
	f := m["factors"].(map[string]any)
	if !slices.Equal(coretest.Strs(f["next"]), []string{"totp"}) || !slices.Equal(coretest.Strs(f["alreadySetup"]), []string{"emailpassword"}) ||
		!slices.Equal(coretest.Strs(f["allowedToSetup"]), []string{"totp"}) {
		t.Fatalf("factors = %v", f)
	}
	emails := m["emails"].(map[string]any)
	if !slices.Equal(coretest.Strs(emails["otp-email"]), []string{"ada@example.com"}) || len(m["phoneNumbers"].(map[string]any)) != 0 {
		t.Fatalf("emails = %v, phoneNumbers = %v", m["emails"], m["phoneNumbers"])
	}
	if r.Header.Get("st-access-token") != "" {
		t.Fatalf("mfa/info sent new tokens although the claim did not change")
	}
	u.EnrolTOTP("phone")
	_, setup, allowed := u.Info()
	if !slices.Equal(setup, []string{"emailpassword", "totp"}) || !coretest.HasAll(allowed, "totp", "otp-email", "recovery-code") {
		t.Fatalf("after enrolment alreadySetup = %v, allowedToSetup = %v", setup, allowed)
	}
	if h.Do("PUT", "/auth/mfa/info", nil).Status != http.StatusUnauthorized {
		t.Fatalf("mfa/info without a session must be 401")
	}
}
