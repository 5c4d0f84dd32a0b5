package audit

import (
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
)

// Sink receives recorded events. Enqueue must not block: a sink that cannot take an event
// drops it (and counts it).
type Sink interface {
	Enqueue(Event)
}

// authenticationTypes are the event types that are an attempt at a factor: they are counted
// in twofold_core_authentications_total by factor and outcome.
var authenticationTypes = map[string]bool{TypeSignIn: true, TypeFactorAttempt: true}

// Recorder records audit events: it counts them and hands them to the sink.
type Recorder struct {
	sink  Sink
	clock func() time.Time

	events          *prometheus.CounterVec
	authentications *prometheus.CounterVec
	lockouts        *prometheus.CounterVec
}

// NewRecorder returns a Recorder that registers its metrics on reg and hands every event to
// sink when sink is not nil. clock stamps the events; time.Now when nil.
func NewRecorder(reg prometheus.Registerer, sink Sink, clock func() time.Time) *Recorder {
	if clock == nil {
		clock = time.Now
	}
	r := &Recorder{
		sink:  sink,
		clock: clock,
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "twofold", Subsystem: "core", Name: "audit_events_total",
			Help: "Audit events by type and outcome (docs/audit.md).",
		}, []string{"type", "outcome"}),
		authentications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "twofold", Subsystem: "core", Name: "authentications_total",
			Help: "Attempts at a factor (first-factor sign-ins and second-factor entries) by factor and outcome: success, or the reason it was refused.",
		}, []string{"factor", "outcome"}),
		lockouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "twofold", Subsystem: "core", Name: "lockouts_total",
			Help: "Accounts locked after too many failed attempts, by factor.",
		}, []string{"factor"}),
	}
	reg.MustRegister(r.events, r.authentications, r.lockouts)
	// The series that dashboards and alerts divide by exist from the start.
	r.authentications.WithLabelValues("emailpassword", OutcomeSuccess)
	r.lockouts.WithLabelValues("emailpassword")
	return r
}

// Record counts e and hands it to the sink.
func (r *Recorder) Record(e Event) {
	r.events.WithLabelValues(e.Type, e.Outcome).Inc()
	factor := e.Factor
	if factor == "" {
		factor = "unknown"
	}
	if authenticationTypes[e.Type] {
		r.authentications.WithLabelValues(factor, e.Outcome).Inc()
	}
	if e.Type == TypeLockout {
		r.lockouts.WithLabelValues(factor).Inc()
	}
	if r.sink != nil {
		r.sink.Enqueue(e)
	}
}

// Logger returns base (the core's logger named "audit") made to record: every line logged
// through it at Info is also an Event, recorded, and the line gains the event's type, actor,
// id and factor. The line's key/value pairs "tenant", "user", "ip", "outcome" and
// "forwardedFor" are the event's fields of those names, every other pair is a detail.
func (r *Recorder) Logger(base logr.Logger) logr.Logger {
	next := base.GetSink()
	if cd, ok := next.(logr.CallDepthLogSink); ok {
		next = cd.WithCallDepth(1) // this sink's Info is one more frame
	}
	return logr.New(&recordingSink{rec: r, next: next})
}

// recordingSink is the logr.LogSink Logger returns.
type recordingSink struct {
	rec  *Recorder
	next logr.LogSink // nil for a discarding base logger
}

var _ logr.CallDepthLogSink = (*recordingSink)(nil)

// Init does nothing: the base logger's sink was initialised when the base was made.
func (s *recordingSink) Init(logr.RuntimeInfo) {}

// Enabled is true at every level: an event is recorded even when the log line is not written.
func (s *recordingSink) Enabled(int) bool { return true }

func (s *recordingSink) Info(level int, msg string, kv ...any) {
	e := FromLine(s.rec.clock(), msg, kv...)
	s.rec.Record(e)
	if s.next == nil || !s.next.Enabled(level) {
		return
	}
	line := make([]any, 0, len(kv)+8)
	line = append(line, kv...)
	if e.Factor != "" && !hasKey(kv, "factor") {
		line = append(line, "factor", e.Factor)
	}
	line = append(line, "type", e.Type, "actor", e.Actor, "id", e.ID)
	s.next.Info(level, msg, line...)
}

func (s *recordingSink) Error(err error, msg string, kv ...any) {
	if s.next != nil {
		s.next.Error(err, msg, kv...)
	}
}

func (s *recordingSink) WithValues(kv ...any) logr.LogSink {
	c := *s
	if c.next != nil {
		c.next = c.next.WithValues(kv...)
	}
	return &c
}

func (s *recordingSink) WithName(name string) logr.LogSink {
	c := *s
	if c.next != nil {
		c.next = c.next.WithName(name)
	}
	return &c
}

func (s *recordingSink) WithCallDepth(depth int) logr.LogSink {
	c := *s
	if cd, ok := c.next.(logr.CallDepthLogSink); ok {
		c.next = cd.WithCallDepth(depth)
	}
	return &c
}

// FromLine builds the event of an audit log line: msg and its key/value pairs (see Logger).
func FromLine(now time.Time, msg string, kv ...any) Event {
	var tenantID, userID, ip, outcome, fwd string
	rest := make([]any, 0, len(kv))
	for i := 0; i+1 < len(kv); i += 2 {
		v, _ := kv[i+1].(string)
		switch kv[i] {
		case "tenant":
			tenantID = v
		case "user":
			userID = v
		case "ip":
			ip = v
		case "outcome":
			outcome = v
		case "forwardedFor":
			fwd = v
		default:
			rest = append(rest, kv[i], kv[i+1])
		}
	}
	return New(now, msg, tenantID, userID, outcome, ip, fwd, rest...)
}

func hasKey(kv []any, key string) bool {
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i] == key {
			return true
		}
	}
	return false
}
