package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

type pushOptions struct {
	Layout   string // the build's output folder; its oci/ layout is pushed
	Registry string // registry and namespace, e.g. registry.example.com/team
	Insecure bool   // plain HTTP
	// Keychain gives the credentials; authn.DefaultKeychain (the docker config) when nil.
	Keychain authn.Keychain
}

type pushed struct {
	Ref    name.Tag
	Digest v1.Hash
}

// push copies every image index of the layout to the registry under the same image name and
// tag, e.g. ghcr.io/twofold-dev/twofold-core:0.1.0 to <registry>/twofold-core:0.1.0. It checks
// every destination name before it pushes anything.
func push(ctx context.Context, o pushOptions) ([]pushed, error) {
	dir := filepath.Join(o.Layout, "oci")
	if _, err := os.Stat(filepath.Join(dir, "index.json")); err != nil {
		return nil, fmt.Errorf("no images in %s: run make images first (%w)", dir, err)
	}
	l, err := layout.FromPath(dir)
	if err != nil {
		return nil, err
	}
	root, err := l.ImageIndex()
	if err != nil {
		return nil, err
	}
	im, err := root.IndexManifest()
	if err != nil {
		return nil, err
	}
	var nameOpts []name.Option
	if o.Insecure {
		nameOpts = append(nameOpts, name.Insecure)
	}
	type job struct {
		dst   name.Tag
		index v1.ImageIndex
	}
	var jobs []job
	for _, desc := range im.Manifests {
		ann := desc.Annotations["org.opencontainers.image.ref.name"]
		src, err := name.NewTag(ann)
		if err != nil {
			return nil, fmt.Errorf("the layout in %s names an image %q: %w", dir, ann, err)
		}
		dst, err := name.NewTag(o.Registry+"/"+path.Base(src.RepositoryStr())+":"+src.TagStr(), nameOpts...)
		if err != nil {
			return nil, fmt.Errorf("registry %q does not make an image reference: %w", o.Registry, err)
		}
		idx, err := root.ImageIndex(desc.Digest)
		if err != nil {
			return nil, fmt.Errorf("reading %s from %s: %w", src, dir, err)
		}
		jobs = append(jobs, job{dst, idx})
	}
	if len(jobs) == 0 {
		return nil, errors.New("the layout in " + dir + " holds no image: run make images first")
	}
	keychain := o.Keychain
	if keychain == nil {
		keychain = authn.DefaultKeychain
	}
	var done []pushed
	for _, j := range jobs {
		if err := remote.WriteIndex(j.dst, j.index, remote.WithContext(ctx), remote.WithAuthFromKeychain(keychain)); err != nil {
			return done, fmt.Errorf("pushing %s: %w", j.dst, err)
		}
		d, err := j.index.Digest()
		if err != nil {
			return done, err
		}
		done = append(done, pushed{j.dst, d})
	}
	return done, nil
}
