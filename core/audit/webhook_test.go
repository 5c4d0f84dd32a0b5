package audit_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/twofold-dev/twofold/core/audit"
)

// collector is an httptest server standing for a security team's collector. Each request is
// answered with the next status of statuses (200 when they run out); a request waits for
// hold to be closed when hold is not nil.
type collector struct {
	srv      *httptest.Server
	requests chan request
	mu       sync.Mutex
	statuses []int
	hold     chan struct{}
}

type request struct {
	auth   string
	events []audit.Event
}

func newCollector(t *testing.T, statuses ...int) *collector {
	c := &collector{requests: make(chan request, 100), statuses: statuses}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Events []audit.Event `json:"events"`
		}
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &body); err != nil {
			t.Errorf("the collector got a body that is not {\"events\": [...]}: %v: %s", err, b)
		}
		c.mu.Lock()
		status, hold := http.StatusOK, c.hold
		if len(c.statuses) > 0 {
			status, c.statuses = c.statuses[0], c.statuses[1:]
		}
		c.mu.Unlock()
		c.requests <- request{auth: r.Header.Get("Authorization"), events: body.Events}
		if hold != nil {
			<-hold
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

// holdRequests makes the collector's next requests wait until the returned func is called.
func (c *collector) holdRequests() (release func()) {
	ch := make(chan struct{})
	c.mu.Lock()
	c.hold = ch
	c.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			c.hold = nil
			c.mu.Unlock()
			close(ch)
		})
	}
}

// next returns the collector's next request, failing the test when none comes.
func (c *collector) next(t *testing.T) request {
	t.Helper()
	select {
	case r := <-c.requests:
		return r
	case <-time.After(10 * time.Second): // a guard against a hang, not a wait for time to pass
		t.Fatal("the collector got no request")
		return request{}
	}
}

// timers is the webhook's clock: each wait is handed to the test, which fires it.
type timers struct{ waits chan timer }

type timer struct {
	d    time.Duration
	fire chan time.Time
}

func newTimers() *timers { return &timers{waits: make(chan timer)} }

func (tm *timers) After(d time.Duration) <-chan time.Time {
	c := make(chan time.Time, 1)
	tm.waits <- timer{d: d, fire: c}
	return c
}

func (tm *timers) next(t *testing.T) timer {
	t.Helper()
	select {
	case w := <-tm.waits:
		return w
	case <-time.After(10 * time.Second): // a guard against a hang
		t.Fatal("the webhook never waited")
		return timer{}
	}
}

type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) add(obj string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, obj)
}

func (l *logLines) contains(s string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			return true
		}
	}
	return false
}

type fixture struct {
	hook *audit.Webhook
	reg  *prometheus.Registry
	tm   *timers
	logs *logLines
}

func newWebhook(t *testing.T, c *collector, tune func(*audit.WebhookOptions)) *fixture {
	t.Helper()
	f := &fixture{reg: prometheus.NewRegistry(), tm: newTimers(), logs: &logLines{}}
	o := audit.WebhookOptions{URL: c.srv.URL, Token: "s3cret", Registry: f.reg, After: f.tm.After,
		Logger: funcr.NewJSON(f.logs.add, funcr.Options{})}
	if tune != nil {
		tune(&o)
	}
	hook, err := audit.NewWebhook(o)
	if err != nil {
		t.Fatal(err)
	}
	f.hook = hook
	t.Cleanup(func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // whatever a test left queued is dropped at once
		_ = hook.Close(ctx)
	})
	return f
}

func (f *fixture) dropped(reason string) float64 {
	return metricValue(f.reg, "twofold_core_audit_webhook_dropped_events_total", reason)
}

func (f *fixture) delivered() float64 {
	return metricValue(f.reg, "twofold_core_audit_webhook_delivered_events_total", "")
}

func event(n int) audit.Event {
	return audit.New(time.Date(2026, 11, 30, 10, 0, n, 0, time.UTC), "Signed in", "public", "user-"+string(rune('a'+n)), "success", "192.0.2.1", "", "recipe", "emailpassword")
}

