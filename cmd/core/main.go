// Command twofold-core is Twofold's auth core: the public authentication API (SuperTokens
// FDI-compatible) under /auth, the admin API the controllers use, and the enforcement feed
// and JWKS the sidecars poll.
//
// With no flags it serves on :3567 from the SQLite file twofold.db in the working directory;
// a postgres:// or postgresql:// URL as the database serves from PostgreSQL instead, which
// several replicas can share.
//
// `twofold-core prepare-data -dir /data` instead hands the SQLite folder to the user the core
// runs as, for volumes the kubelet does not apply fsGroup to (see datadir.go).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/twofold-dev/twofold/version"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/zapr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"

	"github.com/twofold-dev/twofold/core/audit"
	"github.com/twofold-dev/twofold/core/httpapi"
	"github.com/twofold-dev/twofold/core/keys"
	"github.com/twofold-dev/twofold/core/outbound"
	"github.com/twofold-dev/twofold/core/server"
	"github.com/twofold-dev/twofold/core/store"
	"github.com/twofold-dev/twofold/core/store/postgres"
	"github.com/twofold-dev/twofold/core/store/sqlite"
)

func env(name, fallback string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return fallback
}

type settings struct {
	addr, database, adminKeyFile, issuer string
	// outboundAllow lists the internal destinations tenant configuration may reach.
	outboundAllow string
	// trustedProxies lists the peers whose X-Forwarded-For names the client; empty for the
	// default (loopback and private ranges).
	trustedProxies string
	// signingAlgorithm is what new access-token signing keys sign with.
	signingAlgorithm string
	// auditWebhookURL, when set, receives the audit events in batches (docs/audit.md);
	// auditWebhookTokenFile holds its bearer token.
	auditWebhookURL, auditWebhookTokenFile string
	auditWebhookQueueSize                  int
	// started, when set, is called once the core serves (tests use it instead of polling).
	started func(addr string)
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == prepareDataCommand {
		os.Exit(prepareDataMain(os.Args[2:], os.Stderr))
	}
	var s settings
	flag.StringVar(&s.addr, "addr", env("TWOFOLD_ADDR", ":3567"), "address to listen on (TWOFOLD_ADDR)")
	flag.StringVar(&s.database, "database", env("TWOFOLD_DATABASE", "twofold.db"), "SQLite database file, or a postgres:// URL for PostgreSQL (TWOFOLD_DATABASE)")
	flag.StringVar(&s.adminKeyFile, "admin-key-file", env("TWOFOLD_ADMIN_KEY_FILE", ""), "file holding the admin API key (TWOFOLD_ADMIN_KEY_FILE); TWOFOLD_ADMIN_KEY gives the key itself")
	flag.StringVar(&s.issuer, "issuer", env("TWOFOLD_ISSUER", ""), "access-token issuer, the public URL of /auth (TWOFOLD_ISSUER); http://localhost:<port>/auth when empty")
	flag.StringVar(&s.outboundAllow, "outbound-allow", env("TWOFOLD_OUTBOUND_ALLOW", ""), "internal destinations tenants' OIDC providers, Twilio base URL and SMS webhook may be at, comma-separated: CIDRs, IP addresses, host names, *.suffix patterns (TWOFOLD_OUTBOUND_ALLOW); loopback, private, link-local and cluster-internal destinations are refused otherwise")
	flag.StringVar(&s.trustedProxies, "trusted-proxies", env("TWOFOLD_TRUSTED_PROXIES", ""), "peers whose X-Forwarded-For names the client for the audit log and the per-client sign-in budget, comma-separated CIDRs and addresses (TWOFOLD_TRUSTED_PROXIES); loopback and the private ranges when empty: narrow it to your pod network")
	flag.StringVar(&s.signingAlgorithm, "signing-algorithm", env("TWOFOLD_SIGNING_ALGORITHM", "RS256"), "algorithm access tokens are signed with: RS256, ES256 or EdDSA (TWOFOLD_SIGNING_ALGORITHM); changing it rotates to a key of the new one, published beside the old key before it signs. SuperTokens back-end SDKs that verify tokens themselves need RS256 (docs/supertokens.md)")
	flag.StringVar(&s.auditWebhookURL, "audit-webhook-url", env("TWOFOLD_AUDIT_WEBHOOK_URL", ""), "http(s) URL that receives the audit events as JSON batches, besides the audit log (TWOFOLD_AUDIT_WEBHOOK_URL); off when empty. See docs/audit.md")
	flag.StringVar(&s.auditWebhookTokenFile, "audit-webhook-token-file", env("TWOFOLD_AUDIT_WEBHOOK_TOKEN_FILE", ""), "file holding the bearer token sent to the audit webhook (TWOFOLD_AUDIT_WEBHOOK_TOKEN_FILE); TWOFOLD_AUDIT_WEBHOOK_TOKEN gives the token itself")
	flag.IntVar(&s.auditWebhookQueueSize, "audit-webhook-queue-size", envInt("TWOFOLD_AUDIT_WEBHOOK_QUEUE_SIZE", audit.DefaultQueueSize), "audit events held for the webhook at most; more are dropped and counted, never waited for (TWOFOLD_AUDIT_WEBHOOK_QUEUE_SIZE)")
	flag.Parse()

	zl, err := zap.NewProduction()
	if err != nil {
		fmt.Fprintln(os.Stderr, "twofold-core: logger:", err)
		os.Exit(1)
	}
	log := zapr.NewLogger(zl).WithName("core")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, s, log); err != nil {
		log.Error(err, "Stopped with an error")
		zl.Sync()
		os.Exit(1)
	}
	zl.Sync()
}

