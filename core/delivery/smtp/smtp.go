// Package smtp sends Twofold's email through an SMTP relay, with implicit TLS, STARTTLS or (for
// a relay on the same host) no encryption, and AUTH PLAIN when a username is configured. It
// keeps no state: each Send opens one connection, sends one message and quits.
package smtp

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/twofold-dev/twofold/core/delivery"
)

// TLSMode says how the connection is encrypted.
type TLSMode string

// TLS modes, as tenants write them in email.smtp.tls.
const (
	// StartTLS connects in clear and upgrades with STARTTLS (port 587); a server that does not
	// offer STARTTLS is refused rather than used in clear.
	StartTLS TLSMode = "starttls"
	// ImplicitTLS speaks TLS from the first byte (port 465).
	ImplicitTLS TLSMode = "tls"
	// NoTLS sends in clear; credentials are then only allowed to a loopback relay.
	NoTLS TLSMode = "none"
)

// DefaultTimeout bounds one Send when the context has no earlier deadline.
const DefaultTimeout = 15 * time.Second

// Config is a tenant's SMTP relay.
type Config struct {
	Host string
	Port int
	// Username and Password enable AUTH PLAIN; empty Username means no authentication.
	Username string
	Password string
	// From is the sender, with or without a display name: "Acme <no-reply@example.com>".
	From string
	// TLS defaults to StartTLS.
	TLS TLSMode
	// Timeout bounds one Send; zero means DefaultTimeout.
	Timeout time.Duration
	// TLSConfig overrides the TLS settings, for example to trust a private CA; nil uses the
	// system roots. ServerName defaults to Host.
	TLSConfig *tls.Config
}

// Sender sends email through one relay. It is safe for concurrent use.
type Sender struct {
	cfg  Config
	from *mail.Address
	tls  *tls.Config
}

var _ delivery.Sender = (*Sender)(nil)

// New checks cfg and returns a Sender.
func New(cfg Config) (*Sender, error) {
	if cfg.TLS == "" {
		cfg.TLS = StartTLS
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	switch {
	case cfg.Host == "" || strings.ContainsAny(cfg.Host, " /:\r\n") && net.ParseIP(cfg.Host) == nil:
		return nil, fmt.Errorf("%w: smtp host %q is not a host name or IP address", delivery.ErrInvalidConfig, cfg.Host)
	case cfg.Port < 1 || cfg.Port > 65535:
		return nil, fmt.Errorf("%w: smtp port %d is out of range", delivery.ErrInvalidConfig, cfg.Port)
	case cfg.TLS != StartTLS && cfg.TLS != ImplicitTLS && cfg.TLS != NoTLS:
		return nil, fmt.Errorf("%w: smtp tls %q is not one of starttls, tls, none", delivery.ErrInvalidConfig, string(cfg.TLS))
	case cfg.Timeout < 0:
		return nil, fmt.Errorf("%w: smtp timeout %s is negative", delivery.ErrInvalidConfig, cfg.Timeout)
	case cfg.Username != "" && cfg.TLS == NoTLS && !isLoopback(cfg.Host):
		return nil, fmt.Errorf("%w: smtp credentials would be sent in clear to %s; use tls or starttls", delivery.ErrInvalidConfig, cfg.Host)
	}
	from, err := mail.ParseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("%w: smtp from %q: %w", delivery.ErrInvalidConfig, cfg.From, err)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.TLSConfig != nil {
		tc = cfg.TLSConfig.Clone()
	}
	if tc.ServerName == "" {
		tc.ServerName = cfg.Host
	}
	return &Sender{cfg: cfg, from: from, tls: tc}, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Send delivers one email. Errors wrap delivery.ErrSendFailed (with a *delivery.ProviderError
// for an SMTP refusal, and the context's error on timeout) or delivery.ErrInvalidMessage.
func (s *Sender) Send(ctx context.Context, m delivery.Message) error {
	if err := delivery.CheckMessage(m, delivery.Email); err != nil {
		return err
	}
	to, err := mail.ParseAddress(m.To)
	if err != nil {
		return fmt.Errorf("%w: recipient %q: %w", delivery.ErrInvalidMessage, m.To, err)
	}
	if strings.ContainsAny(m.Subject, "\r\n") {
		return fmt.Errorf("%w: subject contains a line break", delivery.ErrInvalidMessage)
	}
	body, err := s.compose(to, m, time.Now())
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	if err := s.send(ctx, to.Address, body); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("smtp: %w: %w: %w", delivery.ErrSendFailed, ctx.Err(), err)
		}
		var se *gosmtp.SMTPError
		if errors.As(err, &se) {
			return &delivery.ProviderError{Provider: "smtp", StatusCode: se.Code, Message: se.Message}
		}
		return fmt.Errorf("smtp: %w: %w", delivery.ErrSendFailed, err)
	}
	return nil
}

func (s *Sender) send(ctx context.Context, to string, body []byte) error {
	addr := net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.cfg.Port))
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", addr, err)
	}
	// Closing the connection is what interrupts a stalled read or write when ctx ends; the
	// client's own per-command deadlines (minutes) are longer than any sensible timeout.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if s.cfg.TLS == ImplicitTLS {
		tc := tls.Client(conn, s.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return fmt.Errorf("TLS handshake with %s: %w", addr, err)
		}
		conn = tc
	}
	var c *gosmtp.Client
	if s.cfg.TLS == StartTLS {
		// NewClientStartTLS refuses a server that does not offer STARTTLS: no silent downgrade.
		if c, err = gosmtp.NewClientStartTLS(conn, s.tls); err != nil {
			conn.Close()
			return fmt.Errorf("STARTTLS with %s: %w", addr, err)
		}
	} else {
		c = gosmtp.NewClient(conn)
	}
	defer c.Close()
	if s.cfg.Username != "" {
		if err := c.Auth(sasl.NewPlainClient("", s.cfg.Username, s.cfg.Password)); err != nil {
			return fmt.Errorf("AUTH PLAIN: %w", err)
		}
	}
	if err := c.SendMail(s.from.Address, []string{to}, bytes.NewReader(body)); err != nil {
		return fmt.Errorf("send mail: %w", err)
	}
	if err := c.Quit(); err != nil {
		return fmt.Errorf("QUIT: %w", err)
	}
	return nil
}

