package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/core/delivery"
	"github.com/twofold-dev/twofold/core/outbound"
)

// loopback reaches the tests' receivers on 127.0.0.1, as an operator's allow-list would.
var loopback = outbound.Policy{Allow: outbound.MustParseAllowList("127.0.0.1/32")}.Client(outbound.ClientOptions{})

const secret = "whsec-test-0123456789"

var (
	t0  = time.Date(2026, 11, 24, 8, 0, 0, 0, time.UTC)
	msg = delivery.Message{
		Channel: delivery.SMS, To: "+14155550100", Text: "Your Acme sign-in code is 012345.",
		Code: "012345", Link: "https://app.example.com/auth/verify?preAuthSessionId=p&tenantId=public#l",
	}
)

type capture struct {
	header http.Header
	body   []byte
}

func server(t *testing.T, status int, answer string) (*httptest.Server, *capture) {
	t.Helper()
	c := &capture{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.header = r.Header.Clone()
		c.body, _ = io.ReadAll(r.Body)
		w.WriteHeader(status)
		w.Write([]byte(answer))
	}))
	t.Cleanup(srv.Close)
	return srv, c
}

func newSender(t *testing.T, url string) *Sender {
	t.Helper()
	s, err := New(Config{URL: url, Secret: secret, Now: func() time.Time { return t0 }, Client: loopback})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSendPostsSignedJSON(t *testing.T) {
	srv, got := server(t, http.StatusNoContent, "")
	if err := newSender(t, srv.URL+"/hooks/sms").Send(context.Background(), msg); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if ct := got.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	// The signature is the hex HMAC-SHA256 of the exact body, computed here independently.
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(got.body)
	if want := "sha256=" + hex.EncodeToString(mac.Sum(nil)); got.header.Get(SignatureHeader) != want {
		t.Errorf("%s = %q, want %q", SignatureHeader, got.header.Get(SignatureHeader), want)
	}
	if ts := got.header.Get(TimestampHeader); ts != strconv.FormatInt(t0.Unix(), 10) {
		t.Errorf("%s = %q", TimestampHeader, ts)
	}
	var p map[string]any
	if err := json.Unmarshal(got.body, &p); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"to": msg.To, "channel": "sms", "message": msg.Text, "code": "012345", "link": msg.Link, "timestamp": float64(t0.Unix())}
	for k, v := range want {
		if p[k] != v {
			t.Errorf("body %s = %v, want %v", k, p[k], v)
		}
	}
	if id, _ := p["id"].(string); len(id) != 32 {
		t.Errorf("body id = %v, want 32 hex characters", p["id"])
	}
	if _, ok := p["subject"]; ok {
		t.Error("an SMS payload has a subject")
	}
	payload, err := Verify(secret, got.body, got.header.Get(SignatureHeader), got.header.Get(TimestampHeader), t0.Add(time.Minute), 0)
	if err != nil || payload.Code != "012345" || payload.To != msg.To {
		t.Errorf("Verify = %+v, %v", payload, err)
	}
}

func TestSendReportsFailures(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		answer     string
		wantStatus int
		wantText   string
	}{
		{name: "a 500 answer reports the status and body", status: 500, answer: "gateway down\n", wantStatus: 500, wantText: "provider answered 500: gateway down"},
		{name: "a 401 answer without body reports the status text", status: 401, wantStatus: 401, wantText: "Unauthorized"},
		{name: "a redirect is not success", status: 304, wantStatus: 304, wantText: "304"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := server(t, tt.status, tt.answer)
			err := newSender(t, srv.URL).Send(context.Background(), msg)
			var pe *delivery.ProviderError
			if !errors.Is(err, delivery.ErrSendFailed) || !errors.As(err, &pe) || pe.StatusCode != tt.wantStatus || pe.Provider != "webhook" {
				t.Fatalf("Send = %v, want a webhook provider error with status %d", err, tt.wantStatus)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("error %q does not contain %q", err, tt.wantText)
			}
		})
	}
}

func TestSendTimesOut(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	s, err := New(Config{URL: srv.URL, Secret: secret, Timeout: 100 * time.Millisecond, Client: loopback})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), msg); !errors.Is(err, delivery.ErrSendFailed) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Send = %v, want ErrSendFailed and DeadlineExceeded", err)
	}
}

func TestSendCarriesTheSubjectOfAnEmail(t *testing.T) {
	srv, got := server(t, http.StatusOK, "")
	email := delivery.Message{Channel: delivery.Email, To: "ada@example.com", Subject: "Your Acme sign-in code", Text: "Your sign-in code is 1"}
	if err := newSender(t, srv.URL).Send(context.Background(), email); err != nil {
		t.Fatal(err)
	}
	var p Payload
	if err := json.Unmarshal(got.body, &p); err != nil || p.Subject != email.Subject || p.Channel != delivery.Email {
		t.Errorf("payload %+v, %v", p, err)
	}
}

