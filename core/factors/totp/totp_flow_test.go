package totp_test

import (
	"bytes"
	"image/png"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/core/coretest"
	"github.com/twofold-dev/twofold/core/factors/totp"
)

func TestTOTPFullFlow(t *testing.T) {
	h := coretest.New(t)
	tp := h.MFATenant("acme", `{"requirement":["totp"]}`)
	h.PutTenantJSON("acme", `{"session":{"cookieSecure":false},"mfa":{"requirement":["totp"]},"totp":{"issuer":"Acme Corp"}}`)
	u := h.SignUpMFA(tp, "ada@example.com")
	u.WantV(false)
	u.WantNext("totp")

	m := coretest.MustStatus(t, u.Call("POST", "/auth/totp/device", map[string]any{}), http.StatusOK, "OK")
	if m["deviceName"] != "TOTP Device 1" {
		t.Fatalf("default device name = %v", m["deviceName"])
	}
	uri := m["qrCodeString"].(string)
	if !strings.HasPrefix(uri, "otpauth://totp/Acme%20Corp:ada@example.com?secret=") || !strings.Contains(uri, "&issuer=Acme%20Corp&digits=6&period=30") {
		t.Fatalf("qrCodeString = %q", uri)
	}
	secret := coretest.SecretOf(t, uri)
	if secret != m["secret"] {
		t.Fatalf("secret %v differs from the URI's %s", m["secret"], secret)
	}
	list := coretest.MustStatus(t, u.Call("GET", "/auth/totp/device/list", nil), http.StatusOK, "OK")
	if d := list["devices"].([]any); len(d) != 1 || d[0].(map[string]any)["verified"] != false || d[0].(map[string]any)["period"] != 30.0 || d[0].(map[string]any)["skew"] != 1.0 {
		t.Fatalf("devices = %v", list["devices"])
	}

	qr := u.Call("GET", "/auth/totp/device/qr?deviceName=TOTP%20Device%201", nil)
	if qr.Status != http.StatusOK || qr.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("QR = %d %s", qr.Status, qr.Header.Get("Content-Type"))
	}
	img, err := png.Decode(bytes.NewReader(qr.Body))
	if err != nil || img.Bounds().Dx() < 64 {
		t.Fatalf("QR body is not a PNG of a useful size: %v", err)
	}

	wrong := coretest.MustStatus(t, u.Call("POST", "/auth/totp/device/verify", map[string]any{"deviceName": "TOTP Device 1", "totp": "000000"}), http.StatusOK, "INVALID_TOTP_ERROR")
	if wrong["currentNumberOfFailedAttempts"] != 1.0 || wrong["maxNumberOfFailedAttempts"] != 5.0 {
		t.Fatalf("wrong code = %v", wrong)
	}
	u.Secret = secret
	code := u.Code(secret)
	r := u.Call("POST", "/auth/totp/device/verify", map[string]any{"deviceName": "TOTP Device 1", "totp": code})
	if m := coretest.MustStatus(t, r, http.StatusOK, "OK"); m["wasAlreadyVerified"] != false {
		t.Fatalf("verify = %v", m)
	}
	if r.Header.Get("st-refresh-token") != "" {
		t.Fatalf("completing a factor must keep the session's refresh token")
	}
	c, v := u.Claim()
	if !v || c["totp"] != float64(h.Clock.Now().Unix()) {
		t.Fatalf("st-mfa = %v %v, want totp completed now and v true", c, v)
	}
	if up := coretest.FrontToken(t, r)["up"].(map[string]any)["st-mfa"].(map[string]any); up["v"] != true {
		t.Fatalf("front-token st-mfa = %v", up)
	}
	if qr := u.Call("GET", "/auth/totp/device/qr?deviceName=TOTP%20Device%201", nil); qr.Status != http.StatusConflict {
		t.Fatalf("QR of a verified device = %d, want 409", qr.Status)
	}

	// Replay: the same code is refused, on either endpoint, and the failure is counted.
	coretest.MustStatus(t, u.Call("POST", "/auth/totp/verify", map[string]any{"totp": code}), http.StatusOK, "INVALID_TOTP_ERROR")
	coretest.MustStatus(t, u.Call("POST", "/auth/totp/device/verify", map[string]any{"deviceName": "TOTP Device 1", "totp": code}), http.StatusOK, "INVALID_TOTP_ERROR")
	// A new sign-in completes totp with the next code.
	s2 := u.SignIn()
	s2.WantV(false)
	s2.VerifyTOTP()
	s2.WantV(true)
	// Verifying an already verified device is OK with wasAlreadyVerified.
	h.Clock.Advance(30 * time.Second)
	again := coretest.MustStatus(t, s2.Call("POST", "/auth/totp/device/verify", map[string]any{"deviceName": "TOTP Device 1", "totp": s2.Code(secret)}), http.StatusOK, "OK")
	if again["wasAlreadyVerified"] != true {
		t.Fatalf("second device verify = %v", again)
	}
	// A second device under the same name is refused.
	coretest.MustStatus(t, s2.Call("POST", "/auth/totp/device", map[string]any{"deviceName": "TOTP Device 1"}), http.StatusOK, "DEVICE_ALREADY_EXISTS_ERROR")
}