// compose writes an RFC 5322 message: text only, or multipart/alternative with HTML.
func (s *Sender) compose(to *mail.Address, m delivery.Message, now time.Time) ([]byte, error) {
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, fmt.Errorf("read random message id: %w", err)
	}
	domain := s.from.Address[strings.LastIndexByte(s.from.Address, '@')+1:]
	var b bytes.Buffer
	header := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	header("From", s.from.String())
	header("To", to.String())
	header("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	header("Date", now.Format(time.RFC1123Z))
	header("Message-ID", "<"+hex.EncodeToString(id)+"@"+domain+">")
	header("MIME-Version", "1.0")
	if m.HTML == "" {
		header("Content-Type", "text/plain; charset=utf-8")
		header("Content-Transfer-Encoding", "quoted-printable")
		b.WriteString("\r\n")
		if err := writeQP(&b, m.Text); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	}
	mw := multipart.NewWriter(&b)
	header("Content-Type", "multipart/alternative; boundary="+mw.Boundary())
	b.WriteString("\r\n")
	for _, part := range []struct{ typ, body string }{{"text/plain", m.Text}, {"text/html", m.HTML}} {
		w, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {part.typ + "; charset=utf-8"},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, fmt.Errorf("compose %s part: %w", part.typ, err)
		}
		if err := writeQP(w, part.body); err != nil {
			return nil, err
		}
	}
	if err := mw.Close(); err != nil {
		return nil, fmt.Errorf("compose message: %w", err)
	}
	return b.Bytes(), nil
}

func writeQP(w interface{ Write([]byte) (int, error) }, s string) error {
	qp := quotedprintable.NewWriter(w)
	if _, err := qp.Write([]byte(strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n"))); err != nil {
		return fmt.Errorf("encode body: %w", err)
	}
	if err := qp.Close(); err != nil {
		return fmt.Errorf("encode body: %w", err)
	}
	return nil
}
