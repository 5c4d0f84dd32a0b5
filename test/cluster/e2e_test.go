//go:build cluster

package cluster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

const (
	release       = "twofold"
	releaseNS     = "twofold-system"
	appNS         = "shop"
	imageTag      = "0.1.0"
	imageRegistry = "ghcr.io/twofold-dev"
	// appIP is the sample app's Service address, fixed so that the tenant's websiteDomain can
	// name it before the Service exists.
	appIP = "198.19.100.80"
)

// buildImages builds Twofold's images for the host's architecture with hack/images (what
// `make images IMG_PLATFORMS=linux/<arch>` runs) and imports the tarballs into the cluster's
// containerd.
func (c *cluster) buildImages() {
	t := c.t
	t.Helper()
	out := filepath.Join(c.state, "twofold-images")
	start := time.Now()
	run(t, "building the images (hack/images)", 20*time.Minute, "", "go", "run", "./hack/images", "build",
		"-out", out, "-registry", imageRegistry, "-tag", imageTag,
		"-images", "manager,core,sidecar,sampleapp,pause", "-platforms", "linux/"+runtime.GOARCH)
	t.Logf("hack/images build for linux/%s took %s", runtime.GOARCH, time.Since(start).Round(100*time.Millisecond))
	for _, name := range []string{"manager", "core", "sidecar", "sampleapp"} {
		run(t, "importing the "+name+" image into the cluster's containerd", 5*time.Minute, "",
			"ctr", "--address", filepath.Join(c.state, "containerd", "containerd.sock"), "--namespace", "k8s.io",
			"images", "import", filepath.Join(out, "twofold-"+name+".tar"))
	}
}

func (c *cluster) kube(what string, args ...string) string {
	c.t.Helper()
	return c.kubectl_(what, "", args...)
}

func (c *cluster) apply(what, manifest string) {
	c.t.Helper()
	c.kubectl_(what, manifest, "apply", "-f", "-")
}

// kubeErr runs kubectl and returns its output and error instead of failing the test.
func (c *cluster) kubeErr(stdin string, args ...string) (string, error) {
	c.t.Helper()
	return runErr(c.t, 3*time.Minute, stdin, c.kubectl, append([]string{"--kubeconfig", filepath.Join(c.state, "kubeconfig")}, args...)...)
}

// coreVolume is a hostPath PersistentVolume in a folder of the state dir, owned by root as a
// fresh folder on a node is, bound ahead to the claim the chart creates: the cluster has no
// provisioner. The chart's prepare-data init container must hand it to the core's user.
const coreVolume = `
apiVersion: v1
kind: PersistentVolume
metadata:
  name: twofold-core-data
spec:
  capacity:
    storage: 1Gi
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  claimRef:
    namespace: twofold-system
    name: twofold-core-data
  hostPath:
    path: @PATH@
    type: Directory
`

const tenantAndPolicy = `
apiVersion: auth.twofold.dev/v1alpha1
kind: AuthTenant
metadata:
  name: demo
spec:
  firstFactors: [emailpassword]
  websiteDomain: http://` + appIP + `
---
` + totpPolicy

// totpPolicy is the MFAPolicy of tenant demo requiring TOTP.
const totpPolicy = `
apiVersion: auth.twofold.dev/v1alpha1
kind: MFAPolicy
metadata:
  name: totp-required
spec:
  tenantRefs: [demo]
  requirement:
    - factor: totp
  enforcement: Required
  allowedSecondaryFactors: [totp]
`

// sampleAppContainers is the pod spec's containers of the sample app listening on listen, with
// its port and readiness probe named http.
func sampleAppContainers(listen string) string {
	return `      containers:
      - name: app
        image: ghcr.io/twofold-dev/twofold-sampleapp:0.1.0
        imagePullPolicy: Never
        args: [-listen, "` + listen + `"]
        ports:
        - name: http
          containerPort: 8080
        readinessProbe:
          httpGet:
            path: /healthz
            port: http
          periodSeconds: 1
`
}

