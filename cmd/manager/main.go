// Command twofold-manager runs Twofold's controllers (AuthTenant, MFAPolicy) and the pod
// injection webhook. It finds the auth core by URL and authenticates to its admin API with a
// key read from a file (a mounted Secret) or the environment.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/twofold-dev/twofold/version"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
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
	flag.StringVar(&o.webhookHost, "webhook-host", "", "Address the pod injection webhooks listen on; every address when empty.")
	flag.StringVar(&o.certDir, "webhook-cert-dir", "", "Folder with the webhook's tls.crt and tls.key (default: controller-runtime's).")
	flag.StringVar(&o.sidecarImage, "sidecar-image", envOr("TWOFOLD_SIDECAR_IMAGE", "ghcr.io/twofold-dev/twofold-sidecar:"+version.Version), "Image of the injected proxy (env TWOFOLD_SIDECAR_IMAGE).")
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
	webhookHost                                   string
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
		WebhookServer:           webhook.NewServer(webhook.Options{Host: o.webhookHost, Port: o.webhookPort, CertDir: o.certDir}),
		Metrics:                 metricsserver.Options{BindAddress: o.metricsAddr},
		HealthProbeBindAddress:  o.probeAddr,
		LeaderElection:          o.leaderElect,
		LeaderElectionID:        "manager.auth.twofold.dev",
		LeaderElectionNamespace: o.leaderElectionNamespace,
		// Hand the Lease back when stopping, so another replica takes over at once instead of
		// after the Lease expires. Safe because the process exits as soon as the manager stops.
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	if err := controllers.Setup(ctx, mgr, controllers.Options{
		Core:         adminclient.New(o.coreURL, key, nil),
		ResyncPeriod: o.resync,
		// Only AuthTenants in the manager's own namespace may declare the public tenant.
		PublicTenantNamespace: ownNamespace(),
	}); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	if o.webhookPort != 0 {
		serving, err := setupWebhooks(ctx, mgr, scheme, o)
		if err != nil {
			return err
		}
		// Not ready until the webhooks answer: the fail-closed check refuses every opted-in
		// pod while no manager serves it, so a replica that cannot serve must not look ready.
		if err := mgr.AddReadyzCheck("webhook", serving); err != nil {
			return err
		}
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

// Leader election records its Events through the core group's events API (controller-runtime's
// GetEventRecorderFor), the reconcilers through events.k8s.io.
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch

// setupWebhooks serves the pod webhooks once their certificate files are in the certificate
// folder, and returns the readiness check that passes once the webhook server serves them.
// The webhook server cannot start without the files, and the manager stops when it fails.
//
// With self-managed certificates the rotator (cert-controller) creates the CA and serving
// certificate in the Secret and injects the caBundle; it writes no files. The Secret is
// mounted as a volume at the certificate folder, so the kubelet projects the files into it,
// and the rotator signals readiness once they are there and the caBundle is injected. With
// external certificates (cert-manager) the Secret is mounted the same way, and the manager
// waits for the files to appear.
func setupWebhooks(ctx context.Context, mgr ctrl.Manager, scheme *runtime.Scheme, o options) (healthz.Checker, error) {
	cfg := inject.DefaultConfig()
	cfg.Image = o.sidecarImage
	cfg.CoreURL = o.sidecarCoreURL
	if cfg.CoreURL == "" {
		cfg.CoreURL = o.coreURL
	}
	ns := ownNamespace()
	cfg.ExcludedNamespaces = append(o.excludedNamespaces, ns)
	certDir := o.certDir
	if certDir == "" {
		certDir = filepath.Join(os.TempDir(), "k8s-webhook-server", "serving-certs")
	}
	var started atomic.Pointer[healthz.Checker]
	serve := func() {
		ctrl.Log.WithName("setup").Info("Webhook certificate ready; serving the pod webhooks", "secret", o.certSecret, "folder", certDir)
		inject.Register(mgr.GetWebhookServer(), scheme, cfg)
		check := mgr.GetWebhookServer().StartedChecker()
		started.Store(&check)
	}
	waiting := fmt.Sprintf("webhook certificate not in place yet: waiting for tls.crt and tls.key of Secret %s/%s in %s, where the Secret is mounted", ns, o.certSecret, certDir)

	switch o.certManagement {
	case "external":
		go func() {
			if waitForFiles(ctx, time.Second, filepath.Join(certDir, "tls.crt"), filepath.Join(certDir, "tls.key")) == nil {
				serve()
			}
		}()
	case "self":
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
			return nil, fmt.Errorf("setting up the webhook certificate rotator: %w", err)
		}
		go func() {
			select {
			case <-ready:
				serve()
			case <-ctx.Done():
			}
		}()
	default:
		return nil, fmt.Errorf("--webhook-cert-management=%q: want self or external", o.certManagement)
	}
	var once sync.Once
	return func(req *http.Request) error {
		check := started.Load()
		if check == nil {
			// /readyz withholds the reason, so say it once in the log.
			once.Do(func() { ctrl.Log.WithName("setup").Info("Not ready: " + waiting) })
			return errors.New(waiting)
		}
		return (*check)(req)
	}, nil
}

// waitForFiles returns nil once every file exists, checking at each interval, or the
// context's error when it ends first.
func waitForFiles(ctx context.Context, interval time.Duration, files ...string) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		missing := false
		for _, f := range files {
			if _, err := os.Stat(f); err != nil {
				missing = true
				break
			}
		}
		if !missing {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
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
