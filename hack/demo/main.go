// Command demo runs the whole of Twofold on one machine without a cluster or containers:
// envtest's kube-apiserver and etcd, the manager (controllers and pod webhooks), the auth core
// on SQLite, and the sample app behind a sidecar configured by the injection webhook. It
// applies config/demo/demo.yaml, waits for the tenant to be Ready, and prints where to go.
// `make demo` builds what it needs and runs it; Ctrl-C stops everything.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	authv1alpha1 "github.com/twofold-dev/twofold/api/v1alpha1"
	"github.com/twofold-dev/twofold/controllers"
	"github.com/twofold-dev/twofold/core/adminclient"
	"github.com/twofold-dev/twofold/sidecar/inject"
)

func main() {
	var o options
	flag.StringVar(&o.root, "root", ".", "repository root")
	flag.StringVar(&o.bin, "bin", "bin", "folder holding twofold-core, twofold-sidecar and sampleapp")
	flag.StringVar(&o.assets, "assets", os.Getenv("KUBEBUILDER_ASSETS"), "folder holding kube-apiserver and etcd")
	flag.StringVar(&o.state, "state", ".demo", "folder for the demo's database, logs and kubeconfig")
	flag.IntVar(&o.port, "port", 8080, "port of the protected app (the sidecar) on localhost")
	flag.IntVar(&o.corePort, "core-port", 3567, "port of the auth core on localhost")
	flag.IntVar(&o.appPort, "app-port", 0, "port of the sample app on 127.0.0.1 (default: -port + 1)")
	flag.IntVar(&o.proxyAdminPort, "proxy-admin-port", 0, "port of the sidecar's health and metrics endpoints (default: -port + 2)")
	flag.Parse()
	// Errors only: the demo prints its own progress; the parts log to files under -state.
	ctrl.SetLogger(zap.New(zap.Level(zapcore.ErrorLevel)))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(os.Stderr, "\ndemo: %v\n", err)
		os.Exit(1)
	}
}

type options struct {
	root, bin, assets, state string
	port, corePort           int
	appPort, proxyAdminPort  int
}

func step(format string, args ...any) { fmt.Printf("==> "+format+"\n", args...) }

