package inject_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/twofold-dev/twofold/sidecar/inject"
	"github.com/twofold-dev/twofold/test/testenv"
)

var (
	env        *testenv.Env
	stopServer context.CancelFunc
	serverDone chan struct{}
	cfg        = func() inject.Config {
		c := inject.DefaultConfig()
		c.Image = "twofold-sidecar:test"
		c.CoreURL = "http://twofold-core.twofold-system:3567"
		c.ExcludedNamespaces = []string{"kube-system", "twofold-system"}
		return c
	}()
)

func TestMain(m *testing.M) {
	var err error
	env, err = testenv.Start(testenv.Options{WebhookInstallOptions: envtest.WebhookInstallOptions{
		Paths: []string{filepath.Join(testenv.RepoRoot(), "config", "webhook")},
	}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	wo := env.WebhookInstallOptions
	server := webhook.NewServer(webhook.Options{
		Host: wo.LocalServingHost, Port: wo.LocalServingPort, CertDir: wo.LocalServingCertDir,
		TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.MinVersion = tls.VersionTLS12 }},
	})
	inject.Register(server, env.Scheme, cfg)
	var ctx context.Context
	ctx, stopServer = context.WithCancel(context.Background())
	serverDone = make(chan struct{})
	go func() {
		defer close(serverDone)
		if err := server.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "webhook server:", err)
		}
	}()
	if err := waitForServer(wo.LocalServingHost, wo.LocalServingPort); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for _, ns := range []string{"apps", "twofold-system"} {
		if err := env.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	stopServer()
	_ = env.Stop()
	os.Exit(code)
}

func waitForServer(host string, port int) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		conn, err := tls.Dial("tcp", fmt.Sprintf("%s:%d", host, port), &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // readiness probe of a test server
		if err == nil {
			return conn.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("webhook server did not start: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// appPod is a typical web app: port "http" 8080, probed on /healthz.
func appPod(name string, labels, annotations map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "apps", Labels: labels, Annotations: annotations},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name:  "app",
			Image: "example/app:1",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}, {Name: "metrics", ContainerPort: 9100, Protocol: corev1.ProtocolTCP}},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: "/healthz", Port: intstr.FromString("http"),
			}}},
		}}},
	}
}

var optIn = map[string]string{inject.LabelInject: "true"}

func tenant(extra ...string) map[string]string {
	a := map[string]string{inject.AnnotationTenant: "acme"}
	for i := 0; i+1 < len(extra); i += 2 {
		a[extra[i]] = extra[i+1]
	}
	return a
}

func env2map(c corev1.Container) map[string]string {
	m := map[string]string{}
	for _, e := range c.Env {
		m[e.Name] = e.Value
	}
	return m
}

func TestOptedInPodGetsTheProxy(t *testing.T) {
	ctx := context.Background()
	pod := appPod("web", optIn, tenant(inject.AnnotationPublicPaths, "/public, /assets"))
	if err := env.Client.Create(ctx, pod); err != nil {
		t.Fatalf("creating an opted-in pod: %v", err)
	}
	if len(pod.Spec.InitContainers) != 1 || pod.Spec.InitContainers[0].Name != inject.ContainerName {
		t.Fatalf("init containers = %v, want the proxy", pod.Spec.InitContainers)
	}
	proxy := pod.Spec.InitContainers[0]
	t.Run("the proxy is a native sidecar", func(t *testing.T) {
		if proxy.RestartPolicy == nil || *proxy.RestartPolicy != corev1.ContainerRestartPolicyAlways {
			t.Fatalf("restartPolicy = %v, want Always", proxy.RestartPolicy)
		}
		if proxy.Image != cfg.Image {
			t.Fatalf("image = %q", proxy.Image)
		}
	})
	t.Run("the proxy takes over the app's named port so Services reach it", func(t *testing.T) {
		if !slices.ContainsFunc(proxy.Ports, func(p corev1.ContainerPort) bool { return p.Name == "http" && p.ContainerPort == 8080 }) {
			t.Fatalf("proxy ports = %v, want http/8080", proxy.Ports)
		}
		app := pod.Spec.Containers[0]
		if slices.ContainsFunc(app.Ports, func(p corev1.ContainerPort) bool { return p.Name == "http" || p.ContainerPort == 8080 }) {
			t.Fatalf("app still declares the protected port: %v", app.Ports)
		}
		if !slices.ContainsFunc(app.Ports, func(p corev1.ContainerPort) bool { return p.Name == "metrics" }) {
			t.Fatalf("the app's other ports must stay: %v", app.Ports)
		}
	})
	t.Run("the proxy is configured from the annotations", func(t *testing.T) {
		e := env2map(proxy)
		want := map[string]string{
			"TWOFOLD_TENANT":       "acme",
			"TWOFOLD_UPSTREAM":     "http://127.0.0.1:8080",
			"TWOFOLD_LISTEN_PORT":  "8080",
			"TWOFOLD_CORE_URL":     cfg.CoreURL,
			"TWOFOLD_PUBLIC_PATHS": "/public,/assets,/healthz",
		}
		for k, v := range want {
			if e[k] != v {
				t.Errorf("%s = %q, want %q", k, e[k], v)
			}
		}
	})
	t.Run("the proxy has probes, resources and a locked-down security context", func(t *testing.T) {
		if proxy.ReadinessProbe == nil || proxy.LivenessProbe == nil || proxy.StartupProbe == nil {
			t.Fatal("probes missing")
		}
		if proxy.Resources.Requests.Cpu().String() != "50m" || proxy.Resources.Limits.Memory().String() != "64Mi" {
			t.Fatalf("resources = %v", proxy.Resources)
		}
		sc := proxy.SecurityContext
		if sc == nil || !*sc.RunAsNonRoot || !*sc.ReadOnlyRootFilesystem || *sc.AllowPrivilegeEscalation {
			t.Fatalf("security context = %+v", sc)
		}
	})
}

