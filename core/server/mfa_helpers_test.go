package server_test

import (
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/core/factors/totp"
)

const mfaPassword = "correct horse 1"

// mfaUser is a signed-in client in header mode that keeps the newest access token it is sent.
type mfaUser struct {
	h      *harness
	email  string
	tenant string // "" or "/<tenantId>"
	access string
	secret string // the TOTP secret of the device enrolled by enrolTOTP
}

// signUpMFA signs a new user up with email and password and returns the client.
func (h *harness) signUpMFA(tenantPath, email string) *mfaUser {
	h.t.Helper()
	r := h.signUp(tenantPath, email, mfaPassword)
	mustStatus(h.t, r, http.StatusOK, "OK")
	return &mfaUser{h: h, email: email, tenant: tenantPath, access: r.Header.Get("st-access-token")}
}

// signIn starts a new session for the same user (the password step only).
func (u *mfaUser) signIn() *mfaUser {
	u.h.t.Helper()
	r := u.h.do("POST", "/auth"+u.tenant+"/signin", form(u.email, mfaPassword))
	mustStatus(u.h.t, r, http.StatusOK, "OK")
	return &mfaUser{h: u.h, email: u.email, tenant: u.tenant, access: r.Header.Get("st-access-token"), secret: u.secret}
}

// call sends an authenticated request and keeps a new access token from the answer.
func (u *mfaUser) call(method, path string, body any) response {
	u.h.t.Helper()
	r := u.h.do(method, path, body, "Authorization", "Bearer "+u.access)
	if tok := r.Header.Get("st-access-token"); tok != "" {
		u.access = tok
	}
	return r
}

// claim returns the st-mfa claim of the newest access token.
func (u *mfaUser) claim() (completed map[string]any, v bool) {
	u.h.t.Helper()
	m, ok := payloadOf(u.h.t, u.access)["st-mfa"].(map[string]any)
	if !ok {
		u.h.t.Fatalf("access token has no st-mfa claim")
	}
	c, _ := m["c"].(map[string]any)
	return c, m["v"] == true
}

func (u *mfaUser) wantV(want bool) {
	u.h.t.Helper()
	if c, v := u.claim(); v != want {
		u.h.t.Fatalf("st-mfa.v = %v, want %v (c = %v)", v, want, c)
	}
}

// info calls PUT /auth/mfa/info and returns its factors.
func (u *mfaUser) info() (next, alreadySetup, allowed []string) {
	u.h.t.Helper()
	m := mustStatus(u.h.t, u.call("PUT", "/auth/mfa/info", nil), http.StatusOK, "OK")
	f := m["factors"].(map[string]any)
	return strs(f["next"]), strs(f["alreadySetup"]), strs(f["allowedToSetup"])
}

func (u *mfaUser) wantNext(want ...string) {
	u.h.t.Helper()
	next, _, _ := u.info()
	if !slices.Equal(next, want) && !(len(next) == 0 && len(want) == 0) {
		u.h.t.Fatalf("mfa/info next = %v, want %v", next, want)
	}
}

func strs(v any) []string {
	out := []string{}
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// code is what an authenticator app shows for secret at the harness's time.
func (u *mfaUser) code(secret string) string {
	u.h.t.Helper()
	c, err := totp.DefaultConfig().Code(secret, u.h.clock.Now())
	if err != nil {
		u.h.t.Fatal(err)
	}
	return c
}

// secretOf reads the secret from an otpauth:// URI, as an authenticator app does.
func secretOf(t *testing.T, uri string) string {
	t.Helper()
	p, err := url.Parse(uri)
	if err != nil || p.Scheme != "otpauth" {
		t.Fatalf("qrCodeString %q is not an otpauth URI", uri)
	}
	return p.Query().Get("secret")
}

// enrolTOTP creates and verifies a device and returns its secret.
func (u *mfaUser) enrolTOTP(name string) string {
	u.h.t.Helper()
	m := mustStatus(u.h.t, u.call("POST", "/auth/totp/device", map[string]any{"deviceName": name}), http.StatusOK, "OK")
	u.secret = secretOf(u.h.t, m["qrCodeString"].(string))
	mustStatus(u.h.t, u.call("POST", "/auth/totp/device/verify", map[string]any{"deviceName": name, "totp": u.code(u.secret)}), http.StatusOK, "OK")
	return u.secret
}

// verifyTOTP submits the current code after moving the clock to the next time step.
func (u *mfaUser) verifyTOTP() {
	u.h.t.Helper()
	u.h.clock.Advance(30 * time.Second)
	mustStatus(u.h.t, u.call("POST", "/auth/totp/verify", map[string]any{"totp": u.code(u.secret)}), http.StatusOK, "OK")
}

// recoveryCodes generates a set and returns it.
func (u *mfaUser) recoveryCodes() []string {
	u.h.t.Helper()
	m := mustStatus(u.h.t, u.call("POST", "/auth/recovery-codes", nil), http.StatusOK, "OK")
	return strs(m["codes"])
}

// wantClaimError checks a 403 invalid-claim answer with the exact reason.
func wantClaimError(t *testing.T, r response, reason string) {
	t.Helper()
	if r.Status != http.StatusForbidden {
		t.Fatalf("status = %d, want 403; body %s", r.Status, r.Body)
	}
	want := map[string]any{"message": "invalid claim", "claimValidationErrors": []any{
		map[string]any{"id": "st-mfa", "reason": map[string]any{"message": reason}}}}
	if got := r.json(t); !reflect.DeepEqual(got, want) {
		t.Fatalf("body = %s, want the invalid claim with reason %q", r.Body, reason)
	}
}

const (
	reasonAlreadySatisfiable = "Completed factors in the session does not satisfy the MFA requirements for auth"
	reasonNotInNextSet       = "Not allowed to setup factor that is not in the next set of unsatisfied factors"
	reasonNotSatisfied       = "MFA requirement for auth is not satisfied"
)

// mfaTenant creates tenant id with the given mfa block.
func (h *harness) mfaTenant(id, mfaJSON string) string {
	h.t.Helper()
	h.putTenant(id, `{"session":{"cookieSecure":false},"mfa":`+mfaJSON+`}`)
	return "/" + id
}

func hasAll(got []string, want ...string) bool {
	for _, w := range want {
		if !slices.Contains(got, w) {
			return false
		}
	}
	return true
}
