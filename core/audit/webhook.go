package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of WebhookOptions.
const (
	DefaultQueueSize   = 10000
	DefaultBatchSize   = 100
	DefaultMaxAttempts = 5
	DefaultMinBackoff  = time.Second
	DefaultMaxBackoff  = 30 * time.Second
	DefaultTimeout     = 10 * time.Second
)

// Reasons an event is dropped, the reason label of
// twofold_core_audit_webhook_dropped_events_total.
const (
	// DropQueueFull: the queue was full when the event was recorded.
	DropQueueFull = "queue_full"
	// DropRejected: the collector answered a 4xx other than 408 and 429; resending the same
	// batch would not help.
	DropRejected = "rejected"
	// DropRetriesExhausted: every attempt at the batch failed.
	DropRetriesExhausted = "retries_exhausted"
	// DropShutdown: the core stopped before the event could be delivered.
	DropShutdown = "shutdown"
)

// WebhookOptions configure a Webhook. URL is required.
type WebhookOptions struct {
	// URL receives POST requests whose JSON body is {"events": [Event, ...]}.
	URL string
	// Token, when not empty, is sent as Authorization: Bearer <Token>.
	Token string
	// QueueSize bounds the events waiting for delivery; DefaultQueueSize when zero.
	QueueSize int
	// BatchSize bounds the events of one request; DefaultBatchSize when zero.
	BatchSize int
	// MaxAttempts bounds the requests made for one batch; DefaultMaxAttempts when zero.
	MaxAttempts int
	// MinBackoff is the wait after the first failed attempt, doubled after each further one
	// up to MaxBackoff; DefaultMinBackoff and DefaultMaxBackoff when zero.
	MinBackoff, MaxBackoff time.Duration
	// Timeout bounds one request; DefaultTimeout when zero.
	Timeout time.Duration
	// Client sends the requests; a client of its own when nil.
	Client *http.Client
	// After waits between attempts; time.After when nil. Tests control time through it.
	After    func(time.Duration) <-chan time.Time
	Logger   logr.Logger
	Registry prometheus.Registerer
}

// Webhook is a Sink that posts events to an HTTP collector: a bounded queue that Enqueue
// never waits on, one worker that sends what is queued in batches, and retries with
// exponential backoff. Delivery is at least once: a batch whose answer was lost is sent
// again, and receivers deduplicate on Event.ID.
type Webhook struct {
	opts  WebhookOptions
	queue chan Event
	// where is the URL for the logs, its password hidden.
	where string

	mu     sync.RWMutex // guards closed against Enqueue
	closed bool
	stop   chan struct{}
	done   chan struct{}
	// abort ends delivery when Close's context ends.
	abortCtx context.Context
	abort    context.CancelFunc

	dropping       atomic.Bool   // a queue-full drop was logged and delivery has not caught up
	droppedRunning atomic.Uint64 // queue-full drops since that log line

	delivered prometheus.Counter
	dropped   *prometheus.CounterVec
	failures  prometheus.Counter
}

// NewWebhook checks the options and starts the worker; Close stops it.
func NewWebhook(o WebhookOptions) (*Webhook, error) {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("audit webhook URL %q is not an absolute http(s) URL", o.URL)
	}
	if o.QueueSize <= 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(DefaultMaxBackoff, o.MinBackoff)
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Client == nil {
		o.Client = &http.Client{}
	}
	if o.After == nil {
		o.After = time.After
	}
	if o.Logger.GetSink() == nil {
		o.Logger = logr.Discard()
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	w := &Webhook{opts: o, where: u.Redacted(), queue: make(chan Event, o.QueueSize), stop: make(chan struct{}), done: make(chan struct{})}
	w.abortCtx, w.abort = context.WithCancel(context.Background())
	w.delivered = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "twofold", Subsystem: "core", Name: "audit_webhook_delivered_events_total",
		Help: "Audit events the webhook collector accepted.",
	})
	w.dropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "twofold", Subsystem: "core", Name: "audit_webhook_dropped_events_total",
		Help: "Audit events not delivered to the webhook collector, by reason: queue_full, rejected, retries_exhausted, shutdown. They are still in the audit log.",
	}, []string{"reason"})
	w.failures = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "twofold", Subsystem: "core", Name: "audit_webhook_failed_requests_total",
		Help: "Requests to the webhook collector that failed (network error or a status other than 2xx).",
	})
	queued := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "twofold", Subsystem: "core", Name: "audit_webhook_queue_length",
		Help: "Audit events waiting for delivery to the webhook collector.",
	}, func() float64 { return float64(len(w.queue)) })
	for _, r := range []string{DropQueueFull, DropRejected, DropRetriesExhausted, DropShutdown} {
		w.dropped.WithLabelValues(r)
	}
	if err := o.Registry.Register(w.delivered); err != nil {
		return nil, err
	}
	o.Registry.MustRegister(w.dropped, w.failures, queued)
	go w.run()
	return w, nil
}

