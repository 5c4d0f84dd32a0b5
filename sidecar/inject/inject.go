// Package inject adds Twofold's enforcing proxy to pods that opt in, as a Kubernetes native
// sidecar (an init container with restartPolicy Always), and checks that opted-in pods carry
// a correctly configured one. The manager serves both as admission webhooks.
//
// How the proxy becomes the pod's entry point: the proxy takes over the app container's port.
// The app listens on 127.0.0.1:<port>; the proxy listens on the pod IP with the same port
// number and forwards to 127.0.0.1:<port>. The port's declaration (number and name) moves from
// the app container to the proxy container, because a Service's named targetPort is resolved
// in the regular containers first and only then in native sidecars: were the name left on the
// app container, Services would keep sending traffic around the proxy. A numeric targetPort
// reaches the proxy too, since only the proxy listens on the pod IP. An app that listens on
// every address instead of 127.0.0.1 makes the proxy fail to bind, so the pod never becomes
// ready: the mistake fails closed.
//
// How the app's probes keep probing the app: the kubelet sends HTTP and TCP probes to the pod
// IP, where only the proxy listens, so a probe of the app on 127.0.0.1 is impossible from the
// kubelet. Probes and lifecycle hooks that name the taken-over port are rewritten to its
// number (the name now belongs to the proxy, and the kubelet resolves a probe's port name in
// the probe's own container only), so they reach the proxy on the pod IP. The paths of HTTP
// probes on that port become public paths, so the proxy forwards them to the app without a
// session: an HTTP probe still checks the app, through the proxy. A TCP probe on that port
// checks that the proxy accepts connections, not the app. A gRPC probe on it is refused,
// since the proxy speaks HTTP/1.1; so is an HTTP lifecycle hook on it whose path is not
// public, since the proxy would refuse the kubelet's sessionless call and the app would never
// see it.
package inject

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Labels and annotations a workload uses to opt in and configure its proxy.
const (
	// LabelInject opts a pod in: "true". A label, so that the webhooks' objectSelector
	// sends only opted-in pods to them and a pod that opted in is refused when the
	// fail-closed check cannot run.
	LabelInject = "twofold.dev/inject"
	// AnnotationTenant names the tenant id whose sessions the proxy accepts. Required.
	AnnotationTenant = "twofold.dev/tenant"
	// AnnotationPort is the app's port, as a number or as the name of a container port.
	// Defaults to the first port the first container declares.
	AnnotationPort = "twofold.dev/port"
	// AnnotationPublicPaths lists comma-separated path prefixes that need no session.
	AnnotationPublicPaths = "twofold.dev/public-paths"
	// AnnotationProxyCPU and AnnotationProxyMemory override the proxy's resource requests
	// (limits for memory), such as "50m" and "64Mi".
	AnnotationProxyCPU    = "twofold.dev/proxy-cpu"
	AnnotationProxyMemory = "twofold.dev/proxy-memory"
	// AnnotationInjected records what was injected, for people reading the pod.
	AnnotationInjected = "twofold.dev/injected"

	// ContainerName is the injected container's name; its presence means "already injected".
	ContainerName = "twofold-proxy"
	// AdminPort serves the proxy's /healthz, /readyz and /metrics.
	AdminPort = 15021
)

// ErrInvalidPod is wrapped by every refusal caused by the pod's own spec.
var ErrInvalidPod = errors.New("pod cannot be protected")

// Config is how the manager injects proxies.
type Config struct {
	// Image of the proxy, such as ghcr.io/twofold-dev/twofold-sidecar:v0.1.0.
	Image string
	// ImagePullPolicy of the proxy container; empty leaves the cluster default.
	ImagePullPolicy corev1.PullPolicy
	// CoreURL is the auth core's URL as seen from pods, such as http://twofold-core.twofold-system:3567.
	CoreURL string
	// ExcludedNamespaces are never injected: the operator's own and kube-system.
	ExcludedNamespaces []string
	// CPURequest and MemoryRequest are the proxy's defaults; memory is also its limit.
	CPURequest, MemoryRequest resource.Quantity
}

