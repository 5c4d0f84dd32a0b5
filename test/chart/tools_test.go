package chart_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/twofold-dev/twofold/test/testenv"
)

// Tool versions; the Makefile passes the same pins through these variables.
var (
	helmVersion      = envOr("HELM_VERSION", "v3.22.0")
	kustomizeVersion = envOr("KUSTOMIZE_VERSION", "v5.8.2")
)

const (
	// releaseName and releaseNamespace are what docs/install.md tells people to use, so the
	// rendered names match config/default.
	releaseName      = "twofold"
	releaseNamespace = "twofold-system"
	// kubeVersion is the version helm assumes (the chart needs >= 1.29); the same as envtest's.
	kubeVersion = testenv.KubernetesVersion
)

var (
	root      = testenv.RepoRoot()
	chartDir  = filepath.Join(root, "charts", "twofold")
	helmHome  string
	toolMu    sync.Mutex
	toolPaths = map[string]string{}
)

// tool installs a pinned Go command with hack/go-tool.sh (a no-op when bin/ has it) and returns
// its path. It fails the test, saying what to install, when that is not possible.
func tool(t testing.TB, name, pkg, version string) string {
	t.Helper()
	toolMu.Lock()
	defer toolMu.Unlock()
	if p, ok := toolPaths[name]; ok {
		return p
	}
	cmd := exec.Command(filepath.Join(root, "hack", "go-tool.sh"), name, pkg, version)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("could not install %s %s (%v):\n%s\nInstall it with `hack/go-tool.sh %s %s %s` (needs Go and the Go module proxy), or put a %s binary at bin/%s-%s.",
			name, version, err, stderr.String(), name, pkg, version, name, name, version)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	p := lines[len(lines)-1]
	toolPaths[name] = p
	return p
}

func helmBin(t testing.TB) string {
	return tool(t, "helm", "helm.sh/helm/v3/cmd/helm", helmVersion)
}

func kustomizeBin(t testing.TB) string {
	return tool(t, "kustomize", "sigs.k8s.io/kustomize/kustomize/v5", kustomizeVersion)
}

// run runs a command and returns its standard output, or an error carrying its standard error.
func run(bin string, args ...string) ([]byte, error) {
	cmd := exec.Command(bin, args...)
	cmd.Dir = root
	// Helm keeps its caches and configuration in a throw-away folder, not the user's home.
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(helmHome, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(helmHome, "config"),
		"HELM_DATA_HOME="+filepath.Join(helmHome, "data"),
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%s %s: %w\n%s%s", filepath.Base(bin), strings.Join(args, " "), err, stderr.String(), stdout.String())
	}
	return stdout.Bytes(), nil
}

// helmTemplate renders the chart as release twofold in twofold-system with extra helm flags.
func helmTemplate(t testing.TB, args ...string) ([]byte, error) {
	base := []string{"template", releaseName, chartDir, "--namespace", releaseNamespace, "--kube-version", kubeVersion}
	return run(helmBin(t), append(base, args...)...)
}

// render renders the chart and parses the objects, failing the test on any error.
func render(t testing.TB, args ...string) []*unstructured.Unstructured {
	t.Helper()
	out, err := helmTemplate(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	return parseObjects(t, out)
}

// parseObjects decodes a multi-document YAML stream, skipping empty documents.
func parseObjects(t testing.TB, data []byte) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatalf("decoding rendered YAML: %v", err)
		}
		if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
			continue
		}
		// Decoded like the API machinery does: whole numbers become int64.
		o := &unstructured.Unstructured{}
		if err := o.UnmarshalJSON(raw); err != nil {
			t.Fatalf("decoding rendered object: %v\n%s", err, raw)
		}
		objs = append(objs, o)
	}
	if len(objs) == 0 {
		t.Fatal("nothing was rendered")
	}
	return objs
}

// readObjects parses a YAML file of the repository.
func readObjects(t testing.TB, rel string) []*unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return parseObjects(t, data)
}

// find returns the one object of a kind and name, failing the test when it is missing.
func find(t testing.TB, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	if o := lookup(objs, kind, name); o != nil {
		return o
	}
	t.Fatalf("no %s %q among the rendered objects (%s)", kind, name, names(objs))
	return nil
}

func lookup(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

func ofKind(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

func names(objs []*unstructured.Unstructured) string {
	var s []string
	for _, o := range objs {
		s = append(s, o.GetKind()+"/"+o.GetName())
	}
	return strings.Join(s, ", ")
}

// ciValuesFiles lists charts/twofold/ci/*-values.yaml relative to the repository.
func ciValuesFiles(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 4 {
		t.Fatalf("want at least 4 ci values files, found %d", len(files))
	}
	return files
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
