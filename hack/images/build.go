package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The user every image runs as: distroless' nonroot, which the chart and config/ also set.
const (
	nonrootUID = 65532
	nonrootGID = 65532
	caBundle   = "etc/ssl/certs/ca-certificates.crt"
)

// spec is one image: which Go package becomes its binary.
type spec struct {
	Name    string // the image is <registry>/twofold-<Name>
	Package string // Go package of the binary, relative to the module root
	Binary  string // file name of the binary at the root of the image, its entrypoint
	CACerts bool   // copy the build host's CA bundle in: the binary makes outbound TLS calls
}

var specs = []spec{
	{Name: "manager", Package: "./cmd/manager", Binary: "twofold-manager"},
	{Name: "core", Package: "./cmd/core", Binary: "twofold-core", CACerts: true},
	{Name: "sidecar", Package: "./cmd/sidecar", Binary: "twofold-sidecar"},
	{Name: "sampleapp", Package: "./test/sampleapp", Binary: "sampleapp"},
	{Name: "pause", Package: "./hack/pause", Binary: "pause"},
}

// Architectures an image index may hold: those the chart's users run nodes on.
var architectures = []string{"amd64", "arm64"}

func imageNames() []string {
	var names []string
	for _, s := range specs {
		names = append(names, s.Name)
	}
	return names
}

type buildOptions struct {
	Root      string // the module's root folder
	Out       string // output folder
	Registry  string // e.g. ghcr.io/twofold-dev
	Tag       string
	Images    []spec
	Platforms []v1.Platform
	Created   time.Time // zero: the last commit's time
	Revision  string    // empty: the HEAD commit
	Source    string
	CACerts   string    // path of the CA bundle copied into images with CACerts
	Progress  io.Writer // where each compiled binary is reported; nil reports nothing
}

// result is one built image: its multi-arch index and the image for the build host.
type result struct {
	Spec  spec
	Ref   name.Tag
	Index v1.ImageIndex
	Host  v1.Image // nil when the host's architecture is not among the platforms
}

func parseImages(list string) ([]spec, error) {
	var out []spec
	seen := map[string]bool{}
	for _, n := range strings.Split(list, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		i := -1
		for j, s := range specs {
			if s.Name == n {
				i = j
			}
		}
		if i < 0 {
			return nil, fmt.Errorf("unknown image %q: want some of %s", n, strings.Join(imageNames(), ", "))
		}
		if seen[n] {
			return nil, fmt.Errorf("image %q is named twice", n)
		}
		seen[n] = true
		out = append(out, specs[i])
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no image named: want some of %s", strings.Join(imageNames(), ", "))
	}
	return out, nil
}

func parsePlatforms(list string) ([]v1.Platform, error) {
	var out []v1.Platform
	seen := map[string]bool{}
	for _, p := range strings.Split(list, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		os, arch, ok := strings.Cut(p, "/")
		if !ok || os != "linux" || !contains(architectures, arch) {
			return nil, fmt.Errorf("unsupported platform %q: want linux/%s", p, strings.Join(architectures, " or linux/"))
		}
		if seen[p] {
			return nil, fmt.Errorf("platform %q is named twice", p)
		}
		seen[p] = true
		out = append(out, v1.Platform{OS: os, Architecture: arch})
	}
	if len(out) == 0 {
		return nil, errors.New("no platform named: want linux/amd64, linux/arm64 or both")
	}
	return out, nil
}

func parseEpoch(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	sec, err := strconv.ParseInt(s, 10, 64)
	if err != nil || sec < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q is not a count of seconds since 1970 (e.g. 1764547200)", s)
	}
	return time.Unix(sec, 0).UTC(), nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// build compiles and packs every image, then writes the outputs. It checks everything it can