func TestInjectionOutcomes(t *testing.T) {
	tests := []struct {
		name        string
		namespace   string
		labels      map[string]string
		annotations map[string]string
		mutate      func(*corev1.Pod)
		wantProxy   bool
		wantError   string
		check       func(*testing.T, *corev1.Pod)
	}{
		{name: "a pod that did not opt in is left alone", labels: nil, annotations: tenant()},
		{name: "a pod in kube-system is never injected", namespace: "kube-system", labels: optIn, annotations: tenant()},
		{
			name: "an opted-in pod without a tenant is refused", labels: optIn, annotations: nil,
			wantError: "annotation twofold.dev/tenant is required",
		},
		{
			name: "a port annotation naming no port is refused", labels: optIn, annotations: tenant(inject.AnnotationPort, "web"),
			wantError: `annotation twofold.dev/port="web" names no container port`,
		},
		{
			name: "a public path of / is refused, since it would expose everything", labels: optIn, annotations: tenant(inject.AnnotationPublicPaths, "/"),
			wantError: `would make every path public`,
		},
		{
			name: "a bad resource override is refused", labels: optIn, annotations: tenant(inject.AnnotationProxyMemory, "lots"),
			wantError: `annotation twofold.dev/proxy-memory="lots" is not a positive quantity`,
		},
		{
			name: "the port annotation picks the protected port by number", labels: optIn, annotations: tenant(inject.AnnotationPort, "9100"),
			wantProxy: true,
			check: func(t *testing.T, p *corev1.Pod) {
				if e := env2map(p.Spec.InitContainers[0]); e["TWOFOLD_UPSTREAM"] != "http://127.0.0.1:9100" || e["TWOFOLD_PUBLIC_PATHS"] != "" {
					t.Fatalf("env = %v", e)
				}
			},
		},
		{
			name: "resource overrides are applied", labels: optIn, annotations: tenant(inject.AnnotationProxyCPU, "100m", inject.AnnotationProxyMemory, "128Mi"),
			wantProxy: true,
			check: func(t *testing.T, p *corev1.Pod) {
				r := p.Spec.InitContainers[0].Resources
				if r.Requests.Cpu().String() != "100m" || r.Limits.Memory().String() != "128Mi" {
					t.Fatalf("resources = %v", r)
				}
			},
		},
		{
			name: "a pod that already has the proxy is admitted unchanged", labels: optIn, annotations: tenant(),
			mutate: func(p *corev1.Pod) {
				if _, err := inject.Inject(p, cfg); err != nil {
					panic(err)
				}
				p.Annotations["marker"] = "first admission"
			},
			wantProxy: true,
			check: func(t *testing.T, p *corev1.Pod) {
				if n := len(p.Spec.InitContainers); n != 1 {
					t.Fatalf("%d init containers after a second admission, want 1", n)
				}
			},
		},
		{
			name: "a pod carrying a look-alike proxy for another tenant is refused", labels: optIn, annotations: tenant(),
			mutate: func(p *corev1.Pod) {
				if _, err := inject.Inject(p, cfg); err != nil {
					panic(err)
				}
				p.Spec.InitContainers[0].Env = append(p.Spec.InitContainers[0].Env[:5], corev1.EnvVar{Name: "TWOFOLD_TENANT", Value: "other"})
			},
			wantError: `enforces tenant "other" but the pod's twofold.dev/tenant annotation says "acme"`,
		},
		{
			name: "a pod whose proxy is not a native sidecar is refused", labels: optIn, annotations: tenant(),
			mutate: func(p *corev1.Pod) {
				if _, err := inject.Inject(p, cfg); err != nil {
					panic(err)
				}
				proxy := &p.Spec.InitContainers[0]
				proxy.RestartPolicy = nil
				proxy.StartupProbe, proxy.ReadinessProbe, proxy.LivenessProbe = nil, nil, nil
			},
			wantError: "must have restartPolicy Always",
		},
		{
			name: "a pod whose app still declares the proxy's port is refused", labels: optIn, annotations: tenant(),
			mutate: func(p *corev1.Pod) {
				if _, err := inject.Inject(p, cfg); err != nil {
					panic(err)
				}
				p.Spec.Containers[0].Ports = append(p.Spec.Containers[0].Ports, corev1.ContainerPort{Name: "http", ContainerPort: 8080})
			},
			wantError: "traffic to it would bypass the proxy",
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := appPod(fmt.Sprintf("outcome-%d", i), tt.labels, tt.annotations)
			if tt.namespace != "" {
				pod.Namespace = tt.namespace
			}
			if tt.mutate != nil {
				tt.mutate(pod)
			}
			err := env.Client.Create(context.Background(), pod)
			if tt.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantError) {
					t.Fatalf("create error = %v, want %q", err, tt.wantError)
				}
				return
			}
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			has := slices.ContainsFunc(pod.Spec.InitContainers, func(c corev1.Container) bool { return c.Name == inject.ContainerName })
			if has != tt.wantProxy {
				t.Fatalf("proxy injected = %v, want %v", has, tt.wantProxy)
			}
			if tt.check != nil {
				tt.check(t, pod)
			}
		})
	}
}

