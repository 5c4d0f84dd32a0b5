package server_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
)

func TestARecoveryCodeStandsInForALostTOTPDevice(t *testing.T) {
	h := newHarness(t)
	tp := h.mfaTenant("acme", `{"requirement":["totp"]}`)
	u := h.signUpMFA(tp, "ada@example.com")
	u.enrolTOTP("phone")
	codes := u.recoveryCodes()
	if len(codes) != 10 {
		t.Fatalf("got %d codes", len(codes))
	}
	st := mustStatus(t, u.call("GET", "/auth/recovery-codes/status", nil), http.StatusOK, "OK")
	if st["remaining"] != 10.0 || st["total"] != 10.0 {
		t.Fatalf("status = %v", st)
	}

	// The phone is lost: a new sign-in is offered the recovery code next to totp.
	s := u.signIn()
	s.wantV(false)
	s.wantNext("totp", "recovery-code")
	bad := mustStatus(t, s.call("POST", "/auth/recovery-codes/verify", map[string]any{"code": "aaaa-bbbb-cccc"}), http.StatusOK, "INVALID_RECOVERY_CODE_ERROR")
	if bad["currentNumberOfFailedAttempts"] != 1.0 || bad["maxNumberOfFailedAttempts"] != 5.0 {
		t.Fatalf("wrong code = %v", bad)
	}
	// Codes are accepted however they were typed.
	mustStatus(t, s.call("POST", "/auth/recovery-codes/verify", map[string]any{"code": " " + strings.ToUpper(codes[2]) + " "}), http.StatusOK, "OK")
	s.wantV(true)
	if c, _ := s.claim(); c["recovery-code"] == nil {
		t.Fatalf("c = %v, want recovery-code", c)
	}
	st = mustStatus(t, s.call("GET", "/auth/recovery-codes/status", nil), http.StatusOK, "OK")
	if st["remaining"] != 9.0 {
		t.Fatalf("remaining = %v, want 9", st["remaining"])
	}
	// A used code is used up.
	s3 := u.signIn()
	mustStatus(t, s3.call("POST", "/auth/recovery-codes/verify", map[string]any{"code": codes[2]}), http.StatusOK, "INVALID_RECOVERY_CODE_ERROR")
	s3.wantV(false)
	// Having recovered, the user replaces the lost device: v is true, so setup is allowed.
	s.enrolTOTP("new phone")
}

func TestReplacingRecoveryCodesNeedsTheRequirementMet(t *testing.T) {
	h := newHarness(t)
	tp := h.mfaTenant("acme", `{"requirement":["totp"]}`)
	u := h.signUpMFA(tp, "ada@example.com")
	u.enrolTOTP("phone")
	old := u.recoveryCodes()
	s := u.signIn()
	before := h.snapshot()
	wantClaimError(t, s.call("POST", "/auth/recovery-codes", nil), reasonNotSatisfied)
	if h.snapshot() != before {
		t.Fatalf("a refused regeneration changed the store")
	}
	s.verifyTOTP()
	fresh := s.recoveryCodes()
	// The old set is gone.
	s2 := u.signIn()
	mustStatus(t, s2.call("POST", "/auth/recovery-codes/verify", map[string]any{"code": old[0]}), http.StatusOK, "INVALID_RECOVERY_CODE_ERROR")
	mustStatus(t, s2.call("POST", "/auth/recovery-codes/verify", map[string]any{"code": fresh[0]}), http.StatusOK, "OK")
}

func TestTwoConcurrentUsesOfOneRecoveryCodeExactlyOneSucceeds(t *testing.T) {
	h := newHarness(t)
	tp := h.mfaTenant("acme", `{"requirement":["totp"]}`)
	u := h.signUpMFA(tp, "ada@example.com")
	u.enrolTOTP("phone")
	codes := u.recoveryCodes()
	for round := 0; round < 5; round++ {
		a, b := u.signIn(), u.signIn()
		var wg sync.WaitGroup
		statuses := make([]string, 2)
		for i, s := range []*mfaUser{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := h.do("POST", "/auth/recovery-codes/verify", map[string]any{"code": codes[round]}, "Authorization", "Bearer "+s.access)
				var m map[string]any
				if r.Status == http.StatusOK {
					m = r.json(t)
				}
				statuses[i], _ = m["status"].(string)
			}()
		}
		wg.Wait()
		ok := 0
		for _, s := range statuses {
			if s == "OK" {
				ok++
			} else if s != "INVALID_RECOVERY_CODE_ERROR" {
				t.Fatalf("round %d: statuses %v", round, statuses)
			}
		}
		if ok != 1 {
			t.Fatalf("round %d: %d of two concurrent uses of one code succeeded (%v)", round, ok, statuses)
		}
	}
	st := mustStatus(t, u.call("GET", "/auth/recovery-codes/status", nil), http.StatusOK, "OK")
	if st["remaining"] != 5.0 {
		t.Fatalf("remaining = %v, want 5", st["remaining"])
	}
}

func TestRecoveryCodesAppearInMFAInfoWhileUnused(t *testing.T) {
	h := newHarness(t)
	tp := h.mfaTenant("acme", `{"requirement":[]}`)
	u := h.signUpMFA(tp, "ada@example.com")
	if _, setup, _ := u.info(); hasAll(setup, "recovery-code") {
		t.Fatalf("alreadySetup lists recovery-code before any were generated: %v", setup)
	}
	u.recoveryCodes()
	if _, setup, _ := u.info(); !hasAll(setup, "recovery-code") {
		t.Fatalf("alreadySetup = %v, want recovery-code", setup)
	}
	mustStatus(t, u.call("POST", "/auth/recovery-codes/verify", map[string]any{"code": 12}), http.StatusBadRequest, "")
	mustStatus(t, u.call("POST", "/auth/recovery-codes/verify", map[string]any{}), http.StatusBadRequest, "")
	mustStatus(t, u.call("POST", "/auth/recovery-codes/verify", map[string]any{"code": "x"}), http.StatusOK, "INVALID_RECOVERY_CODE_ERROR")
}
