package proxy

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
)

// An upgraded connection (WebSocket) is checked once, at the upgrade; after that bytes flow
// both ways without requests to check. So the proxy keeps every tunnel it opened with the
// session that opened it, and after each enforcement-feed poll closes the tunnels whose
// access token has expired or whose session the feed lists as revoked. A tunnel therefore
// lives at most until its token's exp (plus one poll interval); the client reconnects with
// the refreshed token.

// tunnels tracks the upgraded connections in flight. Only upgrade requests touch it.
type tunnels struct {
	mu sync.Mutex
	m  map[*tunnel]struct{}
}

// tunnel is one upgraded connection: cancel ends it (httputil.ReverseProxy closes both
// sides when the request's context is done).
type tunnel struct {
	sess   *session
	path   string
	cancel context.CancelFunc
}

func (ts *tunnels) add(t *tunnel) {
	ts.mu.Lock()
	if ts.m == nil {
		ts.m = make(map[*tunnel]struct{})
	}
	ts.m[t] = struct{}{}
	ts.mu.Unlock()
}

func (ts *tunnels) remove(t *tunnel) {
	ts.mu.Lock()
	delete(ts.m, t)
	ts.mu.Unlock()
}

// count returns how many tunnels are open.
func (ts *tunnels) count() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.m)
}

// isUpgrade reports whether r asks to switch protocols (Connection: Upgrade with an Upgrade
// header). The map lookup is all it costs a plain request.
func isUpgrade(r *http.Request) bool {
	if len(r.Header["Upgrade"]) == 0 {
		return false
	}
	for _, v := range r.Header["Connection"] {
		for v != "" {
			var tok string
			tok, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(strings.TrimSpace(tok), "upgrade") {
				return true
			}
		}
	}
	return false
}

// serveUpgrade forwards an allowed upgrade request and keeps the tunnel registered while it
// is open. (net/http clears the server's read and write deadlines when ReverseProxy hijacks
// the connection, so -read-timeout does not cut tunnels; the session's end does.)
func (p *Proxy) serveUpgrade(w http.ResponseWriter, r *http.Request, s *session) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	t := &tunnel{sess: s, path: r.URL.Path, cancel: cancel}
	p.tunnels.add(t)
	defer p.tunnels.remove(t)
	p.app.ServeHTTP(w, r.WithContext(ctx))
}

// closeEndedTunnels closes the tunnels whose token expired or whose session the current
// feed lists as revoked. Refresh calls it after every poll, even a failed one: expiry needs
// no core.
func (p *Proxy) closeEndedTunnels() {
	pol := p.feed.load()
	now := p.now().Unix()
	p.tunnels.mu.Lock()
	var ended []*tunnel
	var reasons []string
	for t := range p.tunnels.m {
		switch {
		case now >= t.sess.exp:
			ended, reasons = append(ended, t), append(reasons, ErrExpired.Error())
		case pol != nil && pol.isRevoked(t.sess):
			ended, reasons = append(ended, t), append(reasons, ErrRevoked.Error())
		}
	}
	for _, t := range ended {
		delete(p.tunnels.m, t)
	}
	p.tunnels.mu.Unlock()
	for i, t := range ended {
		t.cancel()
		p.log.LogAttrs(context.Background(), slog.LevelInfo, "Closed upgraded connection",
			slog.String("reason", reasons[i]), slog.String("path", truncate(t.path, 200)),
			slog.String("tenant", p.tenant), slog.String("session", t.sess.handle), slog.String("user", t.sess.userID))
	}
}
