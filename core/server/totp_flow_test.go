package server_test

import (
	"bytes"
	"image/png"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/core/factors/totp"
)

func TestTOTPFullFlow(t *testing.T) {
	h := newHarness(t)
	tp := h.mfaTenant("acme", `{"requirement":["totp"]}`)
	h.putTenant("acme", `{"session":{"cookieSecure":false},"mfa":{"requirement":["totp"]},"totp":{"issuer":"Acme Corp"}}`)
	u := h.signUpMFA(tp, "ada@example.com")
	u.wantV(false)
	u.wantNext("totp")

	m := mustStatus(t, u.call("POST", "/auth/totp/device", map[string]any{}), http.StatusOK, "OK")
	if m["deviceName"] != "TOTP Device 1" {
		t.Fatalf("default device name = %v", m["deviceName"])
	}
	uri := m["qrCodeString"].(string)
	if !strings.HasPrefix(uri, "otpauth://totp/Acme%20Corp:ada@example.com?secret=") || !strings.Contains(uri, "&issuer=Acme%20Corp&digits=6&period=30") {
		t.Fatalf("qrCodeString = %q", uri)
	}
	secret := secretOf(t, uri)
	if secret != m["secret"] {
		t.Fatalf("secret %v differs from the URI's %s", m["secret"], secret)
	}
	list := mustStatus(t, u.call("GET", "/auth/totp/device/list", nil), http.StatusOK, "OK")
	if d := list["devices"].([]any); len(d) != 1 || d[0].(map[string]any)["verified"] != false || d[0].(map[string]any)["period"] != 30.0 || d[0].(map[string]any)["skew"] != 1.0 {
		t.Fatalf("devices = %v", list["devices"])
	}

	qr := u.call("GET", "/auth/totp/device/qr?deviceName=TOTP%20Device%201", nil)
	if qr.Status != http.StatusOK || qr.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("QR = %d %s", qr.Status, qr.Header.Get("Content-Type"))
	}
	img, err := png.Decode(bytes.NewReader(qr.Body))
	if err != nil || img.Bounds().Dx() < 64 {
		t.Fatalf("QR body is not a PNG of a useful size: %v", err)
	}

	wrong := mustStatus(t, u.call("POST", "/auth/totp/device/verify", map[string]any{"deviceName": "TOTP Device 1", "totp": "000000"}), http.StatusOK, "INVALID_TOTP_ERROR")
	if wrong["currentNumberOfFailedAttempts"] != 1.0 || wrong["maxNumberOfFailedAttempts"] != 5.0 {
		t.Fatalf("wrong code = %v", wrong)
	}
	u.secret = secret
	code := u.code(secret)
	r := u.call("POST", "/auth/totp/device/verify", map[string]any{"deviceName": "TOTP Device 1", "totp": code})
	if m := mustStatus(t, r, http.StatusOK, "OK"); m["wasAlreadyVerified"] != false {
		t.Fatalf("verify = %v", m)
	}
	if r.Header.Get("st-refresh-token") != "" {
		t.Fatalf("completing a factor must keep the session's refresh token")
	}
	c, v := u.claim()
	if !v || c["totp"] != float64(h.clock.Now().Unix()) {
		t.Fatalf("st-mfa = %v %v, want totp completed now and v true", c, v)
	}
	if up := frontToken(t, r)["up"].(map[string]any)["st-mfa"].(map[string]any); up["v"] != true {
		t.Fatalf("front-token st-mfa = %v", up)
	}
	if qr := u.call("GET", "/auth/totp/device/qr?deviceName=TOTP%20Device%201", nil); qr.Status != http.StatusConflict {
		t.Fatalf("QR of a verified device = %d, want 409", qr.Status)
	}

	// Replay: the same code is refused, on either endpoint, and the failure is counted.
	mustStatus(t, u.call("POST", "/auth/totp/verify", map[string]any{"totp": code}), http.StatusOK, "INVALID_TOTP_ERROR")
	mustStatus(t, u.call("POST", "/auth/totp/device/verify", map[string]any{"deviceName": "TOTP Device 1", "totp": code}), http.StatusOK, "INVALID_TOTP_ERROR")
	// A new sign-in completes totp with the next code.
	s2 := u.signIn()
	s2.wantV(false)
	s2.verifyTOTP()
	s2.wantV(true)
	// Verifying an already verified device is OK with wasAlreadyVerified.
	h.clock.Advance(30 * time.Second)
	again := mustStatus(t, s2.call("POST", "/auth/totp/device/verify", map[string]any{"deviceName": "TOTP Device 1", "totp": s2.code(secret)}), http.StatusOK, "OK")
	if again["wasAlreadyVerified"] != true {
		t.Fatalf("second device verify = %v", again)
	}
	// A second device under the same name is refused.
	mustStatus(t, s2.call("POST", "/auth/totp/device", map[string]any{"deviceName": "TOTP Device 1"}), http.StatusOK, "DEVICE_ALREADY_EXISTS_ERROR")
}

