package hostedui_test

import (
	"fmt"
	"io"
	"log"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	gosmtp "github.com/emersion/go-smtp"
)

// mailbox is an in-process SMTP server that hands over each message's plain text.
type mailbox struct {
	msgs chan string
	port int
}

func startSMTP(t *testing.T) *mailbox {
	t.Helper()
	m := &mailbox{msgs: make(chan string, 16)}
	srv := gosmtp.NewServer(m)
	srv.Domain = "mx.test"
	srv.ErrorLog = log.New(io.Discard, "", 0)
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	m.port = ln.Addr().(*net.TCPAddr).Port
	return m
}

// smtpConfig is a tenant's email block for the mailbox.
func (m *mailbox) smtpConfig() string {
	return `"email":{"smtp":{"host":"127.0.0.1","port":` + strconv.Itoa(m.port) + `,"from":"Acme <no-reply@acme.test>","tls":"none"}}`
}

// next waits for the next message (sending happens after the core answers).
func (m *mailbox) next(t *testing.T) string {
	t.Helper()
	select {
	case s := <-m.msgs:
		return s
	case <-time.After(30 * time.Second):
		t.Fatal("no email arrived within 30 seconds")
		return ""
	}
}

var linkPattern = regexp.MustCompile(`https?://\S+`)

// link returns the path and query of the first link in the next message.
func (m *mailbox) link(t *testing.T) string {
	t.Helper()
	text := m.next(t)
	raw := linkPattern.FindString(text)
	u, err := url.Parse(raw)
	if raw == "" || err != nil {
		t.Fatalf("no link in the email:\n%s", text)
	}
	return u.RequestURI()
}

// NewSession implements gosmtp.Backend.
func (m *mailbox) NewSession(*gosmtp.Conn) (gosmtp.Session, error) { return &smtpSession{m: m}, nil }

type smtpSession struct{ m *mailbox }

func (s *smtpSession) Mail(string, *gosmtp.MailOptions) error { return nil }
func (s *smtpSession) Rcpt(string, *gosmtp.RcptOptions) error { return nil }
func (s *smtpSession) Reset()                                 {}
func (s *smtpSession) Logout() error                          { return nil }

func (s *smtpSession) Data(r io.Reader) error {
	msg, err := mail.ReadMessage(r)
	if err != nil {
		return err
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		return err
	}
	body := msg.Body
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err != nil {
				return fmt.Errorf("no text/plain part: %w", err)
			}
			if strings.HasPrefix(p.Header.Get("Content-Type"), "text/plain") {
				body = p
				break
			}
		}
	} else if strings.EqualFold(msg.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		body = quotedprintable.NewReader(body)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	s.m.msgs <- string(b)
	return nil
}
