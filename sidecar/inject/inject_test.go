package inject_test

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/twofold-dev/twofold/sidecar/inject"
)

// probePort resolves a probe's port the way the kubelet does: a number as it is, a name among
// the ports of the probe's own container only.
func probePort(c corev1.Container, p intstr.IntOrString) (int32, error) {
	if p.Type == intstr.Int {
		return p.IntVal, nil
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort, nil
		}
	}
	return 0, errors.New(`port "` + p.StrVal + `" not found`)
}

func httpProbe(path string, port intstr.IntOrString) *corev1.Probe {
	return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: port}}}
}

func publicPathsOf(t *testing.T, p *corev1.Pod) []string {
	t.Helper()
	v := env2map(p.Spec.InitContainers[0])["TWOFOLD_PUBLIC_PATHS"]
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// The app's probes and hooks must keep working once the proxy has taken the app's port: what
// named the port names its number (served by the proxy on the pod IP), and what the kubelet
// calls there without a session is public.
func TestInjectRewritesWhatNamedTheTakenOverPort(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*corev1.Pod)
		check  func(t *testing.T, p *corev1.Pod)
	}{
		{
			name: "a readiness probe on the named port probes the port's number, which the proxy serves",
			check: func(t *testing.T, p *corev1.Pod) {
				app := p.Spec.Containers[0]
				port, err := probePort(app, app.ReadinessProbe.HTTPGet.Port)
				if err != nil {
					t.Fatalf("the kubelet could not resolve the readiness probe's port: %v", err)
				}
				if port != 8080 || !slices.ContainsFunc(p.Spec.InitContainers[0].Ports, func(cp corev1.ContainerPort) bool { return cp.ContainerPort == port }) {
					t.Fatalf("the readiness probe goes to port %d, which the proxy does not serve", port)
				}
				if !slices.Contains(publicPathsOf(t, p), "/healthz") {
					t.Fatalf("the probe's path is not public: %v", publicPathsOf(t, p))
				}
			},
		},
		{
			name: "liveness and startup probes, HTTP or TCP, on the named port probe its number",
			mutate: func(p *corev1.Pod) {
				app := &p.Spec.Containers[0]
				app.LivenessProbe = httpProbe("/livez", intstr.FromString("http"))
				app.StartupProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString("http")}}}
			},
			check: func(t *testing.T, p *corev1.Pod) {
				app := p.Spec.Containers[0]
				for what, port := range map[string]intstr.IntOrString{"liveness": app.LivenessProbe.HTTPGet.Port, "startup": app.StartupProbe.TCPSocket.Port} {
					if port != intstr.FromInt32(8080) {
						t.Errorf("the %s probe's port is %v, want 8080", what, port.String())
					}
				}
				if got := publicPathsOf(t, p); !reflect.DeepEqual(got, []string{"/healthz", "/livez"}) {
					t.Errorf("public paths = %v, want the two HTTP probes' paths", got)
				}
			},
		},
		{
			name: "a probe of another of the app's named ports is left alone",
			mutate: func(p *corev1.Pod) {
				p.Spec.Containers[0].LivenessProbe = httpProbe("/metrics", intstr.FromString("metrics"))
			},
			check: func(t *testing.T, p *corev1.Pod) {
				if got := p.Spec.Containers[0].LivenessProbe.HTTPGet.Port; got != intstr.FromString("metrics") {
					t.Errorf("the metrics probe's port became %v", got.String())
				}
				if slices.Contains(publicPathsOf(t, p), "/metrics") {
					t.Error("a probe that does not go through the proxy made its path public")
				}
			},
		},
		{
			name: "a probe's query string is not part of the public path",
			mutate: func(p *corev1.Pod) {
				p.Spec.Containers[0].ReadinessProbe.HTTPGet.Path = "/healthz?full=1"
			},
			check: func(t *testing.T, p *corev1.Pod) {
				if got := publicPathsOf(t, p); !reflect.DeepEqual(got, []string{"/healthz"}) {
					t.Errorf("public paths = %v, want [/healthz]", got)
				}
				if got := p.Spec.Containers[0].ReadinessProbe.HTTPGet.Path; got != "/healthz?full=1" {
					t.Errorf("the probe's own path changed to %q", got)
				}
			},
		},
		{
			name: "another container's HTTP probe of the protected port's number makes its path public",
			mutate: func(p *corev1.Pod) {
				p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "watcher", Image: "example/watcher:1",
					LivenessProbe: httpProbe("/app-alive", intstr.FromInt32(8080))})
			},
			check: func(t *testing.T, p *corev1.Pod) {
				if !slices.Contains(publicPathsOf(t, p), "/app-alive") {
					t.Errorf("public paths = %v, want /app-alive among them", publicPathsOf(t, p))
				}
			},
		},
		{
			name: "a probe with a host of its own does not go through the proxy, so its path stays protected",
			mutate: func(p *corev1.Pod) {
				p.Spec.Containers[0].LivenessProbe = httpProbe("/internal", intstr.FromString("http"))
				p.Spec.Containers[0].LivenessProbe.HTTPGet.Host = "203.0.113.7"
			},
			check: func(t *testing.T, p *corev1.Pod) {
				if slices.Contains(publicPathsOf(t, p), "/internal") {
					t.Error("the path of a probe sent elsewhere became public")
				}
				if got := p.Spec.Containers[0].LivenessProbe.HTTPGet.Port; got != intstr.FromInt32(8080) {
					t.Errorf("its port name, which only the proxy declares now, stays %v", got.String())
				}
			},
		},
		{
			name: "a preStop hook on the named port calls its number when its path is public",
			mutate: func(p *corev1.Pod) {
				p.Annotations[inject.AnnotationPublicPaths] = "/drain"
				p.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/drain", Port: intstr.FromString("http")}}}
			},
			check: func(t *testing.T, p *corev1.Pod) {
				if got := p.Spec.Containers[0].Lifecycle.PreStop.HTTPGet.Port; got != intstr.FromInt32(8080) {
					t.Errorf("the preStop hook's port is %v, want 8080", got.String())
				}
			},
		},
		{
			name: "a gRPC probe of another port is left alone",
			mutate: func(p *corev1.Pod) {
				p.Spec.Containers[0].LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 9100}}}
			},
			check: func(t *testing.T, p *corev1.Pod) {
				if got := p.Spec.Containers[0].LivenessProbe.GRPC.Port; got != 9100 {
					t.Errorf("gRPC probe port = %d", got)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := appPod("p", map[string]string{inject.LabelInject: "true"}, tenant())
			if tt.mutate != nil {
				tt.mutate(pod)
			}
			changed, err := inject.Inject(pod, cfg)
			if err != nil || !changed {
				t.Fatalf("Inject = %v, %v", changed, err)
			}
			tt.check(t, pod)
			if err := inject.Check(pod, cfg); err != nil {
				t.Fatalf("the injected pod fails the check: %v", err)
			}
			again := pod.DeepCopy()
			if changed, err := inject.Inject(again, cfg); changed || err != nil || !reflect.DeepEqual(again, pod) {
				t.Fatalf("a second injection changed the pod (changed=%v, err=%v)", changed, err)
			}
		})
	}
}