// before it writes, and replaces the outputs only once every image is built, so a failed build
// leaves the previous outputs as they were.
func build(ctx context.Context, o buildOptions) ([]result, error) {
	if err := resolveFromGit(ctx, &o); err != nil {
		return nil, err
	}
	refs := make([]name.Tag, len(o.Images))
	for i, s := range o.Images {
		ref, err := name.NewTag(fmt.Sprintf("%s/twofold-%s:%s", o.Registry, s.Name, o.Tag))
		if err != nil {
			return nil, fmt.Errorf("registry %q and tag %q do not make an image reference: %w", o.Registry, o.Tag, err)
		}
		refs[i] = ref
	}
	var certs []byte
	for _, s := range o.Images {
		if s.CACerts && certs == nil {
			b, err := os.ReadFile(o.CACerts)
			if err != nil {
				return nil, fmt.Errorf("the %s image needs a CA bundle for outbound TLS: %w (install Debian's ca-certificates or pass -ca-certificates)", s.Name, err)
			}
			if !bytes.Contains(b, []byte("-----BEGIN CERTIFICATE-----")) {
				return nil, fmt.Errorf("CA bundle %s holds no PEM certificate", o.CACerts)
			}
			certs = b
		}
	}
	progress := o.Progress
	if progress == nil {
		progress = io.Discard
	}
	work, err := os.MkdirTemp("", "twofold-images-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)

	labels := map[string]string{
		"org.opencontainers.image.source":   o.Source,
		"org.opencontainers.image.revision": o.Revision,
		"org.opencontainers.image.version":  o.Tag,
		"org.opencontainers.image.created":  o.Created.Format(time.RFC3339),
	}
	var results []result
	for i, s := range o.Images {
		r := result{Spec: s, Ref: refs[i]}
		idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
		for _, p := range o.Platforms {
			start := time.Now()
			bin, err := compile(ctx, o.Root, work, s, p.Architecture, o.Tag)
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(progress, "Compiled %s for linux/%s in %.1fs\n", s.Package, p.Architecture, time.Since(start).Seconds())
			img, err := image(s, p, bin, certs, o.Created, labels)
			if err != nil {
				return nil, fmt.Errorf("packing %s for %s: %w", s.Name, p.Architecture, err)
			}
			idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
				Add:        img,
				Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: p.OS, Architecture: p.Architecture}},
			})
			if p.Architecture == runtime.GOARCH {
				r.Host = img
			}
		}
		r.Index = mutate.Annotations(idx, labels).(v1.ImageIndex)
		results = append(results, r)
	}
	return results, write(o.Out, results)
}

// resolveFromGit fills in the created time and the revision from the last commit.
func resolveFromGit(ctx context.Context, o *buildOptions) error {
	git := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = o.Root
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("git %s in %s: %w (set SOURCE_DATE_EPOCH and -revision outside a git checkout)", strings.Join(args, " "), o.Root, err)
		}
		return strings.TrimSpace(string(out)), nil
	}
	if o.Created.IsZero() {
		s, err := git("log", "-1", "--format=%ct")
		if err != nil {
			return err
		}
		if o.Created, err = parseEpoch(s); err != nil {
			return err
		}
	}
	if o.Revision == "" {
		s, err := git("rev-parse", "HEAD")
		if err != nil {
			return err
		}
		o.Revision = s
	}
	return nil
}

// ldflags strip the symbol tables and stamp the image tag as the binaries' version.
func ldflags(tag string) string {
	return "-s -w -X github.com/twofold-dev/twofold/version.Version=" + tag
}

// compile builds one static binary for linux/arch, stamped with tag, and returns its bytes.
func compile(ctx context.Context, root, work string, s spec, arch, tag string) ([]byte, error) {
	out := filepath.Join(work, s.Binary+"-"+arch)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags="+ldflags(tag), "-o", out, s.Package)
	cmd.Dir = root
	// Fixed microarchitecture levels: the binary must not depend on the build host's defaults.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch, "GOAMD64=v1", "GOARM64=v8.0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go build %s for linux/%s: %w\n%s", s.Package, arch, err, stderr.String())
	}
	return os.ReadFile(out)
}

