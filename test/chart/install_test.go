package chart_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestHelmInstallUpgradeUninstall installs the chart into the test API server for real and
// checks what docs/install.md promises about upgrades and uninstalling: the admin key, the
// webhook certificate and the caBundle the manager writes survive an upgrade, uninstalling
// keeps the CRDs, the admin key, the webhook certificate and the SQLite volume claim, and a
// reinstall adopts the kept Secrets with their data. No pod runs (envtest has no
// kubelet), so this covers Helm's side only.
func TestHelmInstallUpgradeUninstall(t *testing.T) {
	e := apiServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := e.Client
	const ns = "helm-install-test"

	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, e.KubeConfig, 0o600); err != nil {
		t.Fatal(err)
	}
	chart := installableChart(t, e.Config)
	helm := func(t *testing.T, args ...string) string {
		t.Helper()
		out, err := run(helmBin(t), append(args, "--kubeconfig", kubeconfig, "--namespace", ns)...)
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}

	// envtest installed the CRDs from config/crd/bases already, the way a kustomize installation
	// would have; Helm adopts existing objects that carry its ownership metadata.
	for _, name := range []string{"authtenants.auth.twofold.dev", "mfapolicies.auth.twofold.dev"} {
		patch := []byte(`{"metadata":{"labels":{"app.kubernetes.io/managed-by":"Helm"},"annotations":{"meta.helm.sh/release-name":"` + releaseName + `","meta.helm.sh/release-namespace":"` + ns + `"}}}`)
		crd := crdMeta()
		crd.Name = name
		if err := c.Patch(ctx, crd, client.RawPatch(types.MergePatchType, patch)); err != nil {
			t.Fatalf("marking CRD %s for adoption: %v", name, err)
		}
	}

	key := types.NamespacedName{Namespace: ns, Name: "twofold-admin-key"}
	certKey := types.NamespacedName{Namespace: ns, Name: "twofold-webhook-cert"}
	adminKey := func() []byte {
		t.Helper()
		s := &corev1.Secret{}
		if err := c.Get(ctx, key, s); err != nil {
			t.Fatalf("reading the admin key Secret: %v", err)
		}
		return s.Data["admin-key"]
	}

	t.Run("an install creates the release's objects and a random admin key", func(t *testing.T) {
		out := helm(t, "install", releaseName, chart, "--create-namespace")
		for _, want := range []string{"Core:     http://twofold-core." + ns + ".svc:3567", "Secret twofold-admin-key (key admin-key)", "The CRDs are kept"} {
			if !strings.Contains(out, want) {
				t.Errorf("the install notes lack %q:\n%s", want, out)
			}
		}
		for _, name := range []string{"twofold-manager", "twofold-core"} {
			if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &appsv1.Deployment{}); err != nil {
				t.Errorf("Deployment %s: %v", name, err)
			}
		}
		if k := adminKey(); len(k) < 32 {
			t.Fatalf("admin key %q is too short", k)
		}
	})

	// controller-runtime records leader election through the core group's events API and the
	// reconcilers' Events through events.k8s.io; the manager's role must allow both.
	t.Run("the manager's service account may record Events through both event APIs", func(t *testing.T) {
		cfg := rest.CopyConfig(e.Config)
		cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":twofold-manager"}
		sa, err := client.New(cfg, client.Options{Scheme: e.Scheme})
		if err != nil {
			t.Fatal(err)
		}
		if err := eventsv1.AddToScheme(e.Scheme); err != nil {
			t.Fatal(err)
		}
		lease := corev1.ObjectReference{APIVersion: "coordination.k8s.io/v1", Kind: "Lease", Namespace: ns, Name: "manager.auth.twofold.dev"}
		events := []client.Object{
			&corev1.Event{
				ObjectMeta:     metav1.ObjectMeta{GenerateName: "leader-", Namespace: ns},
				InvolvedObject: lease, Reason: "LeaderElection", Message: "became leader", Type: corev1.EventTypeNormal,
				Source: corev1.EventSource{Component: "twofold-manager"},
			},
			&eventsv1.Event{
				ObjectMeta: metav1.ObjectMeta{GenerateName: "tenant-", Namespace: ns},
				EventTime:  metav1.NowMicro(), ReportingController: "twofold-manager", ReportingInstance: "twofold-manager-0",
				Action: "Reconcile", Reason: "Synced", Regarding: lease, Type: corev1.EventTypeNormal, Note: "synced",
			},
		}
		for _, ev := range events {
			if err := sa.Create(ctx, ev); err != nil {
				t.Errorf("creating a %T as the manager: %v", ev, err)
			}
		}
	})

	// What the manager does once it runs: fill the certificate Secret and the caBundle.
	certData := map[string][]byte{"tls.crt": []byte("cert"), "tls.key": []byte("key"), "ca.crt": []byte("ca")}
	caBundle := []byte("-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n")
	t.Run("the manager's certificate and caBundle are written", func(t *testing.T) {
		s := &corev1.Secret{}
		if err := c.Get(ctx, certKey, s); err != nil {
			t.Fatal(err)
		}
		s.Data = certData
		if err := c.Update(ctx, s); err != nil {
			t.Fatal(err)
		}
		m := &admissionregistrationv1.MutatingWebhookConfiguration{}
		if err := c.Get(ctx, types.NamespacedName{Name: "twofold-inject"}, m); err != nil {
			t.Fatal(err)
		}
		m.Webhooks[0].ClientConfig.CABundle = caBundle
		if err := c.Update(ctx, m); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("an upgrade keeps the admin key, the certificate and the caBundle", func(t *testing.T) {
		before := adminKey()
		helm(t, "upgrade", releaseName, chart, "--set", "manager.replicas=2")
		if after := adminKey(); !bytes.Equal(before, after) {
			t.Errorf("the admin key changed on upgrade: %q -> %q", before, after)
		}
		s := &corev1.Secret{}
		if err := c.Get(ctx, certKey, s); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(s.Data["tls.crt"], certData["tls.crt"]) {
			t.Errorf("the upgrade replaced the manager's certificate: %v", s.Data)
		}
		m := &admissionregistrationv1.MutatingWebhookConfiguration{}
		if err := c.Get(ctx, types.NamespacedName{Name: "twofold-inject"}, m); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(m.Webhooks[0].ClientConfig.CABundle, caBundle) {
			t.Errorf("the upgrade dropped the caBundle: %q", m.Webhooks[0].ClientConfig.CABundle)
		}
		d := &appsv1.Deployment{}
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "twofold-manager"}, d); err != nil {
			t.Fatal(err)
		}
		if *d.Spec.Replicas != 2 {
			t.Errorf("manager replicas = %d after the upgrade, want 2", *d.Spec.Replicas)
		}
	})

	t.Run("an uninstall keeps the CRDs, the admin key, the webhook certificate and the SQLite claim", func(t *testing.T) {
		helm(t, "uninstall", releaseName)
		kept := []struct {
			what string
			obj  client.Object
			key  types.NamespacedName
		}{
			{"the AuthTenant CRD", crdMeta(), types.NamespacedName{Name: "authtenants.auth.twofold.dev"}},
			{"the MFAPolicy CRD", crdMeta(), types.NamespacedName{Name: "mfapolicies.auth.twofold.dev"}},
			{"the admin key", &corev1.Secret{}, key},
			{"the webhook certificate", &corev1.Secret{}, certKey},
			{"the SQLite claim", &corev1.PersistentVolumeClaim{}, types.NamespacedName{Namespace: ns, Name: "twofold-core-data"}},
		}
		for _, k := range kept {
			if err := c.Get(ctx, k.key, k.obj); err != nil {
				t.Errorf("%s is gone: %v", k.what, err)
			} else if ts := k.obj.GetDeletionTimestamp(); ts != nil {
				t.Errorf("%s is being deleted", k.what)
			}
		}
		gone := []struct {
			what string
			obj  client.Object
			key  types.NamespacedName
		}{
			{"the manager", &appsv1.Deployment{}, types.NamespacedName{Namespace: ns, Name: "twofold-manager"}},
			{"the mutating webhook", &admissionregistrationv1.MutatingWebhookConfiguration{}, types.NamespacedName{Name: "twofold-inject"}},
			{"the validating webhook", &admissionregistrationv1.ValidatingWebhookConfiguration{}, types.NamespacedName{Name: "twofold-check"}},
		}
		for _, g := range gone {
			err := c.Get(ctx, g.key, g.obj)
			if err == nil && g.obj.GetDeletionTimestamp() == nil {
				t.Errorf("%s is still there", g.what)
			} else if err != nil && !apierrors.IsNotFound(err) {
				t.Errorf("reading %s: %v", g.what, err)
			}
		}
	})

	t.Run("a reinstall adopts the kept admin key and webhook certificate and keeps their data", func(t *testing.T) {
		before := adminKey()
		// The kept Secrets belong to no release any more; like the CRDs, they are adopted.
		for _, k := range []types.NamespacedName{key, certKey} {
			s := &corev1.Secret{}
			if err := c.Get(ctx, k, s); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(s.Annotations["meta.helm.sh/release-name"], releaseName) {
				t.Fatalf("the kept Secret %s lost Helm's ownership annotations: %v", k.Name, s.Annotations)
			}
		}
		helm(t, "install", releaseName, chart)
		if after := adminKey(); !bytes.Equal(before, after) {
			t.Errorf("the reinstall generated a new admin key: %q -> %q", before, after)
		}
		s := &corev1.Secret{}
		if err := c.Get(ctx, certKey, s); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(s.Data["tls.crt"], certData["tls.crt"]) || !bytes.Equal(s.Data["ca.crt"], certData["ca.crt"]) {
			t.Errorf("the reinstall emptied the webhook certificate the manager keeps: %v", s.Data)
		}
		helm(t, "uninstall", releaseName)
	})
}

