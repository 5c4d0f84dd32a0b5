package twilio

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/core/delivery"
	"github.com/twofold-dev/twofold/core/outbound"
)

// loopback reaches the tests' fake Twilio on 127.0.0.1, as an operator's allow-list would.
var loopback = outbound.Policy{Allow: outbound.MustParseAllowList("127.0.0.1/32")}.Client(outbound.ClientOptions{})

var sms = delivery.Message{Channel: delivery.SMS, To: "+14155550100", Text: "Your Acme sign-in code is 012345. It expires in 15 minutes.", Code: "012345"}

func TestSendPostsTheMessageToTheAccountsMessagesEndpoint(t *testing.T) {
	var got *http.Request
	var form map[string][]string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			t.Error(err)
		}
		got, form = r, r.PostForm
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte(`{"sid":"SM123","status":"queued"}`))
	}))
	defer srv.Close()
	s, err := New(Config{AccountSID: "AC123", AuthToken: "tok3n", From: "+15550000000", BaseURL: srv.URL + "/", Client: loopback})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), sms); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if got.Method != http.MethodPost || got.URL.Path != "/2010-04-01/Accounts/AC123/Messages.json" {
		t.Errorf("request %s %s", got.Method, got.URL.Path)
	}
	if user, pass, ok := got.BasicAuth(); !ok || user != "AC123" || pass != "tok3n" {
		t.Errorf("basic auth %q %q %v", user, pass, ok)
	}
	if ct := got.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		t.Errorf("Content-Type %q", ct)
	}
	want := map[string]string{"To": "+14155550100", "From": "+15550000000", "Body": sms.Text}
	for k, v := range want {
		if len(form[k]) != 1 || form[k][0] != v {
			t.Errorf("form %s = %q, want %q", k, form[k], v)
		}
	}
	if len(form) != len(want) {
		t.Errorf("form has extra fields: %v", form)
	}
}

func TestSendReportsProviderErrors(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		body       string
		wantStatus int
		wantText   string
	}{
		{
			name: "a Twilio error body gives its status, code and message", status: 400,
			body:       `{"code": 21211, "message": "The 'To' number +1415 is not a valid phone number.", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}`,
			wantStatus: 400, wantText: "provider answered 400: The 'To' number +1415 is not a valid phone number. (code 21211)",
		},
		{
			name: "wrong credentials give 401 and the message", status: 401,
			body:       `{"code": 20003, "message": "Authenticate", "status": 401}`,
			wantStatus: 401, wantText: "Authenticate (code 20003)",
		},
		{
			name: "a server error without JSON gives the status and the body text", status: 500,
			body: "upstream exploded", wantStatus: 500, wantText: "provider answered 500: upstream exploded",
		},
		{
			name: "an empty error body gives the status text", status: 503,
			wantStatus: 503, wantText: "Service Unavailable",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			s, err := New(Config{AccountSID: "AC1", AuthToken: "t", From: "+15550000000", BaseURL: srv.URL, Client: loopback})
			if err != nil {
				t.Fatal(err)
			}
			err = s.Send(context.Background(), sms)
			var pe *delivery.ProviderError
			if !errors.Is(err, delivery.ErrSendFailed) || !errors.As(err, &pe) || pe.StatusCode != tt.wantStatus {
				t.Fatalf("Send = %v, want a provider error with status %d", err, tt.wantStatus)
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
	s, err := New(Config{AccountSID: "AC1", AuthToken: "t", From: "+15550000000", BaseURL: srv.URL, Timeout: 100 * time.Millisecond, Client: loopback})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Send(context.Background(), sms)
	if !errors.Is(err, delivery.ErrSendFailed) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Send = %v, want ErrSendFailed and DeadlineExceeded", err)
	}
}

func TestSendRefusesAnEmail(t *testing.T) {
	s, err := New(Config{AccountSID: "AC1", AuthToken: "t", From: "+15550000000"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), delivery.Message{Channel: delivery.Email, To: "a@b.co", Text: "x"}); !errors.Is(err, delivery.ErrInvalidMessage) {
		t.Errorf("Send = %v, want ErrInvalidMessage", err)
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	ok := Config{AccountSID: "AC1", AuthToken: "t", From: "+15550000000"}
	tests := []struct {
		name string
		edit func(c *Config)
		want string
	}{
		{name: "an empty account SID is refused", edit: func(c *Config) { c.AccountSID = "" }, want: "account SID"},
		{name: "an empty auth token is refused", edit: func(c *Config) { c.AuthToken = "" }, want: "auth token"},
		{name: "an empty sender is refused", edit: func(c *Config) { c.From = "" }, want: "from"},
		{name: "a base URL without scheme is refused", edit: func(c *Config) { c.BaseURL = "api.twilio.com" }, want: "base URL"},
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
	s, err := New(ok)
	if err != nil || s.endpoint != "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json" {
		t.Errorf("New(valid) endpoint %q, %v", s.endpoint, err)
	}
}

func TestATenantsBaseURLCannotPointTheCoreAtAnInternalService(t *testing.T) {
	hits := 0
	internal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		w.WriteHeader(http.StatusCreated)
	}))
	defer internal.Close()
	port := internal.URL[strings.LastIndex(internal.URL, ":")+1:]
	for _, base := range []string{internal.URL, "http://localhost:" + port, "http://[::ffff:127.0.0.1]:" + port} {
		s, err := New(Config{AccountSID: "AC1", AuthToken: "t", From: "+15550000000", BaseURL: base})
		if err != nil {
			t.Fatal(err)
		}
		err = s.Send(context.Background(), sms)
		if !errors.Is(err, delivery.ErrSendFailed) || !errors.Is(err, outbound.ErrForbidden) {
			t.Errorf("Send to %s = %v, want ErrSendFailed and outbound.ErrForbidden", base, err)
		}
	}
	if hits != 0 {
		t.Fatalf("the internal service received %d requests with the tenant's credentials", hits)
	}
}

func TestARedirectIsNotFollowedWithTheAccountsCredentials(t *testing.T) {
	var elsewhere int
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere++ }))
	defer other.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/steal", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()
	s, err := New(Config{AccountSID: "AC1", AuthToken: "t", From: "+15550000000", BaseURL: srv.URL, Client: loopback})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), sms); !errors.Is(err, delivery.ErrSendFailed) {
		t.Errorf("Send = %v, want ErrSendFailed", err)
	}
	if elsewhere != 0 {
		t.Fatalf("the redirect was followed")
	}
}
