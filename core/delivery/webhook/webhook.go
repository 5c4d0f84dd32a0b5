// Package webhook delivers Twofold's messages to a tenant's own HTTP endpoint, which sends them
// on however it likes (an SMS gateway, a chat app, a queue). Each message is a JSON POST:
//
//	{"id": "...", "timestamp": 1700000000, "to": "+14155550100", "channel": "sms",
//	 "message": "Your Acme sign-in code is 012345. ...", "code": "012345", "link": "..."}
//
// with the headers
//
//	X-Twofold-Signature: sha256=<hex HMAC-SHA256 of the exact body, keyed with the shared secret>
//	X-Twofold-Timestamp: <the body's timestamp, unix seconds>
//
// Because the timestamp is inside the signed body, a captured request cannot be replayed
// later with a fresh timestamp: Verify refuses bodies older than its tolerance, and receivers
// that want to refuse replays inside that window remember the ids they have seen. Receivers
// in Go call Verify or VerifyRequest. The package keeps no state.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/twofold-dev/twofold/core/delivery"
	"github.com/twofold-dev/twofold/core/outbound"
)

// Header names and defaults.
const (
	SignatureHeader  = "X-Twofold-Signature"
	TimestampHeader  = "X-Twofold-Timestamp"
	DefaultTimeout   = 10 * time.Second
	DefaultTolerance = 5 * time.Minute
	// MaxBodySize bounds what VerifyRequest reads and what Send reads of an error answer.
	MaxBodySize = 64 << 10
)

// Errors receivers branch on.
var (
	// ErrBadSignature means the signature header is missing, malformed or does not match.
	ErrBadSignature = errors.New("webhook signature does not match")
	// ErrStale means the timestamp is missing, disagrees with the body, or is outside the
	// tolerance.
	ErrStale = errors.New("webhook timestamp is stale or inconsistent")
)

// Payload is the JSON body of a webhook request.
type Payload struct {
	// ID is random per request, for receivers that deduplicate.
	ID string `json:"id"`
	// Timestamp is when the request was signed, in unix seconds.
	Timestamp int64            `json:"timestamp"`
	To        string           `json:"to"`
	Channel   delivery.Channel `json:"channel"`
	Message   string           `json:"message"`
	// Subject is set for email.
	Subject string `json:"subject,omitempty"`
	Code    string `json:"code,omitempty"`
	Link    string `json:"link,omitempty"`
}

// Config is a tenant's webhook.
type Config struct {
	// URL receives the POSTs; http or https.
	URL string
	// Secret keys the signature; it must not be empty.
	Secret string
	// Timeout bounds one Send; zero means DefaultTimeout.
	Timeout time.Duration
	// Client is the HTTP client; nil means DefaultClient. Give one built by
	// outbound.Policy.Client with the operator's allow-list, following no redirects, so a
	// redirect is reported as a failure instead of re-sending credentials or a signed body
	// elsewhere. Timeout and the context bound each request either way.
	Client *http.Client
	// Now is the clock for timestamps; nil means time.Now.
	Now func() time.Time
}

// Sender posts messages to one webhook. It is safe for concurrent use.
type Sender struct {
	cfg Config
}

var _ delivery.Sender = (*Sender)(nil)

