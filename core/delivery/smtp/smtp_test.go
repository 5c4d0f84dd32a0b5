package smtp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/twofold-dev/twofold/core/delivery"
)

// received is one message as the test server saw it.
type received struct {
	from, to, user string
	tls            bool
	data           []byte
}

type backend struct {
	mu       sync.Mutex
	msgs     []received
	password string
	rcptErr  *gosmtp.SMTPError
}

func (b *backend) NewSession(c *gosmtp.Conn) (gosmtp.Session, error) {
	_, isTLS := c.TLSConnectionState()
	return &session{b: b, r: received{tls: isTLS}, conn: c}, nil
}

func (b *backend) messages() []received {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]received(nil), b.msgs...)
}

type session struct {
	b    *backend
	r    received
	conn *gosmtp.Conn
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "mailer" || pass != s.b.password {
			return gosmtp.ErrAuthFailed
		}
		s.r.user = user
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *gosmtp.MailOptions) error { s.r.from = from; return nil }

func (s *session) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	if s.b.rcptErr != nil {
		return s.b.rcptErr
	}
	s.r.to = to
	return nil
}

func (s *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, s.r.tls = s.conn.TLSConnectionState()
	s.r.data = data
	s.b.mu.Lock()
	s.b.msgs = append(s.b.msgs, s.r)
	s.b.mu.Unlock()
	return nil
}

func (s *session) Reset()        {}
func (s *session) Logout() error { return nil }

