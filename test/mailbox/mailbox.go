// Package mailbox is an in-process SMTP server for tests: the core sends its codes and links to
// it over the real protocol, and the test reads each message's plain text.
package mailbox

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

// Mailbox is an in-process SMTP server that hands over each message's plain text.
type Mailbox struct {
	// Port is the loopback port the server listens on.
	Port int
	msgs chan string
}

// Start runs a mailbox on 127.0.0.1 until the test ends.
func Start(t testing.TB) *Mailbox {
	t.Helper()
	m := &Mailbox{msgs: make(chan string, 16)}
	m.Port = Serve(t, m)
	return m
}

// Serve runs an SMTP server for be on 127.0.0.1 until the test ends and returns its port.
func Serve(t testing.TB, be gosmtp.Backend) int {
	t.Helper()
	srv := gosmtp.NewServer(be)
	srv.Domain = "mx.test"
	srv.ErrorLog = log.New(io.Discard, "", 0)
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// SMTPConfig is a tenant configuration's email block (JSON) that sends to the mailbox.
func (m *Mailbox) SMTPConfig() string {
	return `"email":{"smtp":{"host":"127.0.0.1","port":` + strconv.Itoa(m.Port) + `,"from":"Acme <no-reply@acme.test>","tls":"none"}}`
}

// Next waits for the next message's plain text (the core may send after it answered).
func (m *Mailbox) Next(t testing.TB) string {
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

// Link returns the path, query and fragment (after #, when there is one) of the first link in
// the next message.
func (m *Mailbox) Link(t testing.TB) string {
	t.Helper()
	text := m.Next(t)
	raw := linkPattern.FindString(text)
	u, err := url.Parse(raw)
	if raw == "" || err != nil {
		t.Fatalf("no link in the email:\n%s", text)
	}
	if u.Fragment != "" {
		return u.RequestURI() + "#" + u.EscapedFragment()
	}
	return u.RequestURI()
}

// NewSession implements gosmtp.Backend.
func (m *Mailbox) NewSession(*gosmtp.Conn) (gosmtp.Session, error) { return &smtpSession{m: m}, nil }

type smtpSession struct{ m *Mailbox }

// Mail, Rcpt, Reset and Logout accept everything; Data hands the plain text over.
func (s *smtpSession) Mail(string, *gosmtp.MailOptions) error { return nil }
func (s *smtpSession) Rcpt(string, *gosmtp.RcptOptions) error { return nil }
func (s *smtpSession) Reset()                                 {}
func (s *smtpSession) Logout() error                          { return nil }

func (s *smtpSession) Data(r io.Reader) error {
	msg, err := mail.ReadMessage(r)
	if err != nil {
		return err
	}
	text, err := PlainText(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body)
	if err != nil {
		return err
	}
	s.m.msgs <- text
	return nil
}

// PlainText returns the text/plain part of a message body, decoded.
func PlainText(contentType, encoding string, body io.Reader) (string, error) {
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
