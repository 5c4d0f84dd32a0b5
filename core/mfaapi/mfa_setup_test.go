package mfaapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/twofold-dev/twofold/core/coretest"
)

func TestAPersonWhoKnowsThePasswordCannotEnrolTheirOwnTOTPDeviceOnceTheUserHasOne(t *testing.T) {
	h := coretest.New(t)
	tp := h.MFATenant("acme", `{"requirement":["totp"]}`)
	victim := h.SignUpMFA(tp, "ada@example.com")
	victim.EnrolTOTP("phone")
	// The victim starts enrolling a second device and has not scanned it yet.
	coretest.MustStatus(t, victim.Call("POST", "/auth/totp/device", map[string]any{"deviceName": "tablet"}), http.StatusOK, "OK")

	thief := victim.SignIn() // the password alone
	thief.WantV(false)
	before := h.Snapshot()
	attempts := []struct {
		name, method, path string
		body               any
		reason             string
	}{
		{"creating a device of their own", "POST", "/auth/totp/device", map[string]any{"deviceName": "thief"}, coretest.ReasonAlreadySatisfiable},
		{"creating a device under a default name", "POST", "/auth/totp/device", map[string]any{}, coretest.ReasonAlreadySatisfiable},
		{"generating recovery codes", "POST", "/auth/recovery-codes", nil, coretest.ReasonAlreadySatisfiable},
		{"reading the secret of the device being enrolled", "GET", "/auth/totp/device/qr?deviceName=tablet", nil, coretest.ReasonAlreadySatisfiable},
		{"verifying the device being enrolled", "POST", "/auth/totp/device/verify", map[string]any{"deviceName": "tablet", "totp": "123456"}, coretest.ReasonAlreadySatisfiable},
		{"removing the user's device", "POST", "/auth/totp/device/remove", map[string]any{"deviceName": "phone"}, coretest.ReasonNotSatisfied},
		{"turning the user's own MFA off", "PUT", "/auth/user/mfa", map[string]any{"requiredSecondaryFactors": []string{}}, ""},
	}
	for _, a := range attempts {
		t.Run(a.name, func(t *testing.T) {
			r := thief.Call(a.method, a.path, a.body)
			if a.reason == "" {
				// The user never required factors of their own: nothing to drop, nothing gained.
				coretest.MustStatus(t, r, http.StatusOK, "OK")
				return
			}
			coretest.WantClaimError(t, r, a.reason)
		})
	}
	if h.Snapshot() != before {
		t.Fatalf("the refused attempts changed the store")
	}
	thief.WantV(false)
	if _, _, allowed := thief.Info(); len(allowed) != 0 {
		t.Fatalf("mfa/info offers the thief %v to set up", allowed)
	}
}

func TestSetupRuleDenialsCarrySuperTokensReasons(t *testing.T) {
	tests := []struct {
		name, mfa string
		prepare   func(u *coretest.MFAUser)
		path      string
		body      any
		reason    string
	}{
		{"a factor outside the next set cannot be set up", `{"requirement":["totp"]}`, func(*coretest.MFAUser) {},
			"/auth/recovery-codes", nil, coretest.ReasonNotInNextSet},
		{"a later item of an ordered requirement cannot be set up first", `{"requirement":["totp","recovery-code"]}`, func(*coretest.MFAUser) {},
			"/auth/recovery-codes", nil, coretest.ReasonNotInNextSet},
		{"a new factor is refused when the user holds a factor of the next set", `{"requirement":[{"oneOf":["totp","recovery-code"]}]}`,
			func(u *coretest.MFAUser) { u.RecoveryCodes() }, "/auth/totp/device", map[string]any{}, coretest.ReasonAlreadySatisfiable},
		{"a factor the tenant does not offer cannot be set up", `{"requirement":[],"allowedSecondaryFactors":["recovery-code"]}`, func(*coretest.MFAUser) {},
			"/auth/totp/device", map[string]any{}, "Not allowed to setup factor that is not enabled for the tenant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := coretest.New(t)
			tp := h.MFATenant("acme", tt.mfa)
			u := h.SignUpMFA(tp, "ada@example.com")
			tt.prepare(u)
			s := u.SignIn()
			before := h.Snapshot()
			coretest.WantClaimError(t, s.Call("POST", tt.path, tt.body), tt.reason)
			if h.Snapshot() != before {
				t.Fatalf("a refused setup changed the store")
			}
		})
	}
}

