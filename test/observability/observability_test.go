// Package observability_test checks the chart's Grafana dashboard and Prometheus alerts
// against the metrics Twofold really exposes: it runs a core and a sidecar as processes and
// the controllers in a manager against envtest, drives a little traffic so that the metric
// families appear, scrapes them, and fails naming every metric (or matched label) that a
// dashboard panel or an alert rule names and nothing exposes.
package observability_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	yamlv3 "go.yaml.in/yaml/v3"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/twofold-dev/twofold/core/adminclient"
	"github.com/twofold-dev/twofold/test/coreproc"
	"github.com/twofold-dev/twofold/test/proc"
	"github.com/twofold-dev/twofold/test/testenv"
)

var chartDir = filepath.Join(testenv.RepoRoot(), "charts", "twofold")

func TestEveryMetricOfTheDashboardAndTheAlertsExists(t *testing.T) {
	exprs := dashboardExprs(t)
	for k, v := range ruleExprs(t) {
		exprs[k] = v
	}
	have := exposed{}

	// A core whose audit events go to a collector, so the webhook's metrics exist too.
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(io.Discard, r.Body) }))
	t.Cleanup(collector.Close)
	core := coreproc.Start(t, coreproc.Options{Env: []string{"TWOFOLD_AUDIT_WEBHOOK_URL=" + collector.URL}})
	driveCore(t, core.URL)
	scrape(t, core.URL+"/metrics", have)

	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "app") }))
	t.Cleanup(app.Close)
	sidecarAddr, adminAddr := proc.FreeAddr(t), proc.FreeAddr(t)
	sc := proc.Start(t, "twofold-sidecar", proc.Build(t, "./cmd/sidecar"), []string{
		"TWOFOLD_LISTEN=" + sidecarAddr,
		"TWOFOLD_ADMIN_LISTEN=" + adminAddr,
		"TWOFOLD_UPSTREAM=" + app.URL,
		"TWOFOLD_CORE_URL=" + core.URL,
		"TWOFOLD_TENANT=public",
		"TWOFOLD_PUBLIC_PATHS=/healthz",
	})
	sc.WaitHTTP(t, "http://"+adminAddr+"/readyz", 200, 30*time.Second)
	for _, path := range []string{"/", "/healthz", "/auth/loginmethods"} { // refused, public, auth
		get(t, "http://"+sidecarAddr+path)
	}
	scrape(t, "http://"+adminAddr+"/metrics", have)

	// The manager's metrics are controller-runtime's, registered in its global registry: run
	// the real reconcilers against envtest in this process and gather that registry, which is
	// what the manager serves on its metrics port.
	env, err := testenv.Start(testenv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	env.StartControllers(t, adminclient.New(core.URL, func() (string, error) { return core.AdminKey, nil }, nil), time.Minute)
	gatherControllers(t, have)

	problems, err := missing(exprs, have)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
	t.Logf("checked %d expressions against %d exposed metrics", len(exprs), len(have))
}

// dashboardExprs returns the expression of every target of every panel of the dashboard,
// keyed by where it is.
func dashboardExprs(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(chartDir, "files", "dashboards", "twofold.json"))
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Title   string  `json:"title"`
		Panels  []panel `json:"panels"`
		Targets []struct {
			RefID string `json:"refId"`
			Expr  string `json:"expr"`
		} `json:"targets"`
	}
	var d struct {
		Panels []panel `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	out := map[string]string{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				out[fmt.Sprintf("dashboard panel %q query %s", p.Title, tg.RefID)] = tg.Expr
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	if len(out) < 10 {
		t.Fatalf("found %d queries in the dashboard, want its twenty-odd: has its layout changed?", len(out))
	}
	return out
}

// ruleExprs returns the expression of every rule of the PrometheusRule's groups, keyed by
// alert name.
func ruleExprs(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(chartDir, "files", "prometheus-rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert  string `yaml:"alert"`
				Record string `yaml:"record"`
				Expr   string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yamlv3.Unmarshal(b, &rules); err != nil {
		t.Fatalf("the rules are not YAML: %v", err)
	}
	out := map[string]string{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			out["alert "+r.Alert+r.Record] = r.Expr
		}
	}
	if len(out) < 5 {
		t.Fatalf("found %d rules, want the chart's alerts", len(out))
	}
	return out
}

// driveCore signs a user up, in, out with a wrong password and refreshes the session, so the
// core's counters with labels have samples.
func driveCore(t *testing.T, base string) {
	t.Helper()
	form := func(password string) string {
		return `{"formFields":[{"id":"email","value":"ops@example.com"},{"id":"password","value":"` + password + `"}]}`
	}
	post(t, base+"/auth/signup", form("secret123"), nil)
	post(t, base+"/auth/signin", form("wrong-password1"), nil)
	resp := post(t, base+"/auth/signin", form("secret123"), nil)
	refresh := resp.Header.Get("st-refresh-token")
	if refresh == "" {
		t.Fatalf("the sign-in answered no st-refresh-token header: %v", resp.Header)
	}
	post(t, base+"/auth/session/refresh", "", map[string]string{"Authorization": "Bearer " + refresh})
}

func post(t *testing.T, url, body string, headers map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func get(t *testing.T, url string) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sampleLine is one sample of the Prometheus text format: its name and its labels.
var sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s`)

// labelName finds the label names of a sample's {...}.
var labelName = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"`)

// scrape reads a /metrics endpoint in the Prometheus text format into have.
func scrape(t *testing.T, url string, have exposed) {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(get(t, url)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := sampleLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("%s: a line that is not a sample: %q", url, line)
		}
		add(have, m[1])
		for _, l := range labelName.FindAllStringSubmatch(m[3], -1) {
			have[m[1]][l[1]] = true
		}
		n++
	}
	if n == 0 {
		t.Fatalf("%s exposes no samples", url)
	}
}

func add(have exposed, name string) {
	if have[name] == nil {
		have[name] = map[string]bool{}
	}
}

// gatherControllers adds controller-runtime's metrics once both controllers have started
// (each sets its series to zero when it starts).
func gatherControllers(t *testing.T, have exposed) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		families, err := ctrlmetrics.Registry.Gather()
		if err != nil {
			t.Fatal(err)
		}
		started := map[string]bool{}
		for _, f := range families {
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					if f.GetName() == "controller_runtime_reconcile_errors_total" && l.GetName() == "controller" {
						started[l.GetValue()] = true
					}
				}
			}
		}
		if started["authtenant"] && started["mfapolicy"] {
			for _, f := range families {
				names := []string{f.GetName()}
				if f.GetType().String() == "HISTOGRAM" {
					names = []string{f.GetName() + "_bucket", f.GetName() + "_sum", f.GetName() + "_count"}
				}
				for _, n := range names {
					add(have, n)
					for _, m := range f.GetMetric() {
						for _, l := range m.GetLabel() {
							have[n][l.GetName()] = true
						}
					}
				}
			}
			return
		}
		if time.Now().After(deadline) { // a guard against a hang; the loop waits on a condition
			t.Fatalf("the controllers did not start within 30s: reconcile metrics for %v", started)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