func users(events []audit.Event) []string {
	var out []string
	for _, e := range events {
		out = append(out, e.User)
	}
	return out
}

func TestTheWebhookDeliversEventsInBatchesWithTheBearerToken(t *testing.T) {
	c := newCollector(t)
	f := newWebhook(t, c, nil)
	release := c.holdRequests()
	f.hook.Enqueue(event(0))
	first := c.next(t)
	// While the first request is in flight, three more events queue up: one batch.
	for i := 1; i <= 3; i++ {
		f.hook.Enqueue(event(i))
	}
	release()
	second := c.next(t)

	if first.auth != "Bearer s3cret" {
		t.Errorf("Authorization = %q, want Bearer s3cret", first.auth)
	}
	if got := users(first.events); strings.Join(got, ",") != "user-a" {
		t.Errorf("first batch = %v, want [user-a]", got)
	}
	if got := users(second.events); strings.Join(got, ",") != "user-b,user-c,user-d" {
		t.Errorf("second batch = %v, want the three events queued meanwhile in order", got)
	}
	e := second.events[0]
	if e.Schema != audit.SchemaVersion || e.Type != audit.TypeSignIn || e.Factor != "emailpassword" || e.ID == "" || e.Actor != audit.ActorUser {
		t.Errorf("delivered event = %+v, want schema 1, type sign_in, factor emailpassword, an id and actor user", e)
	}
	if err := f.hook.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := f.delivered(); got != 4 {
		t.Errorf("delivered events = %v, want 4", got)
	}
}

func TestTheWebhookRetries(t *testing.T) {
	tests := []struct {
		name        string
		statuses    []int
		wantWaits   []time.Duration
		wantDropped map[string]float64
		delivered   float64
	}{
		{
			name:      "a batch answered 500 is sent again after the backoff and then delivered",
			statuses:  []int{http.StatusInternalServerError},
			wantWaits: []time.Duration{time.Second},
			delivered: 1,
		},
		{
			name:      "a batch answered 429 and 503 is sent again after a doubled backoff each time",
			statuses:  []int{http.StatusTooManyRequests, http.StatusServiceUnavailable},
			wantWaits: []time.Duration{time.Second, 2 * time.Second},
			delivered: 1,
		},
		{
			name:        "a batch answered 400 is dropped at once: the same batch would be refused again",
			statuses:    []int{http.StatusBadRequest},
			wantDropped: map[string]float64{audit.DropRejected: 1},
		},
		{
			name:        "a batch failing every attempt is dropped after the last one",
			statuses:    []int{500, 500, 500},
			wantWaits:   []time.Duration{time.Second, 2 * time.Second},
			wantDropped: map[string]float64{audit.DropRetriesExhausted: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCollector(t, tt.statuses...)
			f := newWebhook(t, c, func(o *audit.WebhookOptions) { o.MaxAttempts = 3 })
			f.hook.Enqueue(event(0))
			c.next(t)
			for _, want := range tt.wantWaits {
				w := f.tm.next(t)
				if w.d != want {
					t.Errorf("backoff = %v, want %v", w.d, want)
				}
				w.fire <- time.Time{}
				if r := c.next(t); len(r.events) != 1 || r.events[0].User != "user-a" {
					t.Errorf("retry sent %v, want the same event again", users(r.events))
				}
			}
			if err := f.hook.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := f.delivered(); got != tt.delivered {
				t.Errorf("delivered = %v, want %v", got, tt.delivered)
			}
			for _, reason := range []string{audit.DropRejected, audit.DropRetriesExhausted, audit.DropQueueFull, audit.DropShutdown} {
				if got := f.dropped(reason); got != tt.wantDropped[reason] {
					t.Errorf("dropped{reason=%q} = %v, want %v", reason, got, tt.wantDropped[reason])
				}
			}
			if len(tt.wantDropped) > 0 && !f.logs.contains("Dropped audit events the webhook collector did not take") {
				t.Errorf("no log line says events were dropped: %v", f.logs.lines)
			}
		})
	}
}