func run(ctx context.Context, o options) error {
	if err := os.MkdirAll(o.state, 0o755); err != nil {
		return err
	}
	if o.appPort == 0 {
		o.appPort = o.port + 1
	}
	if o.proxyAdminPort == 0 {
		o.proxyAdminPort = o.port + 2
	}
	for _, p := range []int{o.port, o.corePort, o.appPort, o.proxyAdminPort} {
		if inUse(p) {
			return fmt.Errorf("port %d is in use: stop what listens there, or run `make demo DEMO_PORT=... DEMO_CORE_PORT=...`", p)
		}
	}

	step("Starting the control plane (kube-apiserver and etcd from %s)", o.assets)
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = authv1alpha1.AddToScheme(scheme)
	env := &envtest.Environment{
		BinaryAssetsDirectory: o.assets,
		CRDDirectoryPaths:     []string{filepath.Join(o.root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		Scheme:                scheme,
		WebhookInstallOptions: envtest.WebhookInstallOptions{Paths: []string{filepath.Join(o.root, "config", "webhook")}},
	}
	cfg, err := env.Start()
	if err != nil {
		return fmt.Errorf("starting the control plane: %w", err)
	}
	defer func() { step("Stopping the control plane"); _ = env.Stop() }()
	cfg.QPS = -1
	if err := writeKubeconfig(env, filepath.Join(o.state, "kubeconfig")); err != nil {
		return err
	}
	k8s, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}

	adminKey := randomKey()
	coreURL := fmt.Sprintf("http://127.0.0.1:%d", o.corePort)
	step("Starting the auth core on %s (SQLite file %s)", coreURL, filepath.Join(o.state, "twofold.db"))
	core, err := startProcess(ctx, o, "twofold-core", nil, []string{
		fmt.Sprintf("TWOFOLD_ADDR=127.0.0.1:%d", o.corePort),
		"TWOFOLD_DATABASE=" + filepath.Join(o.state, "twofold.db"),
		"TWOFOLD_ADMIN_KEY=" + adminKey,
		fmt.Sprintf("TWOFOLD_ISSUER=http://localhost:%d/auth", o.port),
	})
	if err != nil {
		return err
	}
	defer core.stop()
	if err := waitHTTP(ctx, coreURL+"/readyz", 30*time.Second); err != nil {
		return fmt.Errorf("the core did not become ready (see %s): %w", core.logPath, err)
	}

	step("Starting the manager: AuthTenant and MFAPolicy controllers, pod injection webhooks")
	wo := env.WebhookInstallOptions
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:        scheme,
		Metrics:       metricsserver.Options{BindAddress: "0"},
		WebhookServer: webhook.NewServer(webhook.Options{Host: wo.LocalServingHost, Port: wo.LocalServingPort, CertDir: wo.LocalServingCertDir}),
	})
	if err != nil {
		return err
	}
	admin := adminclient.New(coreURL, func() (string, error) { return adminKey, nil }, nil)
	if err := controllers.Setup(ctx, mgr, controllers.Options{Core: admin, ResyncPeriod: 10 * time.Second}); err != nil {
		return err
	}
	injectCfg := inject.DefaultConfig()
	injectCfg.Image = "ghcr.io/twofold-dev/twofold-sidecar:demo"
	injectCfg.CoreURL = "http://twofold-core.twofold-system:3567"
	inject.Register(mgr.GetWebhookServer(), scheme, injectCfg)
	mgrCtx, stopMgr := context.WithCancel(ctx)
	mgrDone := make(chan error, 1)
	go func() { mgrDone <- mgr.Start(mgrCtx) }()
	defer func() { stopMgr(); <-mgrDone }()
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		return errors.New("the manager's caches did not sync")
	}

	step("Applying config/demo/demo.yaml: AuthTenant demo, MFAPolicy totp-required, Pod sampleapp")
	if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "demo"}}); err != nil {
		return err
	}
	if err := applyFile(ctx, k8s, filepath.Join(o.root, "config", "demo", "demo.yaml"), o.port); err != nil {
		return err
	}
	step("Waiting for the tenant and the policy to be Ready")
	if err := waitReady(ctx, k8s); err != nil {
		return err
	}

	var pod corev1.Pod
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: "demo", Name: "sampleapp"}, &pod); err != nil {
		return err
	}
	proxyEnv, err := injectedEnv(&pod)
	if err != nil {
		return err
	}
	appAddr := fmt.Sprintf("127.0.0.1:%d", o.appPort)
	step("Starting the sample app on %s (the pod's app container)", appAddr)
	app, err := startProcess(ctx, o, "sampleapp", []string{"-listen", appAddr}, nil)
	if err != nil {
		return err
	}
	defer app.stop()

	step("Starting the sidecar the webhook injected into Pod demo/sampleapp, on localhost:%d", o.port)
	// The pod's network is this machine: the proxy listens on localhost instead of the pod
	// IP, reaches the app and the core on loopback, and serves its health port elsewhere.
	overrides := map[string]string{
		"TWOFOLD_LISTEN":        fmt.Sprintf("127.0.0.1:%d", o.port),
		"TWOFOLD_UPSTREAM":      "http://" + appAddr,
		"TWOFOLD_CORE_URL":      coreURL,
		"TWOFOLD_ADMIN_LISTEN":  fmt.Sprintf("127.0.0.1:%d", o.proxyAdminPort),
		"TWOFOLD_POLL_INTERVAL": "1s",
		"TWOFOLD_LOG_FORMAT":    "text",
	}
	sidecar, err := startProcess(ctx, o, "twofold-sidecar", nil, mergeEnv(proxyEnv, overrides))
	if err != nil {
		return err
	}
	defer sidecar.stop()
	if err := waitHTTP(ctx, fmt.Sprintf("http://127.0.0.1:%d/readyz", o.proxyAdminPort), 30*time.Second); err != nil {
		return fmt.Errorf("the sidecar did not become ready (see %s): %w", sidecar.logPath, err)
	}

	fmt.Printf(`
Twofold is running.

  Open http://localhost:%[1]d/ in a browser. The sidecar sends you to the sign-in page:
    1. Sign up with any email address and a password of 8+ characters with a number.
    2. Scan the QR code with an authenticator app (or type the secret shown under it) and
       enter the 6-digit code. Keep the recovery codes it shows you.
    3. You reach the sample app, which shows who you are from the sidecar's headers.
  http://localhost:%[1]d/admin needs a TOTP code from the last 5 minutes (step-up).

  API clients: curl -i http://localhost:%[1]d/          -> 401 {"message":"unauthorised"}
  kubectl:     export KUBECONFIG=%[2]s
               kubectl get authtenants,mfapolicies -n demo
  Logs:        %[3]s

Press Ctrl-C to stop.
`, o.port, abs(filepath.Join(o.state, "kubeconfig")), abs(o.state))

	select {
	case <-ctx.Done():
	case err := <-mgrDone:
		return fmt.Errorf("the manager stopped: %w", err)
	case <-core.done:
		return fmt.Errorf("the core stopped (see %s)", core.logPath)
	case <-sidecar.done:
		return fmt.Errorf("the sidecar stopped (see %s)", sidecar.logPath)
	}
	fmt.Println()
	step("Stopping")
	return nil
}