// DefaultConfig returns the defaults: 50m CPU and 64Mi memory, kube-system excluded.
func DefaultConfig() Config {
	return Config{
		ExcludedNamespaces: []string{"kube-system"},
		CPURequest:         resource.MustParse("50m"),
		MemoryRequest:      resource.MustParse("64Mi"),
	}
}

// OptedIn reports whether the pod asks for a proxy.
func OptedIn(pod *corev1.Pod) bool { return pod.Labels[LabelInject] == "true" }

// Excluded reports whether pods in the namespace are never injected.
func (c Config) Excluded(namespace string) bool {
	return slices.Contains(c.ExcludedNamespaces, namespace)
}

// Inject adds the proxy to an opted-in pod. It returns false without changing anything when
// the pod did not opt in or already has the proxy, and an error wrapping ErrInvalidPod when
// the pod cannot be protected as declared.
func Inject(pod *corev1.Pod, cfg Config) (bool, error) {
	if !OptedIn(pod) || hasProxy(pod) {
		return false, nil
	}
	tenant := pod.Annotations[AnnotationTenant]
	if tenant == "" {
		return false, fmt.Errorf("%w: annotation %s is required: the tenant whose sessions may reach this pod", ErrInvalidPod, AnnotationTenant)
	}
	app, portIdx, port, err := appPort(pod)
	if err != nil {
		return false, err
	}
	appC := &pod.Spec.Containers[app]
	resources, err := proxyResources(pod, cfg)
	if err != nil {
		return false, err
	}
	publicPaths, err := publicPaths(pod, app, port)
	if err != nil {
		return false, err
	}

	// The proxy takes the port over: it is declared on the proxy only, and what named it in
	// the app container names its number instead.
	if portIdx >= 0 {
		appC.Ports = slices.Delete(appC.Ports, portIdx, portIdx+1)
	}
	if port.Name != "" {
		renamePortReferences(appC, port)
	}
	proxyPort := corev1.ContainerPort{Name: port.Name, ContainerPort: port.ContainerPort, Protocol: corev1.ProtocolTCP}
	always := corev1.ContainerRestartPolicyAlways
	yes, no := true, false
	uid := int64(65532)
	proxy := corev1.Container{
		Name:            ContainerName,
		Image:           cfg.Image,
		ImagePullPolicy: cfg.ImagePullPolicy,
		RestartPolicy:   &always,
		Env: []corev1.EnvVar{
			{Name: "TWOFOLD_POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
			{Name: "TWOFOLD_LISTEN_PORT", Value: strconv.Itoa(int(port.ContainerPort))},
			{Name: "TWOFOLD_UPSTREAM", Value: "http://127.0.0.1:" + strconv.Itoa(int(port.ContainerPort))},
			{Name: "TWOFOLD_ADMIN_LISTEN", Value: ":" + strconv.Itoa(AdminPort)},
			{Name: "TWOFOLD_CORE_URL", Value: cfg.CoreURL},
			{Name: "TWOFOLD_TENANT", Value: tenant},
			{Name: "TWOFOLD_PUBLIC_PATHS", Value: strings.Join(publicPaths, ",")},
		},
		Ports: []corev1.ContainerPort{proxyPort, {Name: "twofold-admin", ContainerPort: AdminPort, Protocol: corev1.ProtocolTCP}},
		StartupProbe: &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(AdminPort)}},
			PeriodSeconds:    1,
			FailureThreshold: 30,
		},
		ReadinessProbe: &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/readyz", Port: intstr.FromInt32(AdminPort)}},
			PeriodSeconds: 5,
		},
		LivenessProbe: &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(AdminPort)}},
			PeriodSeconds:    10,
			FailureThreshold: 3,
		},
		Resources: resources,
		SecurityContext: &corev1.SecurityContext{
			RunAsNonRoot:             &yes,
			RunAsUser:                &uid,
			AllowPrivilegeEscalation: &no,
			ReadOnlyRootFilesystem:   &yes,
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
	}
	// First among the init containers, so it is ready before any other starts.
	pod.Spec.InitContainers = append([]corev1.Container{proxy}, pod.Spec.InitContainers...)
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[AnnotationInjected] = fmt.Sprintf("proxy for container %s port %d (tenant %s)", appC.Name, port.ContainerPort, tenant)
	return true, nil
}