// sampleApp listens on 127.0.0.1 only, so nothing but the sidecar reaches it, and declares
// its port and readiness probe by the name the Service's targetPort uses.
var sampleApp = `
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: sampleapp
  namespace: shop
spec:
  replicas: 1
  selector:
    matchLabels: {app: sampleapp}
  template:
    metadata:
      labels:
        app: sampleapp
        twofold.dev/inject: "true"
      annotations:
        twofold.dev/tenant: demo
        twofold.dev/port: http
    spec:
` + sampleAppContainers("127.0.0.1:8080") + `---
apiVersion: v1
kind: Service
metadata:
  name: sampleapp
  namespace: shop
spec:
  clusterIP: ` + appIP + `
  selector: {app: sampleapp}
  ports:
  - name: web
    port: 80
    targetPort: http
`

// decoyPod opted in and carries a container named like the proxy, so the mutating webhook
// (which judges "already injected" by that name) leaves it alone; the fail-closed check must
// see that it is not the proxy.
const decoyPod = `
apiVersion: v1
kind: Pod
metadata:
  name: @NAME@
  namespace: shop
  labels:
    twofold.dev/inject: "true"
  annotations:
    twofold.dev/tenant: demo
spec:
  initContainers:
  - name: twofold-proxy
    image: @IMAGE@
    imagePullPolicy: Never
    restartPolicy: Always
    args: [-listen, "0.0.0.0:8080"]
    env:
    - name: TWOFOLD_TENANT
      value: @TENANT@
  containers:
  - name: app
    image: ghcr.io/twofold-dev/twofold-sampleapp:0.1.0
    imagePullPolicy: Never
    args: [-listen, "127.0.0.1:8081"]
`

