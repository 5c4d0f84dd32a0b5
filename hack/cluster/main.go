// Command cluster-kit does the parts of hack/cluster/up.sh that bash does badly: it writes the
// throw-away cluster's certificates and kubeconfigs, and turns static binaries into container
// images (tarballs that `ctr images import` loads), since there is no registry to pull from.
//
//	cluster-kit pki -dir DIR -server URL -node NAME -ips IP,IP,...
//	cluster-kit image -ref REF -binary FILE -out TAR [-user UID] [ARG...]
//	cluster-kit image-ref TAR
package main

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

const usage = `usage:
  cluster-kit pki -dir DIR -server URL -node NAME -ips IP,IP,...
  cluster-kit image -ref REF -binary FILE -out TAR [-user UID] [ARG...]
  cluster-kit image-ref TAR`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "pki":
		err = runPKI(os.Args[2:])
	case "image":
		err = runImage(os.Args[2:])
	case "image-ref":
		err = runImageRef(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q\n%s", os.Args[1], usage)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "cluster-kit %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// runPKI writes a CA, the certificates the components present to each other, the service
// account signing key and kubeconfigs for the admin (everything but the kubelet) and the node.
// Files that exist are kept, so a second up.sh on the same folder reuses them.
func runPKI(args []string) error {
	fl := flag.NewFlagSet("pki", flag.ContinueOnError)
	dir := fl.String("dir", "", "folder for the certificates and kubeconfigs")
	server := fl.String("server", "", "the API server's URL, for the kubeconfigs")
	node := fl.String("node", "", "the node's name")
	ipList := fl.String("ips", "", "comma-separated IP addresses the API server's certificate names")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *dir == "" || *server == "" || *node == "" || *ipList == "" {
		return errors.New("-dir, -server, -node and -ips are all required")
	}
	if u, err := url.Parse(*server); err != nil || u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("-server %q is not an https URL", *server)
	}
	var ips []net.IP
	for _, s := range strings.Split(*ipList, ",") {
		ip := net.ParseIP(strings.TrimSpace(s))
		if ip == nil {
			return fmt.Errorf("-ips: %q is not an IP address", s)
		}
		ips = append(ips, ip)
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		return err
	}
	p := pki{dir: *dir}
	ca, caKey, err := p.ca()
	if err != nil {
		return err
	}
	certs := []struct {
		name string
		tmpl x509.Certificate
	}{
		{"apiserver", x509.Certificate{
			Subject:     pkix.Name{CommonName: "kube-apiserver"},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			IPAddresses: ips,
			DNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
				"kubernetes.default.svc.cluster.local"},
		}},
		{"apiserver-kubelet-client", x509.Certificate{
			Subject:     pkix.Name{CommonName: "kube-apiserver-kubelet-client", Organization: []string{"system:masters"}},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}},
		{"admin", x509.Certificate{
			Subject:     pkix.Name{CommonName: "cluster-admin", Organization: []string{"system:masters"}},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}},
		{"kubelet", x509.Certificate{
			Subject:     pkix.Name{CommonName: "system:node:" + *node, Organization: []string{"system:nodes"}},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}},
	}
	for _, c := range certs {
		if err := p.leaf(c.name, c.tmpl, ca, caKey); err != nil {
			return err
		}
	}
	if err := p.serviceAccountKey(); err != nil {
		return err
	}
	for _, kc := range []struct{ file, cert, user string }{
		{"admin.kubeconfig", "admin", "cluster-admin"},
		{"kubelet.kubeconfig", "kubelet", "system:node:" + *node},
	} {
		if err := p.kubeconfig(kc.file, kc.cert, kc.user, *server); err != nil {
			return err
		}
	}
	return nil
}

type pki struct{ dir string }

func (p pki) path(name string) string { return filepath.Join(p.dir, name) }

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func (p pki) ca() (*x509.Certificate, crypto.Signer, error) {
	if !exists(p.path("ca.crt")) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		tmpl := x509.Certificate{
			Subject:               pkix.Name{CommonName: "twofold-test-cluster-ca"},
			KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
			BasicConstraintsValid: true,
			IsCA:                  true,
		}
		if err := p.write("ca", &tmpl, &tmpl, key, key); err != nil {
			return nil, nil, err
		}
	}
	cert, err := readCert(p.path("ca.crt"))
	if err != nil {
		return nil, nil, err
	}
	key, err := readKey(p.path("ca.key"))
	if err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