// injectedEnv returns the environment the webhook gave the pod's proxy container.
func injectedEnv(pod *corev1.Pod) (map[string]string, error) {
	for _, c := range pod.Spec.InitContainers {
		if c.Name != inject.ContainerName {
			continue
		}
		env := map[string]string{}
		for _, e := range c.Env {
			if e.ValueFrom == nil {
				env[e.Name] = e.Value
			}
		}
		return env, nil
	}
	return nil, errors.New("the webhook did not inject the proxy into Pod demo/sampleapp")
}

func mergeEnv(base, overrides map[string]string) []string {
	var out []string
	for k, v := range base {
		if _, ok := overrides[k]; !ok {
			out = append(out, k+"="+v)
		}
	}
	for k, v := range overrides {
		out = append(out, k+"="+v)
	}
	return out
}

// applyFile creates every object of a YAML file; the AuthTenant's websiteDomain follows the
// port the demo serves the app on.
func applyFile(ctx context.Context, c client.Client, path string, port int) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	dec := utilyaml.NewYAMLOrJSONDecoder(f, 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("reading %s: %w", path, err)
		}
		if len(u.Object) == 0 {
			continue
		}
		if u.GetKind() == "AuthTenant" {
			if err := unstructured.SetNestedField(u.Object, fmt.Sprintf("http://localhost:%d", port), "spec", "websiteDomain"); err != nil {
				return err
			}
		}
		if err := c.Create(ctx, u); err != nil {
			return fmt.Errorf("applying %s %s: %w", u.GetKind(), u.GetName(), err)
		}
	}
}

func waitReady(ctx context.Context, c client.Client) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		var t authv1alpha1.AuthTenant
		var p authv1alpha1.MFAPolicy
		terr := c.Get(ctx, client.ObjectKey{Namespace: "demo", Name: "demo"}, &t)
		perr := c.Get(ctx, client.ObjectKey{Namespace: "demo", Name: "totp-required"}, &p)
		if terr == nil && perr == nil {
			tc := meta.FindStatusCondition(t.Status.Conditions, authv1alpha1.ConditionReady)
			pc := meta.FindStatusCondition(p.Status.Conditions, authv1alpha1.ConditionReady)
			if tc != nil && tc.Status == metav1.ConditionTrue && pc != nil && pc.Status == metav1.ConditionTrue {
				fmt.Printf("    AuthTenant demo: %s; MFAPolicy totp-required: %s\n", tc.Message, pc.Message)
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("not Ready after 60 s: tenant %v, policy %v", tc, pc)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

type process struct {
	name, logPath string
	cmd           *exec.Cmd
	done          chan struct{}
}

func startProcess(ctx context.Context, o options, name string, args, env []string) (*process, error) {
	logPath := filepath.Join(o.state, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(o.bin, name), args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // Ctrl-C reaches us; we stop it
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &process{name: name, logPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logFile.Close(); close(p.done) }()
	return p, nil
}

func (p *process) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func waitHTTP(ctx context.Context, url string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func writeKubeconfig(env *envtest.Environment, path string) error {
	user, err := env.AddUser(envtest.User{Name: "demo-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("creating a kubeconfig: %w", err)
	}
	b, err := user.KubeConfig()
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

func inUse(port int) bool {
	resp, err := (&http.Client{Timeout: 300 * time.Millisecond}).Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		return !strings.Contains(err.Error(), "connection refused")
	}
	resp.Body.Close()
	return true
}

func randomKey() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func abs(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
