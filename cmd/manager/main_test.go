package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/twofold-dev/twofold/test/proc"
	"github.com/twofold-dev/twofold/test/testenv"
)

// eventually retries check until it passes or limit runs out, and returns its last error.
func eventually(limit time.Duration, check func() error) error {
	deadline := time.Now().Add(limit)
	for {
		err := check()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The manager runs here as it does in a pod, against a real API server, with self-managed
// certificates: cert-controller writes the certificate into the Secret only, and the kubelet
// projects the Secret into the mounted certificate folder. This test plays the kubelet's part
// and checks that /readyz fails until the webhook server serves that certificate, since a
// manager that looks ready but serves no webhook makes the fail-closed check refuse every
// opted-in pod ("failed calling webhook check.twofold.dev ... connection refused").
func TestTheManagerIsNotReadyUntilItServesTheWebhooks(t *testing.T) {
	e, err := testenv.Start(testenv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = e.Stop() }()
	logs := &proc.Buffer{}
	ctrl.SetLogger(zap.New(zap.WriteTo(logs)))
	defer func() {
		if t.Failed() {
			t.Logf("manager log:\n%s", logs.String())
		}
	}()
	dir := t.TempDir()
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, e.KubeConfig, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", kubeconfig)
	keyFile := filepath.Join(dir, "admin-key")
	if err := os.WriteFile(keyFile, []byte("the-admin-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	certDir := filepath.Join(dir, "webhook-certs")
	if err := os.Mkdir(certDir, 0o700); err != nil {
		t.Fatal(err)
	}

	// What the chart installs before the manager runs: its namespace, the empty certificate
	// Secret and the webhook configurations whose caBundle the manager writes.
	ctx := context.Background()
	c := e.Client
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "twofold-system"}}); err != nil {
		t.Fatal(err)
	}
	secretKey := types.NamespacedName{Namespace: "twofold-system", Name: "twofold-webhook-cert"}
	if err := c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: secretKey.Namespace, Name: secretKey.Name}}); err != nil {
		t.Fatal(err)
	}
	manifests, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "webhook", "manifests.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifests), 4096)
	for {
		o := &unstructured.Unstructured{}
		if err := dec.Decode(&o.Object); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if len(o.Object) == 0 {
			continue
		}
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}

	webhookAddr := proc.FreeAddr(t)
	var webhookPort int
	if _, err := fmt.Sscanf(webhookAddr[strings.LastIndex(webhookAddr, ":")+1:], "%d", &webhookPort); err != nil {
		t.Fatal(err)
	}
	probeAddr := proc.FreeAddr(t)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- run(runCtx, options{
			leaderElect: true, leaderElectionNamespace: "twofold-system",
			coreURL: "http://127.0.0.1:9", adminKeyFile: keyFile, metricsAddr: "0", probeAddr: probeAddr,
			resync: time.Minute, webhookPort: webhookPort, webhookHost: "127.0.0.1", certDir: certDir,
			sidecarImage: "twofold-sidecar:test", excludedNamespaces: []string{"kube-system"},
			certManagement: "self", certSecret: secretKey.Name, webhookService: "twofold-webhook",
		})
	}()
	var stopOnce sync.Once
	stopManager := func() {
		stopOnce.Do(func() {
			stop()
			if err := <-done; err != nil {
				t.Errorf("the manager stopped with %v", err)
			}
		})
	}
	defer stopManager()
	readyz := func() (int, string, error) {
		resp, err := http.Get("http://" + probeAddr + "/readyz?verbose")
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}

	secret := &corev1.Secret{}
	t.Run("the manager fills the certificate Secret but is not ready while the files are missing", func(t *testing.T) {
		err := eventually(time.Minute, func() error {
			if err := c.Get(ctx, secretKey, secret); err != nil {
				return err
			}
			if len(secret.Data["tls.crt"]) == 0 || len(secret.Data["ca.crt"]) == 0 {
				return errors.New("the Secret holds no certificate yet")
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		code, body, err := readyz()
		if err != nil {
			t.Fatal(err)
		}
		if code == http.StatusOK || !strings.Contains(body, "[-]webhook failed") {
			t.Fatalf("/readyz = %d with the certificate folder empty, want a failure of the webhook check:\n%s", code, body)
		}
		if !strings.Contains(logs.String(), "Not ready: webhook certificate not in place yet: waiting for tls.crt and tls.key of Secret twofold-system/twofold-webhook-cert in "+certDir) {
			t.Error("the log does not say what the manager waits for")
		}
	})

	t.Run("once the kubelet projects the Secret, the manager becomes ready and serves the webhooks with it", func(t *testing.T) {
		for _, f := range []string{"tls.crt", "tls.key"} {
			if err := os.WriteFile(filepath.Join(certDir, f), secret.Data[f], 0o600); err != nil {
				t.Fatal(err)
			}
		}
		err := eventually(2*time.Minute, func() error {
			code, body, err := readyz()
			if err != nil {
				return err
			}
			if code != http.StatusOK {
				return fmt.Errorf("/readyz = %d:\n%s", code, body)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(secret.Data["ca.crt"]) {
			t.Fatal("the Secret's ca.crt holds no certificate")
		}
		// As the API server calls it: through the Service's name, trusting the caBundle.
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "twofold-webhook.twofold-system.svc", MinVersion: tls.VersionTLS12}}}
		pod, _ := json.Marshal(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "apps"}})
		review, _ := json.Marshal(&admissionv1.AdmissionReview{
			TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
			Request: &admissionv1.AdmissionRequest{UID: "1", Operation: admissionv1.Create, Namespace: "apps",
				Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}, Object: runtime.RawExtension{Raw: pod}},
		})
		resp, err := hc.Post("https://"+webhookAddr+"/validate-v1-pod", "application/json", bytes.NewReader(review))
		if err != nil {
			t.Fatalf("calling the check webhook: %v", err)
		}
		defer resp.Body.Close()
		var answer admissionv1.AdmissionReview
		if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil || answer.Response == nil || !answer.Response.Allowed {
			t.Fatalf("the check webhook answered %d %+v (%v), want an allowed review", resp.StatusCode, answer.Response, err)
		}
		v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
		if err := c.Get(ctx, types.NamespacedName{Name: validatingWebhookName}, v); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(v.Webhooks[0].ClientConfig.CABundle, secret.Data["ca.crt"]) {
			t.Error("the check webhook's caBundle is not the Secret's CA")
		}
	})

	// A replica that is stopped (a rollout, a deleted pod) hands its Lease back, so another one
	// takes over at once instead of after the Lease expires.
	t.Run("a manager that stops hands its leader Lease back", func(t *testing.T) {
		lease := &coordinationv1.Lease{}
		key := types.NamespacedName{Namespace: "twofold-system", Name: "manager.auth.twofold.dev"}
		if err := eventually(time.Minute, func() error {
			if err := c.Get(ctx, key, lease); err != nil {
				return err
			}
			if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
				return errors.New("the Lease has no holder yet")
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		stopManager()
		if err := c.Get(ctx, key, lease); err != nil {
			t.Fatal(err)
		}
		if h := lease.Spec.HolderIdentity; h != nil && *h != "" {
			t.Fatalf("the stopped manager still holds the Lease as %q: the next leader waits for it to expire", *h)
		}
	})
}
