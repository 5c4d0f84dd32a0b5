//go:build cluster

package cluster

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	// plainIP is the Service address of the sample app deployed without the sidecar: the
	// baseline of the added-latency measurement.
	plainIP = "198.19.100.81"
	// proxiedIP is the Service address of the sample app behind a plain reverse proxy
	// (hack/plainproxy: the sidecar's forwarding without its checks) in the same pod: what any
	// proxy hop costs, measured in the same rounds.
	proxiedIP       = "198.19.100.82"
	plainProxyImage = "twofold.local/test/plainproxy:1"
)

// plainApp is the sample app without Twofold: not opted in, listening on the pod's address,
// behind its own Service. It serves only as the baseline of the load measurement.
var plainApp = `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: plainapp
  namespace: shop
spec:
  replicas: 1
  selector:
    matchLabels: {app: plainapp}
  template:
    metadata:
      labels:
        app: plainapp
    spec:
` + sampleAppContainers("0.0.0.0:8080") + `---
apiVersion: v1
kind: Service
metadata:
  name: plainapp
  namespace: shop
spec:
  clusterIP: ` + plainIP + `
  selector: {app: plainapp}
  ports:
  - name: web
    port: 80
    targetPort: http
`

// proxiedApp is the sample app behind hack/plainproxy, run as a native sidecar like the
// injected proxy, on the port the sidecar would take.
const proxiedApp = `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: proxiedapp
  namespace: shop
spec:
  replicas: 1
  selector:
    matchLabels: {app: proxiedapp}
  template:
    metadata:
      labels:
        app: proxiedapp
    spec:
      initContainers:
      - name: proxy
        image: ` + plainProxyImage + `
        imagePullPolicy: Never
        restartPolicy: Always
        args: [-listen, "0.0.0.0:8081", -upstream, "http://127.0.0.1:8080"]
        ports:
        - name: proxy
          containerPort: 8081
      containers:
      - name: app
        image: ghcr.io/twofold-dev/twofold-sampleapp:0.1.0
        imagePullPolicy: Never
        args: [-listen, "127.0.0.1:8080"]
---
apiVersion: v1
kind: Service
metadata:
  name: proxiedapp
  namespace: shop
spec:
  clusterIP: ` + proxiedIP + `
  selector: {app: proxiedapp}
  ports:
  - name: web
    port: 80
    targetPort: proxy
`

// loadRound is what hack/loadgen reported for one fixed-rate round.
type loadRound struct {
	requests, errors        int
	p50, p90, p99, max, s99 float64 // milliseconds; s99 is the p99 from the scheduled time
}

// parseLoadgen reads hack/loadgen's summary line (key=value pairs).
func parseLoadgen(line string) (loadRound, error) {
	kv := map[string]string{}
	for _, f := range strings.Fields(line) {
		k, v, ok := strings.Cut(f, "=")
		if ok {
			kv[k] = v
		}
	}
	var r loadRound
	var err error
	ints := map[string]*int{"requests": &r.requests, "errors": &r.errors}
	floats := map[string]*float64{"service_p50_ms": &r.p50, "service_p90_ms": &r.p90, "service_p99_ms": &r.p99,
		"service_max_ms": &r.max, "scheduled_p99_ms": &r.s99}
	for k, p := range ints {
		if *p, err = strconv.Atoi(kv[k]); err != nil {
			return r, fmt.Errorf("loadgen's %s in %q: %v", k, line, err)
		}
	}
	for k, p := range floats {
		if *p, err = strconv.ParseFloat(kv[k], 64); err != nil {
			return r, fmt.Errorf("loadgen's %s in %q: %v", k, line, err)
		}
	}
	return r, nil
}

// containerCgroup finds the cgroup-v1 folder of a container in controller (cpuacct, memory)
// from its pod's UID and its container id, as the kubelet's cgroupfs driver lays them out.
func containerCgroup(t *testing.T, controller, podUID, containerID string) string {
	t.Helper()
	id := strings.TrimPrefix(containerID, "containerd://")
	for _, root := range []string{"/sys/fs/cgroup/" + controller, "/sys/fs/cgroup/cpu,cpuacct"} {
		for _, pattern := range []string{"kubepods/pod%s/%s", "kubepods/*/pod%s/%s"} {
			matches, _ := filepath.Glob(filepath.Join(root, fmt.Sprintf(pattern, podUID, id)))
			if len(matches) == 1 {
				return matches[0]
			}
		}
	}
	t.Fatalf("no %s cgroup for container %s of pod %s under /sys/fs/cgroup", controller, id, podUID)
	return ""
}

