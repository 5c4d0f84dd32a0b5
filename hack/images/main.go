// Command images builds Twofold's container images from the Go binaries, without a container
// engine, and pushes them. `make images` and `make push` call it.
//
//	images build [-out bin/images] [-registry ghcr.io/twofold-dev] [-tag 0.1.0] [-images core,sidecar] [-platforms linux/amd64,linux/arm64]
//	images push  [-out bin/images] -registry registry.example.com/team [-insecure]
//
// Every image is one layer on an empty base (go-containerregistry's empty.Image):
//
//   - the static binary (CGO_ENABLED=0, -trimpath, -ldflags "-s -w"), owned by root, mode 0755;
//   - /etc/passwd and /etc/group naming root (0) and nonroot (65532), so that tools and logs
//     show a name for the user the image runs as;
//   - in the core only, the build host's CA bundle at /etc/ssl/certs/ca-certificates.crt: the core
//     calls OIDC providers, Twilio and SMTP servers over TLS and Go reads the system roots there.
//
// There is no shell and nothing else. The config runs the binary as its entrypoint as user
// 65532:65532, needs no writable path (read-only root filesystems work) and carries the labels
// org.opencontainers.image.{source,revision,version,created}.
//
// The build is reproducible: the same source, Go toolchain, SOURCE_DATE_EPOCH and (for the
// core) CA bundle give the same digests. Tar entries are sorted and owned by 0:0 with the
// SOURCE_DATE_EPOCH modification time (the last commit's time when unset), the config's created
// time is that time too, and -buildvcs=false keeps the working tree's state out of the binary.
//
// Output under -out:
//
//   - oci/: one OCI image layout holding every image as a multi-arch index (linux/amd64 and
//     linux/arm64 by default), each named by its reference in the
//     org.opencontainers.image.ref.name annotation of index.json;
//   - <name>.tar: the image for the build host's architecture as a docker-archive tarball tagged
//     with its reference, for `ctr -n k8s.io images import` or `docker load`.
//
// push copies every index of the layout to -registry (same image names and tags), with the
// credentials of the local docker config (authn.DefaultKeychain).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/twofold-dev/twofold/version"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		var usage usageError
		if errors.As(err, &usage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// usageError is a mistake in the command line, as opposed to a failed build or push.
type usageError struct{ error }

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usageError{errors.New("name a command: build or push")}
	}
	switch args[0] {
	case "build":
		opts, err := parseBuildFlags(args[1:])
		if err != nil {
			return usageError{err}
		}
		opts.Progress = os.Stderr
		results, err := build(ctx, opts)
		if err != nil {
			return err
		}
		return printResults(stdout, results)
	case "push":
		opts, err := parsePushFlags(args[1:])
		if err != nil {
			return usageError{err}
		}
		pushed, err := push(ctx, opts)
		for _, p := range pushed {
			fmt.Fprintf(stdout, "Pushed %s@%s\n", p.Ref, p.Digest)
		}
		return err
	default:
		return usageError{fmt.Errorf("unknown command %q: want build or push", args[0])}
	}
}

func parseBuildFlags(args []string) (buildOptions, error) {
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var o buildOptions
	var images, platforms, epoch string
	fs.StringVar(&o.Root, "root", ".", "the module's root folder")
	fs.StringVar(&o.Out, "out", "bin/images", "output folder: oci/ layout and <name>.tar per image")
	fs.StringVar(&o.Registry, "registry", "ghcr.io/twofold-dev", "registry and namespace of the image names")
	fs.StringVar(&o.Tag, "tag", version.Version, "tag of every image, also its version label and the binaries' version")
	fs.StringVar(&images, "images", strings.Join(imageNames(), ","), "images to build, comma-separated")
	fs.StringVar(&platforms, "platforms", "linux/amd64,linux/arm64", "platforms of each index, comma-separated")
	fs.StringVar(&epoch, "source-date-epoch", os.Getenv("SOURCE_DATE_EPOCH"), "file times and created time, Unix seconds (SOURCE_DATE_EPOCH); the last commit's time when empty")
	fs.StringVar(&o.Revision, "revision", "", "org.opencontainers.image.revision; the HEAD commit when empty")
	fs.StringVar(&o.Source, "source", "https://github.com/twofold-dev/twofold", "org.opencontainers.image.source")
	fs.StringVar(&o.CACerts, "ca-certificates", "/etc/ssl/certs/ca-certificates.crt", "CA bundle copied into the core image")
	if err := parseFlags(fs, args); err != nil {
		return o, err
	}
	var err error
	if o.Images, err = parseImages(images); err != nil {
		return o, err
	}
	if o.Platforms, err = parsePlatforms(platforms); err != nil {
		return o, err
	}
	if o.Created, err = parseEpoch(epoch); err != nil {
		return o, err
	}
	return o, nil
}

func parsePushFlags(args []string) (pushOptions, error) {
	fs := flag.NewFlagSet("push", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var o pushOptions
	fs.StringVar(&o.Layout, "out", "bin/images", "the folder `images build` wrote (its oci/ layout is pushed)")
	fs.StringVar(&o.Registry, "registry", "", "registry and namespace to push to, e.g. registry.example.com/team")
	fs.BoolVar(&o.Insecure, "insecure", false, "talk plain HTTP to the registry")
	if err := parseFlags(fs, args); err != nil {
		return o, err
	}
	if o.Registry == "" {
		return o, errors.New("-registry is required, e.g. -registry registry.example.com/team")
	}
	return o, nil
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%s: %w", fs.Name(), err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q (flags only)", fs.Name(), fs.Arg(0))
	}
	return nil
}
