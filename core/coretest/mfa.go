package coretest

import (
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/core/factors/totp"
)

// MFAPassword is the password of every user SignUpMFA signs up.
const MFAPassword = "correct horse 1"

// MFAUser is a signed-in client in header mode that keeps the newest access token it is sent.
type MFAUser struct {
	Core   *Core
	Email  string
	Tenant string // "" or "/<tenantId>"
	Access string
	Secret string // the TOTP secret of the device enrolled by EnrolTOTP
}

// SignUpMFA signs a new user up with email and password and returns the client.
func (c *Core) SignUpMFA(tenantPath, email string) *MFAUser {
	c.T.Helper()
	r := c.SignUp(tenantPath, email, MFAPassword)
	MustStatus(c.T, r, http.StatusOK, "OK")
	return &MFAUser{Core: c, Email: email, Tenant: tenantPath, Access: r.Header.Get("st-access-token")}
}

// SignIn starts a new session for the same user (the password step only).
func (u *MFAUser) SignIn() *MFAUser {
	u.Core.T.Helper()
	r := u.Core.Do("POST", "/auth"+u.Tenant+"/signin", Form(u.Email, MFAPassword))
	MustStatus(u.Core.T, r, http.StatusOK, "OK")
	return &MFAUser{Core: u.Core, Email: u.Email, Tenant: u.Tenant, Access: r.Header.Get("st-access-token"), Secret: u.Secret}
}

// Call sends an authenticated request and keeps a new access token from the answer.
func (u *MFAUser) Call(method, path string, body any) Response {
	u.Core.T.Helper()
	r := u.Core.Do(method, path, body, "Authorization", "Bearer "+u.Access)
	if tok := r.Header.Get("st-access-token"); tok != "" {
		u.Access = tok
	}
	return r
}

// Claim returns the st-mfa claim of the newest access token.
func (u *MFAUser) Claim() (completed map[string]any, v bool) {
	u.Core.T.Helper()
	m, ok := PayloadOf(u.Core.T, u.Access)["st-mfa"].(map[string]any)
	if !ok {
		u.Core.T.Fatalf("access token has no st-mfa claim")
	}
	c, _ := m["c"].(map[string]any)
	return c, m["v"] == true
}

// WantV fails the test unless the newest access token's st-mfa.v is want.
func (u *MFAUser) WantV(want bool) {
	u.Core.T.Helper()
	if c, v := u.Claim(); v != want {
		u.Core.T.Fatalf("st-mfa.v = %v, want %v (c = %v)", v, want, c)
	}
}

// Info calls PUT /auth/mfa/info and returns its factors.
func (u *MFAUser) Info() (next, alreadySetup, allowed []string) {
	u.Core.T.Helper()
	m := MustStatus(u.Core.T, u.Call("PUT", "/auth/mfa/info", nil), http.StatusOK, "OK")
	f := m["factors"].(map[string]any)
	return Strs(f["next"]), Strs(f["alreadySetup"]), Strs(f["allowedToSetup"])
}

// WantNext fails the test unless mfa/info's next factors are want.
func (u *MFAUser) WantNext(want ...string) {
	u.Core.T.Helper()
	next, _, _ := u.Info()
	if !slices.Equal(next, want) && !(len(next) == 0 && len(want) == 0) {
		u.Core.T.Fatalf("mfa/info next = %v, want %v", next, want)
	}
}

// Strs converts a decoded JSON array of strings.
func Strs(v any) []string {
	out := []string{}
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// Code is what an authenticator app shows for secret at the core's time.
func (u *MFAUser) Code(secret string) string {
	u.Core.T.Helper()
	c, err := totp.DefaultConfig().Code(secret, u.Core.Clock.Now())
	if err != nil {
		u.Core.T.Fatal(err)
	}
	return c
}

// SecretOf reads the secret from an otpauth:// URI, as an authenticator app does.
func SecretOf(t testing.TB, uri string) string {
	t.Helper()
	p, err := url.Parse(uri)
	if err != nil || p.Scheme != "otpauth" {
		t.Fatalf("qrCodeString %q is not an otpauth URI", uri)
	}
	return p.Query().Get("secret")
}

// EnrolTOTP creates and verifies a device and returns its secret.
func (u *MFAUser) EnrolTOTP(name string) string {
	u.Core.T.Helper()
	m := MustStatus(u.Core.T, u.Call("POST", "/auth/totp/device", map[string]any{"deviceName": name}), http.StatusOK, "OK")
	u.Secret = SecretOf(u.Core.T, m["qrCodeString"].(string))
	MustStatus(u.Core.T, u.Call("POST", "/auth/totp/device/verify", map[string]any{"deviceName": name, "totp": u.Code(u.Secret)}), http.StatusOK, "OK")
	return u.Secret
}

// VerifyTOTP submits the current code after moving the clock to the next time step.
func (u *MFAUser) VerifyTOTP() {
	u.Core.T.Helper()
	u.Core.Clock.Advance(30 * time.Second)
	MustStatus(u.Core.T, u.Call("POST", "/auth/totp/verify", map[string]any{"totp": u.Code(u.Secret)}), http.StatusOK, "OK")
}

// RecoveryCodes generates a set and returns it.
func (u *MFAUser) RecoveryCodes() []string {
	u.Core.T.Helper()
	m := MustStatus(u.Core.T, u.Call("POST", "/auth/recovery-codes", nil), http.StatusOK, "OK")
	return Strs(m["codes"])
}

// WantClaimError checks a 403 invalid-claim answer with the exact reason.
func WantClaimError(t testing.TB, r Response, reason string) {
	t.Helper()
	if r.Status != http.StatusForbidden {
		t.Fatalf("status = %d, want 403; body %s", r.Status, r.Body)
	}
	want := map[string]any{"message": "invalid claim", "claimValidationErrors": []any{
		map[string]any{"id": "st-mfa", "reason": map[string]any{"message": reason}}}}
	if got := r.JSON(t); !reflect.DeepEqual(got, want) {
		t.Fatalf("body = %s, want the invalid claim with reason %q", r.Body, reason)
	}
}

// The reasons of SuperTokens' 403 invalid-claim answers (WantClaimError).
const (
	ReasonAlreadySatisfiable = "Completed factors in the session does not satisfy the MFA requirements for auth"
	ReasonNotInNextSet       = "Not allowed to setup factor that is not in the next set of unsatisfied factors"
	ReasonNotSatisfied       = "MFA requirement for auth is not satisfied"
)

// MFATenant creates tenant id with the given mfa block.
func (c *Core) MFATenant(id, mfaJSON string) string {
	c.T.Helper()
	c.PutTenantJSON(id, `{"session":{"cookieSecure":false},"mfa":`+mfaJSON+`}`)
	return "/" + id
}

// HasAll reports whether got holds every one of want.
func HasAll(got []string, want ...string) bool {
	for _, w := range want {
		if !slices.Contains(got, w) {
			return false
		}
	}
	return true
}