// Enqueue queues e for delivery, or drops it when the queue is full or the webhook closed.
// It never waits.
func (w *Webhook) Enqueue(e Event) {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		w.dropped.WithLabelValues(DropShutdown).Inc()
		return
	}
	select {
	case w.queue <- e:
	default:
		w.dropped.WithLabelValues(DropQueueFull).Inc()
		w.droppedRunning.Add(1)
		if w.dropping.CompareAndSwap(false, true) {
			w.opts.Logger.Info("Dropped audit events: the webhook queue is full; they are in the audit log only", "queueSize", w.opts.QueueSize, "url", w.where)
		}
	}
}

// Close stops taking events and delivers what is queued, with retries, until ctx ends; what
// is left then is dropped and counted. It returns ctx's error when it gave up.
func (w *Webhook) Close(ctx context.Context) error {
	w.mu.Lock()
	already := w.closed
	w.closed = true
	w.mu.Unlock()
	if !already {
		close(w.stop)
	}
	var err error
	select {
	case <-w.done:
	case <-ctx.Done():
		err = ctx.Err()
		w.abort()
		<-w.done
	}
	w.abort()
	for {
		select {
		case <-w.queue:
			w.dropped.WithLabelValues(DropShutdown).Inc()
		default:
			return err
		}
	}
}

func (w *Webhook) run() {
	defer close(w.done)
	batch := make([]Event, 0, w.opts.BatchSize)
	for {
		select {
		case e := <-w.queue:
			batch = w.fill(append(batch[:0], e))
			w.deliver(batch)
		case <-w.stop:
			for w.abortCtx.Err() == nil {
				if batch = w.fill(batch[:0]); len(batch) == 0 {
					return
				}
				w.deliver(batch)
			}
			return // Close counts what is left in the queue
		}
	}
}

// fill adds the events already queued to batch, up to the batch size, without waiting.
func (w *Webhook) fill(batch []Event) []Event {
	for len(batch) < w.opts.BatchSize {
		select {
		case e := <-w.queue:
			batch = append(batch, e)
		default:
			return batch
		}
	}
	return batch
}

// errRejected is a 4xx answer that a retry would get again.
var errRejected = errors.New("rejected by the collector")

// deliver sends batch, retrying with backoff, and counts the outcome.
func (w *Webhook) deliver(batch []Event) {
	body, err := json.Marshal(map[string][]Event{"events": batch})
	if err != nil { // cannot happen: events are JSON values
		w.drop(batch, DropRejected, err, 0)
		return
	}
	backoff := w.opts.MinBackoff
	for attempt := 1; ; attempt++ {
		if w.abortCtx.Err() != nil {
			w.drop(batch, DropShutdown, w.abortCtx.Err(), attempt-1)
			return
		}
		err := w.post(body)
		if err == nil {
			w.delivered.Add(float64(len(batch)))
			if w.dropping.Swap(false) {
				w.opts.Logger.Info("Queued audit events for the webhook again", "dropped", w.droppedRunning.Swap(0))
			}
			return
		}
		w.failures.Inc()
		switch {
		case errors.Is(err, errRejected):
			w.drop(batch, DropRejected, err, attempt)
			return
		case attempt >= w.opts.MaxAttempts:
			w.drop(batch, DropRetriesExhausted, err, attempt)
			return
		}
		select {
		case <-w.opts.After(backoff):
		case <-w.abortCtx.Done():
			w.drop(batch, DropShutdown, err, attempt)
			return
		}
		backoff = min(2*backoff, w.opts.MaxBackoff)
	}
}

func (w *Webhook) drop(batch []Event, reason string, err error, attempts int) {
	w.dropped.WithLabelValues(reason).Add(float64(len(batch)))
	w.opts.Logger.Error(err, "Dropped audit events the webhook collector did not take; they are in the audit log only",
		"events", len(batch), "reason", reason, "attempts", attempts, "url", w.where)
}

func (w *Webhook) post(body []byte) error {
	ctx, cancel := context.WithTimeout(w.abortCtx, w.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.opts.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "twofold-core")
	if w.opts.Token != "" {
		req.Header.Set("Authorization", "Bearer "+w.opts.Token)
	}
	resp, err := w.opts.Client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode >= 400 && resp.StatusCode < 500 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests:
		return fmt.Errorf("%w: %s", errRejected, resp.Status)
	default:
		return fmt.Errorf("collector answered %s", resp.Status)
	}
}