func (p pki) leaf(name string, tmpl x509.Certificate, ca *x509.Certificate, caKey crypto.Signer) error {
	if exists(p.path(name + ".crt")) {
		return nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	return p.write(name, &tmpl, ca, key, caKey)
}

// write signs tmpl with parentKey and writes NAME.crt and NAME.key.
func (p pki) write(name string, tmpl, parent *x509.Certificate, key *ecdsa.PrivateKey, parentKey crypto.Signer) error {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return err
	}
	tmpl.SerialNumber = serial
	// A little in the past, so clocks a second apart agree it is valid.
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(365 * 24 * time.Hour)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		return fmt.Errorf("signing %s: %w", name, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := writePEM(p.path(name+".key"), "PRIVATE KEY", keyDER, 0o600); err != nil {
		return err
	}
	return writePEM(p.path(name+".crt"), "CERTIFICATE", der, 0o644)
}

// serviceAccountKey writes the RSA key pair the API server signs service account tokens with.
func (p pki) serviceAccountKey() error {
	if exists(p.path("sa.key")) {
		return nil
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	if err := writePEM(p.path("sa.pub"), "PUBLIC KEY", pub, 0o644); err != nil {
		return err
	}
	return writePEM(p.path("sa.key"), "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key), 0o600)
}

func (p pki) kubeconfig(file, cert, user, server string) error {
	read := func(name string) (string, error) {
		b, err := os.ReadFile(p.path(name))
		return base64.StdEncoding.EncodeToString(b), err
	}
	ca, err := read("ca.crt")
	if err != nil {
		return err
	}
	crt, err := read(cert + ".crt")
	if err != nil {
		return err
	}
	key, err := read(cert + ".key")
	if err != nil {
		return err
	}
	body := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: twofold
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: %s
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: twofold
  context:
    cluster: twofold
    user: %s
current-context: twofold
`, server, ca, user, crt, key, user)
	return os.WriteFile(p.path(file), []byte(body), 0o600)
}

func writePEM(path, typ string, der []byte, mode fs.FileMode) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode)
}

func readCert(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("%s holds no PEM block", path)
	}
	return x509.ParseCertificate(block.Bytes)
}

func readKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("%s holds no PEM block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s: %T cannot sign", path, k)
	}
	return s, nil
}

// runImage writes an image holding one static binary at /NAME (its entrypoint, followed by
// ARGs) on an empty base, as a tarball `ctr images import` accepts.
func runImage(args []string) error {
	fl := flag.NewFlagSet("image", flag.ContinueOnError)
	ref := fl.String("ref", "", "the image's name and tag, e.g. twofold.local/pause:1")
	binary := fl.String("binary", "", "a static binary (CGO_ENABLED=0) to put in the image")
	out := fl.String("out", "", "the tarball to write")
	user := fl.String("user", "65532", "the user the entrypoint runs as")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *ref == "" || *binary == "" || *out == "" {
		return errors.New("-ref, -binary and -out are all required")
	}
	tag, err := name.NewTag(*ref, name.StrictValidation)
	if err != nil {
		return fmt.Errorf("-ref %q needs a registry, a repository and a tag: %w", *ref, err)
	}
	bin, err := os.ReadFile(*binary)
	if err != nil {
		return err
	}
	if len(bin) < 4 || string(bin[:4]) != "\x7fELF" {
		return fmt.Errorf("%s is not an ELF binary", *binary)
	}
	img, err := binaryImage(filepath.Base(*binary), bin, *user, fl.Args())
	if err != nil {
		return err
	}
	tmp := *out + ".tmp"
	if err := tarball.WriteToFile(tmp, tag, img); err != nil {
		return err
	}
	return os.Rename(tmp, *out)
}

func binaryImage(base string, bin []byte, user string, args []string) (v1.Image, error) {
	layerTar, err := singleFileTar(base, bin)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS = "linux"
	cf.Architecture = runtime.GOARCH
	cf.Config.Entrypoint = append([]string{"/" + base}, args...)
	cf.Config.User = user
	cf.Config.Env = []string{"PATH=/"}
	return mutate.ConfigFile(img, cf)
}

// runImageRef prints the first name:tag a docker-archive tarball carries.
func runImageRef(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: cluster-kit image-ref TAR")
	}
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(args[0]) })
	if err != nil {
		return fmt.Errorf("%s: %w", args[0], err)
	}
	for _, d := range m {
		if len(d.RepoTags) > 0 {
			fmt.Println(d.RepoTags[0])
			return nil
		}
	}
	return fmt.Errorf("%s names no image (no RepoTags in its manifest.json)", args[0])
}
