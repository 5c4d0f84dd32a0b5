package main

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"encoding/base64"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The tests build the smallest image, pause, for both architectures: the same code path as
// the manager, core and sidecar, in a few seconds.
const (
	testEpoch    = "1764547200" // 2025-12-01T00:00:00Z
	testRevision = "0123456789abcdef0123456789abcdef01234567"
	pauseRef     = "ghcr.io/twofold-dev/twofold-pause:0.1.0"
)

var pauseBuild struct {
	once sync.Once
	out  string
	log  string
	err  error
}

// builtPause builds the pause image once for the tests that only read it.
func builtPause(t *testing.T) string {
	t.Helper()
	pauseBuild.once.Do(func() {
		pauseBuild.out, pauseBuild.err = os.MkdirTemp("", "twofold-images-test-")
		if pauseBuild.err == nil {
			pauseBuild.log, pauseBuild.err = buildPause(pauseBuild.out)
		}
	})
	if pauseBuild.err != nil {
		t.Fatal(pauseBuild.err)
	}
	return pauseBuild.out
}

func TestMain(m *testing.M) {
	code := m.Run()
	if pauseBuild.out != "" {
		os.RemoveAll(pauseBuild.out)
	}
	os.Exit(code)
}

func buildPause(out string) (string, error) {
	var stdout bytes.Buffer
	err := run(context.Background(), []string{"build", "-root", "../..", "-out", out, "-images", "pause",
		"-source-date-epoch", testEpoch, "-revision", testRevision}, &stdout)
	return stdout.String(), err
}

func indexOf(t *testing.T, out string) (v1.ImageIndex, v1.Descriptor) {
	t.Helper()
	root, err := layout.ImageIndexFromPath(filepath.Join(out, "oci"))
	if err != nil {
		t.Fatal(err)
	}
	im, err := root.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 {
		t.Fatalf("the layout holds %d entries, want 1 (pause)", len(im.Manifests))
	}
	desc := im.Manifests[0]
	idx, err := root.ImageIndex(desc.Digest)
	if err != nil {
		t.Fatal(err)
	}
	return idx, desc
}