func TestTOTPCompletesTheFactorInCookieMode(t *testing.T) {
	h := coretest.New(t)
	tp := h.MFATenant("acme", `{"requirement":["totp"]}`)
	u := h.SignUpMFA(tp, "ada@example.com")
	secret := u.EnrolTOTP("phone")
	r := h.Do("POST", "/auth"+tp+"/signin", coretest.Form("ada@example.com", coretest.MFAPassword), "st-auth-mode", "cookie")
	access := r.Cookie("sAccessToken")
	if access == nil {
		t.Fatalf("no access cookie")
	}
	h.Clock.Advance(30 * time.Second)
	r = h.Do("POST", "/auth/totp/verify", map[string]any{"totp": u.Code(secret)}, "Cookie", "sAccessToken="+access.Value)
	coretest.MustStatus(t, r, http.StatusOK, "OK")
	nc := r.Cookie("sAccessToken")
	if nc == nil || r.Header.Get("st-access-token") != "" {
		t.Fatalf("a cookie-mode session must get its new access token as a cookie; headers %v", r.Header)
	}
	if p := coretest.PayloadOf(t, nc.Value)["st-mfa"].(map[string]any); p["v"] != true {
		t.Fatalf("st-mfa after cookie-mode verify = %v", p)
	}
}

func TestTOTPLockoutAndItsExpiry(t *testing.T) {
	h := coretest.New(t)
	tp := h.MFATenant("acme", `{"requirement":["totp"]}`)
	u := h.SignUpMFA(tp, "ada@example.com")
	u.EnrolTOTP("phone")
	s := u.SignIn()
	h.Clock.Advance(30 * time.Second)
	for i := 1; i <= 5; i++ {
		m := coretest.MustStatus(t, s.Call("POST", "/auth/totp/verify", map[string]any{"totp": "123456"}), http.StatusOK, "INVALID_TOTP_ERROR")
		if m["currentNumberOfFailedAttempts"] != float64(i) {
			t.Fatalf("attempt %d reported %v failures", i, m["currentNumberOfFailedAttempts"])
		}
	}
	// Locked: even the right code is refused, without being checked, and so are recovery codes.
	h.Clock.Advance(time.Minute)
	m := coretest.MustStatus(t, s.Call("POST", "/auth/totp/verify", map[string]any{"totp": s.Code(s.Secret)}), http.StatusOK, "LIMIT_REACHED_ERROR")
	if m["retryAfterMs"] != float64((14 * time.Minute).Milliseconds()) {
		t.Fatalf("retryAfterMs = %v, want 14 minutes", m["retryAfterMs"])
	}
	coretest.MustStatus(t, s.Call("POST", "/auth/recovery-codes/verify", map[string]any{"code": "abcd-efgh-jkmn"}), http.StatusOK, "LIMIT_REACHED_ERROR")
	coretest.MustStatus(t, s.Call("POST", "/auth/totp/device/verify", map[string]any{"deviceName": "phone", "totp": s.Code(s.Secret)}), http.StatusOK, "LIMIT_REACHED_ERROR")
	s.WantV(false)
	// Another session of the same user is locked too: the limit is per user.
	coretest.MustStatus(t, u.SignIn().Call("POST", "/auth/totp/verify", map[string]any{"totp": s.Code(s.Secret)}), http.StatusOK, "LIMIT_REACHED_ERROR")

	h.Clock.Advance(14 * time.Minute)
	coretest.MustStatus(t, s.Call("POST", "/auth/totp/verify", map[string]any{"totp": s.Code(s.Secret)}), http.StatusOK, "OK")
	s.WantV(true)
	// Success resets the count.
	h.Clock.Advance(30 * time.Second)
	m = coretest.MustStatus(t, s.Call("POST", "/auth/totp/verify", map[string]any{"totp": "000000"}), http.StatusOK, "INVALID_TOTP_ERROR")
	if m["currentNumberOfFailedAttempts"] != 1.0 {
		t.Fatalf("failures after a success = %v, want 1", m["currentNumberOfFailedAttempts"])
	}
}

