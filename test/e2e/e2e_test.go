// Package e2e_test runs Twofold end to end with real parts: a kube-apiserver (envtest) with
// the controllers, the auth core, the sidecar and the sample app as separate processes, all
// talking over real HTTP on loopback.
package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/twofold-dev/twofold/api/v1alpha1"
	"github.com/twofold-dev/twofold/core/adminclient"
	"github.com/twofold-dev/twofold/core/factors/totp"
	"github.com/twofold-dev/twofold/test/coreproc"
	"github.com/twofold-dev/twofold/test/proc"
	"github.com/twofold-dev/twofold/test/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	var err error
	env, err = testenv.Start(testenv.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

// system is everything a protected app needs, running.
type system struct {
	ns      string
	core    *coreproc.Core
	admin   *adminclient.Client
	sidecar string // base URL of the sidecar, the app's only entry point
}

func startSystem(t *testing.T) *system {
	t.Helper()
	ctx := context.Background()
	core := coreproc.Start(t, coreproc.Options{})
	admin := adminclient.New(core.URL, func() (string, error) { return core.AdminKey, nil }, nil)

	ns := env.StartControllers(t, admin, 5*time.Second)

	appAddr := proc.FreeAddr(t)
	app := proc.Start(t, "sampleapp", proc.Build(t, "./test/sampleapp"), nil, "-listen", appAddr)
	app.WaitHTTP(t, "http://"+appAddr+"/healthz", 200, 30*time.Second)

	sidecarAddr, adminAddr := proc.FreeAddr(t), proc.FreeAddr(t)
	sc := proc.Start(t, "twofold-sidecar", proc.Build(t, "./cmd/sidecar"), []string{
		"TWOFOLD_LISTEN=" + sidecarAddr,
		"TWOFOLD_ADMIN_LISTEN=" + adminAddr,
		"TWOFOLD_UPSTREAM=http://" + appAddr,
		"TWOFOLD_CORE_URL=" + core.URL,
		"TWOFOLD_TENANT=acme",
		"TWOFOLD_PUBLIC_PATHS=/healthz",
		"TWOFOLD_POLL_INTERVAL=1s",
	})
	s := &system{ns: ns, core: core, admin: admin, sidecar: "http://" + sidecarAddr}

	tenant := &authv1alpha1.AuthTenant{ObjectMeta: metav1.ObjectMeta{Name: "acme", Namespace: ns}}
	tenant.Spec.FirstFactors = []authv1alpha1.FactorID{authv1alpha1.FactorEmailPassword}
	s.apply(t, tenant)
	s.apply(t, s.policy(`[{"factor":"totp"}]`))
	waitFor(t, "the core to hold the TOTP requirement", 15*time.Second, func() (bool, string) {
		st, err := admin.GetTenant(ctx, "acme")
		if err != nil {
			return false, err.Error()
		}
		b, _ := json.Marshal(st.Config.MFA.Requirement)
		return string(b) == `["totp"]`, string(b)
	})
	// Ready once it has keys and the tenant's feed.
	sc.WaitHTTP(t, "http://"+adminAddr+"/readyz", 200, 30*time.Second)
	return s
}

func (s *system) policy(requirement string) *authv1alpha1.MFAPolicy {
	p := &authv1alpha1.MFAPolicy{ObjectMeta: metav1.ObjectMeta{Name: "mfa", Namespace: s.ns}}
	p.Spec.TenantRefs = []string{"acme"}
	if err := json.Unmarshal([]byte(requirement), &p.Spec.Requirement); err != nil {
		panic(err)
	}
	return p
}

// setRequirement changes the MFAPolicy's requirement as a person with kubectl would.
func (s *system) setRequirement(t *testing.T, items ...authv1alpha1.RequirementItem) {
	t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		var p authv1alpha1.MFAPolicy
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: s.ns, Name: "mfa"}, &p); err != nil {
			return err
		}
		p.Spec.Requirement = items
		return env.Client.Update(context.Background(), &p)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (s *system) apply(t *testing.T, obj client.Object) {
	t.Helper()
	if err := env.Client.Create(context.Background(), obj); err != nil {
		t.Fatalf("creating %s: %v", obj.GetName(), err)
	}
}

