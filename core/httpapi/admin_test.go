package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/core/coretest"
)

func TestAdminAPIRefusesWithoutTheKey(t *testing.T) {
	h := coretest.New(t)
	tests := []struct {
		name    string
		headers []string
	}{
		{"no Authorization header", nil},
		{"a wrong key", []string{"Authorization", "Bearer wrong"}},
		{"the key without the Bearer scheme", []string{"Authorization", coretest.AdminKey}},
		{"a key that only starts like the right one", []string{"Authorization", "Bearer " + coretest.AdminKey[:5]}},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is 401", func(t *testing.T) {
			before := h.Snapshot()
			r := h.Do("PUT", "/admin/v1/tenants/acme", `{}`, tt.headers...)
			if r.Status != 401 || !strings.Contains(r.JSON(t)["message"].(string), "admin key") {
				t.Fatalf("got %d %s", r.Status, r.Body)
			}
			if h.Snapshot() != before {
				t.Fatalf("an unauthenticated admin request changed the store")
			}
		})
	}
	t.Run("a core started without a key serves no admin API at all", func(t *testing.T) {
		off := coretest.New(t, coretest.WithoutAdminKey())
		r := off.Do("GET", "/admin/v1/tenants", nil, "Authorization", "Bearer ")
		if r.Status != 404 || !strings.Contains(r.JSON(t)["message"].(string), "the admin API is off") {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
		coretest.MustStatus(t, off.Do("GET", "/auth/loginmethods", nil), 200, "OK")
	})
}

