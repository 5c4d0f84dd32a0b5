// Package testenv starts a real kube-apiserver and etcd (controller-runtime's envtest) with
// Twofold's CRDs installed, for tests that need the API server's own validation: CEL rules,
// defaults, generations and admission webhooks.
//
// The binaries come from KUBEBUILDER_ASSETS when it is set, and otherwise from the cache that
// hack/envtest-assets.sh fills (bin/k8s/<version>); `make test` runs that script first.
package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	authv1alpha1 "github.com/twofold-dev/twofold/api/v1alpha1"
)

// KubernetesVersion is the version of the control-plane binaries the tests run against.
const KubernetesVersion = "1.37.2"

// Env is a running control plane.
type Env struct {
	*envtest.Environment
	Config *rest.Config
	Client client.Client
	Scheme *runtime.Scheme
}

// RepoRoot returns the repository's top folder.
func RepoRoot() string {
	_, file, _, _ := goruntime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// AssetsDir returns the folder holding kube-apiserver and etcd, or an error that says how to
// get them.
func AssetsDir() (string, error) {
	dirs := []string{os.Getenv("KUBEBUILDER_ASSETS"), filepath.Join(RepoRoot(), "bin", "k8s", KubernetesVersion)}
	for _, d := range dirs {
		if d == "" {
			continue
		}
		if isExecutable(filepath.Join(d, "kube-apiserver")) && isExecutable(filepath.Join(d, "etcd")) {
			return d, nil
		}
	}
	return "", errors.New("kube-apiserver and etcd not found: run `make test` (or hack/envtest-assets.sh) to build them, or set KUBEBUILDER_ASSETS to a folder holding them")
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// Options adjust the environment.
type Options struct {
	// WebhookInstallOptions installs admission webhooks served by the test process.
	WebhookInstallOptions envtest.WebhookInstallOptions
}

// Start starts the control plane with the CRDs from config/crd/bases installed.
func Start(opts Options) (*Env, error) {
	assets, err := AssetsDir()
	if err != nil {
		return nil, err
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := authv1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     []string{filepath.Join(RepoRoot(), "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		Scheme:                scheme,
		WebhookInstallOptions: opts.WebhookInstallOptions,
	}
	cfg, err := env.Start()
	if err != nil {
		// Start can fail after the API server and etcd are up (a CRD the API server refuses):
		// stop them, or they outlive the test.
		_ = env.Stop()
		return nil, fmt.Errorf("starting envtest with binaries from %s: %w", assets, err)
	}
	// As ctrl.GetConfig does in production: no client-side rate limit, the API server's
	// priority and fairness decides.
	cfg.QPS = -1
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		_ = env.Stop()
		return nil, fmt.Errorf("creating a client: %w", err)
	}
	return &Env{Environment: env, Config: cfg, Client: c, Scheme: scheme}, nil
}