func TestBadMFAInputIsRefusedWithoutChangingTheStore(t *testing.T) {
	h := coretest.New(t)
	tp := h.MFATenant("acme", `{"requirement":["totp"]}`)
	u := h.SignUpMFA(tp, "ada@example.com")
	u.EnrolTOTP("phone")
	u.RecoveryCodes()
	tests := []struct {
		name, method, path string
		body               any
		status             int
		field              string
		message            string
	}{
		{"malformed JSON to device verify", "POST", "/auth/totp/device/verify", `{"deviceName":`, 400, "", "request body is not valid JSON: it ends too early"},
		{"a number as the TOTP code", "POST", "/auth/totp/verify", `{"totp":123456}`, 400, "totp", "totp must be a string, not number"},
		{"a missing TOTP code", "POST", "/auth/totp/verify", `{}`, 400, "totp", "totp is required: the code the authenticator app shows"},
		{"a missing device name", "POST", "/auth/totp/device/verify", `{"totp":"123456"}`, 400, "deviceName", "deviceName is required"},
		{"a list as the device name", "POST", "/auth/totp/device", `{"deviceName":["a"]}`, 400, "deviceName", "deviceName must be a string, not array"},
		{"an overlong device name", "POST", "/auth/totp/device", `{"deviceName":"` + string(make([]byte, 0)) + `xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}`, 400, "deviceName", "deviceName is longer than 100 bytes"},
		{"a request body that is not an object", "POST", "/auth/totp/device/remove", `"phone"`, 400, "", "request body must be a JSON object, not string"},
		{"a missing device name to remove", "POST", "/auth/totp/device/remove", `{}`, 400, "deviceName", "deviceName is required"},
		{"a missing QR device name", "GET", "/auth/totp/device/qr", nil, 400, "deviceName", "deviceName is required: GET /auth/totp/device/qr?deviceName=..."},
		{"a number as a recovery code", "POST", "/auth/recovery-codes/verify", `{"code":1}`, 400, "code", "code must be a string, not number"},
		{"an unknown factor to require", "PUT", "/auth/user/mfa", `{"requiredSecondaryFactors":["sms"]}`, 400, "requiredSecondaryFactors[0]", `unknown factor "sms"`},
		{"thirdparty as a secondary factor", "PUT", "/auth/user/mfa", `{"requiredSecondaryFactors":["thirdparty"]}`, 400, "requiredSecondaryFactors[0]", `"thirdparty" cannot be a secondary factor`},
		{"no factor list", "PUT", "/auth/user/mfa", `{}`, 400, "requiredSecondaryFactors", "requiredSecondaryFactors is required: a list of factor ids, [] to turn your own MFA off"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.Snapshot()
			r := u.Call(tt.method, tt.path, tt.body)
			m := coretest.MustStatus(t, r, tt.status, "")
			if m["message"] != tt.message || (m["field"] != nil && m["field"] != tt.field) || (m["field"] == nil && tt.field != "") {
				t.Fatalf("answer = %s, want field %q message %q", r.Body, tt.field, tt.message)
			}
			if h.Snapshot() != before {
				t.Fatalf("bad input changed the store")
			}
		})
	}
	for _, path := range []string{"/auth/totp/device/list", "/auth/recovery-codes/status", "/auth/user/mfa"} {
		if r := h.Do("GET", path, nil); r.Status != http.StatusUnauthorized {
			t.Fatalf("GET %s without a session = %d, want 401", path, r.Status)
		}
	}
}

// A user enrolling their first authenticator and a thief signed in with the password alone are
// both allowed to set TOTP up. The thief used to be able to read the secret of the device the
// user was enrolling and so hold the user's authenticator for good once the user verified it.
func TestAPasswordThiefCannotReadTheSecretOfTheDeviceTheUserIsEnrolling(t *testing.T) {
	h := coretest.New(t)
	tp := h.MFATenant("acme", `{"requirement":["totp"]}`)
	victim := h.SignUpMFA(tp, "ada@example.com")
	coretest.MustStatus(t, victim.Call("POST", "/auth/totp/device", map[string]any{"deviceName": "phone"}), http.StatusOK, "OK")

	thief := victim.SignIn()
	r := thief.Call("GET", "/auth/totp/device/qr?deviceName=phone", nil)
	if r.Status != http.StatusForbidden || strings.Contains(r.Header.Get("Content-Type"), "image") {
		t.Fatalf("the thief's session read the QR code of the user's device: %d %s", r.Status, r.Header.Get("Content-Type"))
	}
	if r := victim.Call("GET", "/auth/totp/device/qr?deviceName=phone", nil); r.Status != http.StatusOK || r.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("the session that created the device cannot read its QR code: %d %s", r.Status, r.Body)
	}
}