func TestAFullQueueDropsTheEventWithoutBlockingAndCountsIt(t *testing.T) {
	c := newCollector(t)
	f := newWebhook(t, c, func(o *audit.WebhookOptions) { o.QueueSize = 1 })
	release := c.holdRequests()
	defer release()
	f.hook.Enqueue(event(0))
	c.next(t) // the worker holds event 0 in a request that does not end

	done := make(chan struct{})
	go func() {
		defer close(done)
		f.hook.Enqueue(event(1)) // fills the queue
		f.hook.Enqueue(event(2)) // finds it full
		f.hook.Enqueue(event(3))
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second): // a guard: Enqueue must return at once
		t.Fatal("Enqueue blocked on a full queue")
	}
	if got := f.dropped(audit.DropQueueFull); got != 2 {
		t.Errorf("dropped{reason=queue_full} = %v, want 2", got)
	}
	if !f.logs.contains("Dropped audit events: the webhook queue is full") {
		t.Errorf("no log line says the queue is full: %v", f.logs.lines)
	}
	if got := metricValue(f.reg, "twofold_core_audit_webhook_queue_length", ""); got != 1 {
		t.Errorf("queue length = %v, want 1", got)
	}
	release()
	if r := c.next(t); strings.Join(users(r.events), ",") != "user-b" {
		t.Errorf("after the drop the collector got %v, want the queued event user-b", users(r.events))
	}
	if err := f.hook.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !f.logs.contains("Queued audit events for the webhook again") || !f.logs.contains(`"dropped":2`) {
		t.Errorf("no log line says queueing resumed after 2 drops: %v", f.logs.lines)
	}
}

func TestCloseDeliversWhatIsQueued(t *testing.T) {
	c := newCollector(t)
	f := newWebhook(t, c, func(o *audit.WebhookOptions) { o.BatchSize = 2 })
	release := c.holdRequests()
	f.hook.Enqueue(event(0))
	c.next(t)
	for i := 1; i <= 4; i++ {
		f.hook.Enqueue(event(i))
	}
	closed := make(chan error, 1)
	go func() { closed <- f.hook.Close(context.Background()) }()
	release()
	var got []string
	for len(got) < 4 {
		got = append(got, users(c.next(t).events)...)
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close = %v, want nil once everything is delivered", err)
	}
	if strings.Join(got, ",") != "user-b,user-c,user-d,user-e" {
		t.Errorf("delivered on close = %v, want the four queued events in order", got)
	}
	if d := f.delivered(); d != 5 {
		t.Errorf("delivered = %v, want 5", d)
	}
	f.hook.Enqueue(event(9))
	if got := f.dropped(audit.DropShutdown); got != 1 {
		t.Errorf("an event recorded after Close: dropped{reason=shutdown} = %v, want 1", got)
	}
}

func TestCloseGivesUpWhenItsContextEndsAndCountsWhatIsLeft(t *testing.T) {
	c := newCollector(t, 500, 500, 500)
	f := newWebhook(t, c, func(o *audit.WebhookOptions) { o.BatchSize = 1 })
	f.hook.Enqueue(event(0))
	f.hook.Enqueue(event(1))
	c.next(t)
	f.tm.next(t) // the worker waits to retry event 0

	ctx, cancel := context.WithCancel(context.Background())
	closed := make(chan error, 1)
	go func() { closed <- f.hook.Close(ctx) }()
	cancel()
	if err := <-closed; err != context.Canceled {
		t.Fatalf("Close = %v, want context.Canceled", err)
	}
	if got := f.dropped(audit.DropShutdown); got != 2 {
		t.Errorf("dropped{reason=shutdown} = %v, want 2 (the batch being retried and the queued event)", got)
	}
}

func TestANewWebhookRefusesAURLThatIsNotHTTP(t *testing.T) {
	for _, u := range []string{"", "collector.example", "ftp://collector.example/x", "http://"} {
		if _, err := audit.NewWebhook(audit.WebhookOptions{URL: u}); err == nil {
			t.Errorf("NewWebhook(%q) succeeded, want an error", u)
		}
	}
}
