package chart_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/twofold-dev/twofold/version"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	yamlv3 "go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestSchemaRejectsBadValues(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{
			name: "more than one core replica on SQLite is refused",
			args: []string{"--set", "core.replicas=2"},
			want: "missing property 'replicas > 1 needs database.type postgres'",
		},
		{
			name: "more than one core replica on SQLite is refused by the template even without the schema",
			args: []string{"--set", "core.replicas=3", "--skip-schema-validation"},
			want: "core.replicas is 3 but core.database.type is sqlite: SQLite serves a single replica",
		},
		{
			name: "PostgreSQL without a Secret holding the connection string is refused",
			args: []string{"--set", "core.database.type=postgres"},
			want: "at '/core/database/postgres/existingSecret': minLength: got 0, want 1",
		},
		{
			name: "PostgreSQL without a Secret is refused by the template even without the schema",
			args: []string{"--set", "core.database.type=postgres", "--skip-schema-validation"},
			want: "core.database.postgres.existingSecret is empty",
		},
		{
			name: "several manager replicas without leader election are refused",
			args: []string{"--set", "manager.replicas=2,manager.leaderElection=false"},
			want: "at '/manager/leaderElection': value must be true",
		},
		{
			name: "an unknown database type is refused",
			args: []string{"--set", "core.database.type=mysql"},
			want: "at '/core/database/type': value must be one of 'sqlite', 'postgres'",
		},
		{
			name: "an unknown signing algorithm is refused",
			args: []string{"--set", "core.signingAlgorithm=HS256"},
			want: "at '/core/signingAlgorithm': value must be one of 'RS256', 'ES256', 'EdDSA'",
		},
		{
			name: "an empty manager image repository is refused",
			args: []string{"--set", "manager.image.repository="},
			want: "at '/manager/image/repository': minLength: got 0, want 1",
		},
		{
			name: "a missing core image repository is refused",
			args: []string{"--set", "core.image.repository=null"},
			want: "at '/core/image': missing property 'repository'",
		},
		{
			name: "a missing sidecar image repository is refused",
			args: []string{"--set", "sidecar.image.repository=null"},
			want: "at '/sidecar/image': missing property 'repository'",
		},
		{
			name: "an image tag with a space is refused",
			args: []string{"--set", "core.image.tag=v1 beta"},
			want: "at '/core/image/tag'",
		},
		{
			name: "zero manager replicas are refused",
			args: []string{"--set", "manager.replicas=0"},
			want: "at '/manager/replicas': minimum: got 0, want 1",
		},
		{
			name: "replicas given as a word are refused",
			args: []string{"--set-string", "core.replicas=two"},
			want: "at '/core/replicas': got string, want integer",
		},
		{
			name: "a misspelt value is refused instead of being ignored",
			args: []string{"--set", "manager.replica=2"},
			want: "at '/manager': additional properties 'replica' not allowed",
		},
		{
			name: "an unknown image pull policy is refused",
			args: []string{"--set", "core.image.pullPolicy=Sometimes"},
			want: "at '/core/image/pullPolicy': value must be one of 'Always', 'IfNotPresent', 'Never'",
		},
		{
			name: "a certificate lifetime in days is refused",
			args: []string{"--set", "webhook.certManager.duration=90d"},
			want: "at '/webhook/certManager/duration': '90d' does not match pattern",
		},
		{
			name: "a webhook timeout above the API server's 30 seconds is refused",
			args: []string{"--set", "webhook.timeoutSeconds=31"},
			want: "at '/webhook/timeoutSeconds': maximum: got 31, want 30",
		},
		{
			name: "an unknown issuer kind is refused",
			args: []string{"--set", "webhook.certManager.issuerRef.kind=Vault"},
			want: "at '/webhook/certManager/issuerRef/kind': value must be one of 'Issuer', 'ClusterIssuer'",
		},
		{
			name: "an unknown log level is refused",
			args: []string{"--set", "manager.logLevel=verbose"},
			want: "at '/manager/logLevel': value must be one of 'debug', 'info', 'error'",
		},
		{
			name: "an issuer that is not an http(s) URL is refused",
			args: []string{"--set", "core.issuer=auth.example.com"},
			want: "at '/core/issuer'",
		},
		{
			name: "a Secret key with a slash is refused",
			args: []string{"--set", "core.adminKey.key=a/b"},
			want: "at '/core/adminKey/key'",
		},
		{
			name: "a service port out of range is refused",
			args: []string{"--set", "core.service.port=70000"},
			want: "at '/core/service/port': maximum: got 70,000, want 65,535",
		},
		{
			name: "an unknown service type is refused",
			args: []string{"--set", "core.service.type=ExternalName"},
			want: "at '/core/service/type': value must be one of 'ClusterIP', 'NodePort', 'LoadBalancer'",
		},
		{
			name: "an audit webhook URL without a scheme is refused",
			args: []string{"--set", "core.audit.webhook.url=siem.example.com/hook"},
			want: "at '/core/audit/webhook/url'",
		},
		{
			name: "an audit webhook queue of zero events is refused",
			args: []string{"--set", "core.audit.webhook.queueSize=0"},
			want: "at '/core/audit/webhook/queueSize': minimum: got 0, want 1",
		},
		{
			name: "a misspelt monitoring value is refused",
			args: []string{"--set", "monitoring.prometheusRules.enabled=true"},
			want: "at '/monitoring': additional properties 'prometheusRules' not allowed",
		},
		{
			name: "a memory request that is not a quantity is refused",
			args: []string{"--set", "core.resources.requests.memory=lots"},
			want: "at '/core/resources/requests/memory'",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := helmTemplate(t, tt.args...)
			if err == nil {
				t.Fatalf("helm template %v succeeded; want it refused with %q", tt.args, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("helm template %v failed without %q:\n%v", tt.args, tt.want, err)
			}
		})
	}
}