// readCgroupInt reads a cgroup file holding one number.
func readCgroupInt(t *testing.T, path string) int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return n
}

// workingSet is a memory cgroup's usage less its inactive file pages: what the kubelet reports
// as the container's working set and what its memory limit is judged by.
func workingSet(t *testing.T, dir string) int64 {
	t.Helper()
	usage := readCgroupInt(t, filepath.Join(dir, "memory.usage_in_bytes"))
	f, err := os.Open(filepath.Join(dir, "memory.stat"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "total_inactive_file "); ok {
			inactive, _ := strconv.ParseInt(v, 10, 64)
			return max(usage-inactive, 0)
		}
	}
	return usage
}

// loadSeconds is how long each measured round lasts: TWOFOLD_LOAD_SECONDS, 4 by default so
// that make test stays short; make bench-cluster measures longer.
func loadSeconds(t *testing.T) int {
	t.Helper()
	v := os.Getenv("TWOFOLD_LOAD_SECONDS")
	if v == "" {
		return 4
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("TWOFOLD_LOAD_SECONDS=%q: want a whole number of seconds, at least 1", v)
	}
	return n
}

// cgroupOf finds the cgroup folder in controller of the container named container in the
// first pod labelled app=name in the app namespace (an init container when init is set).
func (c *cluster) cgroupOf(controller, name, container string, init bool) string {
	c.t.Helper()
	pod := c.kube("reading the "+name+" pod", "-n", appNS, "get", "pod", "-l", "app="+name, "-o", "jsonpath={.items[0].metadata.name}")
	uid := c.kube("reading the "+name+" pod's uid", "-n", appNS, "get", "pod", pod, "-o", "jsonpath={.metadata.uid}")
	statuses := "containerStatuses"
	if init {
		statuses = "initContainerStatuses"
	}
	id := c.kube("reading the "+container+" container's id", "-n", appNS, "get", "pod", pod, "-o",
		fmt.Sprintf(`jsonpath={.status.%s[?(@.name==%q)].containerID}`, statuses, container))
	return containerCgroup(c.t, controller, uid, id)
}

// meter is a container whose CPU is read on a load path: its label and cpuacct.usage file.
type meter struct{ label, usage string }

// loadPath is one way from the host to the sample app, with the containers whose CPU is
// metered on it.
type loadPath struct {
	name, ip string
	meters   []meter
	rounds   []loadRound
	cpu      map[string][]float64 // label -> microseconds per request, per round
}

