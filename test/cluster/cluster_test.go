//go:build cluster

// Package cluster holds the smoke test of the throw-away single-node cluster that
// hack/cluster/up.sh brings up. It needs root and a few minutes, so it runs only with the
// cluster build tag: `make cluster-test`.
package cluster

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	bridge     = "twofold0"
	probeImage = "twofold.local/test/probe:1"
	namespace  = "smoke"
)

var serviceNet = &net.IPNet{IP: net.IPv4(198, 19, 0, 0), Mask: net.CIDRMask(16, 32)}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// run runs a command from the repository root and fails the test, naming what could not be
// done, when it fails.
func run(t *testing.T, what string, timeout time.Duration, stdin string, name string, args ...string) string {
	t.Helper()
	out, err := runErr(t, timeout, stdin, name, args...)
	if err != nil {
		t.Fatalf("%s: %s %s: %v\n%s", what, name, strings.Join(args, " "), err, out)
	}
	return out
}

func runErr(t *testing.T, timeout time.Duration, stdin string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = repoRoot(t)
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	// The daemons up.sh starts keep no pipe of ours open, so Wait returns when the script does.
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	return out.String(), err
}

type cluster struct {
	t       *testing.T
	root    string
	state   string
	kubectl string
	host    hostState
}

// hostState is what the kubelet and containerd change outside the cluster's folder, which
// down.sh must put back.
type hostState struct {
	sysctls map[string]string
	absent  []string
}

var (
	kubeletSysctls = []string{"vm.overcommit_memory", "kernel.panic", "kernel.panic_on_oops", "net.ipv4.ip_forward"}
	globalPaths    = []string{"/var/lib/kubelet", "/var/lib/cni", "/run/containerd", "/var/log/containers", "/var/log/pods", "/run/netns"}
)

func readHostState(t *testing.T) hostState {
	t.Helper()
	h := hostState{sysctls: map[string]string{}}
	for _, k := range kubeletSysctls {
		b, err := os.ReadFile("/proc/sys/" + strings.ReplaceAll(k, ".", "/"))
		if err != nil {
			t.Fatalf("reading %s: %v", k, err)
		}
		h.sysctls[k] = strings.TrimSpace(string(b))
	}
	for _, p := range globalPaths {
		if _, err := os.Stat(p); err != nil {
			h.absent = append(h.absent, p)
		}
	}
	return h
}

func (c *cluster) kubectl_(what string, stdin string, args ...string) string {
	c.t.Helper()
	return run(c.t, what, 3*time.Minute, stdin, c.kubectl, append([]string{"--kubeconfig", filepath.Join(c.state, "kubeconfig")}, args...)...)
}

// recordedPIDs reads the PIDs up.sh recorded, before down.sh removes the files.
func (c *cluster) recordedPIDs() map[string]int {
	pids := map[string]int{}
	files, _ := filepath.Glob(filepath.Join(c.state, "run", "*.pid"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			pids[strings.TrimSuffix(filepath.Base(f), ".pid")] = pid
		}
	}
	return pids
}

// tearDown runs down.sh and checks that nothing of the cluster is left on the machine.
func (c *cluster) tearDown() {
	t := c.t
	pids := c.recordedPIDs()
	start := time.Now()
	out, err := runErr(t, 5*time.Minute, "", "hack/cluster/down.sh", c.state)
	t.Logf("hack/cluster/down.sh took %s", time.Since(start).Round(100*time.Millisecond))
	if err != nil {
		t.Errorf("hack/cluster/down.sh failed: %v\n%s", err, out)
	}
	if t.Failed() {
		c.dumpLogs()
	}
	if len(pids) == 0 {
		t.Errorf("up.sh recorded no PIDs in %s/run", c.state)
	}
	for name, pid := range pids {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("%s (PID %d) still runs after down.sh", name, pid)
		}
	}
	for _, ipt := range []string{"iptables-save", "ip6tables-save"} {
		rules, err := runErr(t, time.Minute, "", ipt)
		if err != nil {
			t.Errorf("%s: %v\n%s", ipt, err, rules)
		}
		if strings.Contains(rules, "KUBE-") {
			t.Errorf("%s still shows KUBE- rules after down.sh:\n%s", ipt, rules)
		}
		if strings.Contains(rules, bridge) {
			t.Errorf("%s still shows rules naming %s after down.sh:\n%s", ipt, bridge, rules)
		}
	}
	if out, err := runErr(t, time.Minute, "", "ip", "link", "show", bridge); err == nil {
		t.Errorf("the bridge %s still exists after down.sh:\n%s", bridge, out)
	}
	if routes, _ := runErr(t, time.Minute, "", "ip", "route"); strings.Contains(routes, "198.19.") || strings.Contains(routes, "198.18.") {
		t.Errorf("routes to the cluster's ranges remain after down.sh:\n%s", routes)
	}
	if mounts, err := os.ReadFile("/proc/self/mountinfo"); err == nil && bytes.Contains(mounts, []byte(c.state)) {
		t.Errorf("mounts under %s remain after down.sh", c.state)
	}
	after := readHostState(t)
	for k, v := range c.host.sysctls {
		if after.sysctls[k] != v {
			t.Errorf("%s = %s after down.sh, want %s as before up.sh", k, after.sysctls[k], v)
		}
	}
	for _, p := range c.host.absent {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s did not exist before up.sh and still exists after down.sh", p)
		}
	}
}

