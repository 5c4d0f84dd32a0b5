package audit_test

import (
	"strings"
	"testing"

	"github.com/go-logr/logr/funcr"

	"github.com/twofold-dev/twofold/core/coretest"
	"github.com/twofold-dev/twofold/core/server"
)

// find fails the test unless a log line holds every one of parts (logLines: webhook_test.go).
func (l *logLines) find(t *testing.T, parts ...string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if ok {
			return
		}
	}
	t.Fatalf("no log line with %q in:\n%s", parts, strings.Join(l.lines, "\n"))
}

func TestEverySecurityEventIsAnAuditLine(t *testing.T) {
	logs := &logLines{}
	h := coretest.New(t, func(o *server.Options) {
		o.Logger = funcr.NewJSON(logs.add, funcr.Options{})
	})
	r := h.SignUp("", "a@example.com", "secret123")
	user := r.JSON(t)["user"].(map[string]any)["id"].(string)
	h.Do("POST", "/auth/signin", coretest.Form("a@example.com", "secret123"))
	h.Do("POST", "/auth/signin", coretest.Form("a@example.com", "wrong-password1"))
	first := r.Header.Get("st-refresh-token")
	second := h.Do("POST", "/auth/session/refresh", nil, "Authorization", "Bearer "+first).Header.Get("st-refresh-token")
	h.Do("POST", "/auth/session/refresh", nil, "Authorization", "Bearer "+second)
	h.Do("POST", "/auth/session/refresh", nil, "Authorization", "Bearer "+first)
	h.PutTenantJSON("acme", `{}`)
	h.AdminDo("POST", "/admin/v1/users/"+user+"/sessions/revoke", nil)
	h.AdminDo("DELETE", "/admin/v1/tenants/acme", nil)

	tests := []struct {
		name  string
		parts []string
	}{
		{"a sign-up", []string{`"msg":"Signed up"`, `"user":"` + user, `"outcome":"success"`, `"ip":"127.0.0.1"`, `"tenant":"public"`}},
		{"a sign-in", []string{`"msg":"Signed in"`, `"user":"` + user, `"recipe":"emailpassword"`}},
		{"a failed sign-in", []string{`"msg":"Refused sign-in"`, `"outcome":"wrong_credentials"`, `"email":"a@example.com"`}},
		{"a detected theft", []string{`"msg":"Revoked session after refresh-token theft"`, `"user":"` + user, `"outcome":"token_theft"`}},
		{"a tenant change", []string{`"msg":"Changed tenant configuration"`, `"tenant":"acme"`, `"configVersion":1`}},
		{"an admin revocation", []string{`"msg":"Revoked user sessions"`, `"user":"` + user, `"by":"default"`}},
		{"a tenant deletion", []string{`"msg":"Deleted tenant configuration"`, `"tenant":"acme"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is logged with tenant, user, IP and outcome", func(t *testing.T) {
			logs.find(t, append([]string{`"logger":"audit"`}, tt.parts...)...)
		})
	}
}
