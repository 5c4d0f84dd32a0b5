// Command twofold-sidecar is Twofold's enforcing proxy: it runs next to an app in its pod,
// sends /auth/ to the auth core and lets every other request reach the app only with a
// valid session whose MFA requirement is met. See docs/sidecar.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twofold-dev/twofold/sidecar/proxy"
)

func main() {
	if err := run(os.Args[1:], os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "twofold-sidecar:", err)
		os.Exit(1)
	}
}

// settings is everything the command line and the environment configure.
type settings struct {
	proxy           proxy.Options
	listen          string
	adminListen     string
	shutdownTimeout time.Duration
	// Timeouts of the app-facing server: a client that dribbles its headers or body, or
	// holds an idle keep-alive connection, is cut off.
	readHeaderTimeout time.Duration
	readTimeout       time.Duration
	idleTimeout       time.Duration
	logLevel          slog.Level
	logFormat         string
}

// defaultListen is where the proxy listens when TWOFOLD_LISTEN is not set. In a pod the
// injector sets TWOFOLD_POD_IP (from the downward API) and TWOFOLD_LISTEN_PORT (the app's
// port): the proxy binds the pod IP with the app's port number while the app keeps
// 127.0.0.1, so the two never collide and only the proxy is reachable from outside.
func defaultListen(getenv func(string) string) string {
	ip, port := getenv("TWOFOLD_POD_IP"), getenv("TWOFOLD_LISTEN_PORT")
	if ip != "" && port != "" {
		return net.JoinHostPort(ip, port)
	}
	return ":8080"
}