func TestTOTPDeviceErrors(t *testing.T) {
	h := coretest.New(t)
	tp := h.MFATenant("acme", `{"requirement":["totp"]}`)
	u := h.SignUpMFA(tp, "ada@example.com")
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
			before := h.Snapshot()
			m := coretest.MustStatus(t, u.Call(tt.method, tt.path, tt.body), tt.status, tt.want)
			if tt.path == "/auth/totp/device/remove" && m["didDeviceExist"] != false {
				t.Fatalf("didDeviceExist = %v", m["didDeviceExist"])
			}
			if h.Snapshot() != before {
				t.Fatalf("%s changed the store", tt.name)
			}
		})
	}
}

func TestTOTPDeviceRemovalRules(t *testing.T) {
	h := coretest.New(t)
	tp := h.MFATenant("acme", `{"requirement":["totp"]}`)
	u := h.SignUpMFA(tp, "ada@example.com")
	// An unverified device can be dropped while v is false (an abandoned enrolment).
	coretest.MustStatus(t, u.Call("POST", "/auth/totp/device", map[string]any{"deviceName": "draft"}), http.StatusOK, "OK")
	m := coretest.MustStatus(t, u.Call("POST", "/auth/totp/device/remove", map[string]any{"deviceName": "draft"}), http.StatusOK, "OK")
	if m["didDeviceExist"] != true {
		t.Fatalf("remove draft = %v", m)
	}
	u.EnrolTOTP("phone")

	// A session that has not completed totp cannot remove the verified device.
	s := u.SignIn()
	before := h.Snapshot()
	coretest.WantClaimError(t, s.Call("POST", "/auth/totp/device/remove", map[string]any{"deviceName": "phone"}), coretest.ReasonNotSatisfied)
	if h.Snapshot() != before {
		t.Fatalf("a refused removal changed the store")
	}
	// Once it has, it can.
	s.VerifyTOTP()
	m = coretest.MustStatus(t, s.Call("POST", "/auth/totp/device/remove", map[string]any{"deviceName": "phone"}), http.StatusOK, "OK")
	if m["didDeviceExist"] != true {
		t.Fatalf("remove phone = %v", m)
	}
	if d := coretest.MustStatus(t, s.Call("GET", "/auth/totp/device/list", nil), http.StatusOK, "OK")["devices"].([]any); len(d) != 0 {
		t.Fatalf("devices after removal = %v", d)
	}
}

func TestATenantsTOTPSettingsShapeNewDevices(t *testing.T) {
	h := coretest.New(t)
	h.PutTenantJSON("acme", `{"session":{"cookieSecure":false},"mfa":{"requirement":["totp"]},"totp":{"issuer":"Acme","digits":8,"periodSeconds":60,"skew":2}}`)
	u := h.SignUpMFA("/acme", "ada@example.com")
	m := coretest.MustStatus(t, u.Call("POST", "/auth/totp/device", map[string]any{"deviceName": "phone"}), http.StatusOK, "OK")
	uri := m["qrCodeString"].(string)
	if !strings.HasPrefix(uri, "otpauth://totp/Acme:ada@example.com?") || !strings.HasSuffix(uri, "&issuer=Acme&digits=8&period=60") {
		t.Fatalf("qrCodeString = %q", uri)
	}
	d := coretest.MustStatus(t, u.Call("GET", "/auth/totp/device/list", nil), http.StatusOK, "OK")["devices"].([]any)[0].(map[string]any)
	if d["period"] != 60.0 || d["skew"] != 2.0 {
		t.Fatalf("device = %v", d)
	}
	cfg := totp.Config{Issuer: "Acme", Digits: 8, Period: time.Minute, Skew: 2, Algorithm: totp.SHA1}
	// A code from two periods ago is still inside a skew of 2.
	code, err := cfg.Code(coretest.SecretOf(t, uri), h.Clock.Now().Add(-2*time.Minute))
	if err != nil || len(code) != 8 {
		t.Fatalf("code %q: %v", code, err)
	}
	coretest.MustStatus(t, u.Call("POST", "/auth/totp/device/verify", map[string]any{"deviceName": "phone", "totp": code}), http.StatusOK, "OK")
	u.WantV(true)

	// The device keeps its settings when the tenant changes them.
	h.PutTenantJSON("acme", `{"session":{"cookieSecure":false},"mfa":{"requirement":["totp"]},"totp":{"issuer":"Acme"}}`)
	h.Clock.Advance(time.Minute)
	s := u.SignIn()
	code, _ = cfg.Code(coretest.SecretOf(t, uri), h.Clock.Now())
	coretest.MustStatus(t, s.Call("POST", "/auth/totp/verify", map[string]any{"totp": code}), http.StatusOK, "OK")
}