func (c *cluster) dumpLogs() {
	logs, _ := filepath.Glob(filepath.Join(c.state, "logs", "*.log"))
	for _, f := range logs {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) > 30 {
			lines = lines[len(lines)-30:]
		}
		c.t.Logf("last lines of %s:\n%s", f, strings.Join(lines, "\n"))
	}
}

func bringUp(t *testing.T) *cluster {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the cluster test needs root: it creates a bridge, iptables rules and cgroups (run it as root: make cluster-test)")
	}
	root := repoRoot(t)
	start := time.Now()
	binDir := strings.TrimSpace(lastLine(run(t, "building the cluster's binaries (hack/cluster/binaries.sh)", 45*time.Minute, "", "hack/cluster/binaries.sh")))
	t.Logf("hack/cluster/binaries.sh took %s", time.Since(start).Round(100*time.Millisecond))
	if rules, _ := runErr(t, time.Minute, "", "iptables-save"); strings.Contains(rules, "KUBE-") {
		t.Fatalf("iptables already holds KUBE- rules: another cluster runs on this machine; stop it (hack/cluster/down.sh) first")
	}
	if out, err := runErr(t, time.Minute, "", "ip", "link", "show", bridge); err == nil {
		t.Fatalf("the bridge %s exists already: another cluster runs on this machine; stop it (hack/cluster/down.sh) first\n%s", bridge, out)
	}
	// Short, not t.TempDir(): containerd's socket lives in it and socket paths are short.
	state, err := os.MkdirTemp("", "tfc-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(state) })
	c := &cluster{t: t, root: root, state: state, kubectl: filepath.Join(binDir, "kubectl"), host: readHostState(t)}
	t.Cleanup(c.tearDown)
	start = time.Now()
	out := run(t, "bringing the cluster up (hack/cluster/up.sh)", 10*time.Minute, "", "hack/cluster/up.sh", c.state)
	t.Logf("hack/cluster/up.sh took %s:\n%s", time.Since(start).Round(100*time.Millisecond), out)
	return c
}

// loadProbe builds test/cluster/probe and loads it into the cluster as probeImage.
func (c *cluster) loadProbe() {
	c.t.Helper()
	run(c.t, "loading the probe image (hack/cluster/image.sh)", 2*time.Minute, "", "hack/cluster/image.sh", c.state, probeImage, c.buildStatic("./test/cluster/probe"))
}

// buildStatic builds a package of the repository as a static binary into a temporary folder.
func (c *cluster) buildStatic(pkg string) string {
	c.t.Helper()
	out := filepath.Join(c.t.TempDir(), filepath.Base(pkg))
	build := exec.Command("go", "build", "-trimpath", "-o", out, pkg)
	build.Dir = c.root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		c.t.Fatalf("building %s: %v\n%s", pkg, err, b)
	}
	return out
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

const workload = `
apiVersion: v1
kind: Namespace
metadata:
  name: smoke
---
apiVersion: v1
kind: Namespace
metadata:
  name: smoke-client
---
apiVersion: v1
kind: Pod
metadata:
  name: echo
  namespace: smoke
  labels:
    app: echo
spec:
  initContainers:
  # A native sidecar: it starts before the app and runs beside it, in front of it.
  - name: proxy
    image: @IMAGE@
    imagePullPolicy: Never
    restartPolicy: Always
    args: [serve, -listen, ":9090", -proxy, "http://127.0.0.1:8080"]
    ports:
    - name: proxy
      containerPort: 9090
    readinessProbe:
      tcpSocket:
        port: proxy
      periodSeconds: 1
  containers:
  - name: app
    image: @IMAGE@
    imagePullPolicy: Never
    args: [serve, -listen, "127.0.0.1:8080", -text, "hello from the app"]
---
apiVersion: v1
kind: Service
metadata:
  name: echo
  namespace: smoke
spec:
  selector:
    app: echo
  ports:
  - name: web
    port: 80
    targetPort: proxy
`

