package proxy

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/twofold-dev/twofold/contract"
)

// Refresh polls the enforcement feed once and fetches the JWKS when the sidecar holds no
// keys yet, then closes the upgraded connections whose token expired or whose session was
// revoked. Run calls it every poll interval; tests call it to apply a feed change at once.
func (p *Proxy) Refresh(ctx context.Context) error {
	var errs []error
	if !p.keys.hasKeys() {
		errs = append(errs, p.keys.refresh(ctx))
	}
	errs = append(errs, p.feed.poll(ctx))
	p.closeEndedTunnels()
	err := errors.Join(errs...)
	p.noteCoreHealth(err)
	return err
}

// RefreshKeys fetches the JWKS now, replacing the key set when the answer is usable.
func (p *Proxy) RefreshKeys(ctx context.Context) error {
	return p.keys.refresh(ctx)
}

// Run keeps the keys and the enforcement feed current until ctx is done: it polls the feed
// every PollInterval (If-None-Match makes unchanged polls a 304) and refetches the JWKS every
// JWKSRefreshInterval. Failures keep the last good keys and feed.
func (p *Proxy) Run(ctx context.Context) {
	_ = p.Refresh(ctx)
	poll := time.NewTicker(p.pollInterval)
	defer poll.Stop()
	jwks := time.NewTicker(p.jwksInterval)
	defer jwks.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
			_ = p.Refresh(ctx)
		case <-jwks.C:
			if err := p.keys.refresh(ctx); err != nil && ctx.Err() == nil {
				p.log.Warn("Failed to refresh signing keys", "error", err)
			}
		}
	}
}

// Core reachability states, for logging transitions only.
const (
	coreUnknown int32 = iota
	coreReachable
	coreUnreachable
)

// noteCoreHealth logs when the core becomes unreachable and when it comes back, not on
// every poll.
func (p *Proxy) noteCoreHealth(err error) {
	if err == nil {
		if p.coreState.Swap(coreReachable) != coreReachable {
			p.log.Info("Reached the core", "tenant", p.tenant, "configVersion", p.feed.load().version, "keys", p.keys.count())
		}
		return
	}
	if p.coreState.Swap(coreUnreachable) != coreUnreachable {
		p.log.Warn("Failed to reach the core; enforcing the last keys and feed held", "tenant", p.tenant,
			"haveKeys", p.keys.hasKeys(), "haveFeed", p.feed.load() != nil, "error", err)
	}
}

// Ready returns nil when the sidecar holds signing keys and an enforcement feed, the
// condition for serving protected requests.
func (p *Proxy) Ready() error {
	if !p.keys.hasKeys() {
		return ErrNoKeys
	}
	if p.feed.load() == nil {
		return ErrNoFeed
	}
	return nil
}

// AdminHandler serves /healthz (the process is up), /readyz (keys and feed held) and
// /metrics (Prometheus text format). Serve it on a port apart from the app's traffic.
func (p *Proxy) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := p.Ready(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		g := gauges{
			keys:            p.keys.count(),
			cacheEntries:    p.cache.len(),
			feedPolls:       p.feed.polls.Load(),
			feedNotModified: p.feed.notModified.Load(),
			feedFailures:    p.feed.failures.Load(),
			jwksFetches:     p.keys.fetches.Load(),
			jwksFailures:    p.keys.failures.Load(),
			upgraded:        p.tunnels.count(),
		}
		if pol := p.feed.load(); pol != nil {
			g.feedVersion = pol.version
		}
		if ns := p.feed.lastSuccess.Load(); ns != 0 {
			g.feedLastSuccess = time.Unix(0, ns)
		}
		if err := p.metrics.write(w, g); err != nil {
			p.log.LogAttrs(r.Context(), slog.LevelDebug, "Failed to write metrics", slog.String("error", err.Error()))
		}
	})
	return mux
}

// SessionRevoked reports whether the enforcement feed the proxy holds lists the session with
// this handle as revoked; false before the first feed.
func (p *Proxy) SessionRevoked(handle string) bool {
	pol := p.feed.load()
	return pol != nil && pol.revoked.has(contract.SessionHandleHash(handle))
}
