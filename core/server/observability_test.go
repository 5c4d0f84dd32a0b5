package server_test

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/core/audit"
	"github.com/twofold-dev/twofold/core/coretest"
	"github.com/twofold-dev/twofold/core/factors/totp"
	"github.com/twofold-dev/twofold/core/server"
	"github.com/twofold-dev/twofold/core/store"
)

// auditEvents is an audit.Sink that keeps what it is given.
type auditEvents struct {
	mu     sync.Mutex
	events []audit.Event
}

func (s *auditEvents) Enqueue(e audit.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, e)
}

func (s *auditEvents) find(typ, outcome string) (audit.Event, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.events {
		if e.Type == typ && e.Outcome == outcome {
			return e, true
		}
	}
	return audit.Event{}, false
}

func (s *auditEvents) has(typ, outcome, factor string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.events {
		if e.Type == typ && e.Outcome == outcome && e.Factor == factor {
			return true
		}
	}
	return false
}

func TestSecurityEventsReachTheMetricsAndTheAuditSink(t *testing.T) {
	sink := &auditEvents{}
	h := coretest.New(t, func(o *server.Options) {
		o.AuditSink = sink
		o.SignInLimits = store.SignInLimits{MaxAccountFailures: 2, AccountLock: 15 * time.Minute, MaxClientAttempts: 100, ClientWindow: 15 * time.Minute}
	})
	user := h.SignUp("", "a@example.com", "secret123").JSON(t)["user"].(map[string]any)["id"].(string)
	h.Do("POST", "/auth/signin", coretest.Form("a@example.com", "secret123"))
	h.Do("POST", "/auth/signin", coretest.Form("a@example.com", "wrong-password1"))
	h.Do("POST", "/auth/signin", coretest.Form("a@example.com", "wrong-password2"))
	metrics := string(h.Do("GET", "/metrics", nil).Body)

	t.Run("sign-ins are counted by factor and outcome, and the dashboard's series exist at zero", func(t *testing.T) {
		for _, want := range []string{
			`twofold_core_authentications_total{factor="emailpassword",outcome="success"} 1`,
			`twofold_core_authentications_total{factor="emailpassword",outcome="wrong_credentials"} 2`,
			`twofold_core_lockouts_total{factor="emailpassword"} 1`,
			`twofold_core_audit_events_total{outcome="success",type="sign_up"} 1`,
			`twofold_core_audit_events_total{outcome="locked",type="lockout"} 1`,
			`twofold_core_codes_sent_total{channel="sms",outcome="failed"} 0`,
		} {
			if !strings.Contains(metrics, want) {
				t.Errorf("metrics lack %s", want)
			}
		}
		if strings.Contains(metrics, user) || strings.Contains(metrics, "a@example.com") {
			t.Errorf("metrics name a user: labels must stay low-cardinality")
		}
	})
	t.Run("the audit sink gets each event with its type, tenant, IP and factor", func(t *testing.T) {
		tests := []struct{ typ, outcome, user string }{
			{audit.TypeSignUp, "success", user},
			{audit.TypeSignIn, "success", user},
			{audit.TypeSignIn, "wrong_credentials", ""},
			{audit.TypeLockout, "locked", ""},
		}
		for _, tt := range tests {
			e, ok := sink.find(tt.typ, tt.outcome)
			if !ok {
				t.Errorf("no %s event with outcome %s", tt.typ, tt.outcome)
				continue
			}
			if e.User != tt.user || e.Tenant != "public" || e.IP != "127.0.0.1" || e.Factor != "emailpassword" || e.ID == "" || e.Schema != audit.SchemaVersion {
				t.Errorf("%s event = %+v, want user %q, tenant public, IP 127.0.0.1, factor emailpassword, an id and schema 1", tt.typ, e, tt.user)
			}
		}
	})
}

func TestTheReadyGaugeFollowsTheStore(t *testing.T) {
	h := coretest.New(t)
	if m := string(h.Do("GET", "/metrics", nil).Body); !strings.Contains(m, "\ntwofold_core_ready 1\n") {
		t.Fatalf("a core whose store answers does not report twofold_core_ready 1")
	}
	if err := h.Srv.Store.Close(); err != nil {
		t.Fatal(err)
	}
	if m := string(h.Do("GET", "/metrics", nil).Body); !strings.Contains(m, "\ntwofold_core_ready 0\n") {
		t.Fatalf("a core whose store is closed does not report twofold_core_ready 0")
	}
}

