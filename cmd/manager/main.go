// Command twofold-manager runs Twofold's controllers (AuthTenant, MFAPolicy) and the pod
// injection webhook. It finds the auth core by URL and authenticates to its admin API with a
// key read from a file (a mounted Secret) or the environment.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/open-policy-agent/cert-controller/pkg/rotator"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	authv1alpha1 "github.com/twofold-dev/twofold/api/v1alpha1"
	"github.com/twofold-dev/twofold/controllers"
	"github.com/twofold-dev/twofold/core/adminclient"
	"github.com/twofold-dev/twofold/sidecar/inject"
)

func main() {
	var o options
	var excluded string
	flag.StringVar(&o.coreURL, "core-url", envOr("TWOFOLD_CORE_URL", "http://twofold-core:3567"), "Base URL of the auth core's admin API (env TWOFOLD_CORE_URL).")
	flag.StringVar(&o.adminKeyFile, "admin-key-file", os.Getenv("TWOFOLD_ADMIN_KEY_FILE"), "File holding the core's admin key, re-read on every call (env TWOFOLD_ADMIN_KEY_FILE); else env TWOFOLD_ADMIN_KEY.")
	flag.StringVar(&o.metricsAddr, "metrics-bind-address", ":8080", "Address of the Prometheus metrics endpoint; 0 turns it off.")
	flag.StringVar(&o.probeAddr, "health-probe-bind-address", ":8081", "Address of /healthz and /readyz.")
	flag.BoolVar(&o.leaderElect, "leader-elect", true, "Elect a leader so that only one replica reconciles at a time.")
	flag.StringVar(&o.leaderElectionNamespace, "leader-election-namespace", "", "Namespace of the leader-election Lease; defaults to the pod's namespace.")
	flag.DurationVar(&o.resync, "resync-period", 30*time.Second, "How often a synced tenant is compared with the core, to correct drift.")
	flag.IntVar(&o.webhookPort, "webhook-port", 9443, "Port of the pod injection webhooks; 0 turns them off.")
	flag.StringVar(&o.certDir, "webhook-cert-dir", "", "Folder with the webhook's tls.crt and tls.key (default: controller-runtime's).")
	flag.StringVar(&o.sidecarImage, "sidecar-image", envOr("TWOFOLD_SIDECAR_IMAGE", "ghcr.io/twofold-dev/twofold-sidecar:latest"), "Image of the injected proxy (env TWOFOLD_SIDECAR_IMAGE).")
	flag.StringVar(&o.sidecarCoreURL, "sidecar-core-url", os.Getenv("TWOFOLD_SIDECAR_CORE_URL"), "The core's URL as injected proxies reach it (env TWOFOLD_SIDECAR_CORE_URL); defaults to --core-url.")
	flag.StringVar(&o.certManagement, "webhook-cert-management", "self", "Who provides the webhook's serving certificate: self (the manager creates and rotates it, and patches the webhook configurations' caBundle) or external (cert-manager or another tool mounts it into --webhook-cert-dir).")
	flag.StringVar(&o.certSecret, "webhook-cert-secret", "twofold-webhook-cert", "Secret, in the manager's namespace, holding the self-managed webhook certificate.")
	flag.StringVar(&o.webhookService, "webhook-service", "twofold-webhook", "Service, in the manager's namespace, in front of the webhook server (the certificate's DNS name).")
	flag.StringVar(&excluded, "excluded-namespaces", "kube-system", "Comma-separated namespaces never injected; the manager's own namespace is added.")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	o.excludedNamespaces = splitList(excluded)
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))

	if err := run(ctrl.SetupSignalHandler(), o); err != nil {
		ctrl.Log.WithName("setup").Error(err, "Manager stopped")
		os.Exit(1)
	}
}

type options struct {
	coreURL, adminKeyFile, metricsAddr, probeAddr string
	leaderElect                                   bool
	leaderElectionNamespace                       string
	resync                                        time.Duration
	webhookPort                                   int
	certDir, sidecarImage, sidecarCoreURL         string
	excludedNamespaces                            []string
	certManagement, certSecret, webhookService    string
}