// image packs one binary into a one-layer OCI image for platform p.
func image(s spec, p v1.Platform, bin, certs []byte, created time.Time, labels map[string]string) (v1.Image, error) {
	files := []file{
		{Name: "etc/", Dir: true},
		{Name: "etc/passwd", Mode: 0o644, Data: []byte(fmt.Sprintf(
			"root:x:0:0:root:/:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/:/sbin/nologin\n", nonrootUID, nonrootGID))},
		{Name: "etc/group", Mode: 0o644, Data: []byte(fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", nonrootGID))},
		{Name: s.Binary, Mode: 0o755, Data: bin},
	}
	if s.CACerts {
		files = append(files,
			file{Name: "etc/ssl/", Dir: true},
			file{Name: "etc/ssl/certs/", Dir: true},
			file{Name: caBundle, Mode: 0o644, Data: certs})
	}
	layerTar, err := tarLayer(files, created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
	if err != nil {
		return nil, err
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History:   v1.History{Created: v1.Time{Time: created}, CreatedBy: "hack/images: " + s.Package + " as /" + s.Binary},
	})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = p.OS, p.Architecture
	cf.Created = v1.Time{Time: created}
	cf.Config = v1.Config{
		Entrypoint: []string{"/" + s.Binary},
		User:       fmt.Sprintf("%d:%d", nonrootUID, nonrootGID),
		WorkingDir: "/",
		Labels:     labels,
	}
	return mutate.ConfigFile(img, cf)
}

// file is one entry of an image's layer.
type file struct {
	Name string
	Dir  bool
	Mode int64
	Data []byte
}

// tarLayer writes the entries sorted by name, owned by 0:0, all with the same time, so the
// same files always give the same bytes.
func tarLayer(files []file, mtime time.Time) ([]byte, error) {
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.Name, ModTime: mtime, Format: tar.FormatUSTAR}
		if f.Dir {
			h.Typeflag, h.Mode = tar.TypeDir, 0o755
		} else {
			h.Typeflag, h.Mode, h.Size = tar.TypeReg, f.Mode, int64(len(f.Data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("layer entry %s: %w", f.Name, err)
		}
		if _, err := tw.Write(f.Data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// write replaces out/oci with a layout holding every result, and writes out/<image>.tar for
// the build host's architecture. Both are written beside their final place and renamed into it.
func write(out string, results []result) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	staging, err := os.MkdirTemp(out, ".oci-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(staging)
	if err := os.Chmod(staging, 0o755); err != nil { // MkdirTemp makes it 0700
		return err
	}
	l, err := layout.Write(staging, mutate.IndexMediaType(empty.Index, types.OCIImageIndex))
	if err != nil {
		return err
	}
	for _, r := range results {
		if err := l.AppendIndex(r.Index, layout.WithAnnotations(map[string]string{
			"org.opencontainers.image.ref.name": r.Ref.String(),
		})); err != nil {
			return fmt.Errorf("writing %s to the OCI layout: %w", r.Ref, err)
		}
	}
	for _, r := range results {
		if r.Host == nil {
			continue
		}
		path := filepath.Join(out, "twofold-"+r.Spec.Name+".tar")
		tmp := path + ".tmp"
		if err := tarball.WriteToFile(tmp, r.Ref, r.Host); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("writing %s: %w", path, err)
		}
		if err := os.Rename(tmp, path); err != nil {
			return err
		}
	}
	final := filepath.Join(out, "oci")
	if err := os.RemoveAll(final); err != nil {
		return err
	}
	return os.Rename(staging, final)
}

// printResults prints each image's reference, index digest and host-architecture sizes.
func printResults(w io.Writer, results []result) error {
	for _, r := range results {
		d, err := r.Index.Digest()
		if err != nil {
			return err
		}
		line := fmt.Sprintf("Built %s@%s", r.Ref, d)
		if r.Host != nil {
			c, u, err := sizes(r.Host)
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" (linux/%s: %.1f MiB compressed, %.1f MiB uncompressed)", runtime.GOARCH, mib(c), mib(u))
		}
		fmt.Fprintln(w, line)
	}
	return nil
}

// sizes gives an image's compressed size (manifest, config and layers as a registry stores
// them) and uncompressed size (its layers unpacked).
func sizes(img v1.Image) (compressed, uncompressed int64, err error) {
	m, err := img.Manifest()
	if err != nil {
		return 0, 0, err
	}
	raw, err := img.RawManifest()
	if err != nil {
		return 0, 0, err
	}
	compressed = int64(len(raw)) + m.Config.Size
	layers, err := img.Layers()
	if err != nil {
		return 0, 0, err
	}
	for _, l := range layers {
		s, err := l.Size()
		if err != nil {
			return 0, 0, err
		}
		compressed += s
		rc, err := l.Uncompressed()
		if err != nil {
			return 0, 0, err
		}
		n, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return 0, 0, err
		}
		uncompressed += n
	}
	return compressed, uncompressed, nil
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }
