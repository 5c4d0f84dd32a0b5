package coretest

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/twofold-dev/twofold/core/delivery/webhook"
	"github.com/twofold-dev/twofold/test/mailbox"
)

// SentMessage is one message a fake provider received.
type SentMessage struct {
	To      string
	Subject string
	Text    string
}

// SixDigits finds a code in a message; AnyLink a link.
var (
	SixDigits = regexp.MustCompile(`\b\d{6}\b`)
	AnyLink   = regexp.MustCompile(`https?://\S+`)
)

// Code returns the six-digit code in the message, failing the test when there is none.
func (m SentMessage) Code(t testing.TB) string {
	t.Helper()
	c := SixDigits.FindString(m.Text)
	if c == "" {
		t.Fatalf("message to %s has no six-digit code: %q", m.To, m.Text)
	}
	return c
}

// Link returns the first link in the message.
func (m SentMessage) Link(t testing.TB) string {
	t.Helper()
	l := AnyLink.FindString(m.Text)
	if l == "" {
		t.Fatalf("message to %s has no link: %q", m.To, m.Text)
	}
	return l
}

// Outbox collects what a fake provider received.
type Outbox struct {
	mu   sync.Mutex
	msgs []SentMessage
	Fail atomic.Bool // answer every send with an error
}

// Add keeps m; the fake providers call it.
func (o *Outbox) Add(m SentMessage) {
	o.mu.Lock()
	o.msgs = append(o.msgs, m)
	o.mu.Unlock()
}

// All returns every message so far.
func (o *Outbox) All() []SentMessage {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]SentMessage(nil), o.msgs...)
}

// Last returns the newest message to to, failing when there is none.
func (o *Outbox) Last(t testing.TB, to string) SentMessage {
	t.Helper()
	msgs := o.All()
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].To == to {
			return msgs[i]
		}
	}
	t.Fatalf("no message was sent to %s (sent: %+v)", to, msgs)
	return SentMessage{}
}

// Wait returns the n-th message (from 1) once it has arrived: messages sent after the
// answer (password reset) arrive a little later.
func (o *Outbox) Wait(t testing.TB, n int) SentMessage {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if msgs := o.All(); len(msgs) >= n {
			return msgs[n-1]
		}
	}
	t.Fatalf("message %d never arrived (got %d)", n, len(o.All()))
	return SentMessage{}
}

// Count is the number of messages so far.
func (o *Outbox) Count() int { return len(o.All()) }

// smtpBackend is an in-process SMTP server (emersion/go-smtp) that decodes what it receives.
type smtpBackend struct{ box *Outbox }

func (b smtpBackend) NewSession(*gosmtp.Conn) (gosmtp.Session, error) {
	return &smtpSession{box: b.box}, nil
}

type smtpSession struct {
	box *Outbox
	to  string
}

