package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/coretest"
	"github.com/twofold-dev/twofold/core/httpkit"
	"github.com/twofold-dev/twofold/core/server"
	"github.com/twofold-dev/twofold/core/session"
	"github.com/twofold-dev/twofold/core/store"
)

func TestHealthReadinessAndMetrics(t *testing.T) {
	h := coretest.New(t)
	coretest.MustStatus(t, h.SignUp("", "a@example.com", "secret123"), 200, "OK")
	h.Do("POST", "/auth/signin", coretest.Form("a@example.com", "wrong-password1"))
	if r := h.Do("GET", "/healthz", nil); r.Status != 200 {
		t.Fatalf("healthz = %d", r.Status)
	}
	if r := h.Do("GET", "/readyz", nil); r.Status != 200 {
		t.Fatalf("readyz = %d %s", r.Status, r.Body)
	}
	metrics := string(h.Do("GET", "/metrics", nil).Body)
	for _, want := range []string{
		`twofold_core_http_requests_total{code="200",method="POST",route="POST /auth/signup"} 1`,
		`twofold_core_http_request_duration_seconds_count{method="POST",route="POST /auth/signin"}`,
		`twofold_core_sign_ins_total{outcome="wrong_credentials",recipe="emailpassword"} 1`,
		`twofold_core_sign_ins_total{outcome="success",recipe="emailpassword-signup"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Fatalf("metrics lack %s:\n%s", want, metrics)
		}
	}
}

func TestAReplicaOnTheSameDatabaseServesTheSameKeysAndSessions(t *testing.T) {
	a := coretest.New(t)
	b := coretest.StartOn(t, a.Clock, a.Database)
	r := a.SignUp("", "a@example.com", "secret123")
	if string(a.Do("GET", "/auth/jwt/jwks.json", nil).Body) != string(b.Do("GET", "/auth/jwt/jwks.json", nil).Body) {
		t.Fatalf("two replicas publish different JWKS")
	}
	// A refresh on the other replica works, and reusing the old token there is theft.
	r2 := b.Do("POST", "/auth/session/refresh", nil, "Authorization", "Bearer "+r.Header.Get("st-refresh-token"))
	if r2.Status != 200 {
		t.Fatalf("refresh on replica b = %d %s", r2.Status, r2.Body)
	}
	coretest.MustStatus(t, a.Do("POST", "/auth/session/refresh", nil, "Authorization", "Bearer "+r2.Header.Get("st-refresh-token")), 200, "")
	if r3 := b.Do("POST", "/auth/session/refresh", nil, "Authorization", "Bearer "+r.Header.Get("st-refresh-token")); r3.Status != 401 || r3.JSON(t)["message"] != "token theft detected" {
		t.Fatalf("reuse across replicas = %d %s", r3.Status, r3.Body)
	}
	// Key rotation on one replica reaches the other's JWKS before the new key signs.
	a.Clock.Advance(8 * 24 * time.Hour)
	if err := a.Srv.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	a.Clock.Advance(time.Minute)
	ja, jb := string(a.Do("GET", "/auth/jwt/jwks.json", nil).Body), string(b.Do("GET", "/auth/jwt/jwks.json", nil).Body)
	if ja != jb || strings.Count(ja, `"kid"`) != 2 {
		t.Fatalf("after rotation the replicas publish\n%s\n%s", ja, jb)
	}
}

func TestConcurrentRequestsNeverFailOnALockedDatabase(t *testing.T) {
	h := coretest.New(t)
	seed := h.SignUp("", "seed@example.com", "secret123")
	refresh := seed.Header.Get("st-refresh-token")
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for i := range 16 {
		wg.Add(3)
		go func() {
			defer wg.Done()
			if r := h.SignUp("", fmt.Sprintf("u%d@example.com", i), "secret123"); r.Status != 200 {
				errs <- fmt.Sprintf("sign-up %d: %d %s", i, r.Status, r.Body)
			}
		}()
		go func() {
			defer wg.Done()
			// Retries of the same current token are all answered (none was used yet), up to
			// the number of unused children one token may have.
			if i >= store.MaxUnusedRefreshChildren {
				return
			}
			if r := h.Do("POST", "/auth/session/refresh", nil, "Authorization", "Bearer "+refresh); r.Status != 200 {
				errs <- fmt.Sprintf("refresh %d: %d %s", i, r.Status, r.Body)
			}
		}()
		go func() {
			defer wg.Done()
			if r := h.AdminDo("PUT", fmt.Sprintf("/admin/v1/tenants/t%d", i%4), `{}`); r.Status != 200 && r.Status != 201 {
				errs <- fmt.Sprintf("tenant %d: %d %s", i, r.Status, r.Body)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestNewRefusesIncompleteOptions(t *testing.T) {
	h := coretest.New(t)
	tests := []struct {
		name string
		opts server.Options
		want string
	}{
		{"a core without a store is refused", server.Options{Issuer: "http://x/auth"}, "Store"},
		{"a core without an issuer is refused", server.Options{Store: h.Srv.Store}, "Issuer"},
		{"a relative issuer is refused", server.Options{Store: h.Srv.Store, Issuer: "/auth"}, "not an absolute http(s) URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := server.New(context.Background(), tt.opts); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}

// TestLaterPartsAddEndpointsThatRequireASession shows how the MFA part plugs in: a route
// registered through Options.Routes, protected by Require, that completes a factor with
// UpdateClaims and answers new tokens in the client's transport.
func TestLaterPartsAddEndpointsThatRequireASession(t *testing.T) {
	h := coretest.New(t, func(o *server.Options) {
		o.Routes = func(s *server.Server, mux *http.ServeMux) {
			mux.Handle("POST /auth/test/complete-totp", s.Sessions.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				sess, _ := session.FromContext(r.Context())
				claim, err := sess.MFA()
				if err != nil {
					httpkit.WriteError(w, 500, "", "%v", err)
					return
				}
				claim.C[mfa.TOTP] = 1
				claim.V = true
				_, tokens, err := s.Sessions.UpdateClaims(r.Context(), sess.Handle, func(c map[string]json.RawMessage) error {
					b, err := json.Marshal(claim)
					c[mfa.ClaimKey] = b
					return err
				})
				if err != nil {
					httpkit.WriteError(w, 500, "", "%v", err)
					return
				}
				_, transport := session.AccessTokenFrom(r)
				settings, _ := s.Sessions.Settings(r.Context(), sess.TenantID)
				s.Sessions.WriteTokens(w, transport, tokens, settings)
				httpkit.WriteJSON(w, 200, map[string]string{"status": "OK"})
			})))
		}
	})
	h.PutTenantJSON("acme", `{"mfa":{"requirement":["totp"]}}`)
	r := h.SignUp("/acme", "a@example.com", "secret123")
	if r := h.Do("POST", "/auth/test/complete-totp", nil); r.Status != 401 {
		t.Fatalf("without a session = %d", r.Status)
	}
	done := h.Do("POST", "/auth/test/complete-totp", nil, "Authorization", "Bearer "+r.Header.Get("st-access-token"))
	coretest.MustStatus(t, done, 200, "OK")
	claim := coretest.FrontToken(t, done)["up"].(map[string]any)["st-mfa"].(map[string]any)
	if claim["v"] != true || done.Header.Get("st-refresh-token") != "" {
		t.Fatalf("claim = %v, refresh token %q", claim, done.Header.Get("st-refresh-token"))
	}
	if !strings.Contains(string(h.Do("GET", "/metrics", nil).Body), `route="POST /auth/test/complete-totp"`) {
		t.Fatalf("the added route is not instrumented")
	}
}