// client is an API client in header mode, as a mobile app or a SPA in header mode would be.
type apiClient struct {
	t      *testing.T
	base   string
	access string
}

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (c *apiClient) do(method, path string, body any, extra ...string) response {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("st-auth-mode", "header")
	if c.access != "" {
		req.Header.Set("Authorization", "Bearer "+c.access)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		req.Header.Set(extra[i], extra[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := response{status: resp.StatusCode, header: resp.Header, raw: string(b)}
	_ = json.Unmarshal(b, &out.body)
	if tok := resp.Header.Get("st-access-token"); tok != "" {
		c.access = tok
	}
	return out
}

func waitFor(t *testing.T, what string, limit time.Duration, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	last := ""
	for {
		ok, state := cond()
		if ok {
			return time.Since(start)
		}
		last = state
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %s; last seen: %s", what, limit, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestAProtectedAppIsReachedOnlyWithACompleteSession(t *testing.T) {
	s := startSystem(t)
	ctx := context.Background()
	user := &apiClient{t: t, base: s.sidecar}

	t.Run("a request without a session is refused before it reaches the app", func(t *testing.T) {
		r := user.do(http.MethodGet, "/", nil)
		if r.status != http.StatusUnauthorized || r.body["message"] != "unauthorised" {
			t.Fatalf("got %d %s", r.status, r.raw)
		}
	})
	t.Run("the app's public health check passes without a session", func(t *testing.T) {
		if r := user.do(http.MethodGet, "/healthz", nil); r.status != http.StatusOK {
			t.Fatalf("got %d %s", r.status, r.raw)
		}
	})

	r := user.do(http.MethodPost, "/auth/acme/signup", map[string]any{"formFields": []map[string]string{
		{"id": "email", "value": "alice@acme.example"}, {"id": "password", "value": "correct-horse-battery-9"},
	}}, "rid", "emailpassword")
	if r.status != http.StatusOK || r.body["status"] != "OK" || user.access == "" {
		t.Fatalf("sign-up through the sidecar: %d %s", r.status, r.raw)
	}

	t.Run("a password alone gets the MFA claim error, not the app", func(t *testing.T) {
		r := user.do(http.MethodGet, "/", nil)
		if r.status != http.StatusForbidden || r.body["message"] != "invalid claim" || !strings.Contains(r.raw, `"id":"st-mfa"`) {
			t.Fatalf("got %d %s", r.status, r.raw)
		}
	})

	var secret string
	t.Run("TOTP is set up through the sidecar's /auth", func(t *testing.T) {
		info := user.do(http.MethodPut, "/auth/mfa/info", map[string]any{})
		if info.status != http.StatusOK || !strings.Contains(info.raw, `"next":["totp"]`) {
			t.Fatalf("mfa/info: %d %s", info.status, info.raw)
		}
		dev := user.do(http.MethodPost, "/auth/totp/device", map[string]any{"deviceName": "phone"}, "rid", "totp")
		if dev.status != http.StatusOK || dev.body["status"] != "OK" {
			t.Fatalf("creating a device: %d %s", dev.status, dev.raw)
		}
		secret, _ = dev.body["secret"].(string)
		code, err := totp.DefaultConfig().Code(secret, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		v := user.do(http.MethodPost, "/auth/totp/device/verify", map[string]any{"deviceName": "phone", "totp": code}, "rid", "totp")
		if v.status != http.StatusOK || v.body["status"] != "OK" {
			t.Fatalf("verifying the device: %d %s", v.status, v.raw)
		}
	})

	t.Run("the app is reached, with identity headers it can trust", func(t *testing.T) {
		r := user.do(http.MethodGet, "/", nil, "Accept", "application/json", "X-Twofold-User-Id", "mallory", "X-Twofold-Factors", "totp,webauthn")
		if r.status != http.StatusOK {
			t.Fatalf("got %d %s", r.status, r.raw)
		}
		if r.body["userId"] == "mallory" || r.body["userId"] == "" || r.body["tenantId"] != "acme" {
			t.Fatalf("identity seen by the app: %s", r.raw)
		}
		if r.body["factors"] != "emailpassword,totp" {
			t.Fatalf("factors seen by the app = %v, want emailpassword,totp", r.body["factors"])
		}
	})

	t.Run("a stricter policy is enforced on the existing session within 5 s", func(t *testing.T) {
		s.setRequirement(t, authv1alpha1.RequirementItem{Factor: authv1alpha1.FactorTOTP}, authv1alpha1.RequirementItem{Factor: authv1alpha1.FactorOTPEmail})
		took := waitFor(t, "the sidecar to refuse the session", 5*time.Second, func() (bool, string) {
			r := user.do(http.MethodGet, "/", nil)
			return r.status == http.StatusForbidden, fmt.Sprint(r.status)
		})
		t.Logf("policy change enforced by the sidecar after %s", took.Round(time.Millisecond))

		s.setRequirement(t, authv1alpha1.RequirementItem{Factor: authv1alpha1.FactorTOTP})
		waitFor(t, "the sidecar to let the session through again", 5*time.Second, func() (bool, string) {
			r := user.do(http.MethodGet, "/", nil)
			return r.status == http.StatusOK, fmt.Sprint(r.status)
		})
	})

	t.Run("a revoked session is refused within 5 s", func(t *testing.T) {
		r := user.do(http.MethodGet, "/", nil, "Accept", "application/json")
		handle, _ := r.body["session"].(string)
		if handle == "" {
			t.Fatalf("no session handle in %s", r.raw)
		}
		if err := s.admin.RevokeSession(ctx, handle); err != nil {
			t.Fatal(err)
		}
		took := waitFor(t, "the sidecar to refuse the revoked session", 5*time.Second, func() (bool, string) {
			r := user.do(http.MethodGet, "/", nil)
			return r.status == http.StatusUnauthorized, fmt.Sprint(r.status)
		})
		t.Logf("revocation enforced by the sidecar after %s", took.Round(time.Millisecond))
	})
}
