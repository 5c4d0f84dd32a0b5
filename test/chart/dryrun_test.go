package chart_test

import (
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestHelmLint(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{{name: "the chart with its default values passes helm lint --strict"}}
	for _, f := range ciValuesFiles(t) {
		tests = append(tests, struct {
			name string
			args []string
		}{name: "the chart with " + filepath.Base(f) + " passes helm lint --strict", args: []string{"--values", f}})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"lint", chartDir, "--strict", "--kube-version", kubeVersion, "--namespace", releaseNamespace}, tt.args...)
			if _, err := run(helmBin(t), args...); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestRenderedChartPassesServerSideDryRun(t *testing.T) {
	type test struct {
		name string
		args []string
		// kinds that must be among the rendered objects, so a values file that silently stops
		// rendering something is noticed.
		kinds []string
	}
	base := []string{"CustomResourceDefinition", "Deployment", "Service", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "Secret"}
	tests := []test{
		{name: "the default values render objects the API server accepts", kinds: append(base, "PersistentVolumeClaim")},
		{name: "another release name and namespace render objects the API server accepts", args: []string{"--namespace", "identity", "--set", "fullnameOverride=auth"}, kinds: base},
	}
	extra := map[string][]string{
		"cert-manager-values.yaml":      {"Certificate", "Issuer"},
		"postgres-ha-values.yaml":       {"PodDisruptionBudget", "ServiceMonitor", "NetworkPolicy"},
		"default-values.yaml":           {"PersistentVolumeClaim"},
		"minimal-resources-values.yaml": nil,
		"monitoring-values.yaml":        {"PersistentVolumeClaim", "ServiceMonitor", "PodMonitor", "PrometheusRule", "ConfigMap"},
	}
	for _, f := range ciValuesFiles(t) {
		tests = append(tests, test{
			name:  filepath.Base(f) + " renders objects the API server accepts",
			args:  []string{"--values", f},
			kinds: append(append([]string{}, base...), extra[filepath.Base(f)]...),
		})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := render(t, tt.args...)
			for _, k := range tt.kinds {
				if len(ofKind(objs, k)) == 0 {
					t.Errorf("no %s rendered; got %s", k, names(objs))
				}
			}
			for _, err := range dryRunApply(t, objs) {
				t.Error(err)
			}
		})
	}
}

func TestKustomizeBuildPassesServerSideDryRun(t *testing.T) {
	tests := []struct {
		name  string
		dir   string
		kinds []string
	}{
		{
			name:  "config/default builds objects the API server accepts",
			dir:   "config/default",
			kinds: []string{"Namespace", "CustomResourceDefinition", "Deployment", "Service", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "Secret", "PersistentVolumeClaim"},
		},
		{
			name:  "config/network-policy builds objects the API server accepts",
			dir:   "config/network-policy",
			kinds: []string{"NetworkPolicy"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := run(kustomizeBin(t), "build", filepath.Join(root, tt.dir))
			if err != nil {
				t.Fatal(err)
			}
			objs := parseObjects(t, out)
			for _, k := range tt.kinds {
				if len(ofKind(objs, k)) == 0 {
					t.Errorf("no %s built; got %s", k, names(objs))
				}
			}
			for _, o := range objs {
				if o.GetKind() != "Namespace" && o.GetKind() != "CustomResourceDefinition" && !clusterScoped(o) && o.GetNamespace() != releaseNamespace {
					t.Errorf("%s %s is in namespace %q, want %s", o.GetKind(), o.GetName(), o.GetNamespace(), releaseNamespace)
				}
			}
			for _, err := range dryRunApply(t, objs) {
				t.Error(err)
			}
		})
	}
}

// TestDryRunRefusesInvalidObjects shows that the dry run above can fail: the API server refuses
// what the chart's objects would look like with a mistake in them.
func TestDryRunRefusesInvalidObjects(t *testing.T) {
	tests := []struct {
		name   string
		kind   string
		mutate func(o *unstructured.Unstructured)
		want   string
	}{
		{
			name: "a Deployment with a misspelt field is refused",
			kind: "Deployment",
			mutate: func(o *unstructured.Unstructured) {
				_ = unstructured.SetNestedField(o.Object, int64(1), "spec", "replica")
			},
			want: "replica",
		},
		{
			name: "a Service with a port out of range is refused",
			kind: "Service",
			mutate: func(o *unstructured.Unstructured) {
				ports, _, _ := unstructured.NestedSlice(o.Object, "spec", "ports")
				ports[0].(map[string]any)["port"] = int64(70000)
				_ = unstructured.SetNestedSlice(o.Object, ports, "spec", "ports")
			},
			want: "70000",
		},
		{
			name: "a Certificate without an issuer is refused by the stand-in CRD",
			kind: "Certificate",
			mutate: func(o *unstructured.Unstructured) {
				unstructured.RemoveNestedField(o.Object, "spec", "issuerRef")
			},
			want: "issuerRef",
		},
	}
	objs := render(t, "--values", filepath.Join(chartDir, "ci", "cert-manager-values.yaml"))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kinds := ofKind(objs, tt.kind)
			if len(kinds) == 0 {
				t.Fatalf("no %s rendered", tt.kind)
			}
			o := kinds[0].DeepCopy()
			tt.mutate(o)
			errs := dryRunApply(t, []*unstructured.Unstructured{o})
			if len(errs) != 1 || !strings.Contains(errs[0].Error(), tt.want) {
				t.Fatalf("want the dry run to refuse the object mentioning %q, got %v", tt.want, errs)
			}
		})
	}
}

// clusterScoped reports the kinds of the kustomize build that have no namespace.
func clusterScoped(o *unstructured.Unstructured) bool {
	switch o.GetKind() {
	case "ClusterRole", "ClusterRoleBinding", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration":
		return true
	}
	return false
}
