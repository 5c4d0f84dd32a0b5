package server_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/core/coretest"
	"github.com/twofold-dev/twofold/core/server"
)

// fuzzedRoutes are the endpoints an unauthenticated attacker reaches: the FDI bodies, the
// session endpoints (tokens from the Authorization header and cookies), the hosted pages'
// form posts and the admin API (with and without its key).
var fuzzedRoutes = []struct{ method, path string }{
	{"POST", "/auth/signup"}, {"POST", "/auth/signin"}, {"POST", "/auth/acme/signin"},
	{"POST", "/auth/signinup/code"}, {"POST", "/auth/signinup/code/resend"}, {"POST", "/auth/signinup/code/consume"},
	{"POST", "/auth/session/refresh"}, {"POST", "/auth/signout"}, {"GET", "/auth/mfa/info"}, {"PUT", "/auth/mfa/info"},
	{"POST", "/auth/totp/device"}, {"POST", "/auth/totp/verify"}, {"POST", "/auth/totp/device/verify"},
	{"POST", "/auth/user/password/reset/token"}, {"POST", "/auth/user/password/reset"}, {"POST", "/auth/user/email/verify"},
	{"GET", "/auth/signup/email/exists"}, {"POST", "/auth/signinup"}, {"POST", "/auth/recovery-codes/verify"},
	{"POST", "/auth/ui/action/signin"}, {"POST", "/auth/ui/action/signup"}, {"POST", "/auth/ui/action/totp/verify"},
	{"POST", "/auth/ui/action/code/send"}, {"POST", "/auth/ui/action/password/reset"},
	{"PUT", "/admin/v1/tenants/acme"}, {"POST", "/admin/v1/users/u1/sessions/revoke"},
}

// FuzzRequestsNeverCrashTheCore sends arbitrary bodies, tokens and cookies to every endpoint an
// attacker reaches. Nothing may panic or end in a server error: bad input gets a 4xx or an FDI
// status, never a 500.
func FuzzRequestsNeverCrashTheCore(f *testing.F) {
	ctx := context.Background()
	st, err := coretest.OpenStore(ctx, coretest.Database(f))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	srv, err := server.New(ctx, server.Options{Store: st, Issuer: "http://core.test/auth", AdminKey: coretest.AdminKey,
		Clock: func() time.Time { return now }, PasswordParams: coretest.CheapHashes, Outbound: coretest.LoopbackAllowed})
	if err != nil {
		f.Fatal(err)
	}
	seed := []struct {
		route              uint8
		body, auth, cookie string
		form, admin        bool
	}{
		{0, `{"formFields":[{"id":"email","value":"a@x.io"},{"id":"password","value":"secret123"}]}`, "", "", false, false},
		{1, `{"formFields":[{"id":"email","value":"a@x.io"},{"id":"password"}]}`, "", "", false, false},
		{3, `{"email":"a@x.io","phoneNumber":"+1"}`, "", "", false, false},
		{5, `{"preAuthSessionId":"x","linkCode":"y","deviceId":"z"}`, "", "", false, false},
		{6, ``, "Bearer eyJhbGciOiJSUzI1NiJ9.e30.", "sRefreshToken=%zz; sAccessToken=a.b.c", false, false},
		{11, `{"totp":123456}`, "Bearer a.b.c", "", false, false},
		{19, `email=a%40x.io&password=secret123&csrf=x.y`, "", "twofold-csrf=abc", true, false},
		{24, `{"firstFactors":["emailpassword"],"mfa":{"requirement":[{"oneOf":[]}]}}`, "", "", false, true},
		{24, `{"codeSending":{"windowSeconds":1e99},"session":{"accessTokenLifetimeSeconds":-1}}`, "", "", false, true},
	}
	for _, s := range seed {
		f.Add(s.route, s.body, s.auth, s.cookie, s.form, s.admin)
	}
	f.Fuzz(func(t *testing.T, route uint8, body, auth, cookie string, form, admin bool) {
		rt := fuzzedRoutes[int(route)%len(fuzzedRoutes)]
		req := httptest.NewRequest(rt.method, rt.path, bytes.NewReader([]byte(body)))
		req.RemoteAddr = "198.51.100.7:4000"
		req.Header.Set("Content-Type", "application/json")
		if form {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		switch {
		case admin:
			req.Header.Set("Authorization", "Bearer "+coretest.AdminKey)
		case auth != "":
			req.Header.Set("Authorization", auth)
		}
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if rec.Code >= http.StatusInternalServerError && rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("%s %s with body %q, Authorization %q, Cookie %q: %d %s", rt.method, rt.path, body, auth, cookie, rec.Code, rec.Body)
		}
	})
}
