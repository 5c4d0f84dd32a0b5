package adminapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/go-logr/logr/funcr"
	_ "modernc.org/sqlite"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/coretest"
	"github.com/twofold-dev/twofold/core/server"
	"github.com/twofold-dev/twofold/core/session"
	"github.com/twofold-dev/twofold/core/store"
	"github.com/twofold-dev/twofold/core/store/postgres"
	"github.com/twofold-dev/twofold/core/store/sqlite"
	"github.com/twofold-dev/twofold/test/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// stores are the two stores every test runs on.
var stores = []struct {
	name string
	open func(t *testing.T) (store.Store, string)
}{
	{"sqlite", func(t *testing.T) (store.Store, string) {
		path := filepath.Join(t.TempDir(), "twofold.db")
		st, err := sqlite.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st, path
	}},
	{"postgres", func(t *testing.T) (store.Store, string) {
		st, err := postgres.Open(context.Background(), pgtest.Schema(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st, ""
	}},
}

// h is a core with a tenant that requires TOTP, and a step-up rule on POST /admin.
type h struct {
	t    *testing.T
	c    *coretest.Core
	st   store.Store
	path string // the SQLite file, empty on PostgreSQL
	logs *coretest.Logs
}

func start(t *testing.T, open func(t *testing.T) (store.Store, string)) *h {
	st, path := open(t)
	logs := &coretest.Logs{}
	c := coretest.Start(t, coretest.Options{Store: st, Server: func(o *server.Options) {
		o.Logger = funcr.NewJSON(func(obj string) { logs.Add("", obj) }, funcr.Options{})
	}})
	c.PutTenant(contract.PublicTenantID, contract.TenantConfig{FirstFactors: []string{mfa.EmailPassword},
		MFA: contract.MFA{Requirement: mfa.Requirement{{Factor: mfa.TOTP}}, Enforcement: contract.EnforcementRequired,
			Routes: []contract.Route{{PathPrefix: "/admin", Methods: []string{"POST"}, Requirement: mfa.Requirement{{Factor: mfa.TOTP}}, MaxFactorAgeSeconds: 300}}}})
	return &h{t: t, c: c, st: st, path: path, logs: logs}
}

type answer struct {
	status int
	body   []byte
	header http.Header
}

func (a answer) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("decode %s: %v", a.body, err)
	}
}

func (h *h) do(method, path, key string, body any, header ...string) answer {
	h.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, h.c.TS.URL+path, r)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, body: b, header: resp.Header}
}

func (h *h) admin(method, path string, body any) answer {
	h.t.Helper()
	return h.do(method, path, coretest.AdminKey, body)
}

func form(email, password string) map[string]any {
	return map[string]any{"formFields": []map[string]string{{"id": "email", "value": email}, {"id": "password", "value": password}}}
}

// signIn signs in (or up) with a password and returns the FDI status and the tokens.
func (h *h) signIn(path, email, password string) (status, refresh string) {
	h.t.Helper()
	a := h.do("POST", path, "", form(email, password), "st-auth-mode", "header")
	var body struct{ Status string }
	a.json(h.t, &body)
	return body.Status, a.header.Get("st-refresh-token")
}

// withTOTP gives the user a verified TOTP device and recovery codes, as if they had set
// them up.
func (h *h) withTOTP(userID string) {
	h.t.Helper()
	ctx := context.Background()
	if err := h.st.CreateTOTPDevice(ctx, store.TOTPDevice{UserID: userID, Name: "phone", Secret: "JBSWY3DPEHPK3PXP", Digits: 6, Period: 30, Skew: 1, CreatedAt: h.c.Clock.Now()}); err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.st.VerifyTOTP(ctx, userID, "phone", func(store.AttemptLimit, []store.TOTPDevice) (store.TOTPAttempt, error) {
		return store.TOTPAttempt{Device: "phone", Step: 1}, nil
	}); err != nil {
		h.t.Fatal(err)
	}
	if err := h.st.ReplaceRecoveryCodes(ctx, userID, [][]byte{{1}, {2}}, h.c.Clock.Now()); err != nil {
		h.t.Fatal(err)
	}
}

func (h *h) userID(email string) string {
	h.t.Helper()
	var list contract.AdminUserList
	a := h.admin("GET", "/admin/v1/tenants/public/users?email="+email, nil)
	if a.status != 200 {
		h.t.Fatalf("find %s = %d %s", email, a.status, a.body)
	}
	a.json(h.t, &list)
	if len(list.Users) != 1 {
		h.t.Fatalf("find %s = %s", email, a.body)
	}
	return list.Users[0].UserID
}