func TestVerify(t *testing.T) {
	body := []byte(`{"id":"ab","timestamp":` + strconv.FormatInt(t0.Unix(), 10) + `,"to":"+14155550100","channel":"sms","message":"code 1"}`)
	sig := Sign(secret, body)
	ts := strconv.FormatInt(t0.Unix(), 10)
	tests := []struct {
		name      string
		secret    string
		body      []byte
		sig, ts   string
		now       time.Time
		tolerance time.Duration
		wantErr   error
	}{
		{name: "a fresh signed request verifies", secret: secret, body: body, sig: sig, ts: ts, now: t0},
		{name: "a request four minutes old verifies with the default tolerance", secret: secret, body: body, sig: sig, ts: ts, now: t0.Add(4 * time.Minute)},
		{name: "a tampered body fails", secret: secret, body: bytes.Replace(body, []byte("code 1"), []byte("code 2"), 1), sig: sig, ts: ts, now: t0, wantErr: ErrBadSignature},
		{name: "a body with an added space fails", secret: secret, body: append([]byte(" "), body...), sig: sig, ts: ts, now: t0, wantErr: ErrBadSignature},
		{name: "the wrong secret fails", secret: "other", body: body, sig: sig, ts: ts, now: t0, wantErr: ErrBadSignature},
		{name: "an empty secret fails", secret: "", body: body, sig: Sign("", body), ts: ts, now: t0, wantErr: ErrBadSignature},
		{name: "a missing signature fails", secret: secret, body: body, sig: "", ts: ts, now: t0, wantErr: ErrBadSignature},
		{name: "a signature without the sha256 prefix fails", secret: secret, body: body, sig: strings.TrimPrefix(sig, "sha256="), ts: ts, now: t0, wantErr: ErrBadSignature},
		{name: "a signature that is not hex fails", secret: secret, body: body, sig: "sha256=zz", ts: ts, now: t0, wantErr: ErrBadSignature},
		{name: "a replay six minutes later fails", secret: secret, body: body, sig: sig, ts: ts, now: t0.Add(6 * time.Minute), wantErr: ErrStale},
		{name: "a replay with a fresh timestamp header fails", secret: secret, body: body, sig: sig, ts: strconv.FormatInt(t0.Add(10*time.Minute).Unix(), 10), now: t0.Add(10 * time.Minute), wantErr: ErrStale},
		{name: "a timestamp far in the future fails", secret: secret, body: body, sig: sig, ts: ts, now: t0.Add(-6 * time.Minute), wantErr: ErrStale},
		{name: "a missing timestamp header fails", secret: secret, body: body, sig: sig, ts: "", now: t0, wantErr: ErrStale},
		{name: "a request older than a custom tolerance fails", secret: secret, body: body, sig: sig, ts: ts, now: t0.Add(31 * time.Second), tolerance: 30 * time.Second, wantErr: ErrStale},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Verify(tt.secret, tt.body, tt.sig, tt.ts, tt.now, tt.tolerance)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify error = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil && (p.ID != "ab" || p.Message != "code 1") {
				t.Errorf("payload %+v", p)
			}
		})
	}
}

func TestVerifyRequest(t *testing.T) {
	body := []byte(`{"id":"ab","timestamp":` + strconv.FormatInt(t0.Unix(), 10) + `,"to":"a","channel":"sms","message":"m"}`)
	req := httptest.NewRequest(http.MethodPost, "/hook", bytes.NewReader(body))
	req.Header.Set(SignatureHeader, Sign(secret, body))
	req.Header.Set(TimestampHeader, strconv.FormatInt(t0.Unix(), 10))
	if _, err := VerifyRequest(req, secret, t0, 0); err != nil {
		t.Errorf("VerifyRequest: %v", err)
	}
	huge := httptest.NewRequest(http.MethodPost, "/hook", bytes.NewReader(make([]byte, MaxBodySize+1)))
	if _, err := VerifyRequest(huge, secret, t0, 0); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("VerifyRequest(huge body) = %v", err)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{name: "a URL without scheme is refused", cfg: Config{URL: "hooks.example.com/sms", Secret: secret}, want: "URL"},
		{name: "a non-http URL is refused", cfg: Config{URL: "ftp://hooks.example.com", Secret: secret}, want: "URL"},
		{name: "an empty secret is refused", cfg: Config{URL: "https://hooks.example.com", Secret: ""}, want: "secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg); !errors.Is(err, delivery.ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New = %v, want ErrInvalidConfig mentioning %q", err, tt.want)
			}
		})
	}
}

func TestSendDoesNotFollowRedirects(t *testing.T) {
	target, got := server(t, http.StatusOK, "")
	redirect := httptest.NewServer(http.RedirectHandler(target.URL, http.StatusTemporaryRedirect))
	defer redirect.Close()
	err := newSender(t, redirect.URL).Send(context.Background(), msg)
	var pe *delivery.ProviderError
	if !errors.As(err, &pe) || pe.StatusCode != http.StatusTemporaryRedirect {
		t.Errorf("Send = %v, want a provider error with status 307", err)
	}
	if got.body != nil {
		t.Error("the signed body was re-sent to the redirect target")
	}
}

func TestATenantsWebhookCannotPointTheCoreAtAnInternalService(t *testing.T) {
	srv, got := server(t, http.StatusNoContent, "")
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	for _, u := range []string{srv.URL + "/hook", "http://localhost:" + port + "/hook", "http://[::1]:" + port + "/hook"} {
		s, err := New(Config{URL: u, Secret: secret})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Send(context.Background(), msg); !errors.Is(err, delivery.ErrSendFailed) || !errors.Is(err, outbound.ErrForbidden) {
			t.Errorf("Send to %s = %v, want ErrSendFailed and outbound.ErrForbidden", u, err)
		}
	}
	if got.body != nil {
		t.Fatalf("the internal service received %q", got.body)
	}
}