func hasProxy(pod *corev1.Pod) bool {
	return slices.ContainsFunc(pod.Spec.InitContainers, func(c corev1.Container) bool { return c.Name == ContainerName }) ||
		slices.ContainsFunc(pod.Spec.Containers, func(c corev1.Container) bool { return c.Name == ContainerName })
}

// appPort finds the container the annotation (or the default) names, the index of the port
// in it (-1 for a port number the app does not declare, which is protected all the same, on
// the first container) and the port. It changes nothing.
func appPort(pod *corev1.Pod) (int, int, corev1.ContainerPort, error) {
	want := pod.Annotations[AnnotationPort]
	if want == "" {
		for ci, c := range pod.Spec.Containers {
			if len(c.Ports) > 0 {
				if c.Ports[0].Protocol != "" && c.Ports[0].Protocol != corev1.ProtocolTCP {
					break
				}
				return ci, 0, c.Ports[0], nil
			}
		}
		return 0, 0, corev1.ContainerPort{}, fmt.Errorf("%w: no container declares a TCP port; declare the app's port or set annotation %s", ErrInvalidPod, AnnotationPort)
	}
	num, numErr := strconv.Atoi(want)
	for ci, c := range pod.Spec.Containers {
		for pi, p := range c.Ports {
			if (numErr == nil && int(p.ContainerPort) == num) || (numErr != nil && p.Name == want) {
				if p.Protocol != "" && p.Protocol != corev1.ProtocolTCP {
					return 0, 0, corev1.ContainerPort{}, fmt.Errorf("%w: port %s is %s; the proxy speaks HTTP over TCP", ErrInvalidPod, want, p.Protocol)
				}
				return ci, pi, p, nil
			}
		}
	}
	if numErr == nil {
		if num < 1 || num > 65535 {
			return 0, 0, corev1.ContainerPort{}, fmt.Errorf("%w: annotation %s=%q is not a port number between 1 and 65535", ErrInvalidPod, AnnotationPort, want)
		}
		if len(pod.Spec.Containers) == 0 {
			return 0, 0, corev1.ContainerPort{}, fmt.Errorf("%w: the pod has no containers", ErrInvalidPod)
		}
		return 0, -1, corev1.ContainerPort{ContainerPort: int32(num), Protocol: corev1.ProtocolTCP}, nil
	}
	return 0, 0, corev1.ContainerPort{}, fmt.Errorf("%w: annotation %s=%q names no container port; use a port number or the name of a declared port", ErrInvalidPod, AnnotationPort, want)
}

// targetsPort reports whether a probe or hook port of container ci reaches the taken-over
// port: by its number from any container, by its name only from the app container, since the
// kubelet resolves a port name in the probe's own container.
func targetsPort(p intstr.IntOrString, ci, app int, port corev1.ContainerPort) bool {
	if p.Type == intstr.Int {
		return p.IntVal == port.ContainerPort
	}
	return ci == app && port.Name != "" && p.StrVal == port.Name
}