// measureSidecarUnderLoad sends 1,000 requests/s of an MFA-complete session from the host to
// the sample app by three Services, in alternating rounds: straight to the app, through a plain
// reverse proxy in its pod, and through the injected sidecar. It reports the latency of each
// and the CPU per request of each container from its cgroup, and the sidecar's memory. It
// asserts only what a user would notice: every request is answered 200.
func measureSidecarUnderLoad(t *testing.T, c *cluster, access string) {
	t.Helper()
	run(t, "loading the plain proxy image (hack/cluster/image.sh)", 2*time.Minute, "", "hack/cluster/image.sh",
		c.state, plainProxyImage, c.buildStatic("./hack/plainproxy"))
	c.apply("deploying the plain sample app", plainApp)
	c.apply("deploying the sample app behind a plain proxy", proxiedApp)
	for _, d := range []string{"plainapp", "proxiedapp"} {
		c.kube("waiting for the "+d+" rollout", "-n", appNS, "rollout", "status", "deployment/"+d, "--timeout=240s")
	}
	loadgen := c.buildStatic("./hack/loadgen")
	usage := func(name, container string, init bool) string {
		return filepath.Join(c.cgroupOf("cpuacct", name, container, init), "cpuacct.usage")
	}
	paths := []*loadPath{
		{name: "straight to the app", ip: plainIP, meters: []meter{{"app", usage("plainapp", "app", false)}}},
		{name: "through a plain proxy in the pod", ip: proxiedIP, meters: []meter{
			{"proxy", usage("proxiedapp", "proxy", true)}, {"app", usage("proxiedapp", "app", false)}}},
		{name: "through the injected sidecar", ip: appIP, meters: []meter{
			{"sidecar", usage("sampleapp", "twofold-proxy", true)}, {"app", usage("sampleapp", "app", false)}}},
	}
	memDir := c.cgroupOf("memory", "sampleapp", "twofold-proxy", true)
	seconds := loadSeconds(t)
	const rate, rounds = 1000, 3

	shoot := func(p *loadPath) {
		t.Helper()
		before := map[string]int64{}
		for _, m := range p.meters {
			before[m.label] = readCgroupInt(t, m.usage)
		}
		out, err := exec.Command(loadgen, "-url", "http://"+p.ip+"/", "-rate", strconv.Itoa(rate),
			"-duration", fmt.Sprintf("%ds", seconds), "-warmup", "1s", "-connections", "32",
			"-header", "Authorization: Bearer "+access).Output()
		if err != nil {
			t.Fatalf("hack/loadgen %s: %v\n%s", p.name, err, out)
		}
		r, err := parseLoadgen(lastLine(string(out)))
		if err != nil {
			t.Fatal(err)
		}
		if r.errors != 0 || r.requests < rate*seconds*9/10 {
			t.Errorf("%s: %d of %d requests were not answered 200 (want every request of an MFA-complete session let through)",
				p.name, r.errors, r.requests)
		}
		for _, m := range p.meters {
			// The warm-up second is sent too but not counted in r.requests.
			p.cpu[m.label] = append(p.cpu[m.label], float64(readCgroupInt(t, m.usage)-before[m.label])/1e3/float64(r.requests+rate))
		}
		p.rounds = append(p.rounds, r)
	}
	memBefore := workingSet(t, memDir)
	for round := range rounds {
		for k := range paths {
			if round%2 == 1 { // every other round in the reverse order
				k = len(paths) - 1 - k
			}
			if paths[k].cpu == nil {
				paths[k].cpu = map[string][]float64{}
			}
			shoot(paths[k])
		}
	}
	memAfter := workingSet(t, memDir)
	peak := readCgroupInt(t, filepath.Join(memDir, "memory.max_usage_in_bytes"))

	span := func(v []float64) string { return fmt.Sprintf("%.2f-%.2f", slices.Min(v), slices.Max(v)) }
	each := func(p *loadPath, f func(loadRound) float64) []float64 {
		v := make([]float64, len(p.rounds))
		for i, r := range p.rounds {
			v[i] = f(r)
		}
		return v
	}
	over := func(p *loadPath, f func(loadRound) float64) string {
		base, v := each(paths[0], f), each(p, f)
		for i := range v {
			v[i] -= base[i]
		}
		return span(v)
	}
	p50 := func(r loadRound) float64 { return r.p50 }
	p99 := func(r loadRound) float64 { return r.p99 }
	var table strings.Builder
	fmt.Fprintf(&table, "in-cluster load, %d req/s from the host through each Service, %d alternating rounds of %d s (ranges over the rounds):\n", rate, rounds, seconds)
	table.WriteString("| path | p50 ms | p99 ms | p50 added over straight, same round | p99 added | CPU per request, us |\n| --- | --- | --- | --- | --- | --- |\n")
	for _, p := range paths {
		var cpu []string
		for _, m := range p.meters {
			cpu = append(cpu, fmt.Sprintf("%s %.0f-%.0f", m.label, slices.Min(p.cpu[m.label]), slices.Max(p.cpu[m.label])))
		}
		fmt.Fprintf(&table, "| %s | %s | %s | %s | %s | %s |\n", p.name, span(each(p, p50)), span(each(p, p99)),
			over(p, p50), over(p, p99), strings.Join(cpu, ", "))
	}
	fmt.Fprintf(&table, "sidecar working set before the load %.1f MiB, after %.1f MiB; peak memory usage %.1f MiB",
		float64(memBefore)/(1<<20), float64(memAfter)/(1<<20), float64(peak)/(1<<20))
	t.Log(table.String())
}