func TestBuildingTwiceGivesTheSameDigests(t *testing.T) {
	first := builtPause(t)
	second := t.TempDir()
	if _, err := buildPause(second); err != nil {
		t.Fatal(err)
	}
	_, a := indexOf(t, first)
	_, b := indexOf(t, second)
	if a.Digest != b.Digest {
		t.Errorf("two builds of the same source gave index digests %s and %s", a.Digest, b.Digest)
	}
	ta, err := os.ReadFile(filepath.Join(first, "twofold-pause.tar"))
	if err != nil {
		t.Fatal(err)
	}
	tb, err := os.ReadFile(filepath.Join(second, "twofold-pause.tar"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ta, tb) {
		t.Error("two builds of the same source gave different docker-archive tarballs")
	}
	if !strings.Contains(pauseBuild.log, "Built "+pauseRef+"@"+a.Digest.String()) {
		t.Errorf("the build printed %q, want the reference and the index digest", pauseBuild.log)
	}
}

func TestTheIndexHoldsANonRootShellFreeImagePerArchitecture(t *testing.T) {
	out := builtPause(t)
	idx, desc := indexOf(t, out)
	if got := desc.Annotations["org.opencontainers.image.ref.name"]; got != pauseRef {
		t.Errorf("layout names the image %q, want %q", got, pauseRef)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if im.MediaType != types.OCIImageIndex {
		t.Errorf("index media type %s, want %s", im.MediaType, types.OCIImageIndex)
	}
	wantLabels := map[string]string{
		"org.opencontainers.image.source":   "https://github.com/twofold-dev/twofold",
		"org.opencontainers.image.revision": testRevision,
		"org.opencontainers.image.version":  "0.1.0",
		"org.opencontainers.image.created":  "2025-12-01T00:00:00Z",
	}
	for k, v := range wantLabels {
		if im.Annotations[k] != v {
			t.Errorf("index annotation %s = %q, want %q", k, im.Annotations[k], v)
		}
	}
	epoch := time.Unix(1764547200, 0).UTC()
	machines := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
	var archs []string
	for _, m := range im.Manifests {
		arch := m.Platform.Architecture
		archs = append(archs, m.Platform.OS+"/"+arch)
		t.Run("the "+arch+" image", func(t *testing.T) {
			img, err := idx.Image(m.Digest)
			if err != nil {
				t.Fatal(err)
			}
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if cf.OS != "linux" || cf.Architecture != arch {
				t.Errorf("config platform %s/%s, want linux/%s", cf.OS, cf.Architecture, arch)
			}
			if cf.Config.User != "65532:65532" {
				t.Errorf("runs as %q, want 65532:65532", cf.Config.User)
			}
			if strings.Join(cf.Config.Entrypoint, " ") != "/pause" || len(cf.Config.Cmd) != 0 {
				t.Errorf("entrypoint %q cmd %q, want [/pause] and no cmd", cf.Config.Entrypoint, cf.Config.Cmd)
			}
			if !cf.Created.Time.Equal(epoch) {
				t.Errorf("created %s, want SOURCE_DATE_EPOCH %s", cf.Created.Time, epoch)
			}
			for k, v := range wantLabels {
				if cf.Config.Labels[k] != v {
					t.Errorf("label %s = %q, want %q", k, cf.Config.Labels[k], v)
				}
			}
			ordered := layerEntries(t, img)
			entries := byName(ordered)
			var names []string
			for _, e := range ordered {
				names = append(names, e.Name)
				if e.Uid != 0 || e.Gid != 0 || !e.ModTime.Equal(epoch) {
					t.Errorf("%s: owner %d:%d, time %s; want 0:0 and %s", e.Name, e.Uid, e.Gid, e.ModTime, epoch)
				}
			}
			// Nothing but the binary and the user database: no shell, no busybox, no package manager.
			if got, want := strings.Join(names, " "), "etc/ etc/group etc/passwd pause"; got != want {
				t.Errorf("layer holds %q, want exactly %q", got, want)
			}
			if !sort.StringsAreSorted(names) {
				t.Errorf("layer entries %q are not sorted", names)
			}
			if p := entries["pause"]; p.Mode != 0o755 {
				t.Errorf("pause has mode %o, want 755", p.Mode)
			}
			if !strings.Contains(string(entries["etc/passwd"].data), "nonroot:x:65532:65532:") {
				t.Errorf("/etc/passwd has no nonroot user 65532: %q", entries["etc/passwd"].data)
			}
			bin, err := elf.NewFile(bytes.NewReader(entries["pause"].data))
			if err != nil {
				t.Fatalf("pause is not an ELF binary: %v", err)
			}
			if bin.Machine != machines[arch] {
				t.Errorf("pause is built for %s, want %s", bin.Machine, machines[arch])
			}
			for _, p := range bin.Progs {
				if p.Type == elf.PT_INTERP {
					t.Error("pause asks for a dynamic loader: not static")
				}
			}
		})
	}
	sort.Strings(archs)
	if got := strings.Join(archs, ","); got != "linux/amd64,linux/arm64" {
		t.Errorf("index platforms %s, want linux/amd64,linux/arm64", got)
	}
}

func TestTheDockerArchiveHoldsTheHostImageUnderItsReference(t *testing.T) {
	out := builtPause(t)
	tag, err := name.NewTag(pauseRef)
	if err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(filepath.Join(out, "twofold-pause.tar"), &tag)
	if err != nil {
		t.Fatalf("reading the docker archive as %s: %v", pauseRef, err)
	}
	idx, _ := indexOf(t, out)
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	got, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range im.Manifests {
		host, err := idx.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		want, err := host.ConfigName()
		if err != nil {
			t.Fatal(err)
		}
		if (m.Platform.Architecture == runtime.GOARCH) != (got == want) {
			t.Errorf("archive config %s against the %s image's %s: want equal only for the host architecture %s", got, m.Platform.Architecture, want, runtime.GOARCH)
		}
	}
}

func TestPushCopiesTheIndexWithTheDockerConfigsCredentials(t *testing.T) {
	out := builtPause(t)
	_, built := indexOf(t, out)
	reg := httptest.NewServer(requireBasicAuth("builder", "s3cret", registry.New(registry.Logger(log.New(io.Discard, "", 0)))))
	defer reg.Close()
	host := strings.TrimPrefix(reg.URL, "http://")

	// No credentials: the registry refuses, and the error says which image.
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	_, err := push(context.Background(), pushOptions{Layout: out, Registry: host + "/team"})
	if err == nil || !strings.Contains(err.Error(), "pushing "+host+"/team/twofold-pause:0.1.0") {
		t.Fatalf("push without credentials: %v, want a refusal naming the image", err)
	}

	// The docker config's credentials, as `docker login` writes them.
	dockerConfig := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte("builder:s3cret"))
	if err := os.WriteFile(filepath.Join(dockerConfig, "config.json"),
		[]byte(`{"auths":{"`+host+`":{"auth":"`+auth+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", dockerConfig)
	var stdout bytes.Buffer
	if err := run(context.Background(), []string{"push", "-out", out, "-registry", host + "/team"}, &stdout); err != nil {
		t.Fatalf("push: %v", err)
	}
	if want := "Pushed " + host + "/team/twofold-pause:0.1.0@" + built.Digest.String(); !strings.Contains(stdout.String(), want) {
		t.Errorf("push printed %q, want %q", stdout.String(), want)
	}

	ref, err := name.NewTag(host + "/team/twofold-pause:0.1.0")
	if err != nil {
		t.Fatal(err)
	}
	pulled, err := remote.Index(ref, remote.WithAuthFromKeychain(authn.DefaultKeychain))
	if err != nil {
		t.Fatalf("pulling the index back: %v", err)
	}
	d, err := pulled.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if d != built.Digest {
		t.Errorf("pulled index %s, built %s", d, built.Digest)
	}
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := remote.Image(ref, remote.WithAuthFromKeychain(authn.DefaultKeychain),
			remote.WithPlatform(v1.Platform{OS: "linux", Architecture: arch}))
		if err != nil {
			t.Fatalf("pulling the %s image: %v", arch, err)
		}
		cf, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cf.Architecture != arch || cf.Config.User != "65532:65532" {
			t.Errorf("pulled %s image is %s running as %q", arch, cf.Architecture, cf.Config.User)
		}
	}
}

func TestBadInputIsRefusedBeforeAnythingIsWritten(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  []string
		want  string
		usage bool // a command-line mistake (exit status 2) rather than a failed build
	}{
		{"an unknown image is named", []string{"build", "-images", "pause,nginx"}, `unknown image "nginx": want some of manager, core, sidecar, sampleapp, pause`, true},
		{"an image is named twice", []string{"build", "-images", "pause,pause"}, `image "pause" is named twice`, true},
		{"a platform other than linux amd64 or arm64", []string{"build", "-images", "pause", "-platforms", "windows/amd64"}, `unsupported platform "windows/amd64": want linux/amd64 or linux/arm64`, true},
		{"SOURCE_DATE_EPOCH is a date, not seconds", []string{"build", "-images", "pause", "-source-date-epoch", "2025-12-01"}, `SOURCE_DATE_EPOCH "2025-12-01" is not a count of seconds`, true},
		{"a stray argument", []string{"build", "pause"}, `build: unexpected argument "pause"`, true},
		{"an unknown flag", []string{"build", "-arch", "arm64"}, "build: flag provided but not defined: -arch", true},
		{"the registry is no registry name", []string{"build", "-images", "pause", "-registry", "Not A Registry"}, `registry "Not A Registry" and tag "0.1.0" do not make an image reference`, false},
		{"the tag has a space", []string{"build", "-images", "pause", "-tag", "1 0"}, `tag "1 0" do not make an image reference`, false},
		{"the core's CA bundle is missing", []string{"build", "-images", "core", "-ca-certificates", "/nonexistent/ca.crt"}, "the core image needs a CA bundle for outbound TLS", false},
		{"the CA bundle holds no certificate", []string{"build", "-images", "core", "-ca-certificates", "main.go"}, "CA bundle main.go holds no PEM certificate", false},
		{"push without a registry", []string{"push"}, "-registry is required", true},
		{"push before any build", []string{"push", "-registry", "127.0.0.1:1/team"}, "run make images first", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "images")
			args := append([]string{tc.args[0], "-out", out}, tc.args[1:]...)
			if tc.args[0] == "build" {
				args = append([]string{"build", "-root", "../..", "-out", out}, tc.args[1:]...)
			}
			var stdout bytes.Buffer
			err := run(context.Background(), args, &stdout)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("images %s: %v, want an error containing %q", strings.Join(tc.args, " "), err, tc.want)
			}
			var usage usageError
			if errors.As(err, &usage) != tc.usage {
				t.Errorf("%v counts as a usage error: %v, want %v", err, !tc.usage, tc.usage)
			}
			if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the output folder exists after a refused command: %v", err)
			}
			if stdout.Len() != 0 {
				t.Errorf("printed %q", stdout.String())
			}
		})
	}

	t.Run("an unknown command", func(t *testing.T) {
		err := run(context.Background(), []string{"load"}, io.Discard)
		var usage usageError
		if !errors.As(err, &usage) || !strings.Contains(err.Error(), `unknown command "load": want build or push`) {
			t.Fatalf("images load: %v, want a usage error naming the commands", err)
		}
	})
}

