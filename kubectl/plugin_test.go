package kubectl_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	authv1alpha1 "github.com/twofold-dev/twofold/api/v1alpha1"
	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/adminclient"
	"github.com/twofold-dev/twofold/core/coretest"
	"github.com/twofold-dev/twofold/kubectl"
	"github.com/twofold-dev/twofold/test/coreproc"
	"github.com/twofold-dev/twofold/test/testenv"
)

// startEnv starts envtest for one test and stops it when the test ends.
func startEnv(t *testing.T) *testenv.Env {
	t.Helper()
	env, err := testenv.Start(testenv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stop envtest: %v", err)
		}
	})
	return env
}

// kubeconfig writes a kubeconfig for the API server and user of rc.
func kubeconfig(t *testing.T, rc *rest.Config) string {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["envtest"] = &clientcmdapi.Cluster{Server: rc.Host, CertificateAuthorityData: rc.CAData}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: rc.CertData, ClientKeyData: rc.KeyData, Token: rc.BearerToken}
	cfg.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin"}
	cfg.CurrentContext = "envtest"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// installChartObjects creates what the chart would for release in namespace ns: the core's
// Service (and, when endpoint is set, a Pod and an EndpointSlice that point it at endpoint)
// and the admin-key Secret.
func installChartObjects(t *testing.T, cs kubernetes.Interface, ns, release, key, endpoint string, port int32) {
	t.Helper()
	ctx := context.Background()
	if _, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); err != nil {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	labels := map[string]string{"app.kubernetes.io/part-of": "twofold", "app.kubernetes.io/component": "core", "app.kubernetes.io/instance": release}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: release + "-core", Namespace: ns, Labels: labels},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}
	if _, err := cs.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if endpoint != "" {
		// The API server proxies to the addresses of a Service's EndpointSlices, and only to
		// an address a Pod has: a Pod whose status says so (no kubelet runs here to set it,
		// and no controller makes the slice).
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: release + "-core-0", Namespace: ns},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "core", Image: "twofold-core"}}}}
		pod, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pod.Status.PodIP, pod.Status.PodIPs = endpoint, []corev1.PodIP{{IP: endpoint}}
		if _, err := cs.CoreV1().Pods(ns).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		ready, portName := true, "http"
		slice := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: release + "-core-1", Namespace: ns,
			Labels: map[string]string{discoveryv1.LabelServiceName: release + "-core"}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{endpoint}, Conditions: discoveryv1.EndpointConditions{Ready: &ready},
				TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: pod.Name, UID: pod.UID}}},
			Ports: []discoveryv1.EndpointPort{{Name: &portName, Port: &port}}}
		if _, err := cs.DiscoveryV1().EndpointSlices(ns).Create(ctx, slice, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: release + "-admin-key", Namespace: ns}, Data: map[string][]byte{"admin-key": []byte(key)}}
	if _, err := cs.CoreV1().Secrets(ns).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestDiscoveryFindsTheChartsServiceAndAdminKey(t *testing.T) {
	env := startEnv(t)
	cs := kubernetes.NewForConfigOrDie(env.Config)
	installChartObjects(t, cs, "twofold-system", "twofold", "the-key", "", 0)
	ctx := context.Background()
	core, err := kubectl.Connection{Namespace: "twofold-system"}.Discover(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	if d := core.Describe(); d != "service twofold-system/twofold-core (port http) through the Kubernetes API server" {
		t.Fatalf("Describe = %q", d)
	}
	installChartObjects(t, cs, "twofold-system", "second", "other-key", "", 0)
	installChartObjects(t, cs, "custom", "tf", "k", "", 0)
	for _, tc := range []struct {
		name string
		conn kubectl.Connection
		want string
	}{
		{"a namespace without Twofold names the flag to use", kubectl.Connection{Namespace: "default"}, "--twofold-namespace"},
		{"two installations in one namespace ask for a release", kubectl.Connection{Namespace: "twofold-system"}, "--release"},
		{"a release picks one installation", kubectl.Connection{Namespace: "twofold-system", Release: "second"}, ""},
		{"a missing admin-key Secret names the flag to use", kubectl.Connection{Namespace: "custom", AdminKeySecret: "nope"}, "--admin-key-secret"},
		{"a Secret without the key says so", kubectl.Connection{Namespace: "custom", AdminKeySecret: "tf-admin-key/other"}, `no key "other"`},
		{"the chart's Secret name follows the release", kubectl.Connection{Namespace: "custom"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.conn.Discover(ctx, cs)
			switch {
			case tc.want == "" && err != nil:
				t.Fatal(err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Discover = %v, want an error naming %s", err, tc.want)
			}
		})
	}
}

// hostIP is a non-loopback IPv4 address of this machine, which the API server's service
// proxy accepts as an endpoint; empty when there is none.
func hostIP() string {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			return n.IP.String()
		}
	}
	return ""
}

