package inject_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/core/adminclient"
	"github.com/twofold-dev/twofold/sidecar/inject"
	"github.com/twofold-dev/twofold/test/coreproc"
	"github.com/twofold-dev/twofold/test/proc"
)

// The pod spec the webhook writes must start a working proxy: this test admits a pod through
// the real API server, takes the proxy container's environment as the kubelet would give it
// (the pod IP from the downward API being 127.0.0.2 here), runs the real sidecar binary with it
// in front of an app, against a real core, and sends requests through it.
func TestTheInjectedConfigurationRunsAWorkingProxy(t *testing.T) {
	ctx := context.Background()
	core := coreproc.Start(t, coreproc.Options{})
	admin := adminclient.New(core.URL, func() (string, error) { return core.AdminKey, nil }, nil)
	if _, err := admin.PutTenant(ctx, "acme", contract.TenantConfig{FirstFactors: []string{"emailpassword"}}); err != nil {
		t.Fatal(err)
	}

	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			_, _ = io.WriteString(w, "the app is healthy")
			return
		}
		_, _ = io.WriteString(w, "hello "+r.Header.Get("X-Twofold-User-Id"))
	}))
	defer app.Close()
	_, appPort, _ := net.SplitHostPort(app.Listener.Addr().String())
	portNum, _ := strconv.Atoi(appPort)

	// The app declares its port by name and its readiness probe names it, as most apps do.
	pod := appPod("runs", optIn, tenant(inject.AnnotationPublicPaths, "/public"))
	pod.Spec.Containers[0].Ports[0].ContainerPort = int32(portNum)
	if err := env.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	var proxyEnv []string
	for _, e := range pod.Spec.InitContainers[0].Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "status.podIP":
			// The app listens on 127.0.0.1:<port> here, so the proxy takes another port of the
			// loopback range, as it takes the pod IP in a cluster.
			proxyEnv = append(proxyEnv, e.Name+"=127.0.0.2")
		case e.Name == "TWOFOLD_CORE_URL":
			proxyEnv = append(proxyEnv, e.Name+"="+core.URL) // the cluster DNS name, here
		case e.Name == "TWOFOLD_ADMIN_LISTEN":
			proxyEnv = append(proxyEnv, e.Name+"="+proc.FreeAddr(t))
		default:
			proxyEnv = append(proxyEnv, e.Name+"="+e.Value)
		}
	}
	sidecar := proc.Start(t, "twofold-sidecar", proc.Build(t, "./cmd/sidecar"), proxyEnv)
	base := "http://127.0.0.2:" + appPort
	sidecar.WaitHTTP(t, base+"/public", http.StatusOK, 30*time.Second)

	body, _ := json.Marshal(map[string]any{"formFields": []map[string]string{{"id": "email", "value": "bo@acme.example"}, {"id": "password", "value": "correct-horse-battery-9"}}})
	req, _ := http.NewRequest(http.MethodPost, base+"/auth/acme/signup", bytes.NewReader(body))
	req.Header.Set("st-auth-mode", "header")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	token := resp.Header.Get("st-access-token")
	if resp.StatusCode != http.StatusOK || token == "" {
		t.Fatalf("sign-up through the injected proxy: %d", resp.StatusCode)
	}

	t.Run("the app's readiness probe reaches the app through the proxy, without a session", func(t *testing.T) {
		// What the kubelet does: resolve the probe's port in the app container, then GET the
		// pod IP (127.0.0.2 here) on it.
		app := pod.Spec.Containers[0]
		port, err := probePort(app, app.ReadinessProbe.HTTPGet.Port)
		if err != nil {
			t.Fatalf("the kubelet would fail the probe: %v", err)
		}
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.2:%d%s", port, app.ReadinessProbe.HTTPGet.Path))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(b) != "the app is healthy" {
			t.Fatalf("probe answered %d %q, want the app's 200", resp.StatusCode, b)
		}
	})

	tests := []struct {
		name   string
		token  string
		status int
	}{
		{"a request without a session is refused by the injected proxy", "", http.StatusUnauthorized},
		{"a request with a session reaches the app", token, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
			if tt.token != "" {
				req.Header.Set("Authorization", "Bearer "+tt.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, b)
			}
		})
	}
}