func TestDeploymentPodsAreInjected(t *testing.T) {
	ctx := context.Background()
	tmpl := appPod("", map[string]string{inject.LabelInject: "true", "app": "shop"}, tenant())
	replicas := int32(2)
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: "apps"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "shop"}},
			Template: corev1.PodTemplateSpec{ObjectMeta: tmpl.ObjectMeta, Spec: tmpl.Spec},
		},
	}
	if err := env.Client.Create(ctx, dep); err != nil {
		t.Fatal(err)
	}
	// envtest runs no controllers: create the pods from the template as the ReplicaSet
	// controller would, and see each one injected on admission.
	for i := 0; i < int(replicas); i++ {
		pod := &corev1.Pod{
			ObjectMeta: *dep.Spec.Template.ObjectMeta.DeepCopy(),
			Spec:       *dep.Spec.Template.Spec.DeepCopy(),
		}
		pod.Namespace, pod.GenerateName = "apps", "shop-7d9f8-"
		pod.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: dep.Name, UID: dep.UID}}
		if err := env.Client.Create(ctx, pod); err != nil {
			t.Fatalf("creating replica %d: %v", i, err)
		}
		if len(pod.Spec.InitContainers) != 1 || pod.Spec.InitContainers[0].Name != inject.ContainerName {
			t.Fatalf("replica %d was not injected: %v", i, pod.Spec.InitContainers)
		}
	}
	var stored appsv1.Deployment
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(dep), &stored); err != nil {
		t.Fatal(err)
	}
	if len(stored.Spec.Template.Spec.InitContainers) != 0 {
		t.Fatal("the Deployment's own template must not be changed")
	}
}

func TestUpdatingAnInjectedPodIsAllowed(t *testing.T) {
	ctx := context.Background()
	pod := appPod("relabel", optIn, tenant())
	if err := env.Client.Create(ctx, pod); err != nil {
		t.Fatal(err)
	}
	pod.Labels["team"] = "payments"
	if err := env.Client.Update(ctx, pod); err != nil {
		t.Fatalf("updating the labels of an injected pod: %v", err)
	}
}

// This test stops the webhook server, so it runs last (Go runs tests in source order).
func TestWithTheWebhookDownOptedInPodsAreRefusedAndOthersAreNot(t *testing.T) {
	ctx := context.Background()
	stopServer()
	<-serverDone

	err := env.Client.Create(ctx, appPod("unprotected", optIn, tenant()))
	if err == nil {
		t.Fatal("an opted-in pod was created while the injector was down: it would run without its proxy")
	}
	if !strings.Contains(err.Error(), "check.twofold.dev") {
		t.Fatalf("refused for an unexpected reason: %v", err)
	}
	if err := env.Client.Create(ctx, appPod("ordinary", nil, nil)); err != nil {
		t.Fatalf("a pod that did not opt in was blocked by the webhook outage: %v", err)
	}
}