// publicPaths are the annotation's prefixes plus the paths of the HTTP probes on the protected
// port, which the kubelet calls through the proxy without a session. It refuses a gRPC probe
// on that port, and an HTTP lifecycle hook on it whose path is not public (see the package
// documentation).
func publicPaths(pod *corev1.Pod, app int, port corev1.ContainerPort) ([]string, error) {
	var out []string
	for _, p := range strings.Split(pod.Annotations[AnnotationPublicPaths], ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if err := checkPublicPath(p); err != nil {
			return nil, fmt.Errorf("%w: annotation %s lists %q: %v", ErrInvalidPod, AnnotationPublicPaths, p, err)
		}
		out = append(out, p)
	}
	for ci := range pod.Spec.Containers {
		c := &pod.Spec.Containers[ci]
		for _, probe := range []struct {
			kind  string
			probe *corev1.Probe
		}{{"readiness", c.ReadinessProbe}, {"liveness", c.LivenessProbe}, {"startup", c.StartupProbe}} {
			if probe.probe == nil {
				continue
			}
			if g := probe.probe.GRPC; g != nil && g.Port == port.ContainerPort {
				return nil, fmt.Errorf("%w: container %s has a gRPC %s probe on port %d, which the %s sidecar takes over and serves as HTTP/1.1; probe another port, or use an httpGet probe", ErrInvalidPod, c.Name, probe.kind, port.ContainerPort, ContainerName)
			}
			h := probe.probe.HTTPGet
			// A probe with a host of its own does not go to the pod IP, so not through the proxy.
			if h == nil || h.Host != "" || !targetsPort(h.Port, ci, app, port) {
				continue
			}
			path, err := probePath(h.Path)
			if err != nil {
				return nil, fmt.Errorf("%w: container %s's %s probe on the protected port %d: %v", ErrInvalidPod, c.Name, probe.kind, port.ContainerPort, err)
			}
			if !slices.Contains(out, path) {
				out = append(out, path)
			}
		}
	}
	for ci := range pod.Spec.Containers {
		c := &pod.Spec.Containers[ci]
		if c.Lifecycle == nil {
			continue
		}
		for _, hook := range []struct {
			kind    string
			handler *corev1.LifecycleHandler
		}{{"postStart", c.Lifecycle.PostStart}, {"preStop", c.Lifecycle.PreStop}} {
			if hook.handler == nil || hook.handler.HTTPGet == nil {
				continue
			}
			h := hook.handler.HTTPGet
			if h.Host != "" || !targetsPort(h.Port, ci, app, port) {
				continue
			}
			path, _, _ := strings.Cut(h.Path, "?")
			if !slices.ContainsFunc(out, func(pp string) bool { return coversPath(pp, path) }) {
				return nil, fmt.Errorf("%w: container %s's %s hook calls %q on port %d, which the %s sidecar takes over: the kubelet calls it without a session, so the proxy would refuse it and the app would never see it; list the path in annotation %s if anyone may call it, or use an exec or sleep hook", ErrInvalidPod, c.Name, hook.kind, h.Path, port.ContainerPort, ContainerName, AnnotationPublicPaths)
			}
		}
	}
	return out, nil
}

// checkPublicPath accepts what the proxy accepts as a public path prefix: a clean absolute
// path other than "/" and outside /auth (the core's, always forwarded to the core).
func checkPublicPath(p string) error {
	if p == "/" {
		return errors.New("\"/\" would make every path public; remove the twofold.dev/inject label instead")
	}
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.ContainsAny(p, "\\?#") {
		return errors.New("public paths are absolute path prefixes such as /healthz")
	}
	for _, seg := range strings.Split(p[1:], "/") {
		if name, _, _ := strings.Cut(seg, ";"); name == "." || name == ".." {
			return errors.New("public paths may not contain . or .. segments")
		}
	}
	if coversPath("/auth", p) || coversPath(p, "/auth") {
		return errors.New("/auth is the core's API and always reaches the core")
	}
	return nil
}

// probePath is the public path prefix for an HTTP probe's path: the path without its query.
func probePath(raw string) (string, error) {
	p, _, _ := strings.Cut(raw, "?")
	if p == "" || p == "/" {
		return "", errors.New("it probes \"/\", which would make every path public; probe a dedicated path such as /healthz")
	}
	if err := checkPublicPath(p); err != nil {
		return "", fmt.Errorf("its path %q cannot be made public: %v", raw, err)
	}
	return p, nil
}

// coversPath reports whether prefix covers p on path segment boundaries, as the proxy matches
// public paths.
func coversPath(prefix, p string) bool {
	if !strings.HasPrefix(p, prefix) {
		return false
	}
	if len(p) == len(prefix) || strings.HasSuffix(prefix, "/") {
		return true
	}
	c := p[len(prefix)]
	return c == '/' || c == ';'
}