// run runs the plugin and returns its output, errors and exit code.
func run(t *testing.T, p *kubectl.Plugin, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	p.In, p.Out, p.Err = strings.NewReader(stdin), &out, &errOut
	code := p.Run(context.Background(), args)
	return out.String(), errOut.String(), code
}

// fdi talks to the core's public API as a browser would, with header tokens.
type fdi struct {
	t    *testing.T
	base string
}

func (f fdi) post(path, access string, body any) (map[string]any, http.Header) {
	f.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", f.base+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("st-auth-mode", "header")
	if access != "" {
		req.Header.Set("Authorization", "Bearer "+access)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := map[string]any{}
	json.Unmarshal(raw, &out)
	out["httpStatus"] = resp.StatusCode
	return out, resp.Header
}

func form(email, password string) map[string]any {
	return map[string]any{"formFields": []map[string]string{{"id": "email", "value": email}, {"id": "password", "value": password}}}
}

func TestThePluginResolvesTheTicketsAgainstARealCore(t *testing.T) {
	ip := hostIP()
	addr := ""
	if ip != "" {
		l, err := net.Listen("tcp", ip+":0")
		if err != nil {
			t.Fatal(err)
		}
		addr = l.Addr().String()
		l.Close()
	}
	core := coreproc.Start(t, coreproc.Options{Addr: addr})
	keyFile := filepath.Join(t.TempDir(), "admin-key")
	if err := os.WriteFile(keyFile, []byte(core.AdminKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	admin := adminclient.New(core.URL, func() (string, error) { return core.AdminKey, nil }, nil)
	state, err := admin.PutTenant(ctx, contract.PublicTenantID, contract.TenantConfig{FirstFactors: []string{mfa.EmailPassword},
		MFA: contract.MFA{Requirement: mfa.Requirement{{Factor: mfa.TOTP}}, Enforcement: contract.EnforcementRequired,
			Routes: []contract.Route{{PathPrefix: "/admin", Methods: []string{"POST"}, Requirement: mfa.Requirement{{Factor: mfa.TOTP}}, MaxFactorAgeSeconds: 300}}}})
	if err != nil {
		t.Fatal(err)
	}
	api := fdi{t: t, base: core.URL}
	// A second user, found through the service proxy below. (A PUT takes effect at once on
	// the core that took it.)
	if res, _ := api.post("/auth/signup", "", form("probe@example.com", "secret123")); res["status"] != "OK" {
		t.Fatalf("sign-up = %v", res)
	}
	res, h := api.post("/auth/signup", "", form("ana@example.com", "secret123"))
	if res["status"] != "OK" {
		t.Fatalf("sign-up = %v", res)
	}
	access := h.Get("st-access-token")
	// Ana sets up TOTP: the tenant requires it.
	dev, _ := api.post("/auth/totp/device", access, map[string]string{"deviceName": "phone"})
	secret, _ := dev["secret"].(string)
	code, err := totp.GenerateCode(secret, time.Now())
	if err != nil {
		t.Fatalf("device = %v: %v", dev, err)
	}
	if v, _ := api.post("/auth/totp/device/verify", access, map[string]string{"deviceName": "phone", "totp": code}); v["status"] != "OK" {
		t.Fatalf("verify = %v", v)
	}

	direct := []string{"--core-url", core.URL, "--admin-key-file", keyFile}
	p := &kubectl.Plugin{Sleep: func(time.Duration) {}}
	do := func(t *testing.T, stdin string, args ...string) (string, string, int) {
		t.Helper()
		return run(t, p, stdin, append(args, direct...)...)
	}

	t.Run("users find lists the user by email, in a table or as JSON", func(t *testing.T) {
		out, errOut, code := do(t, "", "users", "find", "--email", "ana@example.com")
		if code != 0 || !strings.Contains(out, "ana@example.com") || !strings.Contains(out, "emailpassword") {
			t.Fatalf("find = %d %s %s", code, out, errOut)
		}
		out, _, _ = do(t, "", "users", "find", "--email", "ana@example.com", "-o", "json")
		var list contract.AdminUserList
		if err := json.Unmarshal([]byte(out), &list); err != nil || len(list.Users) != 1 {
			t.Fatalf("find -o json = %s", out)
		}
		out, _, _ = do(t, "", "users", "find", "--email", "ana@example.com", "-o", "yaml")
		if !strings.Contains(out, "userId: "+list.Users[0].UserID) {
			t.Fatalf("find -o yaml = %s", out)
		}
	})

	t.Run("users show lists the TOTP device and never its secret", func(t *testing.T) {
		out, errOut, code := do(t, "", "users", "show", "ana@example.com")
		if code != 0 || !strings.Contains(out, "phone") || !strings.Contains(out, "totp") || strings.Contains(out, secret) {
			t.Fatalf("show = %d %s %s", code, out, errOut)
		}
	})

	t.Run("explain says why POST /admin is refused without a fresh TOTP", func(t *testing.T) {
		out, _, code := do(t, "", "explain", "ana@example.com", "--path", "/admin/users", "--method", "POST")
		if code != 0 || !strings.Contains(out, `matches the rule "/admin"`) {
			t.Fatalf("explain = %d %s", code, out)
		}
	})

	t.Run("a locked-out user is unlocked", func(t *testing.T) {
		for range 10 {
			api.post("/auth/signin", "", form("ana@example.com", "wrong-password"))
		}
		out, _, _ := do(t, "", "users", "show", "ana@example.com")
		if !strings.Contains(out, "LOCKED") {
			t.Fatalf("show of a locked user = %s", out)
		}
		if out, errOut, code := do(t, "", "users", "unlock", "ana@example.com"); code != 0 || !strings.Contains(out, "was LOCKED") {
			t.Fatalf("unlock = %d %s %s", code, out, errOut)
		}
		if res, _ := api.post("/auth/signin", "", form("ana@example.com", "secret123")); res["status"] != "OK" {
			t.Fatalf("sign-in after unlock = %v", res)
		}
	})

	t.Run("a destructive command asks first and does nothing on no", func(t *testing.T) {
		_, errOut, code := do(t, "n\n", "users", "reset-mfa", "ana@example.com")
		if code != 1 || !strings.Contains(errOut, "Cancelled") {
			t.Fatalf("reset-mfa answered no = %d %s", code, errOut)
		}
		_, errOut, code = do(t, "", "users", "disable", "ana@example.com")
		if code != 1 || !strings.Contains(errOut, "--yes") {
			t.Fatalf("disable without an answer = %d %s", code, errOut)
		}
		out, _, _ := do(t, "", "users", "show", "ana@example.com", "-o", "json")
		var d contract.AdminUserDetail
		if err := json.Unmarshal([]byte(out), &d); err != nil || d.Disabled || len(d.Factors.TOTPDevices) != 1 {
			t.Fatalf("show after cancelled commands = %s", out)
		}
	})

	t.Run("after reset-mfa the next sign-in has to set TOTP up again", func(t *testing.T) {
		out, errOut, code := do(t, "y\n", "users", "reset-mfa", "ana@example.com")
		if code != 0 || !strings.Contains(out, "removed 1 TOTP device") {
			t.Fatalf("reset-mfa = %d %s %s", code, out, errOut)
		}
		if res, _ := api.post("/auth/signin", "", form("ana@example.com", "secret123")); res["status"] != "OK" {
			t.Fatalf("sign-in after the reset = %v", res)
		}
		out, _, _ = do(t, "", "explain", "ana@example.com", "-o", "json")
		var x contract.AdminExplanation
		if err := json.Unmarshal([]byte(out), &x); err != nil {
			t.Fatal(err)
		}
		if !x.MustSetUp || len(x.Sessions) != 1 || x.Sessions[0].Verdict != "mfa-incomplete" {
			t.Fatalf("explain after the reset = %s", out)
		}
	})

	t.Run("a disabled user cannot sign in until enabled", func(t *testing.T) {
		if out, errOut, code := do(t, "", "users", "disable", "ana@example.com", "--yes"); code != 0 {
			t.Fatalf("disable = %d %s %s", code, out, errOut)
		}
		if res, _ := api.post("/auth/signin", "", form("ana@example.com", "secret123")); res["status"] != contract.StatusSignInNotAllowed {
			t.Fatalf("sign-in of a disabled user = %v", res)
		}
		if _, _, code := do(t, "", "users", "enable", "ana@example.com"); code != 0 {
			t.Fatal("enable failed")
		}
		if res, _ := api.post("/auth/signin", "", form("ana@example.com", "secret123")); res["status"] != "OK" {
			t.Fatalf("sign-in after enabling = %v", res)
		}
	})

	t.Run("sessions revoke signs the user out", func(t *testing.T) {
		out, errOut, code := do(t, "", "sessions", "revoke", "--user", "ana@example.com", "--yes")
		if code != 0 || !strings.Contains(out, "Revoked") {
			t.Fatalf("sessions revoke = %d %s %s", code, out, errOut)
		}
	})

	t.Run("audit lists who signed in as the user, refusals and admin actions", func(t *testing.T) {
		logFile := filepath.Join(t.TempDir(), "core.log")
		if err := os.WriteFile(logFile, []byte(core.Logs()), 0o600); err != nil {
			t.Fatal(err)
		}
		out, errOut, code := do(t, "", "audit", "ana@example.com", "--log-file", logFile, "-o", "json")
		var rep struct{ Events []kubectl.AuditEvent }
		if code != 0 || json.Unmarshal([]byte(out), &rep) != nil {
			t.Fatalf("audit = %d %s %s", code, out, errOut)
		}
		seen := map[string]bool{}
		for _, e := range rep.Events {
			seen[e.Message+"/"+e.Outcome] = true
		}
		for _, want := range []string{"Signed in/success", "Refused sign-in/wrong_credentials", "Locked sign-in/locked", "Reset user MFA/success", "Refused sign-in/user_disabled"} {
			if !seen[want] {
				t.Fatalf("audit misses %s: %v", want, seen)
			}
		}
		table, _, _ := do(t, "", "audit", "ana@example.com", "--log-file", logFile)
		if !strings.Contains(table, "admin key default") || strings.Contains(table, "probe@example.com") {
			t.Fatalf("audit table = %s", table)
		}
	})

	t.Run("users delete erases every row of the user", func(t *testing.T) {
		out, _, _ := do(t, "", "users", "find", "--email", "ana@example.com", "-o", "json")
		var list contract.AdminUserList
		json.Unmarshal([]byte(out), &list)
		id := list.Users[0].UserID
		out, errOut, code := do(t, "", "users", "delete", "ana@example.com", "--yes")
		if code != 0 || !strings.Contains(out, "Erased user "+id) {
			t.Fatalf("delete = %d %s %s", code, out, errOut)
		}
		if _, errOut, code := do(t, "", "users", "show", id); code != 1 || !strings.Contains(errOut, "unknown user") {
			t.Fatalf("show after delete = %d %s", code, errOut)
		}
		if rows := coretest.RowsNaming(t, core.Database, id, "ana@example.com"); len(rows) > 0 {
			t.Fatalf("rows still name the erased user: %v", rows)
		}
	})

	t.Run("an unknown user is a clear error", func(t *testing.T) {
		_, errOut, code := do(t, "", "users", "show", "nobody@example.com")
		if code != 1 || !strings.Contains(errOut, `no user with nobody@example.com in tenant "public"`) {
			t.Fatalf("show unknown = %d %s", code, errOut)
		}
	})

	// The cluster side: AuthTenants beside the core's tenants, and the service proxy.
	env := startEnv(t)
	kc := kubeconfig(t, env.Config)
	cs := kubernetes.NewForConfigOrDie(env.Config)
	for _, at := range []struct{ name, id, hash string }{{"public", "public", state.ConfigHash}, {"acme", "acme", "sha256:old"}} {
		obj := &authv1alpha1.AuthTenant{ObjectMeta: metav1.ObjectMeta{Name: at.name, Namespace: "default"},
			Spec: authv1alpha1.AuthTenantSpec{TenantID: at.id, FirstFactors: []authv1alpha1.FactorID{"emailpassword"}}}
		if err := env.Client.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
		obj.Status = authv1alpha1.AuthTenantStatus{TenantID: at.id, ConfigHash: at.hash, ConfigVersion: 1,
			Conditions: []metav1.Condition{{Type: "Ready", Status: "True", Reason: "Synced", LastTransitionTime: metav1.Now(), Message: "ok"}}}
		if err := env.Client.Status().Update(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := admin.PutTenant(ctx, "acme", contract.TenantConfig{FirstFactors: []string{mfa.EmailPassword}}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.PutTenant(ctx, "orphan", contract.TenantConfig{FirstFactors: []string{mfa.EmailPassword}}); err != nil {
		t.Fatal(err)
	}

	t.Run("tenants shows each AuthTenant's drift and the core's version", func(t *testing.T) {
		out, errOut, code := do(t, "", "tenants", "--kubeconfig", kc, "-o", "json")
		if code != 0 {
			t.Fatalf("tenants = %d %s", code, errOut)
		}
		var rep kubectl.TenantsReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatal(err)
		}
		drift := map[string]string{}
		for _, r := range rep.Tenants {
			drift[r.TenantID] = r.Drift
		}
		want := map[string]string{"public": "InSync", "acme": "Drift", "orphan": "Unmanaged"}
		for id, d := range want {
			if drift[id] != d {
				t.Fatalf("drift = %v, want %v", drift, want)
			}
		}
		if rep.CoreVersion == "" {
			t.Fatal("no core version")
		}
		table, _, _ := do(t, "", "tenants", "--kubeconfig", kc)
		if !strings.Contains(table, "DRIFT") || !strings.Contains(table, "Unmanaged") {
			t.Fatalf("tenants table = %s", table)
		}
	})

	t.Run("through the API server's service proxy with the kubeconfig", func(t *testing.T) {
		if ip == "" {
			t.Fatal("the service proxy tests need a non-loopback IPv4 address on this machine for the core to listen on: the API server does not proxy to loopback")
		}
		_, port, _ := net.SplitHostPort(addr)
		var portNum int32
		fmt.Sscan(port, &portNum)
		installChartObjects(t, cs, "twofold-system", "twofold", core.AdminKey, ip, portNum)
		out, errOut, code := run(t, p, "", "users", "find", "--email", "probe@example.com", "--kubeconfig", kc)
		if code != 0 || !strings.Contains(out, "probe@example.com") {
			t.Fatalf("find through the service proxy = %d %s %s", code, out, errOut)
		}
	})

	t.Run("a helpdesk bound to the documented Role works with its own key, others are refused", func(t *testing.T) {
		if ip == "" {
			t.Fatal("the service proxy tests need a non-loopback IPv4 address on this machine for the core to listen on: the API server does not proxy to loopback")
		}
		// The helpdesk's own named key, in the Secret the Role lets it read.
		out, errOut, code := do(t, "", "admin-keys", "create", "helpdesk", "-o", "json")
		var k contract.AdminKeyCreated
		if code != 0 || json.Unmarshal([]byte(out), &k) != nil {
			t.Fatalf("admin-keys create = %d %s %s", code, out, errOut)
		}
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "twofold-helpdesk-key", Namespace: "twofold-system"}, Data: map[string][]byte{"admin-key": []byte(k.Key)}}
		if _, err := cs.CoreV1().Secrets("twofold-system").Create(ctx, secret, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		applyYAML(t, env.Client, filepath.Join(testenv.RepoRoot(), "plugins", "helpdesk-role.yaml"))
		as := func(user string, groups ...string) string {
			u, err := env.AddUser(envtest.User{Name: user, Groups: groups}, nil)
			if err != nil {
				t.Fatal(err)
			}
			return kubeconfig(t, u.Config())
		}
		helpdesk, stranger := as("hana", "helpdesk"), as("sam")
		args := []string{"--admin-key-secret", "twofold-helpdesk-key"}
		out, errOut, code = run(t, p, "", append([]string{"users", "find", "--email", "probe@example.com", "--kubeconfig", helpdesk}, args...)...)
		if code != 0 || !strings.Contains(out, "probe@example.com") {
			t.Fatalf("find as the helpdesk = %d %s %s", code, out, errOut)
		}
		if !strings.Contains(core.Logs(), `"by":"helpdesk"`) {
			t.Fatal("the audit trail does not name the helpdesk's key")
		}
		_, errOut, code = run(t, p, "", append([]string{"users", "find", "--email", "probe@example.com", "--kubeconfig", stranger}, args...)...)
		if code != 1 || !strings.Contains(errOut, "forbidden") {
			t.Fatalf("find as a stranger = %d %s", code, errOut)
		}
		// The Role reads one Secret: the chart's own admin key stays out of reach.
		_, errOut, code = run(t, p, "", "users", "find", "--email", "probe@example.com", "--kubeconfig", helpdesk)
		if code != 1 || !strings.Contains(errOut, "forbidden") {
			t.Fatalf("find as the helpdesk with the chart's key = %d %s", code, errOut)
		}
	})
}

// applyYAML creates every object of a multi-document YAML file.
func applyYAML(t *testing.T, c client.Client, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(b), "\n---\n") {
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode([]byte(doc), nil, nil)
		if err != nil {
			t.Fatalf("decode %s: %v", path, err)
		}
		if err := c.Create(context.Background(), obj.(client.Object)); err != nil {
			t.Fatal(err)
		}
	}
}
