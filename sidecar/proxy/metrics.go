package proxy

import (
	"fmt"
	"io"
	"strconv"
	"sync/atomic"
	"time"
)

// Outcome is the decision the sidecar took for one request.
type Outcome int

// Outcomes, as they appear in the metrics and the decision log.
const (
	// OutcomeAllowed forwarded a request with a valid session to the app.
	OutcomeAllowed Outcome = iota
	// OutcomePublic forwarded a request to a public path without looking at a token.
	OutcomePublic
	// OutcomeAuth forwarded a request under /auth/ to the core.
	OutcomeAuth
	// OutcomeUnauthorised refused a request without a usable token (401 unauthorised).
	OutcomeUnauthorised
	// OutcomeTryRefresh refused an expired token (401 try refresh token).
	OutcomeTryRefresh
	// OutcomeRevoked refused a token of a revoked session (401 unauthorised).
	OutcomeRevoked
	// OutcomeInvalidClaim refused a session whose MFA requirement is not met (403).
	OutcomeInvalidClaim
	// OutcomeUnavailable refused a request because the sidecar has no keys or no feed (503).
	OutcomeUnavailable
	numOutcomes
)

var outcomeNames = [numOutcomes]string{
	"allowed", "public", "auth", "unauthorised", "try_refresh", "revoked", "invalid_claim", "unavailable",
}

// String returns the outcome's metric label.
func (o Outcome) String() string {
	if o < 0 || o >= numOutcomes {
		return "unknown"
	}
	return outcomeNames[o]
}

// latencyBuckets are the upper bounds, in seconds, of the decision-latency histogram. The
// decision is microseconds when the token is cached and a millisecond or two when it is not.
var latencyBuckets = [...]float64{5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 5e-2}

// metrics are lock-free counters rendered in the Prometheus text format. They are written
// by hand to keep the binary free of the Prometheus client's dependencies.
type metrics struct {
	decisions [numOutcomes]atomic.Uint64
	buckets   [len(latencyBuckets) + 1]atomic.Uint64 // last one is +Inf
	sumNanos  atomic.Uint64
}

func (m *metrics) observe(o Outcome, d time.Duration) {
	m.decisions[o].Add(1)
	s := d.Seconds()
	i := 0
	for i < len(latencyBuckets) && s > latencyBuckets[i] {
		i++
	}
	m.buckets[i].Add(1)
	m.sumNanos.Add(uint64(d))
}

// gauges are sampled when /metrics is scraped.
type gauges struct {
	keys, cacheEntries                       int
	feedVersion                              int64
	feedLastSuccess                          time.Time
	feedPolls, feedNotModified, feedFailures uint64
	jwksFetches, jwksFailures                uint64
	upgraded                                 int
}

func (m *metrics) write(w io.Writer, g gauges) error {
	var b []byte
	b = append(b, "# HELP twofold_sidecar_decisions_total Requests by the sidecar's decision.\n# TYPE twofold_sidecar_decisions_total counter\n"...)
	for o := range numOutcomes {
		b = fmt.Appendf(b, "twofold_sidecar_decisions_total{outcome=%q} %d\n", o.String(), m.decisions[o].Load())
	}
	b = append(b, "# HELP twofold_sidecar_decision_duration_seconds Time spent deciding a request, upstream time excluded.\n# TYPE twofold_sidecar_decision_duration_seconds histogram\n"...)
	var cum uint64
	for i, le := range latencyBuckets {
		cum += m.buckets[i].Load()
		b = fmt.Appendf(b, "twofold_sidecar_decision_duration_seconds_bucket{le=%q} %d\n", strconv.FormatFloat(le, 'g', -1, 64), cum)
	}
	cum += m.buckets[len(latencyBuckets)].Load()
	b = fmt.Appendf(b, "twofold_sidecar_decision_duration_seconds_bucket{le=\"+Inf\"} %d\n", cum)
	b = fmt.Appendf(b, "twofold_sidecar_decision_duration_seconds_sum %g\n", float64(m.sumNanos.Load())/1e9)
	b = fmt.Appendf(b, "twofold_sidecar_decision_duration_seconds_count %d\n", cum)

	gauge := func(name, help, typ string, v any) {
		b = fmt.Appendf(b, "# HELP %s %s\n# TYPE %s %s\n%s %v\n", name, help, name, typ, name, v)
	}
	gauge("twofold_sidecar_jwks_keys", "Signing keys currently held.", "gauge", g.keys)
	gauge("twofold_sidecar_jwks_fetches_total", "JWKS fetch attempts.", "counter", g.jwksFetches)
	gauge("twofold_sidecar_jwks_fetch_failures_total", "Failed JWKS fetches.", "counter", g.jwksFailures)
	gauge("twofold_sidecar_token_cache_entries", "Verified tokens in the cache.", "gauge", g.cacheEntries)
	gauge("twofold_sidecar_feed_config_version", "configVersion of the enforcement feed in force.", "gauge", g.feedVersion)
	last := 0.0
	if !g.feedLastSuccess.IsZero() {
		last = float64(g.feedLastSuccess.UnixNano()) / 1e9
	}
	gauge("twofold_sidecar_feed_last_success_timestamp_seconds", "Unix time of the last successful feed poll.", "gauge", last)
	gauge("twofold_sidecar_feed_polls_total", "Enforcement feed polls.", "counter", g.feedPolls)
	gauge("twofold_sidecar_feed_not_modified_total", "Feed polls answered 304 Not Modified.", "counter", g.feedNotModified)
	gauge("twofold_sidecar_feed_failures_total", "Failed feed polls.", "counter", g.feedFailures)
	gauge("twofold_sidecar_upgraded_connections", "Upgraded (WebSocket) connections open to the app.", "gauge", g.upgraded)
	_, err := w.Write(b)
	return err
}