func (s *smtpSession) Mail(string, *gosmtp.MailOptions) error {
	if s.box.Fail.Load() {
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
	text, err := mailbox.PlainText(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body)
	if err != nil {
		return err
	}
	s.box.Add(SentMessage{To: s.to, Subject: subject, Text: text})
	return nil
}

// StartSMTP runs the fake SMTP server on 127.0.0.1:0 and returns the tenant's email block.
func StartSMTP(t testing.TB) (*Outbox, string) {
	t.Helper()
	box := &Outbox{}
	port := mailbox.Serve(t, smtpBackend{box: box})
	return box, fmt.Sprintf(`"email":{"smtp":{"host":"127.0.0.1","port":%d,"from":"Acme <no-reply@acme.test>","tls":"none"}}`, port)
}

// StartTwilio runs a Twilio-style Messages API and returns the tenant's sms block.
func StartTwilio(t testing.TB) (*Outbox, string) {
	t.Helper()
	box := &Outbox{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, _ := r.BasicAuth()
		if r.Method != "POST" || r.URL.Path != "/2010-04-01/Accounts/AC123/Messages.json" || user != "AC123" || pass != "twilio-token" {
			http.Error(w, `{"code":20003,"message":"Authenticate"}`, http.StatusUnauthorized)
			return
		}
		if box.Fail.Load() {
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"code":21211,"message":"The 'To' number is not a valid phone number.","status":400}`))
			return
		}
		box.Add(SentMessage{To: r.FormValue("To"), Text: r.FormValue("Body")})
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte(`{"sid":"SM1","status":"queued"}`))
	}))
	t.Cleanup(ts.Close)
	return box, fmt.Sprintf(`"sms":{"provider":"twilio","twilio":{"accountSid":"AC123","authToken":"twilio-token","from":"+15005550006","baseURL":%q}}`, ts.URL)
}

// WebhookSecret is the secret StartWebhook's webhook checks signatures with.
const WebhookSecret = "webhook-secret"

// StartWebhook runs a tenant's own SMS webhook, which checks the signature, and returns the
// tenant's sms block.
func StartWebhook(t testing.TB) (*Outbox, string) {
	t.Helper()
	box := &Outbox{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := webhook.VerifyRequest(r, WebhookSecret, time.Now(), webhook.DefaultTolerance)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		if box.Fail.Load() {
			http.Error(w, "gateway down", http.StatusBadGateway)
			return
		}
		box.Add(SentMessage{To: p.To, Text: p.Message})
		json.NewEncoder(w).Encode(map[string]string{"ok": "yes"})
	}))
	t.Cleanup(ts.Close)
	return box, fmt.Sprintf(`"sms":{"provider":"webhook","webhook":{"url":%q,"secret":%q}}`, ts.URL, WebhookSecret)
}

// DeliveryTenant creates tenant id with the given blocks (email, sms, firstFactors, ...)
// joined into one configuration, with plain-http cookies and the hosted UI at
// https://app.acme.test/auth.
func (c *Core) DeliveryTenant(id string, blocks ...string) string {
	c.T.Helper()
	cfg := `{"session":{"cookieSecure":false},"websiteDomain":"https://app.acme.test","websiteBasePath":"/auth"`
	for _, b := range blocks {
		cfg += "," + b
	}
	c.PutTenantJSON(id, cfg+"}")
	return "/" + id
}

// CreateCode asks for a code and returns the answer's body, checking it is 200 OK.
func (c *Core) CreateCode(tenantPath string, body map[string]any, headers ...string) map[string]any {
	c.T.Helper()
	r := c.Do("POST", "/auth"+tenantPath+"/signinup/code", body, headers...)
	return MustStatus(c.T, r, http.StatusOK, "OK")
}

// Consume submits a user input code for the device of created.
func (c *Core) Consume(tenantPath string, created map[string]any, code string, headers ...string) Response {
	c.T.Helper()
	return c.Do("POST", "/auth"+tenantPath+"/signinup/code/consume", map[string]any{
		"preAuthSessionId": created["preAuthSessionId"], "deviceId": created["deviceId"], "userInputCode": code}, headers...)
}

// SecondaryCode asks for a second-factor code to contact (email or phoneNumber) with the
// user's session, linking it to the session's user.
func (u *MFAUser) SecondaryCode(contact map[string]any) Response {
	u.Core.T.Helper()
	body := map[string]any{"shouldTryLinkingWithSessionUser": true}
	for k, v := range contact {
		body[k] = v
	}
	return u.Call("POST", "/auth"+u.Tenant+"/signinup/code", body)
}

// ConsumeSecondary submits the code of created with the user's session.
func (u *MFAUser) ConsumeSecondary(created map[string]any, code string) Response {
	u.Core.T.Helper()
	return u.Call("POST", "/auth"+u.Tenant+"/signinup/code/consume", map[string]any{"preAuthSessionId": created["preAuthSessionId"],
		"deviceId": created["deviceId"], "userInputCode": code, "shouldTryLinkingWithSessionUser": true})
}