func TestInjectRefusesProbesAndHooksThatCannotWorkThroughTheProxy(t *testing.T) {
	tests := []struct {
		name        string
		annotations []string
		mutate      func(*corev1.Pod)
		want        string
	}{
		{
			name: "a gRPC probe of the protected port is refused, since the proxy speaks HTTP/1.1",
			mutate: func(p *corev1.Pod) {
				p.Spec.Containers[0].LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 8080}}}
			},
			want: "container app has a gRPC liveness probe on port 8080",
		},
		{
			name: "a preStop hook on the protected port whose path is not public is refused, since the proxy would refuse the kubelet",
			mutate: func(p *corev1.Pod) {
				p.Spec.Containers[0].Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/drain", Port: intstr.FromString("http")}}}
			},
			want: `container app's preStop hook calls "/drain" on port 8080`,
		},
		{
			name:   "a probe of / on the protected port is refused, since it would make every path public",
			mutate: func(p *corev1.Pod) { p.Spec.Containers[0].ReadinessProbe.HTTPGet.Path = "/" },
			want:   `it probes "/", which would make every path public`,
		},
		{
			name:   "a probe under /auth on the protected port is refused, since /auth goes to the core",
			mutate: func(p *corev1.Pod) { p.Spec.Containers[0].ReadinessProbe.HTTPGet.Path = "/auth/healthz" },
			want:   `its path "/auth/healthz" cannot be made public: /auth is the core's API`,
		},
		{
			name:   "a probe path with dot segments on the protected port is refused, since the proxy would not start with it",
			mutate: func(p *corev1.Pod) { p.Spec.Containers[0].ReadinessProbe.HTTPGet.Path = "/x/../healthz" },
			want:   "may not contain . or .. segments",
		},
		{
			name:        "a public path under /auth is refused",
			annotations: []string{inject.AnnotationPublicPaths, "/auth/x"},
			want:        `annotation twofold.dev/public-paths lists "/auth/x": /auth is the core's API`,
		},
		{
			name:        "a refusal for an undeclared port number leaves the app's ports as they were",
			annotations: []string{inject.AnnotationPort, "7000", inject.AnnotationProxyCPU, "lots"},
			want:        `annotation twofold.dev/proxy-cpu="lots" is not a positive quantity`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := appPod("p", map[string]string{inject.LabelInject: "true"}, tenant(tt.annotations...))
			if tt.mutate != nil {
				tt.mutate(pod)
			}
			before := pod.DeepCopy()
			changed, err := inject.Inject(pod, cfg)
			if !errors.Is(err, inject.ErrInvalidPod) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Inject error = %v, want ErrInvalidPod saying %q", err, tt.want)
			}
			if changed || !reflect.DeepEqual(pod, before) {
				t.Fatal("a refused pod was changed")
			}
		})
	}
}