// parseSettings reads flags, each defaulting to its TWOFOLD_* environment variable.
func parseSettings(args []string, getenv func(string) string, stderr io.Writer) (settings, error) {
	var s settings
	fs := flag.NewFlagSet("twofold-sidecar", flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	var (
		coreURL      = fs.String("core-url", env("TWOFOLD_CORE_URL", ""), "auth core base URL, e.g. http://twofold-core.twofold-system:3567 (TWOFOLD_CORE_URL)")
		tenant       = fs.String("tenant", env("TWOFOLD_TENANT", proxy.DefaultTenant), "tenant enforced (TWOFOLD_TENANT)")
		upstream     = fs.String("upstream", env("TWOFOLD_UPSTREAM", ""), "app URL, e.g. http://127.0.0.1:8081 (TWOFOLD_UPSTREAM)")
		appPort      = fs.String("app-port", env("TWOFOLD_APP_PORT", ""), "app port on 127.0.0.1, instead of -upstream (TWOFOLD_APP_PORT)")
		issuer       = fs.String("issuer", env("TWOFOLD_ISSUER", ""), "expected token issuer; empty uses the feed's (TWOFOLD_ISSUER)")
		extraTenants = fs.String("extra-auth-tenants", env("TWOFOLD_EXTRA_AUTH_TENANTS", ""), "comma-separated tenants besides -tenant whose /auth/<tenantId>/ sign-in paths are served on this origin (TWOFOLD_EXTRA_AUTH_TENANTS)")
		publicPaths  = fs.String("public-paths", env("TWOFOLD_PUBLIC_PATHS", ""), "comma-separated path prefixes served without a session (TWOFOLD_PUBLIC_PATHS)")
		pollInterval = fs.String("poll-interval", env("TWOFOLD_POLL_INTERVAL", proxy.DefaultPollInterval.String()), "enforcement feed poll interval (TWOFOLD_POLL_INTERVAL)")
		jwksRefresh  = fs.String("jwks-refresh-interval", env("TWOFOLD_JWKS_REFRESH_INTERVAL", proxy.DefaultJWKSRefreshInterval.String()), "periodic JWKS refetch (TWOFOLD_JWKS_REFRESH_INTERVAL)")
		jwksMin      = fs.String("jwks-min-refetch", env("TWOFOLD_JWKS_MIN_REFETCH", proxy.DefaultJWKSMinRefetch.String()), "least time between JWKS fetches caused by unknown kids (TWOFOLD_JWKS_MIN_REFETCH)")
		cacheSize    = fs.String("token-cache-size", env("TWOFOLD_TOKEN_CACHE_SIZE", strconv.Itoa(proxy.DefaultTokenCacheSize)), "verified tokens kept (TWOFOLD_TOKEN_CACHE_SIZE)")
		shutdown     = fs.String("shutdown-timeout", env("TWOFOLD_SHUTDOWN_TIMEOUT", "25s"), "time to drain in-flight requests on SIGTERM (TWOFOLD_SHUTDOWN_TIMEOUT)")
		readHeader   = fs.String("read-header-timeout", env("TWOFOLD_READ_HEADER_TIMEOUT", DefaultReadHeaderTimeout.String()), "time a client has to send its request headers (TWOFOLD_READ_HEADER_TIMEOUT)")
		readTimeout  = fs.String("read-timeout", env("TWOFOLD_READ_TIMEOUT", DefaultReadTimeout.String()), "time a client has to send a whole request, body included (TWOFOLD_READ_TIMEOUT)")
		idleTimeout  = fs.String("idle-timeout", env("TWOFOLD_IDLE_TIMEOUT", DefaultIdleTimeout.String()), "time an idle keep-alive connection is kept (TWOFOLD_IDLE_TIMEOUT)")
		logLevel     = fs.String("log-level", env("TWOFOLD_LOG_LEVEL", "info"), "debug, info, warn or error (TWOFOLD_LOG_LEVEL)")
	)
	fs.StringVar(&s.listen, "listen", env("TWOFOLD_LISTEN", defaultListen(getenv)), "address for app traffic (TWOFOLD_LISTEN; default TWOFOLD_POD_IP:TWOFOLD_LISTEN_PORT when both are set, else :8080)")
	fs.StringVar(&s.adminListen, "admin-listen", env("TWOFOLD_ADMIN_LISTEN", ":9090"), "address for /healthz, /readyz, /metrics (TWOFOLD_ADMIN_LISTEN)")
	skipPreflight := fs.Bool("skip-auth-preflight", env("TWOFOLD_SKIP_AUTH_PREFLIGHT", "") == "true",
		"let CORS preflight requests reach the app without a session (TWOFOLD_SKIP_AUTH_PREFLIGHT=true)")
	fs.StringVar(&s.logFormat, "log-format", env("TWOFOLD_LOG_FORMAT", "json"), "json or text (TWOFOLD_LOG_FORMAT)")
	if err := fs.Parse(args); err != nil {
		return s, err
	}
	if fs.NArg() > 0 {
		return s, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *upstream != "" && *appPort != "" {
		return s, errors.New("set -upstream or -app-port, not both")
	}
	if *appPort != "" {
		port, err := strconv.Atoi(*appPort)
		if err != nil || port < 1 || port > 65535 {
			return s, fmt.Errorf("app port %q: want 1-65535", *appPort)
		}
		*upstream = "http://127.0.0.1:" + strconv.Itoa(port)
	}
	if *upstream == "" {
		return s, errors.New("the app is unknown: set -upstream or -app-port (TWOFOLD_UPSTREAM, TWOFOLD_APP_PORT)")
	}
	if *coreURL == "" {
		return s, errors.New("the core is unknown: set -core-url (TWOFOLD_CORE_URL)")
	}
	durations := []struct {
		name string
		raw  string
		dst  *time.Duration
	}{
		{"poll-interval", *pollInterval, &s.proxy.PollInterval},
		{"jwks-refresh-interval", *jwksRefresh, &s.proxy.JWKSRefreshInterval},
		{"jwks-min-refetch", *jwksMin, &s.proxy.JWKSMinRefetch},
		{"shutdown-timeout", *shutdown, &s.shutdownTimeout},
		{"read-header-timeout", *readHeader, &s.readHeaderTimeout},
		{"read-timeout", *readTimeout, &s.readTimeout},
		{"idle-timeout", *idleTimeout, &s.idleTimeout},
	}
	for _, d := range durations {
		v, err := time.ParseDuration(d.raw)
		if err != nil || v <= 0 {
			return s, fmt.Errorf("%s %q: want a positive duration such as 1s", d.name, d.raw)
		}
		*d.dst = v
	}
	n, err := strconv.Atoi(*cacheSize)
	if err != nil || n < 1 {
		return s, fmt.Errorf("token-cache-size %q: want a positive integer", *cacheSize)
	}
	if err := s.logLevel.UnmarshalText([]byte(*logLevel)); err != nil {
		return s, fmt.Errorf("log-level: %w", err)
	}
	if s.logFormat != "json" && s.logFormat != "text" {
		return s, fmt.Errorf("log-format %q: want json or text", s.logFormat)
	}
	s.proxy.CoreURL = *coreURL
	s.proxy.Tenant = *tenant
	s.proxy.Upstream = *upstream
	s.proxy.Issuer = *issuer
	s.proxy.TokenCacheSize = n
	s.proxy.SkipAuthPreflight = *skipPreflight
	for _, id := range strings.Split(*extraTenants, ",") {
		if id = strings.TrimSpace(id); id != "" {
			s.proxy.ExtraAuthTenants = append(s.proxy.ExtraAuthTenants, id)
		}
	}
	for _, p := range strings.Split(*publicPaths, ",") {
		if p = strings.TrimSpace(p); p != "" {
			s.proxy.PublicPaths = append(s.proxy.PublicPaths, p)
		}
	}
	return s, nil
}

// Defaults of the app-facing server's timeouts.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = time.Minute
	DefaultIdleTimeout       = 2 * time.Minute
)

// appServer is the server for app traffic. It has no write timeout, so streamed responses
// (SSE, long downloads) are not cut. The read timeout does not cut WebSockets either
// (net/http clears deadlines when a connection is hijacked); the proxy closes them when
// their session ends.
func appServer(s settings, h http.Handler, errorLog *log.Logger) *http.Server {
	return &http.Server{
		Addr:              s.listen,
		Handler:           h,
		ReadHeaderTimeout: s.readHeaderTimeout,
		ReadTimeout:       s.readTimeout,
		IdleTimeout:       s.idleTimeout,
		ErrorLog:          errorLog,
	}
}

func run(args []string, getenv func(string) string, stderr io.Writer) error {
	s, err := parseSettings(args, getenv, stderr)
	if err != nil {
		return err
	}
	var handler slog.Handler = slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: s.logLevel})
	if s.logFormat == "text" {
		handler = slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: s.logLevel})
	}
	log := slog.New(handler)
	s.proxy.Logger = log
	p, err := proxy.New(s.proxy)
	if err != nil {
		return fmt.Errorf("configuring the proxy: %w", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	pollCtx, stopPolling := context.WithCancel(context.Background())
	defer stopPolling()
	go p.Run(pollCtx)

	app := appServer(s, p, slog.NewLogLogger(handler, slog.LevelWarn))
	admin := &http.Server{
		Addr:              s.adminListen,
		Handler:           p.AdminHandler(),
		ReadHeaderTimeout: 5 * time.Second,
	}
	errc := make(chan error, 2)
	for _, srv := range []*http.Server{app, admin} {
		go func() {
			if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("serving %s: %w", srv.Addr, err)
			}
		}()
	}
	log.Info("Started sidecar", "listen", s.listen, "admin", s.adminListen, "tenant", s.proxy.Tenant,
		"core", s.proxy.CoreURL, "upstream", s.proxy.Upstream, "publicPaths", s.proxy.PublicPaths)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("Draining in-flight requests", "timeout", s.shutdownTimeout)
	drainCtx, cancel := context.WithTimeout(context.Background(), s.shutdownTimeout)
	defer cancel()
	// The app port stops accepting and drains; the admin port keeps answering probes
	// until the drain is over.
	err = app.Shutdown(drainCtx)
	stopPolling()
	_ = admin.Shutdown(drainCtx)
	if err != nil {
		return fmt.Errorf("draining requests: %w", err)
	}
	log.Info("Stopped sidecar")
	return nil
}