// renamePortReferences points the probes and lifecycle hooks of the app container that name
// the taken-over port at its number: the name now belongs to the proxy, and the kubelet finds
// a probe's named port only among the ports of the probe's own container.
func renamePortReferences(c *corev1.Container, port corev1.ContainerPort) {
	rename := func(p *intstr.IntOrString) {
		if p.Type == intstr.String && p.StrVal == port.Name {
			*p = intstr.FromInt32(port.ContainerPort)
		}
	}
	handler := func(h *corev1.ProbeHandler) {
		if h.HTTPGet != nil {
			rename(&h.HTTPGet.Port)
		}
		if h.TCPSocket != nil {
			rename(&h.TCPSocket.Port)
		}
	}
	for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe, c.StartupProbe} {
		if p != nil {
			handler(&p.ProbeHandler)
		}
	}
	if c.Lifecycle != nil {
		for _, h := range []*corev1.LifecycleHandler{c.Lifecycle.PostStart, c.Lifecycle.PreStop} {
			if h == nil {
				continue
			}
			if h.HTTPGet != nil {
				rename(&h.HTTPGet.Port)
			}
			if h.TCPSocket != nil {
				rename(&h.TCPSocket.Port)
			}
		}
	}
}

func proxyResources(pod *corev1.Pod, cfg Config) (corev1.ResourceRequirements, error) {
	cpu, mem := cfg.CPURequest, cfg.MemoryRequest
	for _, o := range []struct {
		annotation string
		into       *resource.Quantity
	}{{AnnotationProxyCPU, &cpu}, {AnnotationProxyMemory, &mem}} {
		if v := pod.Annotations[o.annotation]; v != "" {
			q, err := resource.ParseQuantity(v)
			if err != nil || q.Sign() <= 0 {
				return corev1.ResourceRequirements{}, fmt.Errorf("%w: annotation %s=%q is not a positive quantity such as 50m or 64Mi", ErrInvalidPod, o.annotation, v)
			}
			*o.into = q
		}
	}
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: cpu, corev1.ResourceMemory: mem},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: mem},
	}, nil
}

// Check is the fail-closed rule: an opted-in pod must carry the proxy as a native sidecar,
// configured for the tenant it names, with the image the manager injects, and no other
// container may declare the port the proxy took over.
func Check(pod *corev1.Pod, cfg Config) error {
	if !OptedIn(pod) {
		return nil
	}
	idx := slices.IndexFunc(pod.Spec.InitContainers, func(c corev1.Container) bool { return c.Name == ContainerName })
	if idx < 0 {
		return fmt.Errorf("%w: it opted in with label %s=true but has no %s sidecar; the injection webhook did not run, so the pod is refused rather than started unprotected", ErrInvalidPod, LabelInject, ContainerName)
	}
	proxy := pod.Spec.InitContainers[idx]
	if proxy.RestartPolicy == nil || *proxy.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		return fmt.Errorf("%w: the %s init container must have restartPolicy Always (a native sidecar)", ErrInvalidPod, ContainerName)
	}
	if cfg.Image != "" && proxy.Image != cfg.Image {
		return fmt.Errorf("%w: the %s container runs image %q, not the proxy image %q", ErrInvalidPod, ContainerName, proxy.Image, cfg.Image)
	}
	env := map[string]string{}
	for _, e := range proxy.Env {
		env[e.Name] = e.Value
	}
	if tenant := pod.Annotations[AnnotationTenant]; env["TWOFOLD_TENANT"] != tenant || tenant == "" {
		return fmt.Errorf("%w: the %s container enforces tenant %q but the pod's %s annotation says %q", ErrInvalidPod, ContainerName, env["TWOFOLD_TENANT"], AnnotationTenant, tenant)
	}
	for _, p := range proxy.Ports {
		if p.Name == "twofold-admin" {
			continue
		}
		for _, c := range pod.Spec.Containers {
			for _, cp := range c.Ports {
				if cp.ContainerPort == p.ContainerPort || (p.Name != "" && cp.Name == p.Name) {
					return fmt.Errorf("%w: container %s declares port %d (%s), which the %s sidecar serves; traffic to it would bypass the proxy", ErrInvalidPod, c.Name, cp.ContainerPort, cp.Name, ContainerName)
				}
			}
		}
	}
	return nil
}