const lookupPod = `
apiVersion: v1
kind: Pod
metadata:
  name: lookup
  namespace: smoke-client
spec:
  restartPolicy: Never
  containers:
  - name: lookup
    image: @IMAGE@
    imagePullPolicy: Never
    args: [lookup, -timeout, 60s, echo.smoke.svc.cluster.local]
`

const escapePod = `
apiVersion: v1
kind: Pod
metadata:
  name: escape
  namespace: smoke-client
spec:
  restartPolicy: Never
  containers:
  - name: dial
    image: @IMAGE@
    imagePullPolicy: Never
    args: [dial, -timeout, 3s, "198.18.0.1:@KUBELET_PORT@", "198.18.255.1:@KUBELET_PORT@", "198.18.255.2:8080"]
`

// outside is a network namespace the test makes beside the cluster, joined to the host by a
// veth pair in 198.18.255.0/30: a stand-in for "anything but the bridge" that a pod must not
// reach, without any packet leaving the machine. Its own iptables counts what arrives. It is
// held by a process (unshare), not named under /run/netns: `ip netns add` would bind-mount
// /run/netns over the network namespaces containerd has made there and hide them from it.
type outside struct {
	t    *testing.T
	proc *exec.Cmd
}

func newOutside(t *testing.T) *outside {
	t.Helper()
	proc := exec.Command("unshare", "--net", "sleep", "infinity")
	if err := proc.Start(); err != nil {
		t.Fatalf("starting a process in a new network namespace (unshare, from util-linux): %v", err)
	}
	o := &outside{t: t, proc: proc}
	t.Cleanup(func() {
		// Deleting one end deletes the pair; the kernel tears a namespace down asynchronously,
		// so killing its process alone would leave the veth for a moment.
		if out, err := runErr(t, time.Minute, "", "ip", "link", "del", "tfcout0"); err != nil {
			t.Errorf("deleting the veth tfcout0: %v\n%s", err, out)
		}
		proc.Process.Kill()
		proc.Wait()
	})
	pid := strconv.Itoa(proc.Process.Pid)
	// unshare execs sleep once the namespace exists; until then the PID is still in ours.
	own, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ns, err := os.Readlink("/proc/" + pid + "/ns/net")
		if err == nil && ns != own {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("unshare --net did not make a network namespace within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, args := range [][]string{
		{"ip", "link", "add", "tfcout0", "type", "veth", "peer", "name", "tfcout1", "netns", pid},
		{"ip", "addr", "add", "198.18.255.1/30", "dev", "tfcout0"},
		{"ip", "link", "set", "tfcout0", "up"},
		o.in("ip", "addr", "add", "198.18.255.2/30", "dev", "tfcout1"),
		o.in("ip", "link", "set", "tfcout1", "up"),
		o.in("ip", "route", "add", "default", "via", "198.18.255.1"),
		o.in("iptables", "-A", "INPUT", "-p", "tcp", "--dport", "8080", "-j", "DROP"),
	} {
		run(t, "preparing the namespace beside the cluster", time.Minute, "", args[0], args[1:]...)
	}
	return o
}

// in returns a command line that runs args inside the namespace.
func (o *outside) in(args ...string) []string {
	return append([]string{"nsenter", "--net=/proc/" + strconv.Itoa(o.proc.Process.Pid) + "/ns/net", "--"}, args...)
}

// arrived counts the TCP packets to port 8080 that reached the namespace.
func (o *outside) arrived() int {
	o.t.Helper()
	args := o.in("iptables", "-L", "INPUT", "-v", "-n", "-x")
	out := run(o.t, "reading the namespace's packet counter", time.Minute, "", args[0], args[1:]...)
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 2 && strings.Contains(line, "dpt:8080") {
			n, err := strconv.Atoi(f[0])
			if err != nil {
				o.t.Fatalf("unexpected iptables counter line %q", line)
			}
			return n
		}
	}
	o.t.Fatalf("no counter for port 8080 in:\n%s", out)
	return 0
}