// New checks cfg and returns a Sender.
func New(cfg Config) (*Sender, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Client == nil {
		cfg.Client = DefaultClient
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	u, err := url.Parse(cfg.URL)
	switch {
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
		return nil, fmt.Errorf("%w: webhook URL %q must be an http(s) URL", delivery.ErrInvalidConfig, cfg.URL)
	case cfg.Secret == "":
		return nil, fmt.Errorf("%w: webhook secret is empty; receivers need it to tell Twofold's requests from forgeries", delivery.ErrInvalidConfig)
	case cfg.Timeout < 0:
		return nil, fmt.Errorf("%w: webhook timeout %s is negative", delivery.ErrInvalidConfig, cfg.Timeout)
	}
	return &Sender{cfg: cfg}, nil
}

// Sign returns the signature header value for body: "sha256=" and the hex HMAC-SHA256.
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Send posts m to the webhook. Errors wrap delivery.ErrSendFailed (with a
// *delivery.ProviderError for a non-2xx answer, and the context's error on timeout) or
// delivery.ErrInvalidMessage.
func (s *Sender) Send(ctx context.Context, m delivery.Message) error {
	if err := delivery.CheckMessage(m, delivery.Email, delivery.SMS); err != nil {
		return err
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return fmt.Errorf("webhook: read random id: %w", err)
	}
	p := Payload{
		ID: hex.EncodeToString(id), Timestamp: s.cfg.Now().Unix(), To: m.To, Channel: m.Channel,
		Message: m.Text, Subject: m.Subject, Code: m.Code, Link: m.Link,
	}
	body, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("webhook: encode payload: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook: %w: build request: %w", delivery.ErrSendFailed, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(SignatureHeader, Sign(s.cfg.Secret, body))
	req.Header.Set(TimestampHeader, strconv.FormatInt(p.Timestamp, 10))
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook: %w: %w", delivery.ErrSendFailed, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, MaxBodySize))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	msg := strings.TrimSpace(string(answer))
	if r := []rune(msg); len(r) > 200 {
		msg = string(r[:200]) + "…"
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return &delivery.ProviderError{Provider: "webhook", StatusCode: resp.StatusCode, Message: msg}
}

// Verify checks a webhook request as a receiver: the signature over the exact body bytes
// (compared in constant time), then that the timestamp header matches the signed timestamp
// and lies within tolerance of now (zero tolerance means DefaultTolerance). It returns the
// decoded payload.
func Verify(secret string, body []byte, signature, timestamp string, now time.Time, tolerance time.Duration) (Payload, error) {
	if tolerance == 0 {
		tolerance = DefaultTolerance
	}
	got, ok := strings.CutPrefix(signature, "sha256=")
	if !ok {
		return Payload{}, fmt.Errorf("%w: %s must start with sha256=", ErrBadSignature, SignatureHeader)
	}
	gotMAC, err := hex.DecodeString(got)
	if err != nil {
		return Payload{}, fmt.Errorf("%w: %s is not hex", ErrBadSignature, SignatureHeader)
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	if secret == "" || !hmac.Equal(gotMAC, mac.Sum(nil)) {
		return Payload{}, ErrBadSignature
	}
	var p Payload
	if err := json.Unmarshal(body, &p); err != nil {
		return Payload{}, fmt.Errorf("decode webhook payload: %w", err)
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil || ts != p.Timestamp {
		return Payload{}, fmt.Errorf("%w: %s %q does not match the signed timestamp %d", ErrStale, TimestampHeader, timestamp, p.Timestamp)
	}
	if age := now.Sub(time.Unix(ts, 0)); age > tolerance || age < -tolerance {
		return Payload{}, fmt.Errorf("%w: signed %s ago, tolerance %s", ErrStale, age.Round(time.Second), tolerance)
	}
	return p, nil
}

// VerifyRequest reads r's body (at most MaxBodySize) and calls Verify with its headers.
func VerifyRequest(r *http.Request, secret string, now time.Time, tolerance time.Duration) (Payload, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodySize+1))
	if err != nil {
		return Payload{}, fmt.Errorf("read webhook body: %w", err)
	}
	if len(body) > MaxBodySize {
		return Payload{}, fmt.Errorf("webhook body is larger than %d bytes", MaxBodySize)
	}
	return Verify(secret, body, r.Header.Get(SignatureHeader), r.Header.Get(TimestampHeader), now, tolerance)
}

// DefaultClient reaches no internal destination (outbound's rules with an empty allow-list)
// and follows no redirects: a 3xx answer is handed back as it is.
var DefaultClient = outbound.Policy{}.Client(outbound.ClientOptions{})