// crdMeta is an empty CRD as metadata only: the test client's scheme has no apiextensions types.
func crdMeta() *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(apiextensionsv1.SchemeGroupVersion.WithKind("CustomResourceDefinition"))
	return m
}

// installableChart returns the chart to install into the test API server: charts/twofold itself
// when the server reports a release version, else a copy without the kubeVersion constraint.
// A kube-apiserver built from the module proxy without version ldflags reports
// v0.0.0-master, which no constraint accepts; that is an artefact of the test binary, not of
// any cluster, and the constraint is still checked by helm lint and helm template above.
func installableChart(t *testing.T, cfg *rest.Config) string {
	t.Helper()
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	v, err := dc.ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(v.GitVersion, "v0.0.0") {
		return chartDir
	}
	t.Logf("The API server reports %s; installing a copy of the chart without its kubeVersion constraint", v.GitVersion)
	dst := filepath.Join(t.TempDir(), "twofold")
	if err := os.CopyFS(dst, os.DirFS(chartDir)); err != nil {
		t.Fatal(err)
	}
	meta := filepath.Join(dst, "Chart.yaml")
	data, err := os.ReadFile(meta)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "kubeVersion:") {
			kept = append(kept, line)
		}
	}
	if len(kept) == len(strings.Split(string(data), "\n")) {
		t.Fatal("Chart.yaml has no kubeVersion line to drop")
	}
	if err := os.WriteFile(meta, []byte(strings.Join(kept, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}
