package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/twofold-dev/twofold/core/delivery/webhook"
)

// sentMessage is one message a fake provider received.
type sentMessage struct {
	To      string
	Subject string
	Text    string
}

var (
	sixDigits = regexp.MustCompile(`\b\d{6}\b`)
	anyLink   = regexp.MustCompile(`https?://\S+`)
)

// Code returns the six-digit code in the message, failing the test when there is none.
func (m sentMessage) code(t *testing.T) string {
	t.Helper()
	c := sixDigits.FindString(m.Text)
	if c == "" {
		t.Fatalf("message to %s has no six-digit code: %q", m.To, m.Text)
	}
	return c
}

// link returns the first link in the message.
func (m sentMessage) link(t *testing.T) string {
	t.Helper()
	l := anyLink.FindString(m.Text)
	if l == "" {
		t.Fatalf("message to %s has no link: %q", m.To, m.Text)
	}
	return l
}

// outbox collects what a fake provider received.
type outbox struct {
	mu   sync.Mutex
	msgs []sentMessage
	fail atomic.Bool // answer every send with an error
}

func (o *outbox) add(m sentMessage) {
	o.mu.Lock()
	o.msgs = append(o.msgs, m)
	o.mu.Unlock()
}

func (o *outbox) all() []sentMessage {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]sentMessage(nil), o.msgs...)
}

// last returns the newest message to to, failing when there is none.
func (o *outbox) last(t *testing.T, to string) sentMessage {
	t.Helper()
	msgs := o.all()
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].To == to {
			return msgs[i]
		}
	}
	t.Fatalf("no message was sent to %s (sent: %+v)", to, msgs)
	return sentMessage{}
}

// wait returns the n-th message (from 1) once it has arrived: messages sent after the
// answer (password reset) arrive a little later.
func (o *outbox) wait(t *testing.T, n int) sentMessage {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if msgs := o.all(); len(msgs) >= n {
			return msgs[n-1]
		}
	}
	t.Fatalf("message %d never arrived (got %d)", n, len(o.all()))
	return sentMessage{}
}

func (o *outbox) count() int { return len(o.all()) }

// smtpBackend is an in-process SMTP server (emersion/go-smtp) that decodes what it receives.
type smtpBackend struct{ box *outbox }

func (b smtpBackend) NewSession(*gosmtp.Conn) (gosmtp.Session, error) {
	return &smtpSession{box: b.box}, nil
}

type smtpSession struct {
	box *outbox
	to  string
}

func (s *smtpSession) Mail(string, *gosmtp.MailOptions) error {
	if s.box.fail.Load() {
		return &gosmtp.SMTPError{Code: 451, Message: "relay is down"}
	}
	return nil
}
func (s *smtpSession) Rcpt(to string, _ *gosmtp.RcptOptions) error { s.to = to; return nil }
func (s *smtpSession) Reset()                                      {}
func (s *smtpSession) Logout() error                               { return nil }

func (s *smtpSession) Data(r io.Reader) error {
	msg, err := mail.ReadMessage(r)
	if err != nil {
		return err
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		return err
	}
	text, err := plainText(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body)
	if err != nil {
		return err
	}
	s.box.add(sentMessage{To: s.to, Subject: subject, Text: text})
	return nil
}

// plainText returns the text/plain part of a message body.
func plainText(contentType, encoding string, body io.Reader) (string, error) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err != nil {
				return "", fmt.Errorf("no text/plain part: %w", err)
			}
			if strings.HasPrefix(p.Header.Get("Content-Type"), "text/plain") {
				// multipart decodes quoted-printable parts itself.
				b, err := io.ReadAll(p)
				return string(b), err
			}
		}
	}
	if strings.EqualFold(encoding, "quoted-printable") {
		body = quotedprintable.NewReader(body)
	}
	b, err := io.ReadAll(body)
	return string(b), err
}

// startSMTP runs the fake SMTP server on 127.0.0.1:0 and returns the tenant's email block.
func startSMTP(t *testing.T) (*outbox, string) {
	t.Helper()
	box := &outbox{}
	srv := gosmtp.NewServer(smtpBackend{box: box})
	srv.Domain = "mx.test"
	srv.ErrorLog = log.New(io.Discard, "", 0)
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	port := ln.Addr().(*net.TCPAddr).Port
	return box, fmt.Sprintf(`"email":{"smtp":{"host":"127.0.0.1","port":%d,"from":"Acme <no-reply@acme.test>","tls":"none"}}`, port)
}

// startTwilio runs a Twilio-style Messages API and returns the tenant's sms block.
func startTwilio(t *testing.T) (*outbox, string) {
	t.Helper()
	box := &outbox{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, _ := r.BasicAuth()
		if r.Method != "POST" || r.URL.Path != "/2010-04-01/Accounts/AC123/Messages.json" || user != "AC123" || pass != "twilio-token" {
			http.Error(w, `{"code":20003,"message":"Authenticate"}`, http.StatusUnauthorized)
			return
		}
		if box.fail.Load() {
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"code":21211,"message":"The 'To' number is not a valid phone number.","status":400}`))
			return
		}
		box.add(sentMessage{To: r.FormValue("To"), Text: r.FormValue("Body")})
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte(`{"sid":"SM1","status":"queued"}`))
	}))
	t.Cleanup(ts.Close)
	return box, fmt.Sprintf(`"sms":{"provider":"twilio","twilio":{"accountSid":"AC123","authToken":"twilio-token","from":"+15005550006","baseURL":%q}}`, ts.URL)
}

const webhookSecret = "webhook-secret"

// startWebhook runs a tenant's own SMS webhook, which checks the signature, and returns the
// tenant's sms block.
func startWebhook(t *testing.T) (*outbox, string) {
	t.Helper()
	box := &outbox{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := webhook.VerifyRequest(r, webhookSecret, time.Now(), webhook.DefaultTolerance)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		if box.fail.Load() {
			http.Error(w, "gateway down", http.StatusBadGateway)
			return
		}
		box.add(sentMessage{To: p.To, Text: p.Message})
		json.NewEncoder(w).Encode(map[string]string{"ok": "yes"})
	}))
	t.Cleanup(ts.Close)
	return box, fmt.Sprintf(`"sms":{"provider":"webhook","webhook":{"url":%q,"secret":%q}}`, ts.URL, webhookSecret)
}

// deliveryTenant creates tenant id with the given blocks (email, sms, firstFactors, ...)
// joined into one configuration, with plain-http cookies and the hosted UI at
// https://app.acme.test/auth.
func (h *harness) deliveryTenant(id string, blocks ...string) string {
	h.t.Helper()
	cfg := `{"session":{"cookieSecure":false},"websiteDomain":"https://app.acme.test","websiteBasePath":"/auth"`
	for _, b := range blocks {
		cfg += "," + b
	}
	h.putTenant(id, cfg+"}")
	return "/" + id
}

// createCode asks for a code and returns the answer's body, checking it is 200 OK.
func (h *harness) createCode(tenantPath string, body map[string]any, headers ...string) map[string]any {
	h.t.Helper()
	r := h.do("POST", "/auth"+tenantPath+"/signinup/code", body, headers...)
	return mustStatus(h.t, r, http.StatusOK, "OK")
}

// consume submits a user input code for the device of created.
func (h *harness) consume(tenantPath string, created map[string]any, code string, headers ...string) response {
	h.t.Helper()
	return h.do("POST", "/auth"+tenantPath+"/signinup/code/consume", map[string]any{
		"preAuthSessionId": created["preAuthSessionId"], "deviceId": created["deviceId"], "userInputCode": code}, headers...)
}
