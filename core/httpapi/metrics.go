package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/twofold-dev/twofold/core/httpkit"
)

// Metrics are the core's Prometheus collectors.
type Metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	signIns  *prometheus.CounterVec
	sessions *prometheus.CounterVec
}

// NewMetrics registers the collectors on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "twofold", Subsystem: "core", Name: "http_requests_total",
			Help: "HTTP requests by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "twofold", Subsystem: "core", Name: "http_request_duration_seconds",
			Help:    "HTTP request latency by route pattern and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route", "method"}),
		signIns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "twofold", Subsystem: "core", Name: "sign_ins_total",
			Help: "Sign-in and sign-up attempts by recipe and outcome.",
		}, []string{"recipe", "outcome"}),
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "twofold", Subsystem: "core", Name: "session_events_total",
			Help: "Session refreshes, sign-outs, revocations and detected token thefts by outcome.",
		}, []string{"event", "outcome"}),
	}
	reg.MustRegister(m.requests, m.latency, m.signIns, m.sessions)
	return m
}

// readinessTimeout bounds the readiness check a scrape makes.
const readinessTimeout = 2 * time.Second

// registerReadiness adds twofold_core_ready, the answer /readyz would give at scrape time, so
// an alert sees a replica that is up but cannot serve (its store does not answer).
func (m *Metrics) registerReadiness(reg prometheus.Registerer, notReady func(context.Context) string) {
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "twofold", Subsystem: "core", Name: "ready",
		Help: "1 when the core is ready to serve (its store answers and signing keys are loaded, as /readyz checks), else 0.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), readinessTimeout)
		defer cancel()
		if notReady(ctx) != "" {
			return 0
		}
		return 1
	}))
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// instrument limits the request body and counts the request under the mux pattern that
// served it (the mux sets r.Pattern on the request it is given).
func (m *Metrics) instrument(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now() // latency is measured, not decided on: the real clock
		r.Body = http.MaxBytesReader(w, r.Body, httpkit.MaxBodyBytes)
		rec := &statusRecorder{ResponseWriter: w}
		mux.ServeHTTP(rec, r)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		m.requests.WithLabelValues(route, r.Method, strconv.Itoa(rec.status)).Inc()
		m.latency.WithLabelValues(route, r.Method).Observe(time.Since(start).Seconds())
	})
}