func TestSchemaAcceptsGoodValues(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{name: "one core replica on SQLite is accepted", args: []string{"--set", "core.replicas=1"}},
		{name: "three core replicas on PostgreSQL are accepted", args: []string{"--set", "core.replicas=3,core.database.type=postgres,core.database.postgres.existingSecret=pg"}},
		{name: "a percentage as the PodDisruptionBudget minimum is accepted", args: []string{"--set", "manager.replicas=2,manager.podDisruptionBudget.minAvailable=50%"}},
		{name: "an image pinned by digest is accepted", args: []string{"--set", "core.image.tag=0.1.0@sha256:" + strings.Repeat("a", 64)}},
		{name: "a ClusterIssuer of the user's is accepted", args: []string{"--set", "webhook.certManager.enabled=true,webhook.certManager.issuerRef.name=corp-ca,webhook.certManager.issuerRef.kind=ClusterIssuer"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := helmTemplate(t, tt.args...); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestChartCRDsAreConfigCRDBases(t *testing.T) {
	bases, err := filepath.Glob(filepath.Join(root, "config", "crd", "bases", "*.yaml"))
	if err != nil || len(bases) == 0 {
		t.Fatalf("no CRDs in config/crd/bases (%v)", err)
	}
	copies, err := filepath.Glob(filepath.Join(chartDir, "files", "crds", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := baseNames(copies), baseNames(bases); !slices.Equal(got, want) {
		t.Fatalf("charts/twofold/files/crds holds %v, config/crd/bases holds %v: copy config/crd/bases/*.yaml into charts/twofold/files/crds (make manifests does)", got, want)
	}
	for _, b := range bases {
		t.Run("the chart's copy of "+filepath.Base(b)+" is identical", func(t *testing.T) {
			want, _ := os.ReadFile(b)
			got, err := os.ReadFile(filepath.Join(chartDir, "files", "crds", filepath.Base(b)))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("charts/twofold/files/crds/%s differs from config/crd/bases: copy it again (make manifests does)", filepath.Base(b))
			}
		})
	}

	rendered := ofKind(render(t), "CustomResourceDefinition")
	if len(rendered) != len(bases) {
		t.Fatalf("rendered %d CRDs, want %d", len(rendered), len(bases))
	}
	for _, b := range bases {
		want := readObjects(t, strings.TrimPrefix(b, root+"/"))[0]
		t.Run("the rendered "+want.GetName()+" equals config/crd/bases apart from Helm's labels and keep annotation", func(t *testing.T) {
			got := find(t, rendered, "CustomResourceDefinition", want.GetName()).DeepCopy()
			if got.GetAnnotations()["helm.sh/resource-policy"] != "keep" {
				t.Errorf("the CRD lacks helm.sh/resource-policy: keep")
			}
			if got.GetLabels()["app.kubernetes.io/managed-by"] != "Helm" {
				t.Errorf("the CRD lacks the chart's labels: %v", got.GetLabels())
			}
			ann := got.GetAnnotations()
			delete(ann, "helm.sh/resource-policy")
			got.SetAnnotations(ann)
			got.SetLabels(nil)
			if !reflect.DeepEqual(normalise(t, got.Object), normalise(t, want.Object)) {
				t.Fatalf("the rendered CRD %s differs from config/crd/bases", want.GetName())
			}
		})
	}
}

func TestCRDValues(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, objs []*unstructured.Unstructured)
	}{
		{
			name: "crds.install=false renders no CRDs",
			args: []string{"--set", "crds.install=false"},
			check: func(t *testing.T, objs []*unstructured.Unstructured) {
				if n := len(ofKind(objs, "CustomResourceDefinition")); n != 0 {
					t.Fatalf("rendered %d CRDs", n)
				}
			},
		},
		{
			name: "crds.keep=false lets helm uninstall delete the CRDs",
			args: []string{"--set", "crds.keep=false"},
			check: func(t *testing.T, objs []*unstructured.Unstructured) {
				for _, crd := range ofKind(objs, "CustomResourceDefinition") {
					if _, ok := crd.GetAnnotations()["helm.sh/resource-policy"]; ok {
						t.Errorf("%s still has helm.sh/resource-policy", crd.GetName())
					}
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.check(t, render(t, tt.args...)) })
	}
}

func TestChartRBACIsConfigRBAC(t *testing.T) {
	want, _ := os.ReadFile(filepath.Join(root, "config", "rbac", "role.yaml"))
	got, err := os.ReadFile(filepath.Join(chartDir, "files", "rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("charts/twofold/files/rbac/role.yaml differs from config/rbac/role.yaml: copy it again (make manifests does)")
	}
	generated := readObjects(t, "config/rbac/role.yaml")
	objs := render(t)
	for _, kind := range []string{"ClusterRole", "Role"} {
		t.Run("the chart's "+kind+" grants exactly the generated rules", func(t *testing.T) {
			gen := ofKind(generated, kind)
			if len(gen) != 1 {
				t.Fatalf("config/rbac/role.yaml has %d %ss, want 1", len(gen), kind)
			}
			r := find(t, objs, kind, "twofold-manager")
			if kind == "Role" && r.GetNamespace() != releaseNamespace {
				t.Errorf("the Role is in %q, want the release namespace", r.GetNamespace())
			}
			if !reflect.DeepEqual(r.Object["rules"], gen[0].Object["rules"]) {
				t.Fatalf("rules differ:\nchart:     %v\ngenerated: %v", r.Object["rules"], gen[0].Object["rules"])
			}
		})
	}
}

func TestChartWebhooksMatchConfigWebhook(t *testing.T) {
	config := readObjects(t, "config/webhook/manifests.yaml")
	for _, values := range []string{"default-values.yaml", "cert-manager-values.yaml"} {
		objs := render(t, "--values", filepath.Join(chartDir, "ci", values))
		for _, want := range config {
			t.Run("with "+values+" the chart's "+want.GetKind()+" "+want.GetName()+" equals config/webhook", func(t *testing.T) {
				got := find(t, objs, want.GetKind(), want.GetName())
				gotHooks := normalise(t, got.Object["webhooks"])
				if !reflect.DeepEqual(gotHooks, normalise(t, want.Object["webhooks"])) {
					t.Fatalf("webhooks differ:\nchart:  %v\nconfig: %v", gotHooks, want.Object["webhooks"])
				}
				inject := got.GetAnnotations()["cert-manager.io/inject-ca-from"]
				switch values {
				case "cert-manager-values.yaml":
					if inject != releaseNamespace+"/twofold-webhook" {
						t.Errorf("inject-ca-from = %q, want %s/twofold-webhook", inject, releaseNamespace)
					}
				default:
					if inject != "" {
						t.Errorf("self-managed certificates, yet inject-ca-from = %q", inject)
					}
				}
			})
		}
	}
}

func TestRenderedChart(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, objs []*unstructured.Unstructured)
	}{
		{
			name: "the default values run one core on SQLite with a claim kept on uninstall",
			check: func(t *testing.T, objs []*unstructured.Unstructured) {
				core := find(t, objs, "Deployment", "twofold-core")
				if r, _, _ := unstructured.NestedInt64(core.Object, "spec", "replicas"); r != 1 {
					t.Errorf("core replicas = %d", r)
				}
				if s, _, _ := unstructured.NestedString(core.Object, "spec", "strategy", "type"); s != "Recreate" {
					t.Errorf("core strategy = %q, want Recreate (one SQLite writer)", s)
				}
				if v := envVar(t, container(t, core, "core"), "TWOFOLD_DATABASE"); v["value"] != "/data/twofold.db" {
					t.Errorf("TWOFOLD_DATABASE = %v", v)
				}
				pvc := find(t, objs, "PersistentVolumeClaim", "twofold-core-data")
				if pvc.GetAnnotations()["helm.sh/resource-policy"] != "keep" {
					t.Error("the SQLite claim is not kept on uninstall")
				}
				if len(ofKind(objs, "PodDisruptionBudget")) != 0 {
					t.Error("a PodDisruptionBudget with single replicas would block node drains")
				}
			},
		},
		{
			name: "trusted proxies and the outbound allow-list reach the core as comma-separated lists",
			args: []string{"--set", "core.trustedProxies={10.244.0.0/16,192.0.2.10}", "--set", "core.outboundAllow={10.0.0.0/8,*.corp.example}"},
			check: func(t *testing.T, objs []*unstructured.Unstructured) {
				c := container(t, find(t, objs, "Deployment", "twofold-core"), "core")
				if v := envVar(t, c, "TWOFOLD_TRUSTED_PROXIES"); v["value"] != "10.244.0.0/16,192.0.2.10" {
					t.Errorf("TWOFOLD_TRUSTED_PROXIES = %v", v)
				}
				if v := envVar(t, c, "TWOFOLD_OUTBOUND_ALLOW"); v["value"] != "10.0.0.0/8,*.corp.example" {
					t.Errorf("TWOFOLD_OUTBOUND_ALLOW = %v", v)
				}
			},
		},
		{
			name: "the signing algorithm reaches the core, RS256 by default",
			args: []string{"--set", "core.signingAlgorithm=ES256"},
			check: func(t *testing.T, objs []*unstructured.Unstructured) {
				c := container(t, find(t, objs, "Deployment", "twofold-core"), "core")
				if v := envVar(t, c, "TWOFOLD_SIGNING_ALGORITHM"); v["value"] != "ES256" {
					t.Errorf("TWOFOLD_SIGNING_ALGORITHM = %v", v)
				}
			},
		},
		{
			name: "monitoring values ship the dashboard for Grafana's sidecar and the alerts with their Prometheus templates intact",
			args: []string{"--values", filepath.Join(chartDir, "ci", "monitoring-values.yaml")},
			check: func(t *testing.T, objs []*unstructured.Unstructured) {
				cm := find(t, objs, "ConfigMap", "twofold-dashboard")
				if cm.GetNamespace() != "monitoring" || cm.GetLabels()["grafana_dashboard"] != "1" || cm.GetAnnotations()["grafana_folder"] != "Twofold" {
					t.Errorf("dashboard ConfigMap in %q with labels %v and annotations %v", cm.GetNamespace(), cm.GetLabels(), cm.GetAnnotations())
				}
				raw, _, _ := unstructured.NestedString(cm.Object, "data", "twofold.json")
				var dashboard struct {
					UID    string           `json:"uid"`
					Panels []map[string]any `json:"panels"`
				}
				if err := json.Unmarshal([]byte(raw), &dashboard); err != nil || dashboard.UID != "twofold-overview" || len(dashboard.Panels) < 10 {
					t.Errorf("the ConfigMap's twofold.json is not the dashboard (uid %q, %d panels): %v", dashboard.UID, len(dashboard.Panels), err)
				}
				rule := find(t, objs, "PrometheusRule", "twofold")
				if rule.GetLabels()["release"] != "prometheus" {
					t.Errorf("PrometheusRule labels %v lack release: prometheus", rule.GetLabels())
				}
				groups, _, _ := unstructured.NestedSlice(rule.Object, "spec", "groups")
				alerts := map[string]map[string]any{}
				for _, g := range groups {
					rules, _, _ := unstructured.NestedSlice(g.(map[string]any), "rules")
					for _, r := range rules {
						r := r.(map[string]any)
						alerts[r["alert"].(string)] = r
					}
				}
				for _, name := range []string{"TwofoldAuthenticationFailureRatioHigh", "TwofoldSidecarFeedStale", "TwofoldSidecarWithoutKeys", "TwofoldReconcileErrors", "TwofoldCoreNotReady", "TwofoldCoreAbsent"} {
					r, ok := alerts[name]
					if !ok {
						t.Errorf("no alert %s; got %v", name, slices.Sorted(maps.Keys(alerts)))
						continue
					}
					ann, _ := r["annotations"].(map[string]any)
					if ann["summary"] == nil || !strings.Contains(fmt.Sprint(ann["description"]), "docs/monitoring.md#"+strings.ToLower(name)) {
						t.Errorf("alert %s lacks a summary or a description naming its runbook: %v", name, ann)
					}
				}
				if d := fmt.Sprint(alerts["TwofoldSidecarFeedStale"]["annotations"]); !strings.Contains(d, "{{ $labels.pod }}") {
					t.Errorf("Helm rendered the alert's Prometheus template: %s", d)
				}
				pm := find(t, objs, "PodMonitor", "twofold-sidecars")
				sel, _, _ := unstructured.NestedStringMap(pm.Object, "spec", "selector", "matchLabels")
				eps, _, _ := unstructured.NestedSlice(pm.Object, "spec", "podMetricsEndpoints")
				if sel["twofold.dev/inject"] != "true" || len(eps) != 1 || eps[0].(map[string]any)["port"] != "twofold-admin" {
					t.Errorf("the PodMonitor selects %v and scrapes %v, want the injected pods' twofold-admin port", sel, eps)
				}
			},
		},
		{
			name: "the audit webhook reaches the core with its token read from the Secret",
			args: []string{"--values", filepath.Join(chartDir, "ci", "monitoring-values.yaml")},
			check: func(t *testing.T, objs []*unstructured.Unstructured) {
				core := find(t, objs, "Deployment", "twofold-core")
				c := container(t, core, "core")
				for name, want := range map[string]string{
					"TWOFOLD_AUDIT_WEBHOOK_URL":        "https://siem.example.com/twofold/audit",
					"TWOFOLD_AUDIT_WEBHOOK_QUEUE_SIZE": "50000",
					"TWOFOLD_AUDIT_WEBHOOK_TOKEN_FILE": "/etc/twofold/audit-webhook-token/token",
				} {
					if v := envVar(t, c, name); v["value"] != want {
						t.Errorf("%s = %v, want %s", name, v, want)
					}
				}
				if name, _, _ := unstructured.NestedString(volume(t, core, "audit-webhook-token"), "secret", "secretName"); name != "twofold-audit-webhook" {
					t.Errorf("the token volume mounts Secret %q", name)
				}
			},
		},
		{
			name: "without an audit webhook URL the core gets no webhook settings and the chart no monitoring objects",
			check: func(t *testing.T, objs []*unstructured.Unstructured) {
				c := container(t, find(t, objs, "Deployment", "twofold-core"), "core")
				env, _, _ := unstructured.NestedSlice(c, "env")
				for _, e := range env {
					if n := e.(map[string]any)["name"].(string); strings.HasPrefix(n, "TWOFOLD_AUDIT_WEBHOOK") {
						t.Errorf("the core gets %s without a webhook URL", n)
					}
				}
				for _, kind := range []string{"PrometheusRule", "PodMonitor", "ConfigMap"} {
					if len(ofKind(objs, kind)) != 0 {
						t.Errorf("a %s is rendered with the default values", kind)
					}
				}
			},
		},
		{
			name: "PostgreSQL values read the connection string from the Secret and mount no volume",
			args: []string{"--values", filepath.Join(chartDir, "ci", "postgres-ha-values.yaml")},
			check: func(t *testing.T, objs []*unstructured.Unstructured) {
				core := find(t, objs, "Deployment", "twofold-core")
				ref, _, _ := unstructured.NestedStringMap(envVar(t, container(t, core, "core"), "TWOFOLD_DATABASE"), "valueFrom", "secretKeyRef")
				if ref["name"] != "twofold-postgres" || ref["key"] != "dsn" {
					t.Errorf("TWOFOLD_DATABASE comes from %v", ref)
				}
				if lookup(objs, "PersistentVolumeClaim", "twofold-core-data") != nil {
					t.Error("a SQLite claim is rendered for PostgreSQL")
				}
				if s, _, _ := unstructured.NestedString(core.Object, "spec", "strategy", "type"); s == "Recreate" {
					t.Error("PostgreSQL replicas should roll, not be recreated")
				}
				for _, c := range []string{"manager", "core"} {
					pdb := find(t, objs, "PodDisruptionBudget", "twofold-"+c)
					sel, _, _ := unstructured.NestedStringMap(pdb.Object, "spec", "selector", "matchLabels")
					if sel["app.kubernetes.io/component"] != c {
						t.Errorf("the %s PodDisruptionBudget selects %v", c, sel)
					}
				}
			},
		},
		{
			name: "cert-manager values mount the issued certificate read-only and tell the manager it is external",
			args: []string{"--values", filepath.Join(chartDir, "ci", "cert-manager-values.yaml")},
			check: func(t *testing.T, objs []*unstructured.Unstructured) {
				mgr := find(t, objs, "Deployment", "twofold-manager")
				args := containerArgs(t, container(t, mgr, "manager"))
				for _, a := range []string{"--webhook-cert-management=external", "--webhook-cert-dir=/var/run/twofold/webhook-certs"} {
					if !slices.Contains(args, a) {
						t.Errorf("manager args lack %s: %v", a, args)
					}
				}
				checkCertVolume(t, mgr)
				cert := find(t, objs, "Certificate", "twofold-webhook")
				dns, _, _ := unstructured.NestedStringSlice(cert.Object, "spec", "dnsNames")
				if !slices.Contains(dns, "twofold-webhook.twofold-system.svc") {
					t.Errorf("certificate DNS names %v lack the Service's", dns)
				}
				if lookup(objs, "Secret", "twofold-webhook-cert") != nil {
					t.Error("the chart renders the Secret cert-manager owns")
				}
			},
		},
		{
			name: "self-managed certificates mount the Secret the manager fills, which is kept on uninstall",
			check: func(t *testing.T, objs []*unstructured.Unstructured) {
				mgr := find(t, objs, "Deployment", "twofold-manager")
				args := containerArgs(t, container(t, mgr, "manager"))
				for _, a := range []string{"--webhook-cert-management=self", "--webhook-cert-secret=twofold-webhook-cert", "--webhook-service=twofold-webhook"} {
					if !slices.Contains(args, a) {
						t.Errorf("manager args lack %s: %v", a, args)
					}
				}
				// The rotator writes the Secret only; the kubelet projects it into the folder,
				// which the rotator waits for before the webhook server starts.
				checkCertVolume(t, mgr)
				s := find(t, objs, "Secret", "twofold-webhook-cert")
				if _, ok := s.Object["data"]; ok {
					t.Error("the chart sets the certificate Secret's data, which upgrades would overwrite")
				}
				if s.GetAnnotations()["helm.sh/resource-policy"] != "keep" {
					t.Error("the certificate Secret is not kept on uninstall, as docs/install.md says it is")
				}
				if lookup(objs, "Certificate", "twofold-webhook") != nil {
					t.Error("a cert-manager Certificate is rendered without cert-manager")
				}
			},
		},
		{
			name: "SQLite on a volume gets an init container that hands the folder to the core's user with only CHOWN and FOWNER",
			check: func(t *testing.T, objs []*unstructured.Unstructured) {
				core := find(t, objs, "Deployment", "twofold-core")
				init := initContainer(t, core, "prepare-data")
				if img, want := init["image"], container(t, core, "core")["image"]; img != want {
					t.Errorf("prepare-data runs image %v, want the core's %v (images have no shell)", img, want)
				}
				if got, want := containerArgs(t, init), []string{"prepare-data", "-dir=/data", "-uid=65532", "-gid=65532"}; !reflect.DeepEqual(got, want) {
					t.Errorf("prepare-data args = %v, want %v", got, want)
				}
				want := map[string]any{
					"runAsUser": int64(0), "runAsGroup": int64(0), "runAsNonRoot": false,
					"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
					"capabilities": map[string]any{"drop": []any{"ALL"}, "add": []any{"CHOWN", "FOWNER"}},
				}
				if sc := init["securityContext"]; !reflect.DeepEqual(sc, want) {
					t.Errorf("prepare-data securityContext = %v, want %v", sc, want)
				}
				mounts, _, _ := unstructured.NestedSlice(init, "volumeMounts")
				if len(mounts) != 1 || mounts[0].(map[string]any)["name"] != "data" || mounts[0].(map[string]any)["mountPath"] != "/data" {
					t.Errorf("prepare-data mounts %v, want the data volume at /data", mounts)
				}
			},
		},
		{
			name: "the init container follows the pod's user and can be turned off",
			args: []string{"--set", "podSecurityContext.runAsUser=1001,podSecurityContext.runAsGroup=2002"},
			check: func(t *testing.T, objs []*unstructured.Unstructured) {
				init := initContainer(t, find(t, objs, "Deployment", "twofold-core"), "prepare-data")
				if args := containerArgs(t, init); !slices.Contains(args, "-uid=1001") || !slices.Contains(args, "-gid=2002") {
					t.Errorf("prepare-data args = %v, want the pod's user 1001:2002", args)
				}
				off := render(t, "--set", "core.database.sqlite.persistence.prepare=false")
				if ics, _, _ := unstructured.NestedSlice(find(t, off, "Deployment", "twofold-core").Object, "spec", "template", "spec", "initContainers"); len(ics) != 0 {
					t.Errorf("prepare=false still renders init containers: %v", ics)
				}
				for _, values := range []string{"postgres-ha-values.yaml", "minimal-resources-values.yaml"} {
					objs := render(t, "--values", filepath.Join(chartDir, "ci", values))
					if ics, _, _ := unstructured.NestedSlice(find(t, objs, "Deployment", "twofold-core").Object, "spec", "template", "spec", "initContainers"); len(ics) != 0 {
						t.Errorf("%s has no SQLite volume, yet renders init containers: %v", values, ics)
					}
				}
			},
		},
		{
			name: "the generated admin key is kept on uninstall and shared by the manager and the core",
			check: func(t *testing.T, objs []*unstructured.Unstructured) {
				s := find(t, objs, "Secret", "twofold-admin-key")
				if s.GetAnnotations()["helm.sh/resource-policy"] != "keep" {
					t.Error("the admin key Secret is not kept")
				}
				key, _, _ := unstructured.NestedString(s.Object, "data", "admin-key")
				if len(key) < 48 {
					t.Errorf("generated admin key %q is too short", key)
				}
				for _, d := range []string{"twofold-manager", "twofold-core"} {
					name, _, _ := unstructured.NestedString(volume(t, find(t, objs, "Deployment", d), "admin-key"), "secret", "secretName")
					if name != "twofold-admin-key" {
						t.Errorf("%s mounts the admin key from %q", d, name)
					}
				}
			},
		},
		{
			name: "an existing admin key Secret is used and none is generated",
			args: []string{"--values", filepath.Join(chartDir, "ci", "minimal-resources-values.yaml")},
			check: func(t *testing.T, objs []*unstructured.Unstructured) {
				if lookup(objs, "Secret", "twofold-admin-key") != nil {
					t.Error("an admin key is generated although core.adminKey.existingSecret is set")
				}
				mgr := find(t, objs, "Deployment", "twofold-manager")
				if name, _, _ := unstructured.NestedString(volume(t, mgr, "admin-key"), "secret", "secretName"); name != "twofold-admin-key-from-vault" {
					t.Errorf("manager mounts the admin key from %q", name)
				}
				if !slices.Contains(containerArgs(t, container(t, mgr, "manager")), "--admin-key-file=/etc/twofold/admin-key/key") {
					t.Error("manager does not read the configured key")
				}
				if _, ok := volume(t, find(t, objs, "Deployment", "twofold-core"), "data")["emptyDir"]; !ok {
					t.Error("SQLite without persistence should live in an emptyDir")
				}
			},
		},
		{
			name: "the release namespace is excluded from the webhooks and the injector",
			args: []string{"--namespace", "identity", "--set", "webhook.excludedNamespaces={kube-system,gatekeeper-system}"},
			check: func(t *testing.T, objs []*unstructured.Unstructured) {
				want := []any{"kube-system", "gatekeeper-system", "identity"}
				for _, kind := range []string{"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"} {
					hooks := ofKind(objs, kind)[0].Object["webhooks"].([]any)
					exprs := hooks[0].(map[string]any)["namespaceSelector"].(map[string]any)["matchExpressions"].([]any)
					if got := exprs[0].(map[string]any)["values"]; !reflect.DeepEqual(got, want) {
						t.Errorf("%s excludes %v, want %v", kind, got, want)
					}
				}
				args := containerArgs(t, container(t, find(t, objs, "Deployment", "twofold-manager"), "manager"))
				if !slices.Contains(args, "--excluded-namespaces=kube-system,gatekeeper-system,identity") {
					t.Errorf("manager args: %v", args)
				}
				if !slices.Contains(args, "--core-url=http://twofold-core.identity.svc:3567") {
					t.Errorf("manager does not reach the core of its namespace: %v", args)
				}
			},
		},
		{
			name: "every pod runs as non-root with a read-only root filesystem, no capabilities and the default seccomp profile",
			args: []string{"--values", filepath.Join(chartDir, "ci", "postgres-ha-values.yaml")},
			check: func(t *testing.T, objs []*unstructured.Unstructured) {
				for _, d := range ofKind(objs, "Deployment") {
					pod, _, _ := unstructured.NestedMap(d.Object, "spec", "template", "spec", "securityContext")
					if pod["runAsNonRoot"] != true || !reflect.DeepEqual(pod["seccompProfile"], map[string]any{"type": "RuntimeDefault"}) {
						t.Errorf("%s pod securityContext: %v", d.GetName(), pod)
					}
					containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
					for _, c := range containers {
						sc := c.(map[string]any)["securityContext"].(map[string]any)
						if sc["readOnlyRootFilesystem"] != true || sc["allowPrivilegeEscalation"] != false ||
							!reflect.DeepEqual(sc["capabilities"], map[string]any{"drop": []any{"ALL"}}) {
							t.Errorf("%s container securityContext: %v", d.GetName(), sc)
						}
						for _, p := range []string{"livenessProbe", "readinessProbe"} {
							if _, ok := c.(map[string]any)[p]; !ok {
								t.Errorf("%s has no %s", d.GetName(), p)
							}
						}
						if _, ok := c.(map[string]any)["resources"].(map[string]any)["requests"]; !ok {
							t.Errorf("%s has no resource requests", d.GetName())
						}
					}
				}
			},
		},
		{
			name: "ServiceMonitors scrape the manager's and the core's metrics ports",
			args: []string{"--values", filepath.Join(chartDir, "ci", "postgres-ha-values.yaml")},
			check: func(t *testing.T, objs []*unstructured.Unstructured) {
				for component, port := range map[string]string{"manager": "metrics", "core": "http"} {
					sm := find(t, objs, "ServiceMonitor", "twofold-"+component)
					if sm.GetLabels()["release"] != "prometheus" {
						t.Errorf("ServiceMonitor %s lacks the extra labels: %v", component, sm.GetLabels())
					}
					eps, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
					if got := eps[0].(map[string]any)["port"]; got != port {
						t.Errorf("ServiceMonitor %s scrapes port %v, want %s", component, got, port)
					}
					found := false
					for _, svc := range ofKind(objs, "Service") {
						ports, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
						for _, p := range ports {
							if svc.GetLabels()["app.kubernetes.io/component"] == component && p.(map[string]any)["name"] == port {
								found = true
							}
						}
					}
					if !found {
						t.Errorf("no %s Service has a port named %s", component, port)
					}
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.check(t, render(t, tt.args...)) })
	}
}

// TestChartDefaultsMatchConfigDefault checks that Helm's defaults and config/default deploy the
// same containers, so people who do not use Helm get the same installation.
func TestChartDefaultsMatchConfigDefault(t *testing.T) {
	out, err := run(kustomizeBin(t), "build", filepath.Join(root, "config", "default"))
	if err != nil {
		t.Fatal(err)
	}
	kust := parseObjects(t, out)
	chart := render(t)
	tests := []struct{ name, deployment, container string }{
		{"the manager container is the same with Helm and kustomize", "twofold-manager", "manager"},
		{"the core container is the same with Helm and kustomize", "twofold-core", "core"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := container(t, find(t, chart, "Deployment", tt.deployment), tt.container)
			k := container(t, find(t, kust, "Deployment", tt.deployment), tt.container)
			if !reflect.DeepEqual(normalise(t, h), normalise(t, k)) {
				t.Fatalf("containers differ:\nhelm:      %v\nkustomize: %v", h, k)
			}
			for _, field := range []string{"securityContext", "initContainers", "volumes"} {
				hp, _, _ := unstructured.NestedFieldNoCopy(find(t, chart, "Deployment", tt.deployment).Object, "spec", "template", "spec", field)
				kp, _, _ := unstructured.NestedFieldNoCopy(find(t, kust, "Deployment", tt.deployment).Object, "spec", "template", "spec", field)
				if !reflect.DeepEqual(normalise(t, hp), normalise(t, kp)) {
					t.Fatalf("pod %s differ:\nhelm:      %v\nkustomize: %v", field, hp, kp)
				}
			}
		})
	}
}

// TestValuesAreDocumented checks that every value in values.yaml has a comment, on itself or on
// the section it belongs to.
func TestValuesAreDocumented(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc yamlv3.Node
	if err := yamlv3.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	var undocumented []string
	var walk func(n *yamlv3.Node, path string, documented bool)
	walk = func(n *yamlv3.Node, path string, documented bool) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := strings.TrimPrefix(path+"."+k.Value, ".")
			doc := documented || strings.TrimSpace(k.HeadComment) != ""
			if v.Kind == yamlv3.MappingNode && len(v.Content) > 0 {
				walk(v, p, doc)
				continue
			}
			if !doc {
				undocumented = append(undocumented, p)
			}
		}
	}
	walk(doc.Content[0], "", false)
	if len(undocumented) > 0 {
		t.Fatalf("values without a comment in values.yaml: %s", strings.Join(undocumented, ", "))
	}
}