// certificate returns a self-signed certificate for 127.0.0.1 and a pool that trusts it.
func certificate(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// startServer runs a real SMTP server on 127.0.0.1:0 and returns its port.
func startServer(t *testing.T, be *backend, mode TLSMode, offerTLS bool) (int, *x509.CertPool) {
	t.Helper()
	cert, pool := certificate(t)
	srv := gosmtp.NewServer(be)
	srv.Domain = "mx.test"
	srv.ErrorLog = log.New(io.Discard, "", 0)
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	if offerTLS {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	srv.AllowInsecureAuth = mode == NoTLS
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if mode == ImplicitTLS {
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port, pool
}

func signInMessage(t *testing.T) delivery.Message {
	t.Helper()
	m, err := delivery.Templates{AppName: "Acme Ünïcode"}.SignIn(delivery.Email, "Ada Lovelace <ada@example.com>", "012345", "https://app.example.com/auth/verify?preAuthSessionId=p&tenantId=public#l", 15*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSendDeliversTheMessageOverEachTLSMode(t *testing.T) {
	tests := []struct {
		name     string
		mode     TLSMode
		username string
		wantTLS  bool
	}{
		{name: "starttls upgrades the connection and authenticates", mode: StartTLS, username: "mailer", wantTLS: true},
		{name: "implicit tls encrypts from the start and authenticates", mode: ImplicitTLS, username: "mailer", wantTLS: true},
		{name: "no tls to a loopback relay sends in clear with credentials", mode: NoTLS, username: "mailer"},
		{name: "no tls without credentials sends anonymously", mode: NoTLS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			be := &backend{password: "s3cret"}
			port, pool := startServer(t, be, tt.mode, tt.mode != NoTLS)
			s, err := New(Config{
				Host: "127.0.0.1", Port: port, Username: tt.username, Password: "s3cret",
				From: "Acme <no-reply@acme.test>", TLS: tt.mode, TLSConfig: &tls.Config{RootCAs: pool},
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Send(context.Background(), signInMessage(t)); err != nil {
				t.Fatalf("Send: %v", err)
			}
			msgs := be.messages()
			if len(msgs) != 1 {
				t.Fatalf("server received %d messages, want 1", len(msgs))
			}
			got := msgs[0]
			if got.from != "no-reply@acme.test" || got.to != "ada@example.com" || got.tls != tt.wantTLS || got.user != tt.username {
				t.Errorf("envelope from %q to %q tls %v user %q", got.from, got.to, got.tls, got.user)
			}
			checkSignInMessage(t, got.data)
		})
	}
}

func checkSignInMessage(t *testing.T, data []byte) {
	t.Helper()
	msg, err := mail.ReadMessage(strings.NewReader(string(data)))
	if err != nil {
		t.Fatalf("received message does not parse: %v\n%s", err, data)
	}
	h := msg.Header
	subject, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
	if err != nil || subject != "Your Acme Ünïcode sign-in code" {
		t.Errorf("Subject = %q (%v)", subject, err)
	}
	if from, err := h.AddressList("From"); err != nil || from[0].Address != "no-reply@acme.test" || from[0].Name != "Acme" {
		t.Errorf("From = %q", h.Get("From"))
	}
	if to, err := h.AddressList("To"); err != nil || to[0].Address != "ada@example.com" || to[0].Name != "Ada Lovelace" {
		t.Errorf("To = %q", h.Get("To"))
	}
	if _, err := h.Date(); err != nil {
		t.Errorf("Date = %q: %v", h.Get("Date"), err)
	}
	if !strings.HasSuffix(h.Get("Message-ID"), "@acme.test>") || h.Get("MIME-Version") != "1.0" {
		t.Errorf("Message-ID %q, MIME-Version %q", h.Get("Message-ID"), h.Get("MIME-Version"))
	}
	mediaType, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || mediaType != "multipart/alternative" {
		t.Fatalf("Content-Type = %q", h.Get("Content-Type"))
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	bodies := map[string]string{}
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if p.Header.Get("Content-Transfer-Encoding") != "quoted-printable" {
			t.Errorf("part encoding %q", p.Header.Get("Content-Transfer-Encoding"))
		}
		b, err := io.ReadAll(quotedprintable.NewReader(p))
		if err != nil {
			t.Fatal(err)
		}
		typ, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		bodies[typ] = string(b)
	}
	if !strings.Contains(bodies["text/plain"], "Your sign-in code is 012345") || !strings.Contains(bodies["text/plain"], "preAuthSessionId=p&tenantId=public#l") {
		t.Errorf("text part:\n%s", bodies["text/plain"])
	}
	if !strings.Contains(bodies["text/html"], ">012345<") {
		t.Errorf("HTML part:\n%s", bodies["text/html"])
	}
}

func TestSendWithoutHTMLSendsPlainText(t *testing.T) {
	be := &backend{}
	port, _ := startServer(t, be, NoTLS, false)
	s, err := New(Config{Host: "127.0.0.1", Port: port, From: "no-reply@acme.test", TLS: NoTLS})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), delivery.Message{Channel: delivery.Email, To: "ada@example.com", Subject: "Hi", Text: "Your sign-in code is 123456\n"}); err != nil {
		t.Fatal(err)
	}
	msg, err := mail.ReadMessage(strings.NewReader(string(be.messages()[0].data)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if !strings.HasPrefix(msg.Header.Get("Content-Type"), "text/plain") || string(body) != "Your sign-in code is 123456\r\n" {
		t.Errorf("Content-Type %q, body %q", msg.Header.Get("Content-Type"), body)
	}
}

func TestSendFailures(t *testing.T) {
	tests := []struct {
		name       string
		setup      func(t *testing.T) Config
		msg        func(m delivery.Message) delivery.Message
		wantErr    error
		wantStatus int
		wantText   string
	}{
		{
			name: "a wrong password is a provider refusal",
			setup: func(t *testing.T) Config {
				port, pool := startServer(t, &backend{password: "right"}, StartTLS, true)
				return Config{Host: "127.0.0.1", Port: port, Username: "mailer", Password: "wrong", From: "a@acme.test", TLSConfig: &tls.Config{RootCAs: pool}}
			},
			wantErr: delivery.ErrSendFailed, wantStatus: 535,
		},
		{
			name: "a refused recipient reports the server's code and text",
			setup: func(t *testing.T) Config {
				port, _ := startServer(t, &backend{rcptErr: &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "No such user"}}, NoTLS, false)
				return Config{Host: "127.0.0.1", Port: port, From: "a@acme.test", TLS: NoTLS}
			},
			wantErr: delivery.ErrSendFailed, wantStatus: 550, wantText: "No such user",
		},
		{
			name: "a server without STARTTLS is refused rather than used in clear",
			setup: func(t *testing.T) Config {
				port, _ := startServer(t, &backend{}, StartTLS, false)
				return Config{Host: "127.0.0.1", Port: port, From: "a@acme.test"}
			},
			wantErr: delivery.ErrSendFailed, wantText: "STARTTLS",
		},
		{
			name: "an untrusted certificate is refused",
			setup: func(t *testing.T) Config {
				port, _ := startServer(t, &backend{}, ImplicitTLS, true)
				return Config{Host: "127.0.0.1", Port: port, From: "a@acme.test", TLS: ImplicitTLS}
			},
			wantErr: delivery.ErrSendFailed, wantText: "certificate",
		},
		{
			name: "a closed port fails to connect",
			setup: func(t *testing.T) Config {
				ln, _ := net.Listen("tcp", "127.0.0.1:0")
				port := ln.Addr().(*net.TCPAddr).Port
				ln.Close()
				return Config{Host: "127.0.0.1", Port: port, From: "a@acme.test", TLS: NoTLS}
			},
			wantErr: delivery.ErrSendFailed, wantText: "connect",
		},
		{
			name: "a server that never answers times out",
			setup: func(t *testing.T) Config {
				ln, _ := net.Listen("tcp", "127.0.0.1:0")
				t.Cleanup(func() { ln.Close() })
				go func() {
					for {
						c, err := ln.Accept()
						if err != nil {
							return
						}
						t.Cleanup(func() { c.Close() })
					}
				}()
				return Config{Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, From: "a@acme.test", TLS: NoTLS, Timeout: 200 * time.Millisecond}
			},
			wantErr: context.DeadlineExceeded,
		},
		{
			name:    "an SMS is not sent by email",
			setup:   func(t *testing.T) Config { return Config{Host: "127.0.0.1", Port: 25, From: "a@acme.test", TLS: NoTLS} },
			msg:     func(m delivery.Message) delivery.Message { m.Channel = delivery.SMS; return m },
			wantErr: delivery.ErrInvalidMessage,
		},
		{
			name:    "a recipient that is not an address is refused",
			setup:   func(t *testing.T) Config { return Config{Host: "127.0.0.1", Port: 25, From: "a@acme.test", TLS: NoTLS} },
			msg:     func(m delivery.Message) delivery.Message { m.To = "ada@example.com\r\nBcc: eve@example.com"; return m },
			wantErr: delivery.ErrInvalidMessage,
		},
		{
			name:    "a subject with a line break is refused",
			setup:   func(t *testing.T) Config { return Config{Host: "127.0.0.1", Port: 25, From: "a@acme.test", TLS: NoTLS} },
			msg:     func(m delivery.Message) delivery.Message { m.Subject = "Hi\r\nBcc: eve@example.com"; return m },
			wantErr: delivery.ErrInvalidMessage,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.setup(t))
			if err != nil {
				t.Fatal(err)
			}
			m := signInMessage(t)
			if tt.msg != nil {
				m = tt.msg(m)
			}
			err = s.Send(context.Background(), m)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Send error = %v, want %v", err, tt.wantErr)
			}
			var pe *delivery.ProviderError
			if tt.wantStatus != 0 && (!errors.As(err, &pe) || pe.StatusCode != tt.wantStatus) {
				t.Errorf("Send error = %v, want a provider error with status %d", err, tt.wantStatus)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("Send error = %q, want it to mention %q", err, tt.wantText)
			}
		})
	}
}

func TestSendStopsWhenTheContextIsCancelled(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	s, err := New(Config{Host: "127.0.0.1", Port: ln.Addr().(*net.TCPAddr).Port, From: "a@acme.test", TLS: NoTLS, Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { c := <-accepted; defer c.Close(); cancel() }()
	if err := s.Send(ctx, signInMessage(t)); !errors.Is(err, context.Canceled) || !errors.Is(err, delivery.ErrSendFailed) {
		t.Errorf("Send error = %v, want context.Canceled and ErrSendFailed", err)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	ok := Config{Host: "smtp.example.com", Port: 587, From: "Acme <no-reply@example.com>"}
	tests := []struct {
		name string
		edit func(c *Config)
		want string
	}{
		{name: "an empty host is refused", edit: func(c *Config) { c.Host = "" }, want: "host"},
		{name: "a host with a port is refused", edit: func(c *Config) { c.Host = "smtp.example.com:587" }, want: "host"},
		{name: "port zero is refused", edit: func(c *Config) { c.Port = 0 }, want: "port"},
		{name: "an unknown TLS mode is refused", edit: func(c *Config) { c.TLS = "ssl" }, want: "tls"},
		{name: "a sender that is not an address is refused", edit: func(c *Config) { c.From = "Acme" }, want: "from"},
		{name: "credentials in clear to a remote relay are refused", edit: func(c *Config) { c.TLS = NoTLS; c.Username = "u" }, want: "in clear"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.edit(&c)
			if _, err := New(c); !errors.Is(err, delivery.ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New = %v, want ErrInvalidConfig mentioning %q", err, tt.want)
			}
		})
	}
	if _, err := New(ok); err != nil {
		t.Errorf("New(valid config) = %v", err)
	}
	if s, _ := New(ok); s.cfg.TLS != StartTLS || s.cfg.Timeout != DefaultTimeout {
		t.Errorf("defaults: tls %q timeout %s", s.cfg.TLS, s.cfg.Timeout)
	}
}