func run(ctx context.Context, o options) error {
	key, err := adminKeySource(o.adminKeyFile)
	if err != nil {
		return err
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := authv1alpha1.AddToScheme(scheme); err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme:                  scheme,
		WebhookServer:           webhook.NewServer(webhook.Options{Port: o.webhookPort, CertDir: o.certDir}),
		Metrics:                 metricsserver.Options{BindAddress: o.metricsAddr},
		HealthProbeBindAddress:  o.probeAddr,
		LeaderElection:          o.leaderElect,
		LeaderElectionID:        "manager.auth.twofold.dev",
		LeaderElectionNamespace: o.leaderElectionNamespace,
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	if err := controllers.Setup(ctx, mgr, controllers.Options{
		Core:         adminclient.New(o.coreURL, key, nil),
		ResyncPeriod: o.resync,
	}); err != nil {
		return err
	}
	if o.webhookPort != 0 {
		if err := setupWebhooks(mgr, scheme, o); err != nil {
			return err
		}
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	ctrl.Log.WithName("setup").Info("Starting manager", "coreURL", o.coreURL, "leaderElection", o.leaderElect)
	return mgr.Start(ctx)
}

// adminKeySource returns a function yielding the admin key: from the file when one is given
// (re-read each time, so a rotated Secret takes effect), else from TWOFOLD_ADMIN_KEY.
func adminKeySource(file string) (func() (string, error), error) {
	if file != "" {
		read := func() (string, error) {
			b, err := os.ReadFile(file)
			if err != nil {
				return "", err
			}
			k := strings.TrimSpace(string(b))
			if k == "" {
				return "", fmt.Errorf("admin key file %s is empty", file)
			}
			return k, nil
		}
		if _, err := read(); err != nil {
			return nil, fmt.Errorf("reading the admin key: %w", err)
		}
		return read, nil
	}
	k := strings.TrimSpace(os.Getenv("TWOFOLD_ADMIN_KEY"))
	if k == "" {
		return nil, errors.New("no admin key: set --admin-key-file (or TWOFOLD_ADMIN_KEY_FILE) to a file holding the core's admin key, or TWOFOLD_ADMIN_KEY")
	}
	return func() (string, error) { return k, nil }, nil
}

// Webhook configurations whose caBundle the self-managed certificate rotator keeps current;
// the names match config/webhook/manifests.yaml and the Helm chart.
const (
	mutatingWebhookName   = "twofold-inject"
	validatingWebhookName = "twofold-check"
)

// The self-managed certificate lives in a Secret of the manager's namespace, and the rotator
// writes the CA into the two webhook configurations.
// +kubebuilder:rbac:groups="",namespace=twofold-system,resources=secrets,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=mutatingwebhookconfigurations;validatingwebhookconfigurations,verbs=get;list;watch;update;patch

// setupWebhooks serves the pod webhooks. With self-managed certificates it first has the
// rotator create the CA and serving certificate and inject the caBundle, and registers the
// webhooks (which starts the webhook server) only once the certificate is in place.
func setupWebhooks(mgr ctrl.Manager, scheme *runtime.Scheme, o options) error {
	cfg := inject.DefaultConfig()
	cfg.Image = o.sidecarImage
	cfg.CoreURL = o.sidecarCoreURL
	if cfg.CoreURL == "" {
		cfg.CoreURL = o.coreURL
	}
	ns := ownNamespace()
	cfg.ExcludedNamespaces = append(o.excludedNamespaces, ns)
	register := func() { inject.Register(mgr.GetWebhookServer(), scheme, cfg) }

	switch o.certManagement {
	case "external":
		register()
		return nil
	case "self":
	default:
		return fmt.Errorf("--webhook-cert-management=%q: want self or external", o.certManagement)
	}
	certDir := o.certDir
	if certDir == "" {
		certDir = filepath.Join(os.TempDir(), "k8s-webhook-server", "serving-certs")
	}
	ready := make(chan struct{})
	if err := rotator.AddRotator(mgr, &rotator.CertRotator{
		SecretKey:      types.NamespacedName{Namespace: ns, Name: o.certSecret},
		CertDir:        certDir,
		CAName:         "twofold-webhook-ca",
		CAOrganization: "twofold",
		DNSName:        fmt.Sprintf("%s.%s.svc", o.webhookService, ns),
		ExtraDNSNames:  []string{o.webhookService, fmt.Sprintf("%s.%s", o.webhookService, ns), fmt.Sprintf("%s.%s.svc.cluster.local", o.webhookService, ns)},
		IsReady:        ready,
		Webhooks: []rotator.WebhookInfo{
			{Name: mutatingWebhookName, Type: rotator.Mutating},
			{Name: validatingWebhookName, Type: rotator.Validating},
		},
		// Every replica serves webhooks, so every replica needs the certificate files.
		RequireLeaderElection: false,
	}); err != nil {
		return fmt.Errorf("setting up the webhook certificate rotator: %w", err)
	}
	go func() {
		<-ready
		ctrl.Log.WithName("setup").Info("Webhook certificate ready; serving the pod webhooks", "secret", o.certSecret)
		register()
	}()
	return nil
}

// ownNamespace is the manager's namespace (from the service account mount), or
// twofold-system outside a cluster.
func ownNamespace() string {
	if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil {
		if ns := strings.TrimSpace(string(b)); ns != "" {
			return ns
		}
	}
	return "twofold-system"
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