func TestTheCoreImageCarriesTheCABundle(t *testing.T) {
	core := specs[1]
	if core.Name != "core" || !core.CACerts {
		t.Fatalf("specs[1] is %+v, want the core with CA certificates", core)
	}
	certs := []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	epoch := time.Unix(1764547200, 0).UTC()
	for _, s := range specs {
		t.Run(s.Name, func(t *testing.T) {
			img, err := image(s, v1.Platform{OS: "linux", Architecture: "arm64"}, []byte("\x7fELF binary"), certs, epoch, nil)
			if err != nil {
				t.Fatal(err)
			}
			ordered := layerEntries(t, img)
			entries := byName(ordered)
			var names []string
			for _, e := range ordered {
				names = append(names, e.Name)
			}
			want := "etc/ etc/group etc/passwd " + s.Binary
			if s.CACerts {
				want = "etc/ etc/group etc/passwd etc/ssl/ etc/ssl/certs/ etc/ssl/certs/ca-certificates.crt " + s.Binary
				if !bytes.Equal(entries[caBundle].data, certs) {
					t.Errorf("the bundle in the image is %q, want the host's", entries[caBundle].data)
				}
			}
			if got := strings.Join(names, " "); got != want {
				t.Errorf("layer holds %q, want %q", got, want)
			}
		})
	}
}

type entry struct {
	*tar.Header
	data []byte
}

func byName(entries []entry) map[string]entry {
	m := map[string]entry{}
	for _, e := range entries {
		m[e.Name] = e
	}
	return m
}

// layerEntries reads the image's single layer and returns its entries in order.
func layerEntries(t *testing.T, img v1.Image) []entry {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("image has %d layers, want 1", len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	var out []entry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, entry{h, b})
	}
}

// requireBasicAuth answers 401 with a Basic challenge unless the request carries user:pass.
func requireBasicAuth(user, pass string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != user || p != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// A binary in an image reports the image's tag as its version, so the manager names the
// sidecar image of its own release.
func TestBinariesAreStampedWithTheImageTag(t *testing.T) {
	bin, err := compile(t.Context(), "../..", t.TempDir(), spec{Package: "./hack/images/testdata/printversion", Binary: "printversion"}, runtime.GOARCH, "9.9.9-test")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "printversion")
	if err := os.WriteFile(path, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(path).Output()
	if err != nil || string(out) != "9.9.9-test" {
		t.Fatalf("the stamped binary says %q (%v), want 9.9.9-test", out, err)
	}
}
