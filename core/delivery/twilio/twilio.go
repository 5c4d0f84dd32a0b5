// Package twilio sends Twofold's text messages through Twilio's Messages API, or any provider
// that copies it: POST {baseURL}/2010-04-01/Accounts/{sid}/Messages.json with a form body
// (To, From, Body) and HTTP basic authentication with the account SID and auth token. It keeps
// no state.
package twilio

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/twofold-dev/twofold/core/delivery"
	"github.com/twofold-dev/twofold/core/outbound"
)

// Defaults.
const (
	DefaultBaseURL = "https://api.twilio.com"
	DefaultTimeout = 10 * time.Second
	// maxErrorBody bounds how much of an error answer is read.
	maxErrorBody = 64 << 10
)

// Config is a tenant's Twilio-style account.
type Config struct {
	AccountSID string
	AuthToken  string
	// From is the sending number (E.164) or alphanumeric sender id.
	From string
	// BaseURL defaults to DefaultBaseURL.
	BaseURL string
	// Timeout bounds one Send; zero means DefaultTimeout.
	Timeout time.Duration
	// Client is the HTTP client; nil means DefaultClient. Give one built by
	// outbound.Policy.Client with the operator's allow-list, following no redirects, so a
	// redirect is reported as a failure instead of re-sending credentials or a signed body
	// elsewhere. Timeout and the context bound each request either way.
	Client *http.Client
}

// Sender sends SMS through one account. It is safe for concurrent use.
type Sender struct {
	cfg      Config
	endpoint string
}

var _ delivery.Sender = (*Sender)(nil)

// New checks cfg and returns a Sender.
func New(cfg Config) (*Sender, error) {
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Client == nil {
		cfg.Client = DefaultClient
	}
	u, err := url.Parse(cfg.BaseURL)
	switch {
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("%w: twilio base URL %q must be an http(s) URL", delivery.ErrInvalidConfig, cfg.BaseURL)
	case cfg.AccountSID == "":
		return nil, fmt.Errorf("%w: twilio account SID is empty", delivery.ErrInvalidConfig)
	case cfg.AuthToken == "":
		return nil, fmt.Errorf("%w: twilio auth token is empty", delivery.ErrInvalidConfig)
	case cfg.From == "":
		return nil, fmt.Errorf("%w: twilio from is empty", delivery.ErrInvalidConfig)
	case cfg.Timeout < 0:
		return nil, fmt.Errorf("%w: twilio timeout %s is negative", delivery.ErrInvalidConfig, cfg.Timeout)
	}
	endpoint := strings.TrimSuffix(cfg.BaseURL, "/") + "/2010-04-01/Accounts/" + url.PathEscape(cfg.AccountSID) + "/Messages.json"
	return &Sender{cfg: cfg, endpoint: endpoint}, nil
}

// Send delivers one SMS. Errors wrap delivery.ErrSendFailed (with a *delivery.ProviderError
// carrying Twilio's status, code and message for a non-2xx answer, and the context's error on
// timeout) or delivery.ErrInvalidMessage.
func (s *Sender) Send(ctx context.Context, m delivery.Message) error {
	if err := delivery.CheckMessage(m, delivery.SMS); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	form := url.Values{"To": {m.To}, "From": {s.cfg.From}, "Body": {m.Text}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("twilio: %w: build request: %w", delivery.ErrSendFailed, err)
	}
	req.SetBasicAuth(s.cfg.AccountSID, s.cfg.AuthToken)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := s.cfg.Client.Do(req)
	if err != nil {
		return fmt.Errorf("twilio: %w: %w", delivery.ErrSendFailed, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	return providerError(resp.StatusCode, body)
}

// providerError reads Twilio's error body: {"code": 21211, "message": "...", "status": 400}.
func providerError(status int, body []byte) error {
	pe := &delivery.ProviderError{Provider: "twilio", StatusCode: status}
	var e struct {
		Code    json.Number `json:"code"`
		Message string      `json:"message"`
	}
	if json.Unmarshal(body, &e) == nil && e.Message != "" {
		pe.Message = e.Message
		if e.Code != "" {
			pe.Code = e.Code.String()
		}
		return pe
	}
	pe.Message = shorten(strings.TrimSpace(string(body)))
	if pe.Message == "" {
		pe.Message = http.StatusText(status)
	}
	return pe
}

func shorten(s string) string {
	const max = 200
	if r := []rune(s); len(r) > max {
		return string(r[:max]) + "…"
	}
	return s
}

// DefaultClient reaches no internal destination (outbound's rules with an empty allow-list)
// and follows no redirects: a 3xx answer is handed back as it is.
var DefaultClient = outbound.Policy{}.Client(outbound.ClientOptions{})