// TestClusterRunsASidecarPodBehindAServiceWithDNS checks the harness itself: a pod with a
// native sidecar behind a Service, reached from the host, resolved by CoreDNS, and kept to the
// bridge by the egress guard.
func TestClusterRunsASidecarPodBehindAServiceWithDNS(t *testing.T) {
	c := bringUp(t)

	c.loadProbe()

	start := time.Now()
	c.kubectl_("creating the sidecar pod and its Service", strings.ReplaceAll(workload, "@IMAGE@", probeImage), "apply", "-f", "-")
	c.kubectl_("waiting for the sidecar pod to be Ready", "", "-n", namespace, "wait", "pod/echo", "--for=condition=Ready", "--timeout=180s")
	t.Logf("pod with a native sidecar Ready %s after it was created", time.Since(start).Round(100*time.Millisecond))

	t.Run("the sidecar runs as a restartable init container beside the app", func(t *testing.T) {
		got := c.kubectl_("reading the pod's status", "", "-n", namespace, "get", "pod/echo", "-o",
			`jsonpath={.status.initContainerStatuses[0].name}={.status.initContainerStatuses[0].started},{.status.containerStatuses[0].name}={.status.containerStatuses[0].ready}`)
		if want := "proxy=true,app=true"; got != want {
			t.Errorf("container states = %q, want %q", got, want)
		}
	})

	clusterIP := c.kubectl_("reading the Service's ClusterIP", "", "-n", namespace, "get", "svc/echo", "-o", "jsonpath={.spec.clusterIP}")
	ip := net.ParseIP(clusterIP)
	if ip == nil || !serviceNet.Contains(ip) {
		t.Fatalf("the Service's ClusterIP is %q, want an address in %s", clusterIP, serviceNet)
	}

	t.Run("the host reaches the app through the Service's named targetPort and the sidecar", func(t *testing.T) {
		url := "http://" + net.JoinHostPort(clusterIP, "80") + "/"
		client := &http.Client{Timeout: 3 * time.Second}
		deadline := time.Now().Add(60 * time.Second)
		var lastErr error
		for time.Now().Before(deadline) {
			resp, err := client.Get(url)
			if err != nil {
				// kube-proxy writes the Service's rules a moment after the endpoints appear.
				lastErr = err
				time.Sleep(250 * time.Millisecond)
				continue
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatalf("reading %s: %v", url, err)
			}
			if resp.StatusCode != http.StatusOK || string(body) != "hello from the app" || resp.Header.Get("X-Probe-Proxy") != "sidecar" {
				t.Fatalf("GET %s = %d %q (X-Probe-Proxy %q), want 200 %q through the sidecar",
					url, resp.StatusCode, body, resp.Header.Get("X-Probe-Proxy"), "hello from the app")
			}
			return
		}
		t.Fatalf("GET %s never answered within 60s: %v", url, lastErr)
	})

	t.Run("a pod in another namespace resolves the Service's name through CoreDNS", func(t *testing.T) {
		c.kubectl_("creating the lookup pod", strings.ReplaceAll(lookupPod, "@IMAGE@", probeImage), "apply", "-f", "-")
		c.kubectl_("waiting for the lookup pod to finish", "", "-n", "smoke-client", "wait", "pod/lookup",
			"--for=jsonpath={.status.phase}=Succeeded", "--timeout=120s")
		logs := strings.TrimSpace(c.kubectl_("reading the lookup pod's log", "", "-n", "smoke-client", "logs", "pod/lookup"))
		if want := fmt.Sprintf("echo.smoke.svc.cluster.local %s", clusterIP); lastLine(logs) != want {
			t.Errorf("lookup pod printed %q, want %q", logs, want)
		}
	})

	t.Run("a pod reaches the host at the bridge address and nothing beyond the bridge", func(t *testing.T) {
		o := newOutside(t)
		pod := strings.NewReplacer("@IMAGE@", probeImage, "@KUBELET_PORT@", "10250").Replace(escapePod)
		c.kubectl_("creating the escape pod", pod, "apply", "-f", "-")
		c.kubectl_("waiting for the escape pod to finish", "", "-n", "smoke-client", "wait", "pod/escape",
			"--for=jsonpath={.status.phase}=Succeeded", "--timeout=120s")
		got := strings.TrimSpace(c.kubectl_("reading the escape pod's log", "", "-n", "smoke-client", "logs", "pod/escape"))
		want := strings.Join([]string{
			// The bridge's own address answers: the kubelet listens there.
			"198.18.0.1:10250 connected",
			// The host's address on another interface: dropped, not refused, so it never got there.
			"198.18.255.1:10250 timeout",
			// Forwarded towards another interface: dropped.
			"198.18.255.2:8080 timeout",
		}, "\n")
		if got != want {
			t.Errorf("the escape pod saw\n%s\nwant\n%s", got, want)
		}
		if n := o.arrived(); n != 0 {
			t.Errorf("%d packets from the pod reached the namespace outside the bridge, want 0", n)
		}
	})
}