func TestTOTPCompletesTheFactorInCookieMode(t *testing.T) {
	h := newHarness(t)
	tp := h.mfaTenant("acme", `{"requirement":["totp"]}`)
	u := h.signUpMFA(tp, "ada@example.com")
	secret := u.enrolTOTP("phone")
	r := h.do("POST", "/auth"+tp+"/signin", form("ada@example.com", mfaPassword), "st-auth-mode", "cookie")
	access := r.cookie("sAccessToken")
	if access == nil {
		t.Fatalf("no access cookie")
	}
	h.clock.Advance(30 * time.Second)
	r = h.do("POST", "/auth/totp/verify", map[string]any{"totp": u.code(secret)}, "Cookie", "sAccessToken="+access.Value)
	mustStatus(t, r, http.StatusOK, "OK")
	nc := r.cookie("sAccessToken")
	if nc == nil || r.Header.Get("st-access-token") != "" {
		t.Fatalf("a cookie-mode session must get its new access token as a cookie; headers %v", r.Header)
	}
	if p := payloadOf(t, nc.Value)["st-mfa"].(map[string]any); p["v"] != true {
		t.Fatalf("st-mfa after cookie-mode verify = %v", p)
	}
}

func TestTOTPLockoutAndItsExpiry(t *testing.T) {
	h := newHarness(t)
	tp := h.mfaTenant("acme", `{"requirement":["totp"]}`)
	u := h.signUpMFA(tp, "ada@example.com")
	u.enrolTOTP("phone")
	s := u.signIn()
	h.clock.Advance(30 * time.Second)
	for i := 1; i <= 5; i++ {
		m := mustStatus(t, s.call("POST", "/auth/totp/verify", map[string]any{"totp": "123456"}), http.StatusOK, "INVALID_TOTP_ERROR")
		if m["currentNumberOfFailedAttempts"] != float64(i) {
			t.Fatalf("attempt %d reported %v failures", i, m["currentNumberOfFailedAttempts"])
		}
	}
	// Locked: even the right code is refused, without being checked, and so are recovery codes.
	h.clock.Advance(time.Minute)
	m := mustStatus(t, s.call("POST", "/auth/totp/verify", map[string]any{"totp": s.code(s.secret)}), http.StatusOK, "LIMIT_REACHED_ERROR")
	if m["retryAfterMs"] != float64((14 * time.Minute).Milliseconds()) {
		t.Fatalf("retryAfterMs = %v, want 14 minutes", m["retryAfterMs"])
	}
	mustStatus(t, s.call("POST", "/auth/recovery-codes/verify", map[string]any{"code": "abcd-efgh-jkmn"}), http.StatusOK, "LIMIT_REACHED_ERROR")
	mustStatus(t, s.call("POST", "/auth/totp/device/verify", map[string]any{"deviceName": "phone", "totp": s.code(s.secret)}), http.StatusOK, "LIMIT_REACHED_ERROR")
	s.wantV(false)
	// Another session of the same user is locked too: the limit is per user.
	mustStatus(t, u.signIn().call("POST", "/auth/totp/verify", map[string]any{"totp": s.code(s.secret)}), http.StatusOK, "LIMIT_REACHED_ERROR")

	h.clock.Advance(14 * time.Minute)
	mustStatus(t, s.call("POST", "/auth/totp/verify", map[string]any{"totp": s.code(s.secret)}), http.StatusOK, "OK")
	s.wantV(true)
	// Success resets the count.
	h.clock.Advance(30 * time.Second)
	m = mustStatus(t, s.call("POST", "/auth/totp/verify", map[string]any{"totp": "000000"}), http.StatusOK, "INVALID_TOTP_ERROR")
	if m["currentNumberOfFailedAttempts"] != 1.0 {
		t.Fatalf("failures after a success = %v, want 1", m["currentNumberOfFailedAttempts"])
	}
}