func TestUserAdministration(t *testing.T) {
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			t.Run("finding users by email, user id and page", func(t *testing.T) {
				h := start(t, s.open)
				for i := range 3 {
					if st, _ := h.signIn("/auth/signup", fmt.Sprintf("u%d@example.com", i), "secret123"); st != "OK" {
						t.Fatalf("sign-up = %s", st)
					}
				}
				id := h.userID("U1@example.com")
				var list contract.AdminUserList
				h.admin("GET", "/admin/v1/tenants/public/users?userId="+id, nil).json(t, &list)
				if len(list.Users) != 1 || list.Users[0].Emails[0] != "u1@example.com" {
					t.Fatalf("find by user id = %+v", list)
				}
				for _, tc := range []struct {
					name, query string
					status      int
					field       string
				}{
					{"no identifier is refused", "", 400, ""},
					{"two identifiers are refused", "?email=a@x.io&userId=u", 400, ""},
					{"a third-party id without its user id is refused", "?thirdPartyId=google", 400, "thirdPartyUserId"},
					{"a page of more than a hundred is refused", "?email=a@x.io&limit=101", 400, "limit"},
				} {
					t.Run(tc.name, func(t *testing.T) {
						a := h.admin("GET", "/admin/v1/tenants/public/users"+tc.query, nil)
						var e struct{ Message, Field string }
						a.json(t, &e)
						if a.status != tc.status || e.Field != tc.field || e.Message == "" {
							t.Fatalf("answer = %d %s", a.status, a.body)
						}
					})
				}
				if a := h.admin("GET", "/admin/v1/tenants/nope/users?email=a@x.io", nil); a.status != 404 {
					t.Fatalf("an unknown tenant = %d %s", a.status, a.body)
				}
			})

			t.Run("showing a user lists factors without secrets, lockouts and sessions", func(t *testing.T) {
				h := start(t, s.open)
				h.signIn("/auth/signup", "ana@example.com", "secret123")
				id := h.userID("ana@example.com")
				h.withTOTP(id)
				a := h.admin("GET", "/admin/v1/users/"+id, nil)
				var d contract.AdminUserDetail
				a.json(t, &d)
				if a.status != 200 || len(d.Factors.TOTPDevices) != 1 || !d.Factors.TOTPDevices[0].Verified ||
					d.Factors.RecoveryCodes.Unused != 2 || !slices.Contains(d.Factors.SetUp, mfa.TOTP) || len(d.Sessions) != 1 {
					t.Fatalf("show = %d %s", a.status, a.body)
				}
				if bytes.Contains(a.body, []byte("JBSWY3DPEHPK3PXP")) {
					t.Fatal("the TOTP secret is in the answer")
				}
				if a := h.admin("GET", "/admin/v1/users/ghost", nil); a.status != 404 || !strings.Contains(string(a.body), `"field":"userId"`) {
					t.Fatalf("an unknown user = %d %s", a.status, a.body)
				}
			})

			t.Run("a locked-out user signs in again once the lockouts are cleared", func(t *testing.T) {
				h := start(t, s.open)
				h.signIn("/auth/signup", "ana@example.com", "secret123")
				id := h.userID("ana@example.com")
				for range 10 {
					h.signIn("/auth/signin", "ana@example.com", "wrong-password")
				}
				if st, _ := h.signIn("/auth/signin", "ana@example.com", "secret123"); st == "OK" {
					t.Fatal("the locked account signed in")
				}
				var d contract.AdminUserDetail
				h.admin("GET", "/admin/v1/users/"+id, nil).json(t, &d)
				if len(d.Lockouts.SignIn) != 1 || !d.Lockouts.SignIn[0].Locked {
					t.Fatalf("lockouts = %+v", d.Lockouts)
				}
				var cleared contract.AdminLockoutsCleared
				if a := h.admin("POST", "/admin/v1/users/"+id+"/lockouts/clear", nil); a.status != 200 {
					t.Fatalf("clear = %d %s", a.status, a.body)
				} else {
					a.json(t, &cleared)
				}
				if !cleared.Cleared.SignIn[0].Locked {
					t.Fatalf("cleared = %+v", cleared)
				}
				if st, _ := h.signIn("/auth/signin", "ana@example.com", "secret123"); st != "OK" {
					t.Fatalf("sign-in after unlock = %s", st)
				}
			})

			t.Run("after an MFA reset the next sign-in has to set up TOTP again", func(t *testing.T) {
				h := start(t, s.open)
				_, refresh := h.signIn("/auth/signup", "ana@example.com", "secret123")
				id := h.userID("ana@example.com")
				h.withTOTP(id)
				var x contract.AdminExplanation
				h.admin("GET", "/admin/v1/users/"+id+"/explain", nil).json(t, &x)
				if x.MustSetUp || !slices.Equal(x.Next, []string{mfa.TOTP, mfa.RecoveryCode}) {
					t.Fatalf("explain before the reset = %+v", x)
				}
				for _, tc := range []struct {
					name  string
					body  any
					field string
				}{
					{"an unknown factor is refused", map[string]any{"factors": []string{"sms"}}, "factors[0]"},
					{"an unknown session handling is refused", map[string]any{"sessions": "keep"}, "sessions"},
				} {
					t.Run(tc.name, func(t *testing.T) {
						a := h.admin("POST", "/admin/v1/users/"+id+"/mfa/reset", tc.body)
						if a.status != 400 || !strings.Contains(string(a.body), `"field":"`+tc.field+`"`) {
							t.Fatalf("answer = %d %s", a.status, a.body)
						}
					})
				}
				a := h.admin("POST", "/admin/v1/users/"+id+"/mfa/reset", map[string]any{"factors": []string{"totp", "recovery-code"}})
				var r contract.AdminMFAReset
				a.json(t, &r)
				if a.status != 200 || r.RemovedTOTPDevices != 1 || r.RemovedRecoveryCodes != 2 || r.RevokedSessions != 1 {
					t.Fatalf("reset = %d %s", a.status, a.body)
				}
				if a := h.do("POST", "/auth/session/refresh", "", nil, "Authorization", "Bearer "+refresh); a.status != 401 {
					t.Fatalf("refresh of a session the reset revoked = %d", a.status)
				}
				if st, _ := h.signIn("/auth/signin", "ana@example.com", "secret123"); st != "OK" {
					t.Fatalf("sign-in after the reset = %s", st)
				}
				h.admin("GET", "/admin/v1/users/"+id+"/explain?path=/admin/users&method=post", nil).json(t, &x)
				if !x.MustSetUp || len(x.Sessions) != 1 || x.Sessions[0].V || x.Sessions[0].Verdict != "mfa-incomplete" ||
					x.Route == nil || x.Route.Rule == nil || x.Route.Rule.PathPrefix != "/admin" {
					t.Fatalf("explain after the reset = %+v", x)
				}
			})

			t.Run("refreshing sessions on a reset takes the factors out of their claims", func(t *testing.T) {
				h := start(t, s.open)
				h.signIn("/auth/signup", "ana@example.com", "secret123")
				id := h.userID("ana@example.com")
				h.withTOTP(id)
				// The session completed TOTP.
				live, _ := h.st.LiveUserSessions(context.Background(), id, h.c.Clock.Now())
				if _, err := h.st.UpdateSession(context.Background(), live[0].Handle, func(tx store.SessionTx) error {
					tx.SetClaims(json.RawMessage(fmt.Sprintf(`{"st-mfa":{"c":{"emailpassword":%d,"totp":%d},"v":true}}`, h.c.Clock.Now().Unix(), h.c.Clock.Now().Unix())))
					return nil
				}); err != nil {
					t.Fatal(err)
				}
				var r contract.AdminMFAReset
				h.admin("POST", "/admin/v1/users/"+id+"/mfa/reset", map[string]any{"factors": []string{"totp"}, "sessions": "refresh"}).json(t, &r)
				if r.RefreshedSessions != 1 || r.RevokedSessions != 0 {
					t.Fatalf("reset = %+v", r)
				}
				var d contract.AdminUserDetail
				h.admin("GET", "/admin/v1/users/"+id, nil).json(t, &d)
				if len(d.Sessions) != 1 || d.Sessions[0].V || d.Sessions[0].Completed[mfa.TOTP] != 0 {
					t.Fatalf("session after the reset = %+v", d.Sessions)
				}
			})

			t.Run("a disabled user cannot sign in or refresh until enabled", func(t *testing.T) {
				h := start(t, s.open)
				_, refresh := h.signIn("/auth/signup", "ana@example.com", "secret123")
				id := h.userID("ana@example.com")
				var st contract.AdminUserStatus
				h.admin("POST", "/admin/v1/users/"+id+"/disable", nil).json(t, &st)
				if !st.Disabled || st.RevokedSessions != 1 {
					t.Fatalf("disable = %+v", st)
				}
				if a := h.do("POST", "/auth/session/refresh", "", nil, "Authorization", "Bearer "+refresh); a.status != 401 {
					t.Fatalf("refresh of a disabled user = %d", a.status)
				}
				if got, _ := h.signIn("/auth/signin", "ana@example.com", "secret123"); got != contract.StatusSignInNotAllowed {
					t.Fatalf("sign-in of a disabled user = %s", got)
				}
				if !strings.Contains(h.logs.String(), `"outcome":"user_disabled"`) {
					t.Fatal("no Refused sign-in event for the disabled user")
				}
				// Passwordless codes, passkeys and the hosted pages all start sessions through
				// session.Manager, which refuses the disabled user whatever the factor.
				if _, _, err := h.c.Srv.Sessions.Create(context.Background(), "public", id, id, nil); !errors.Is(err, session.ErrUserDisabled) {
					t.Fatalf("a session for a disabled user = %v, want ErrUserDisabled", err)
				}
				h.admin("POST", "/admin/v1/users/"+id+"/enable", nil).json(t, &st)
				if st.Disabled {
					t.Fatalf("enable = %+v", st)
				}
				if got, _ := h.signIn("/auth/signin", "ana@example.com", "secret123"); got != "OK" {
					t.Fatalf("sign-in after enabling = %s", got)
				}
			})

			t.Run("deleting a user erases every row that names it", func(t *testing.T) {
				h := start(t, s.open)
				h.signIn("/auth/signup", "ana@example.com", "secret123")
				h.signIn("/auth/signup", "bo@example.com", "secret123")
				id := h.userID("ana@example.com")
				h.withTOTP(id)
				h.signIn("/auth/signin", "ana@example.com", "wrong-password")
				var del contract.AdminUserDeleted
				a := h.admin("DELETE", "/admin/v1/users/"+id, nil)
				a.json(t, &del)
				if a.status != 200 || del.UserID != id || del.LoginMethods != 1 {
					t.Fatalf("delete = %d %s", a.status, a.body)
				}
				if a := h.admin("GET", "/admin/v1/users/"+id, nil); a.status != 404 {
					t.Fatalf("show after delete = %d", a.status)
				}
				if a := h.admin("DELETE", "/admin/v1/users/"+id, nil); a.status != 404 {
					t.Fatalf("delete twice = %d", a.status)
				}
				h.userID("bo@example.com")
				if h.path != "" {
					if rows := coretest.RowsNaming(t, h.path, id, "ana@example.com"); len(rows) > 0 {
						t.Fatalf("rows still name the erased user: %v", rows)
					}
				}
			})

			t.Run("named admin keys act under their name until revoked", func(t *testing.T) {
				h := start(t, s.open)
				h.signIn("/auth/signup", "ana@example.com", "secret123")
				var k contract.AdminKeyCreated
				a := h.admin("POST", "/admin/v1/admin-keys", map[string]string{"name": "helpdesk"})
				a.json(t, &k)
				if a.status != 201 || k.Key == "" || k.Name != "helpdesk" {
					t.Fatalf("create key = %d %s", a.status, a.body)
				}
				if a := h.admin("POST", "/admin/v1/admin-keys", map[string]string{"name": "helpdesk"}); a.status != 409 {
					t.Fatalf("a second key of that name = %d", a.status)
				}
				if a := h.admin("POST", "/admin/v1/admin-keys", map[string]string{"name": "Help Desk"}); a.status != 400 {
					t.Fatalf("a bad name = %d", a.status)
				}
				if a := h.do("GET", "/admin/v1/tenants/public/users?email=ana@example.com", k.Key, nil); a.status != 200 {
					t.Fatalf("find with the named key = %d %s", a.status, a.body)
				}
				if !strings.Contains(h.logs.String(), `"by":"helpdesk"`) {
					t.Fatalf("the audit trail does not name the key:\n%s", h.logs.String())
				}
				var list contract.AdminKeyList
				h.admin("GET", "/admin/v1/admin-keys", nil).json(t, &list)
				if len(list.Keys) != 2 || list.Keys[0].Name != "default" || list.Keys[1].Name != "helpdesk" {
					t.Fatalf("keys = %+v", list)
				}
				if bytes.Contains(h.admin("GET", "/admin/v1/admin-keys", nil).body, []byte(k.Key)) {
					t.Fatal("the key list shows the key")
				}
				if a := h.admin("DELETE", "/admin/v1/admin-keys/default", nil); a.status != 400 {
					t.Fatalf("revoking the default key = %d", a.status)
				}
				if a := h.admin("DELETE", "/admin/v1/admin-keys/helpdesk", nil); a.status != 200 {
					t.Fatalf("revoke = %d %s", a.status, a.body)
				}
				if a := h.do("GET", "/admin/v1/tenants/public/users?email=ana@example.com", k.Key, nil); a.status != 401 {
					t.Fatalf("find with a revoked key = %d", a.status)
				}
			})
		})
	}
}