// browser is an HTTP client that reaches only the cluster's addresses (no proxy from the
// environment) and shows redirects instead of following them.
var browser = &http.Client{
	Timeout:   5 * time.Second,
	Transport: &http.Transport{Proxy: nil, DialContext: (&net.Dialer{Timeout: 3 * time.Second}).DialContext},
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// call sends a request to the app's Service; headers are name, value pairs. It returns an
// error only when no HTTP answer came.
func call(method, path, access string, body any, headers ...string) (answer, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return answer{}, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://"+appIP+path, rd)
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("st-auth-mode", "header")
	if access != "" {
		req.Header.Set("Authorization", "Bearer "+access)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return doAnswer(browser, req)
}

// doAnswer sends req with client and reads the answer, decoding a JSON body. It returns an
// error only when no HTTP answer came.
func doAnswer(client *http.Client, req *http.Request) (answer, error) {
	resp, err := client.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return answer{}, err
	}
	a := answer{status: resp.StatusCode, header: resp.Header, raw: string(b)}
	_ = json.Unmarshal(b, &a.body)
	return a, nil
}

func mustCall(t *testing.T, method, path, access string, body any, headers ...string) answer {
	t.Helper()
	a, err := call(method, path, access, body, headers...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return a
}

// setUpTOTP sets up a TOTP device named phone for the session of access through the sidecar
// and verifies it with a code of the device's secret; it returns the verification's answer,
// whose headers carry the session's new access token.
func setUpTOTP(t *testing.T, access string) answer {
	t.Helper()
	dev := mustCall(t, http.MethodPost, "/auth/totp/device", access, map[string]any{"deviceName": "phone"}, "rid", "totp")
	secret, _ := dev.body["secret"].(string)
	if dev.status != http.StatusOK || dev.body["status"] != "OK" || secret == "" {
		t.Fatalf("POST /auth/totp/device = %d %s", dev.status, dev.raw)
	}
	code, err := totp.GenerateCodeCustom(secret, time.Now(), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	v := mustCall(t, http.MethodPost, "/auth/totp/device/verify", access, map[string]any{"deviceName": "phone", "totp": code}, "rid", "totp")
	if v.status != http.StatusOK || v.body["status"] != "OK" {
		t.Fatalf("POST /auth/totp/device/verify = %d %s", v.status, v.raw)
	}
	return v
}

// poll calls cond until it reports true or limit passes, and returns how long that took.
// Each call is itself bounded (HTTP timeouts, kubectl), so the wait is bounded too.
func poll(t *testing.T, what string, limit time.Duration, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		ok, state := cond()
		if ok {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %s; last seen: %s", what, limit, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// installed is Twofold installed with the chart on a fresh cluster.
type installed struct {
	*cluster
	helmBin    string
	kubeconfig string
	dataDir    string
}

// helm runs the chart's Helm against the cluster and fails the test when it fails.
func (i *installed) helm(what string, args ...string) string {
	i.t.Helper()
	return run(i.t, what, 5*time.Minute, "", i.helmBin, append([]string{"--kubeconfig", i.kubeconfig}, args...)...)
}

// waitReady waits for the release's pods of each component to be Ready.
func (i *installed) waitReady(components ...string) {
	i.t.Helper()
	for _, component := range components {
		// kubectl wait fails at once when no pod matches yet, so first wait for the rollout.
		i.kube("waiting for the "+component+" rollout", "-n", releaseNS, "rollout", "status", "deployment/"+release+"-"+component, "--timeout=240s")
		i.kube("waiting for the "+component+" pods to be Ready", "-n", releaseNS, "wait", "pod",
			"-l", "app.kubernetes.io/component="+component, "--for=condition=Ready", "--timeout=240s")
	}
}

// installTwofold brings a cluster up, loads the images and installs the chart with the core's
// SQLite file on a hostPath PersistentVolume, and waits for the manager and the core.
func installTwofold(t *testing.T) *installed {
	t.Helper()
	c := bringUp(t)
	c.buildImages()
	i := prepareInstall(c)
	// A fresh node folder: root's, mode 0755, which the core's user cannot write.
	i.dataDir = filepath.Join(c.state, "volumes", "twofold-core-data")
	if err := os.MkdirAll(i.dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	c.apply("creating the core's PersistentVolume", strings.ReplaceAll(coreVolume, "@PATH@", i.dataDir))
	i.install()
	return i
}

// prepareInstall finds Helm for installing the chart into c.
func prepareInstall(c *cluster) *installed {
	c.t.Helper()
	return &installed{
		cluster:    c,
		helmBin:    lastLine(run(c.t, "installing helm (hack/go-tool.sh)", 20*time.Minute, "", "hack/go-tool.sh", "helm", "helm.sh/helm/v3/cmd/helm", "v3.22.0")),
		kubeconfig: filepath.Join(c.state, "kubeconfig"),
	}
}

// install installs the chart with the images the cluster holds and extra helm arguments, and
// waits for the manager and the core pods to be Ready.
func (i *installed) install(args ...string) {
	i.t.Helper()
	start := time.Now()
	i.helm("installing the chart", append([]string{"install", release, "charts/twofold", "-n", releaseNS, "--create-namespace",
		"--set", "manager.image.pullPolicy=Never", "--set", "core.image.pullPolicy=Never"}, args...)...)
	for _, component := range []string{"manager", "core"} {
		i.waitReady(component)
		i.t.Logf("helm install -> %s Ready: %s", component, time.Since(start).Round(100*time.Millisecond))
	}
	i.t.Logf("helm install -> manager and core Ready: %s", time.Since(start).Round(100*time.Millisecond))
}

func TestTheChartProtectsAnAppOnARealNode(t *testing.T) {
	i := installTwofold(t)
	c, helm, kubeconfig, dataDir := i.cluster, i.helmBin, i.kubeconfig, i.dataDir

	t.Run("the core's SQLite file lives on the hostPath volume, owned by the core's user", func(t *testing.T) {
		info, err := os.Stat(filepath.Join(dataDir, "twofold.db"))
		if err != nil {
			t.Fatalf("the core wrote no database into its volume: %v", err)
		}
		if uid := fileOwner(info); uid != 65532 {
			t.Errorf("twofold.db is owned by uid %d, want the core's 65532", uid)
		}
	})

	c.apply("applying the AuthTenant and the MFAPolicy", tenantAndPolicy)
	c.kube("waiting for the AuthTenant and the MFAPolicy to be Ready", "wait", "authtenant/demo", "mfapolicy/totp-required",
		"--for=condition=Ready", "--timeout=120s")

	appStart := time.Now()
	c.apply("deploying the opted-in sample app", sampleApp)
	c.kube("waiting for the sample app's rollout", "-n", appNS, "rollout", "status", "deployment/sampleapp", "--timeout=240s")
	c.kube("waiting for the sample app's pod to be Ready", "-n", appNS, "wait", "pod", "-l", "app=sampleapp",
		"--for=condition=Ready", "--timeout=240s")
	t.Logf("sample app Deployment applied -> pod Ready: %s", time.Since(appStart).Round(100*time.Millisecond))

	t.Run("the pod runs the injected proxy as a native sidecar beside the app, both ready", func(t *testing.T) {
		got := c.kube("reading the pod's containers", "-n", appNS, "get", "pod", "-l", "app=sampleapp", "-o",
			`jsonpath={range .items[*]}{range .status.initContainerStatuses[*]}{.name}:started={.started},ready={.ready};{end}{range .status.containerStatuses[*]}{.name}:ready={.ready};{end}{end}`)
		if want := "twofold-proxy:started=true,ready=true;app:ready=true;"; got != want {
			t.Errorf("container states = %q, want %q", got, want)
		}
	})

	// kube-proxy writes the Service's rules a moment after the endpoint appears.
	poll(t, "the Service to answer from the host", 60*time.Second, func() (bool, string) {
		_, err := call(http.MethodGet, "/healthz", "", nil)
		return err == nil, fmt.Sprint(err)
	})

	t.Run("an API request without a session gets 401 unauthorised", func(t *testing.T) {
		a := mustCall(t, http.MethodGet, "/", "", nil)
		if a.status != http.StatusUnauthorized || a.body["message"] != "unauthorised" {
			t.Fatalf("GET / = %d %s, want 401 unauthorised", a.status, a.raw)
		}
	})

	t.Run("a browser without a session is sent to the hosted sign-in", func(t *testing.T) {
		a := mustCall(t, http.MethodGet, "/orders?page=2", "", nil, "Accept", "text/html")
		loc := a.header.Get("Location")
		if a.status/100 != 3 || !strings.Contains(loc, "/auth/signin") || !strings.Contains(loc, "redirectToPath=%2Forders%3Fpage%3D2") {
			t.Fatalf("GET /orders?page=2 as a browser = %d Location %q, want a redirect to /auth/signin with redirectToPath", a.status, loc)
		}
	})

	signup := mustCall(t, http.MethodPost, "/auth/signup", "", map[string]any{"formFields": []map[string]string{
		{"id": "email", "value": "alice@demo.example"}, {"id": "password", "value": "correct-horse-battery-9"},
	}}, "rid", "emailpassword")
	access := signup.header.Get("st-access-token")
	if signup.status != http.StatusOK || signup.body["status"] != "OK" || access == "" {
		t.Fatalf("POST /auth/signup through the sidecar = %d %s (access token %t), want OK with a session", signup.status, signup.raw, access != "")
	}
	keep := func(a answer) {
		if tok := a.header.Get("st-access-token"); tok != "" && tok != "remove" {
			access = tok
		}
	}

	t.Run("a password alone gets the MFA claim error, not the app", func(t *testing.T) {
		a := mustCall(t, http.MethodGet, "/", access, nil)
		if a.status != http.StatusForbidden || a.body["message"] != "invalid claim" || !strings.Contains(a.raw, `"id":"st-mfa"`) {
			t.Fatalf("GET / with a password-only session = %d %s, want 403 invalid claim st-mfa", a.status, a.raw)
		}
	})

	t.Run("TOTP is set up through the sidecar", func(t *testing.T) {
		keep(setUpTOTP(t, access))
	})

	var handle string
	t.Run("the app is reached with the identity the sidecar vouches for, in tenant demo", func(t *testing.T) {
		a := mustCall(t, http.MethodGet, "/", access, nil, "X-Twofold-User-Id", "mallory")
		if a.status != http.StatusOK {
			t.Fatalf("GET / with a complete session = %d %s", a.status, a.raw)
		}
		t.Logf("sample app Deployment applied -> first authenticated request answered: %s", time.Since(appStart).Round(100*time.Millisecond))
		if a.body["userId"] == "" || a.body["userId"] == "mallory" || a.body["tenantId"] != "demo" || a.body["factors"] != "emailpassword,totp" {
			t.Fatalf("the app saw %s; want the signed-up user (not the forged header) in tenant demo with emailpassword,totp", a.raw)
		}
		handle, _ = a.body["session"].(string)
	})
	if t.Failed() {
		return
	}

	t.Run("a signed-out session is refused within 5 s", func(t *testing.T) {
		if handle == "" {
			t.Fatal("the app saw no session handle")
		}
		out := mustCall(t, http.MethodPost, "/auth/signout", access, map[string]any{})
		if out.status != http.StatusOK || out.body["status"] != "OK" {
			t.Fatalf("POST /auth/signout = %d %s", out.status, out.raw)
		}
		took := poll(t, "the sidecar to refuse the signed-out session's access token", 5*time.Second, func() (bool, string) {
			a, err := call(http.MethodGet, "/", access, nil)
			return err == nil && a.status == http.StatusUnauthorized, fmt.Sprintf("%d %s %v", a.status, a.raw, err)
		})
		t.Logf("sign-out enforced by the sidecar after %s", took.Round(time.Millisecond))
	})

	t.Run("opted-in pods without the real proxy are refused", func(t *testing.T) {
		for _, tt := range []struct {
			name, pod, image, tenant, want string
		}{
			{
				name:   "a decoy named twofold-proxy running another image is refused",
				pod:    "decoy-image",
				image:  "ghcr.io/twofold-dev/twofold-sampleapp:0.1.0",
				tenant: "demo",
				want:   `not the proxy image "ghcr.io/twofold-dev/twofold-sidecar:0.1.0"`,
			},
			{
				name:   "the proxy image enforcing another tenant than the pod names is refused",
				pod:    "decoy-tenant",
				image:  "ghcr.io/twofold-dev/twofold-sidecar:0.1.0",
				tenant: "other",
				want:   `enforces tenant "other"`,
			},
		} {
			t.Run(tt.name, func(t *testing.T) {
				pod := strings.NewReplacer("@NAME@", tt.pod, "@IMAGE@", tt.image, "@TENANT@", tt.tenant).Replace(decoyPod)
				out, err := c.kubeErr(pod, "create", "-f", "-")
				if err == nil {
					t.Fatalf("the API server admitted pod %s:\n%s", tt.pod, out)
				}
				if !strings.Contains(out, "denied the request") || !strings.Contains(out, tt.want) {
					t.Fatalf("creating pod %s failed, but not with the fail-closed check's refusal %q:\n%s", tt.pod, tt.want, out)
				}
				if out, err := c.kubeErr("", "-n", appNS, "get", "pod", tt.pod); err == nil || !strings.Contains(out, "NotFound") {
					t.Fatalf("pod %s exists after the refusal: %v\n%s", tt.pod, err, out)
				}
			})
		}
	})

	t.Run("helm uninstall keeps the webhook certificate Secret", func(t *testing.T) {
		secret := release + "-webhook-cert"
		before := c.kube("reading the webhook certificate", "-n", releaseNS, "get", "secret", secret, "-o", "jsonpath={.data.tls\\.crt}")
		if before == "" {
			t.Fatalf("the manager never filled Secret %s with a certificate", secret)
		}
		run(t, "uninstalling the chart", 5*time.Minute, "", helm, "--kubeconfig", kubeconfig, "uninstall", release, "-n", releaseNS, "--wait", "--timeout", "3m")
		after, err := c.kubeErr("", "-n", releaseNS, "get", "secret", secret, "-o", "jsonpath={.data.tls\\.crt}")
		if err != nil {
			t.Fatalf("Secret %s is gone after helm uninstall: %v\n%s", secret, err, after)
		}
		if after != before {
			t.Errorf("Secret %s changed during helm uninstall", secret)
		}
		if out, err := c.kubeErr("", "-n", releaseNS, "get", "deployment", release+"-manager"); err == nil {
			t.Errorf("the manager Deployment is still there after helm uninstall:\n%s", out)
		}
	})
}

func fileOwner(info os.FileInfo) int {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}
