package recoverycode_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/twofold-dev/twofold/core/coretest"
)

func TestARecoveryCodeStandsInForALostTOTPDevice(t *testing.T) {
	h := coretest.New(t)
	tp := h.MFATenant("acme", `{"requirement":["totp"]}`)
	u := h.SignUpMFA(tp, "ada@example.com")
	u.EnrolTOTP("phone")
	codes := u.RecoveryCodes()
	if len(codes) != 10 {
		t.Fatalf("got %d codes", len(codes))
	}
	st := coretest.MustStatus(t, u.Call("GET", "/auth/recovery-codes/status", nil), http.StatusOK, "OK")
	if st["remaining"] != 10.0 || st["total"] != 10.0 {
		t.Fatalf("status = %v", st)
	}

	// The phone is lost: a new sign-in is offered the recovery code next to totp.
	s := u.SignIn()
	s.WantV(false)
	s.WantNext("totp", "recovery-code")
	bad := coretest.MustStatus(t, s.Call("POST", "/auth/recovery-codes/verify", map[string]any{"code": "aaaa-bbbb-cccc"}), http.StatusOK, "INVALID_RECOVERY_CODE_ERROR")
	if bad["currentNumberOfFailedAttempts"] != 1.0 || bad["maxNumberOfFailedAttempts"] != 5.0 {
		t.Fatalf("wrong code = %v", bad)
	}
	// Codes are accepted however they were typed.
	coretest.MustStatus(t, s.Call("POST", "/auth/recovery-codes/verify", map[string]any{"code": " " + strings.ToUpper(codes[2]) + " "}), http.StatusOK, "OK")
	s.WantV(true)
	if c, _ := s.Claim(); c["recovery-code"] == nil {
		t.Fatalf("c = %v, want recovery-code", c)
	}
	st = coretest.MustStatus(t, s.Call("GET", "/auth/recovery-codes/status", nil), http.StatusOK, "OK")
	if st["remaining"] != 9.0 {
		t.Fatalf("remaining = %v, want 9", st["remaining"])
	}
	// A used code is used up.
	s3 := u.SignIn()
	coretest.MustStatus(t, s3.Call("POST", "/auth/recovery-codes/verify", map[string]any{"code": codes[2]}), http.StatusOK, "INVALID_RECOVERY_CODE_ERROR")
	s3.WantV(false)
	// Having recovered, the user replaces the lost device: v is true, so setup is allowed.
	s.EnrolTOTP("new phone")
}

func TestReplacingRecoveryCodesNeedsTheRequirementMet(t *testing.T) {
	h := coretest.New(t)
	tp := h.MFATenant("acme", `{"requirement":["totp"]}`)
	u := h.SignUpMFA(tp, "ada@example.com")
	u.EnrolTOTP("phone")
	old := u.RecoveryCodes()
	s := u.SignIn()
	before := h.Snapshot()
	coretest.WantClaimError(t, s.Call("POST", "/auth/recovery-codes", nil), coretest.ReasonNotSatisfied)
	if h.Snapshot() != before {
		t.Fatalf("a refused regeneration changed the store")
	}
	s.VerifyTOTP()
	fresh := s.RecoveryCodes()
	// The old set is gone.
	s2 := u.SignIn()
	coretest.MustStatus(t, s2.Call("POST", "/auth/recovery-codes/verify", map[string]any{"code": old[0]}), http.StatusOK, "INVALID_RECOVERY_CODE_ERROR")
	coretest.MustStatus(t, s2.Call("POST", "/auth/recovery-codes/verify", map[string]any{"code": fresh[0]}), http.StatusOK, "OK")
}

func TestTwoConcurrentUsesOfOneRecoveryCodeExactlyOneSucceeds(t *testing.T) {
	h := coretest.New(t)
	tp := h.MFATenant("acme", `{"requirement":["totp"]}`)
	u := h.SignUpMFA(tp, "ada@example.com")
	u.EnrolTOTP("phone")
	codes := u.RecoveryCodes()
	for round := 0; round < 5; round++ {
		a, b := u.SignIn(), u.SignIn()
		var wg sync.WaitGroup
		statuses := make([]string, 2)
		for i, s := range []*coretest.MFAUser{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := h.Do("POST", "/auth/recovery-codes/verify", map[string]any{"code": codes[round]}, "Authorization", "Bearer "+s.Access)
				var m map[string]any
				if r.Status == http.StatusOK {
					m = r.JSON(t)
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
	st := coretest.MustStatus(t, u.Call("GET", "/auth/recovery-codes/status", nil), http.StatusOK, "OK")
	if st["remaining"] != 5.0 {
		t.Fatalf("remaining = %v, want 5", st["remaining"])
	}
}

func TestRecoveryCodesAppearInMFAInfoWhileUnused(t *testing.T) {
	h := coretest.New(t)
	tp := h.MFATenant("acme", `{"requirement":[]}`)
	u := h.SignUpMFA(tp, "ada@example.com")
	if _, setup, _ := u.Info(); coretest.HasAll(setup, "recovery-code") {
		t.Fatalf("alreadySetup lists recovery-code before any were generated: %v", setup)
	}
	u.RecoveryCodes()
	if _, setup, _ := u.Info(); !coretest.HasAll(setup, "recovery-code") {
		t.Fatalf("alreadySetup = %v, want recovery-code", setup)
	}
	coretest.MustStatus(t, u.Call("POST", "/auth/recovery-codes/verify", map[string]any{"code": 12}), http.StatusBadRequest, "")
	coretest.MustStatus(t, u.Call("POST", "/auth/recovery-codes/verify", map[string]any{}), http.StatusBadRequest, "")
	coretest.MustStatus(t, u.Call("POST", "/auth/recovery-codes/verify", map[string]any{"code": "x"}), http.StatusOK, "INVALID_RECOVERY_CODE_ERROR")
}