func TestTOTPDeviceErrors(t *testing.T) {
	h := newHarness(t)
	tp := h.mfaTenant("acme", `{"requirement":["totp"]}`)
	u := h.signUpMFA(tp, "ada@example.com")
	tests := []struct {
		name, method, path string
		body               any
		status             int
		want               string
	}{
		{"verifying a device that does not exist", "POST", "/auth/totp/device/verify", map[string]any{"deviceName": "nope", "totp": "123456"}, 200, "UNKNOWN_DEVICE_ERROR"},
		{"verifying a code for a user without devices", "POST", "/auth/totp/verify", map[string]any{"totp": "123456"}, 200, "UNKNOWN_USER_ID_ERROR"},
		{"the QR code of a device that does not exist", "GET", "/auth/totp/device/qr?deviceName=nope", nil, 404, "UNKNOWN_DEVICE_ERROR"},
		{"removing a device that does not exist", "POST", "/auth/totp/device/remove", map[string]any{"deviceName": "nope"}, 200, "OK"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.snapshot()
			m := mustStatus(t, u.call(tt.method, tt.path, tt.body), tt.status, tt.want)
			if tt.path == "/auth/totp/device/remove" && m["didDeviceExist"] != false {
				t.Fatalf("didDeviceExist = %v", m["didDeviceExist"])
			}
			if h.snapshot() != before {
				t.Fatalf("%s changed the store", tt.name)
			}
		})
	}
}

func TestTOTPDeviceRemovalRules(t *testing.T) {
	h := newHarness(t)
	tp := h.mfaTenant("acme", `{"requirement":["totp"]}`)
	u := h.signUpMFA(tp, "ada@example.com")
	// An unverified device can be dropped while v is false (an abandoned enrolment).
	mustStatus(t, u.call("POST", "/auth/totp/device", map[string]any{"deviceName": "draft"}), http.StatusOK, "OK")
	m := mustStatus(t, u.call("POST", "/auth/totp/device/remove", map[string]any{"deviceName": "draft"}), http.StatusOK, "OK")
	if m["didDeviceExist"] != true {
		t.Fatalf("remove draft = %v", m)
	}
	u.enrolTOTP("phone")

	// A session that has not completed totp cannot remove the verified device.
	s := u.signIn()
	before := h.snapshot()
	wantClaimError(t, s.call("POST", "/auth/totp/device/remove", map[string]any{"deviceName": "phone"}), reasonNotSatisfied)
	if h.snapshot() != before {
		t.Fatalf("a refused removal changed the store")
	}
	// Once it has, it can.
	s.verifyTOTP()
	m = mustStatus(t, s.call("POST", "/auth/totp/device/remove", map[string]any{"deviceName": "phone"}), http.StatusOK, "OK")
	if m["didDeviceExist"] != true {
		t.Fatalf("remove phone = %v", m)
	}
	if d := mustStatus(t, s.call("GET", "/auth/totp/device/list", nil), http.StatusOK, "OK")["devices"].([]any); len(d) != 0 {
		t.Fatalf("devices after removal = %v", d)
	}
}

func TestATenantsTOTPSettingsShapeNewDevices(t *testing.T) {
	h := newHarness(t)
	h.putTenant("acme", `{"session":{"cookieSecure":false},"mfa":{"requirement":["totp"]},"totp":{"issuer":"Acme","digits":8,"periodSeconds":60,"skew":2}}`)
	u := h.signUpMFA("/acme", "ada@example.com")
	m := mustStatus(t, u.call("POST", "/auth/totp/device", map[string]any{"deviceName": "phone"}), http.StatusOK, "OK")
	uri := m["qrCodeString"].(string)
	if !strings.HasPrefix(uri, "otpauth://totp/Acme:ada@example.com?") || !strings.HasSuffix(uri, "&issuer=Acme&digits=8&period=60") {
		t.Fatalf("qrCodeString = %q", uri)
	}
	d := mustStatus(t, u.call("GET", "/auth/totp/device/list", nil), http.StatusOK, "OK")["devices"].([]any)[0].(map[string]any)
	if d["period"] != 60.0 || d["skew"] != 2.0 {
		t.Fatalf("device = %v", d)
	}
	cfg := totp.Config{Issuer: "Acme", Digits: 8, Period: time.Minute, Skew: 2, Algorithm: totp.SHA1}
	// A code from two periods ago is still inside a skew of 2.
	code, err := cfg.Code(secretOf(t, uri), h.clock.Now().Add(-2*time.Minute))
	if err != nil || len(code) != 8 {
		t.Fatalf("code %q: %v", code, err)
	}
	mustStatus(t, u.call("POST", "/auth/totp/device/verify", map[string]any{"deviceName": "phone", "totp": code}), http.StatusOK, "OK")
	u.wantV(true)

	// The device keeps its settings when the tenant changes them.
	h.putTenant("acme", `{"session":{"cookieSecure":false},"mfa":{"requirement":["totp"]},"totp":{"issuer":"Acme"}}`)
	h.clock.Advance(time.Minute)
	s := u.signIn()
	code, _ = cfg.Code(secretOf(t, uri), h.clock.Now())
	mustStatus(t, s.call("POST", "/auth/totp/verify", map[string]any{"totp": code}), http.StatusOK, "OK")
}