func envInt(name string, fallback int) int {
	if v, err := strconv.Atoi(env(name, "")); err == nil {
		return v
	}
	return fallback
}

// auditWebhook starts the audit webhook of the settings, or returns nil when none is set.
func auditWebhook(s settings, log logr.Logger, reg prometheus.Registerer) (*audit.Webhook, error) {
	if s.auditWebhookURL == "" {
		return nil, nil
	}
	token := strings.TrimSpace(os.Getenv("TWOFOLD_AUDIT_WEBHOOK_TOKEN"))
	if s.auditWebhookTokenFile != "" {
		b, err := os.ReadFile(s.auditWebhookTokenFile)
		if err != nil {
			return nil, fmt.Errorf("read audit webhook token file: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	if s.auditWebhookQueueSize < 1 {
		return nil, fmt.Errorf("-audit-webhook-queue-size is %d; give at least 1", s.auditWebhookQueueSize)
	}
	return audit.NewWebhook(audit.WebhookOptions{URL: s.auditWebhookURL, Token: token, QueueSize: s.auditWebhookQueueSize,
		Logger: log.WithName("audit-webhook"), Registry: reg})
}

// adminKey reads the admin key from TWOFOLD_ADMIN_KEY or the key file. The key itself has no
// flag, so it never shows in a process listing.
func adminKey(file string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("read admin key file: %w", err)
		}
		key := strings.TrimSpace(string(b))
		if key == "" {
			return "", fmt.Errorf("admin key file %s is empty", file)
		}
		return key, nil
	}
	return strings.TrimSpace(os.Getenv("TWOFOLD_ADMIN_KEY")), nil
}

func run(ctx context.Context, s settings, log logr.Logger) error {
	key, err := adminKey(s.adminKeyFile)
	if err != nil {
		return err
	}
	allow, err := outbound.ParseAllowList(s.outboundAllow)
	if err != nil {
		return fmt.Errorf("-outbound-allow: %w", err)
	}
	var proxies []netip.Prefix
	if s.trustedProxies != "" {
		if proxies, err = httpapi.ParseTrustedProxies(s.trustedProxies); err != nil {
			return fmt.Errorf("-trusted-proxies: %w", err)
		}
	}
	algorithm, err := keys.ParseAlgorithm(s.signingAlgorithm)
	if err != nil {
		return fmt.Errorf("-signing-algorithm: %w", err)
	}
	isPostgres := strings.HasPrefix(s.database, "postgres://") || strings.HasPrefix(s.database, "postgresql://")
	if strings.Contains(s.database, "://") && !isPostgres {
		return fmt.Errorf("database %q: give a SQLite file path or a postgres:// URL", s.database)
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.addr, err)
	}
	issuer := s.issuer
	if issuer == "" {
		issuer = fmt.Sprintf("http://localhost:%d/auth", ln.Addr().(*net.TCPAddr).Port)
	}
	var st store.Store
	database := s.database
	if isPostgres {
		st, err = postgres.Open(ctx, s.database)
		database = redact(s.database)
	} else if st, err = sqlite.Open(ctx, s.database); err != nil {
		err = explainOpenError(s.database, err)
	}
	if err != nil {
		ln.Close()
		return err
	}
	defer st.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	hook, err := auditWebhook(s, log, reg)
	if err != nil {
		ln.Close()
		return err
	}
	var sink audit.Sink
	if hook != nil {
		sink = hook
		defer func() {
			// Deliver what is queued, within the pod's termination grace period.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := hook.Close(ctx); err != nil {
				log.Error(err, "Stopped the audit webhook before it delivered every event")
			}
		}()
	}
	srv, err := server.New(ctx, server.Options{Store: st, Issuer: issuer, AdminKey: key, Logger: log, Registry: reg,
		Outbound: outbound.Policy{Allow: allow}, TrustedProxies: proxies, Keys: keys.Options{Algorithm: algorithm}, AuditSink: sink})
	if err != nil {
		ln.Close()
		return err
	}
	if key == "" {
		log.Info("Turned the admin API off: no admin key given (set TWOFOLD_ADMIN_KEY or TWOFOLD_ADMIN_KEY_FILE)")
	}
	go srv.Run(ctx)

	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	log.Info("Started the auth core", "version", version.Version, "address", ln.Addr().String(), "database", database, "issuer", issuer, "signingAlgorithm", algorithm, "adminAPI", key != "", "outboundAllow", allow.String(), "auditWebhook", hook != nil)
	fmt.Fprintf(os.Stderr, "twofold-core listening on http://%s (database %s)\n", ln.Addr(), database)
	if s.started != nil {
		s.started(ln.Addr().String())
	}

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("Received a stop signal, shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shut down: %w", err)
	}
	log.Info("Stopped the auth core")
	return nil
}

// redact hides a URL's password, so logs never show it.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(a PostgreSQL URL that does not parse)"
	}
	return u.Redacted()
}