func TestSecondFactorAttemptsReachTheAuditTrailAndTheMetrics(t *testing.T) {
	sink := &auditEvents{}
	h := coretest.New(t, func(o *server.Options) { o.AuditSink = sink })
	u := h.SignUpMFA("", "second@example.com")
	u.EnrolTOTP("phone")
	coretest.MustStatus(t, u.Call("POST", "/auth/totp/device", map[string]any{"deviceName": "tablet"}), http.StatusOK, "OK")
	coretest.MustStatus(t, u.Call("POST", "/auth/totp/device/remove", map[string]any{"deviceName": "tablet"}), http.StatusOK, "OK")
	h.Clock.Advance(30 * time.Second)
	code := u.Code(u.Secret)
	wrong := code[:5] + string(rune('0'+(code[5]-'0'+1)%10))
	for range totp.MaxFailures + 1 { // the last one finds the user locked
		u.Call("POST", "/auth/totp/verify", map[string]any{"totp": wrong})
	}
	metrics := string(h.Do("GET", "/metrics", nil).Body)

	t.Run("TOTP attempts are counted by outcome and the lock once", func(t *testing.T) {
		for _, want := range []string{
			`twofold_core_authentications_total{factor="totp",outcome="success"} 1`,
			fmt.Sprintf(`twofold_core_authentications_total{factor="totp",outcome="invalid_code"} %d`, totp.MaxFailures),
			`twofold_core_authentications_total{factor="totp",outcome="locked"} 1`,
			`twofold_core_lockouts_total{factor="totp"} 1`,
		} {
			if !strings.Contains(metrics, want) {
				t.Errorf("metrics lack %s", want)
			}
		}
	})
	tests := []struct {
		name          string
		typ, outcome  string
		detail, value string
	}{
		{"a verified new device is a completed factor that set it up", audit.TypeFactorAttempt, "success", "setup", "true"},
		{"a wrong code is a refused factor attempt", audit.TypeFactorAttempt, "invalid_code", "failedAttempts", "1"},
		{"the failure that locks the user is a lockout", audit.TypeLockout, "locked", "lockedFor", "15m0s"},
		{"a code entered while locked is refused as locked", audit.TypeFactorAttempt, "locked", "", ""},
		{"a removed device is a factor change naming the device", audit.TypeFactorSetup, "success", "device", "tablet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, ok := sink.find(tt.typ, tt.outcome)
			if !ok {
				t.Fatalf("no %s event with outcome %s", tt.typ, tt.outcome)
			}
			if e.Factor != "totp" || e.User == "" || e.Tenant != "public" {
				t.Errorf("event = %+v, want factor totp, the user and tenant public", e)
			}
			if tt.detail != "" && fmt.Sprint(e.Details[tt.detail]) != tt.value {
				t.Errorf("details[%s] = %v, want %s", tt.detail, e.Details[tt.detail], tt.value)
			}
		})
	}
}

func TestARecoveryCodeUseReachesTheAuditTrail(t *testing.T) {
	sink := &auditEvents{}
	h := coretest.New(t, func(o *server.Options) { o.AuditSink = sink })
	u := h.SignUpMFA("", "recovery@example.com")
	u.EnrolTOTP("phone")
	codes := u.RecoveryCodes()
	v := u.SignIn()
	v.Call("POST", "/auth/recovery-codes/verify", map[string]any{"code": "aaaa-bbbb-cccc"})
	coretest.MustStatus(t, v.Call("POST", "/auth/recovery-codes/verify", map[string]any{"code": codes[0]}), http.StatusOK, "OK")

	for _, outcome := range []string{"invalid_code", "success"} {
		if !sink.has(audit.TypeFactorAttempt, outcome, "recovery-code") {
			t.Errorf("no factor_attempt event of factor recovery-code with outcome %s", outcome)
		}
	}
}
