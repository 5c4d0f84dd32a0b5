// Package chart_test checks the Helm chart (charts/twofold) and the kustomize configuration
// (config/) the way a cluster would: helm lint, the values schema, and a server-side dry run of
// every rendered object against a real kube-apiserver (envtest), so the API server itself
// validates them. helm and kustomize are installed at pinned versions into bin/ by
// hack/go-tool.sh; the envtest binaries come from KUBEBUILDER_ASSETS or bin/k8s/<version>.
package chart_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/twofold-dev/twofold/test/testenv"
)

var (
	envOnce sync.Once
	env     *testenv.Env
	envErr  error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "twofold-chart-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	helmHome = dir
	code := m.Run()
	if env != nil {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping envtest:", err)
		}
	}
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// apiServer starts envtest once for the whole package, with Twofold's CRDs and the stand-in
// CRDs of testdata (ServiceMonitor, cert-manager's Certificate and Issuer) installed.
func apiServer(t testing.TB) *testenv.Env {
	t.Helper()
	envOnce.Do(func() {
		env, envErr = testenv.Start(testenv.Options{})
		if envErr != nil {
			return
		}
		_, envErr = envtest.InstallCRDs(env.Config, envtest.CRDInstallOptions{
			Paths:              []string{filepath.Join(root, "test", "chart", "testdata")},
			ErrorIfPathMissing: true,
		})
		if envErr != nil {
			envErr = fmt.Errorf("installing the stand-in CRDs of test/chart/testdata: %w", envErr)
		}
	})
	if envErr != nil {
		t.Fatal(envErr)
	}
	return env
}

// dryRunApply creates the objects' namespaces and then server-side applies every object with
// dryRun=All, so the API server validates each one (schema, unknown fields, CEL, defaults)
// without storing it. It returns one error per refused object.
func dryRunApply(t testing.TB, objs []*unstructured.Unstructured) []error {
	t.Helper()
	e := apiServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, o := range objs {
		ns := o.GetNamespace()
		if o.GetKind() == "Namespace" {
			ns = o.GetName()
		}
		if ns == "" {
			continue
		}
		err := e.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("creating namespace %s: %v", ns, err)
		}
	}
	var errs []error
	for _, o := range objs {
		err := e.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(o.DeepCopy()),
			client.DryRunAll, client.ForceOwnership, client.FieldOwner("twofold-chart-test"))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %s/%s: %w", o.GetKind(), o.GetNamespace(), o.GetName(), err))
		}
	}
	return errs
}