// checkCertVolume checks that the manager mounts the webhook certificate Secret read-only and
// optional (the pod starts before the Secret holds a certificate), its serving pair only.
func checkCertVolume(t testing.TB, mgr *unstructured.Unstructured) {
	t.Helper()
	want := map[string]any{
		"secretName": "twofold-webhook-cert",
		"optional":   true,
		"items":      []any{map[string]any{"key": "tls.crt", "path": "tls.crt"}, map[string]any{"key": "tls.key", "path": "tls.key"}},
	}
	if got := volume(t, mgr, "webhook-certs"); !reflect.DeepEqual(got["secret"], want) || len(got) != 2 {
		t.Errorf("webhook-certs volume = %v, want the Secret %v", got, want)
	}
	mounts, _, _ := unstructured.NestedSlice(container(t, mgr, "manager"), "volumeMounts")
	for _, m := range mounts {
		if m := m.(map[string]any); m["name"] == "webhook-certs" {
			if m["mountPath"] != "/var/run/twofold/webhook-certs" || m["readOnly"] != true {
				t.Errorf("webhook-certs mount = %v", m)
			}
			return
		}
	}
	t.Error("the manager does not mount webhook-certs")
}

// initContainer returns a Deployment's init container by name.
func initContainer(t testing.TB, d *unstructured.Unstructured, name string) map[string]any {
	t.Helper()
	cs, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "initContainers")
	for _, c := range cs {
		if m := c.(map[string]any); m["name"] == name {
			return m
		}
	}
	t.Fatalf("%s has no init container %s", d.GetName(), name)
	return nil
}