func TestAdminTenantLifecycle(t *testing.T) {
	h := coretest.New(t)
	cfg := `{"firstFactors":["emailpassword","thirdparty"],
		"thirdPartyProviders":[{"id":"google","type":"google","clientId":"cid","clientSecret":"s3cr3t"}],
		"mfa":{"requirement":["totp"],"enforcement":"Required"}}`
	var want contract.TenantConfig
	json.Unmarshal([]byte(cfg), &want)

	r := h.AdminDo("PUT", "/admin/v1/tenants/acme", cfg)
	if r.Status != http.StatusCreated {
		t.Fatalf("create = %d %s", r.Status, r.Body)
	}
	var state contract.TenantState
	json.Unmarshal(r.Body, &state)
	t.Run("creation answers version 1 and the hash a controller computes itself", func(t *testing.T) {
		if state.TenantID != "acme" || state.ConfigVersion != 1 || state.ConfigHash != want.Hash() {
			t.Fatalf("state = %+v, want hash %s", state, want.Hash())
		}
		if _, err := time.Parse(time.RFC3339, state.UpdatedAt); err != nil {
			t.Fatalf("updatedAt %q: %v", state.UpdatedAt, err)
		}
	})
	t.Run("no answer ever carries the client secret", func(t *testing.T) {
		for _, body := range [][]byte{r.Body, h.AdminDo("GET", "/admin/v1/tenants/acme", nil).Body, h.AdminDo("GET", "/admin/v1/tenants", nil).Body, h.Do("GET", "/auth/acme/loginmethods", nil).Body} {
			if strings.Contains(string(body), "s3cr3t") {
				t.Fatalf("secret leaked: %s", body)
			}
		}
		if !strings.Contains(string(r.Body), contract.Redacted) {
			t.Fatalf("the secret is not shown as redacted: %s", r.Body)
		}
	})
	t.Run("putting the same configuration again keeps the version", func(t *testing.T) {
		before := h.Snapshot()
		r := h.AdminDo("PUT", "/admin/v1/tenants/acme", cfg)
		var again contract.TenantState
		json.Unmarshal(r.Body, &again)
		if r.Status != 200 || again.ConfigVersion != 1 || again.ConfigHash != state.ConfigHash {
			t.Fatalf("second PUT = %d %+v", r.Status, again)
		}
		if h.Snapshot() != before {
			t.Fatalf("an idempotent PUT changed the store")
		}
	})
	t.Run("a changed secret is a new version", func(t *testing.T) {
		r := h.AdminDo("PUT", "/admin/v1/tenants/acme", strings.Replace(cfg, "s3cr3t", "rotated", 1))
		var next contract.TenantState
		json.Unmarshal(r.Body, &next)
		if r.Status != 200 || next.ConfigVersion != 2 || next.ConfigHash == state.ConfigHash {
			t.Fatalf("PUT = %d %+v", r.Status, next)
		}
	})
	t.Run("the tenant list is ordered by id and includes public", func(t *testing.T) {
		h.PutTenantJSON("beta", `{}`)
		var list contract.TenantList
		json.Unmarshal(h.AdminDo("GET", "/admin/v1/tenants", nil).Body, &list)
		var ids []string
		for _, s := range list.Tenants {
			ids = append(ids, s.TenantID)
		}
		if strings.Join(ids, ",") != "acme,beta,public" {
			t.Fatalf("ids = %v", ids)
		}
	})
	t.Run("deleting keeps users unless asked and then the tenant is unknown", func(t *testing.T) {
		coretest.MustStatus(t, h.SignUp("/beta", "u@example.com", "secret123"), 200, "OK")
		if r := h.AdminDo("DELETE", "/admin/v1/tenants/beta", nil); r.Status != 204 {
			t.Fatalf("delete = %d %s", r.Status, r.Body)
		}
		if r := h.AdminDo("GET", "/admin/v1/tenants/beta", nil); r.Status != 404 {
			t.Fatalf("get after delete = %d", r.Status)
		}
		if r := h.Do("POST", "/auth/beta/signin", coretest.Form("u@example.com", "secret123")); r.Status != 404 {
			t.Fatalf("sign-in on a deleted tenant = %d", r.Status)
		}
		h.PutTenantJSON("beta", `{}`)
		coretest.MustStatus(t, h.Do("POST", "/auth/beta/signin", coretest.Form("u@example.com", "secret123")), 200, "OK")
		if r := h.AdminDo("DELETE", "/admin/v1/tenants/beta?deleteUsers=true", nil); r.Status != 204 {
			t.Fatalf("delete with users = %d", r.Status)
		}
		h.PutTenantJSON("beta", `{}`)
		coretest.MustStatus(t, h.Do("POST", "/auth/beta/signin", coretest.Form("u@example.com", "secret123")), 200, "WRONG_CREDENTIALS_ERROR")
	})
	t.Run("deleting an unknown tenant is 404", func(t *testing.T) {
		if r := h.AdminDo("DELETE", "/admin/v1/tenants/nope", nil); r.Status != 404 {
			t.Fatalf("got %d", r.Status)
		}
	})
	t.Run("a bad deleteUsers value is refused", func(t *testing.T) {
		if r := h.AdminDo("DELETE", "/admin/v1/tenants/acme?deleteUsers=yes-please", nil); r.Status != 400 || r.JSON(t)["field"] != "deleteUsers" {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
	})
	t.Run("the public tenant is reset, not deleted", func(t *testing.T) {
		h.PutTenantJSON("public", `{"mfa":{"requirement":["totp"]}}`)
		if r := h.AdminDo("DELETE", "/admin/v1/tenants/public", nil); r.Status != 204 {
			t.Fatalf("got %d", r.Status)
		}
		var st contract.TenantState
		json.Unmarshal(h.AdminDo("GET", "/admin/v1/tenants/public", nil).Body, &st)
		if len(st.Config.MFA.Requirement) != 0 || st.ConfigHash != (contract.TenantConfig{}).Hash() {
			t.Fatalf("public after reset = %+v", st)
		}
		if r := h.AdminDo("DELETE", "/admin/v1/tenants/public?deleteUsers=true", nil); r.Status != 400 {
			t.Fatalf("deleting public's users = %d", r.Status)
		}
	})
}

func TestAdminRevokesSessions(t *testing.T) {
	h := coretest.New(t)
	first := h.SignUp("", "a@example.com", "secret123")
	user := first.JSON(t)["user"].(map[string]any)["id"].(string)
	second := h.Do("POST", "/auth/signin", coretest.Form("a@example.com", "secret123"))
	other := h.SignUp("", "b@example.com", "secret123")

	t.Run("all sessions of a user are revoked and counted", func(t *testing.T) {
		r := h.AdminDo("POST", "/admin/v1/users/"+user+"/sessions/revoke", nil)
		if r.Status != 200 || r.JSON(t)["revoked"] != float64(2) {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
		for _, s := range []coretest.Response{first, second} {
			if r := h.Do("POST", "/auth/session/refresh", nil, "Authorization", "Bearer "+s.Header.Get("st-refresh-token")); r.Status != 401 {
				t.Fatalf("a revoked session refreshed: %d", r.Status)
			}
		}
		if r := h.Do("POST", "/auth/session/refresh", nil, "Authorization", "Bearer "+other.Header.Get("st-refresh-token")); r.Status != 200 {
			t.Fatalf("another user's session was hit: %d", r.Status)
		}
	})
	t.Run("an unknown user is 404", func(t *testing.T) {
		if r := h.AdminDo("POST", "/admin/v1/users/nobody/sessions/revoke", nil); r.Status != 404 {
			t.Fatalf("got %d", r.Status)
		}
	})
	t.Run("one session is revoked by handle and listed in the feed", func(t *testing.T) {
		handle := coretest.PayloadOf(t, other.Header.Get("st-access-token"))["sessionHandle"].(string)
		if r := h.AdminDo("DELETE", "/admin/v1/sessions/"+handle, nil); r.Status != 204 {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
		if r := h.AdminDo("DELETE", "/admin/v1/sessions/unknown-handle", nil); r.Status != 404 {
			t.Fatalf("unknown handle = %d", r.Status)
		}
		feed := h.Do("GET", "/auth/public/enforcement", nil).JSON(t)
		if !strings.Contains(mustJSON(t, feed["revokedSessions"]), contract.SessionHandleHash(handle)) {
			t.Fatalf("feed lacks the hash of %s: %v", handle, feed["revokedSessions"])
		}
	})
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestEnforcementFeed(t *testing.T) {
	h := coretest.New(t)
	h.PutTenantJSON("acme", `{"session":{"accessTokenLifetimeSeconds":600},"mfa":{"requirement":["totp"],"maxFactorAgeSeconds":3600,
		"routes":[{"pathPrefix":"/admin","methods":["POST"],"requirement":["totp"],"maxFactorAgeSeconds":300},{"pathPrefix":"/healthz","public":true}]}}`)
	r := h.Do("GET", "/auth/acme/enforcement", nil)
	var feed contract.Enforcement
	if err := json.Unmarshal(r.Body, &feed); err != nil {
		t.Fatal(err)
	}
	etag := r.Header.Get("ETag")
	t.Run("the feed carries the tenant's policy and a strong ETag", func(t *testing.T) {
		if feed.V != contract.EnforcementVersion || feed.TenantID != "acme" || feed.ConfigVersion != 1 || feed.Issuer != h.Srv.Sessions.Issuer() ||
			feed.AccessTokenLifetimeSeconds != 600 || len(feed.MFA.Requirement) != 1 || len(feed.MFA.Routes) != 2 || feed.MFA.MaxFactorAgeSeconds != 3600 {
			t.Fatalf("feed = %+v", feed)
		}
		if !strings.HasPrefix(etag, `"`) || strings.HasPrefix(etag, "W/") {
			t.Fatalf("ETag = %q", etag)
		}
	})
	t.Run("a matching If-None-Match gets 304 and no body", func(t *testing.T) {
		r := h.Do("GET", "/auth/acme/enforcement", nil, "If-None-Match", etag)
		if r.Status != 304 || len(r.Body) != 0 {
			t.Fatalf("got %d %q", r.Status, r.Body)
		}
	})
	t.Run("a revocation changes the ETag and lists the session until tokens expire", func(t *testing.T) {
		s := h.SignUp("/acme", "a@example.com", "secret123")
		handle := coretest.PayloadOf(t, s.Header.Get("st-access-token"))["sessionHandle"].(string)
		coretest.MustStatus(t, h.Do("POST", "/auth/signout", nil, "Authorization", "Bearer "+s.Header.Get("st-access-token")), 200, "OK")
		r := h.Do("GET", "/auth/acme/enforcement", nil, "If-None-Match", etag)
		if r.Status != 200 || !strings.Contains(string(r.Body), contract.SessionHandleHash(handle)) {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
		h.Clock.Advance(601 * time.Second)
		r = h.Do("GET", "/auth/acme/enforcement", nil)
		if strings.Contains(string(r.Body), contract.SessionHandleHash(handle)) {
			t.Fatalf("a revocation older than the access-token lifetime is still listed")
		}
	})
	t.Run("a policy change changes the version and the ETag", func(t *testing.T) {
		before := h.Do("GET", "/auth/acme/enforcement", nil).Header.Get("ETag")
		h.PutTenantJSON("acme", `{"mfa":{"requirement":["otp-email"]}}`)
		r := h.Do("GET", "/auth/acme/enforcement", nil, "If-None-Match", before)
		if r.Status != 200 || !strings.Contains(string(r.Body), `"configVersion":2`) || !strings.Contains(string(r.Body), "otp-email") {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
	})
	t.Run("an unknown tenant has no feed", func(t *testing.T) {
		if r := h.Do("GET", "/auth/nope/enforcement", nil); r.Status != 404 {
			t.Fatalf("got %d", r.Status)
		}
	})
}

func TestSessionsOfADeletedTenantCannotRefresh(t *testing.T) {
	h := coretest.New(t)
	h.PutTenantJSON("gone", `{}`)
	r := h.SignUp("/gone", "a@example.com", "secret123")
	if d := h.AdminDo("DELETE", "/admin/v1/tenants/gone", nil); d.Status != 204 {
		t.Fatalf("delete = %d", d.Status)
	}
	r2 := h.Do("POST", "/auth/session/refresh", nil, "Authorization", "Bearer "+r.Header.Get("st-refresh-token"))
	if r2.Status != 401 || r2.JSON(t)["message"] != "unauthorised" {
		t.Fatalf("refresh = %d %s", r2.Status, r2.Body)
	}
}