// container returns a Deployment's container by name.
func container(t testing.TB, d *unstructured.Unstructured, name string) map[string]any {
	t.Helper()
	cs, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	for _, c := range cs {
		if m := c.(map[string]any); m["name"] == name {
			return m
		}
	}
	t.Fatalf("%s has no container %s", d.GetName(), name)
	return nil
}

func containerArgs(t testing.TB, c map[string]any) []string {
	t.Helper()
	args, _, err := unstructured.NestedStringSlice(c, "args")
	if err != nil {
		t.Fatal(err)
	}
	return args
}

// envVar returns a container's environment variable by name.
func envVar(t testing.TB, c map[string]any, name string) map[string]any {
	t.Helper()
	vars, _, _ := unstructured.NestedSlice(c, "env")
	for _, v := range vars {
		if m := v.(map[string]any); m["name"] == name {
			return m
		}
	}
	t.Fatalf("container %v has no env %s", c["name"], name)
	return nil
}

// volume returns a Deployment's pod volume by name.
func volume(t testing.TB, d *unstructured.Unstructured, name string) map[string]any {
	t.Helper()
	vs, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "volumes")
	for _, v := range vs {
		if m := v.(map[string]any); m["name"] == name {
			return m
		}
	}
	t.Fatalf("%s has no volume %s", d.GetName(), name)
	return nil
}

// normalise makes two decoded YAML values comparable: numbers of either decoder become float64,
// and the service port the chart spells out (443, the API's default) is dropped.
func normalise(t testing.TB, v any) any {
	t.Helper()
	switch x := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, e := range x {
			out[k] = normalise(t, e)
		}
		if svc, ok := out["service"].(map[string]any); ok && svc["port"] == float64(443) {
			delete(svc, "port")
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalise(t, e)
		}
		return out
	case int64:
		return float64(x)
	case int:
		return float64(x)
	default:
		return v
	}
}

func baseNames(paths []string) []string {
	var out []string
	for _, p := range paths {
		out = append(out, filepath.Base(p))
	}
	slices.Sort(out)
	return out
}

// The binaries' default version names the images the chart deploys by default: a manager run
// without the chart injects the sidecar image of its own release.
func TestTheBinariesVersionIsTheChartsAppVersion(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^appVersion:\s*"?([^"\s]+)"?`).FindSubmatch(b)
	if m == nil {
		t.Fatal("Chart.yaml has no appVersion")
	}
	if string(m[1]) != version.Version {
		t.Fatalf("Chart.yaml appVersion %s, version.Version %s: bump them together", m[1], version.Version)
	}
}
