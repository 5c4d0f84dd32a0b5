package audit_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/twofold-dev/twofold/core/audit"
)

// metricValue sums the samples of the family name whose labels include the value label (all
// of them when label is empty).
func metricValue(reg *prometheus.Registry, name, label string) float64 {
	families, err := reg.Gather()
	if err != nil {
		panic(err)
	}
	sum := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			match := label == ""
			for _, l := range m.GetLabel() {
				match = match || l.GetValue() == label
			}
			if !match {
				continue
			}
			switch {
			case m.Counter != nil:
				sum += m.GetCounter().GetValue()
			case m.Gauge != nil:
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

func counter(reg *prometheus.Registry, name string, labels map[string]string) float64 {
	families, _ := reg.Gather()
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

type sinkFunc func(audit.Event)

func (f sinkFunc) Enqueue(e audit.Event) { f(e) }

func TestTheAuditLoggerRecordsEveryLine(t *testing.T) {
	now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		msg       string
		kv        []any
		want      audit.Event
		logged    []string
		counters  map[string]map[string]string
		notCounts []string
	}{
		{
			name: "a password sign-in is a sign_in event of factor emailpassword and an authentication",
			msg:  "Signed in",
			kv:   []any{"tenant", "public", "user", "u1", "ip", "192.0.2.1", "outcome", "success", "recipe", "emailpassword"},
			want: audit.Event{Type: audit.TypeSignIn, Outcome: "success", Tenant: "public", User: "u1", IP: "192.0.2.1", Factor: "emailpassword",
				Actor: audit.ActorUser, Details: map[string]any{"recipe": "emailpassword"}},
			logged: []string{`"msg":"Signed in"`, `"type":"sign_in"`, `"factor":"emailpassword"`, `"actor":"user"`, `"tenant":"public"`},
			counters: map[string]map[string]string{
				"twofold_core_audit_events_total":    {"type": "sign_in", "outcome": "success"},
				"twofold_core_authentications_total": {"factor": "emailpassword", "outcome": "success"},
			},
		},
		{
			name: "a wrong second-factor code is a factor_attempt failure of its factor",
			msg:  "Refused sign-in code",
			kv:   []any{"tenant", "acme", "user", "u2", "ip", "192.0.2.2", "outcome", "INCORRECT_USER_INPUT_CODE_ERROR", "factor", "otp-email", "failedAttempts", 2},
			want: audit.Event{Type: audit.TypeFactorAttempt, Outcome: "INCORRECT_USER_INPUT_CODE_ERROR", Tenant: "acme", User: "u2", IP: "192.0.2.2",
				Factor: "otp-email", Actor: audit.ActorUser, Details: map[string]any{"failedAttempts": 2}},
			logged: []string{`"type":"factor_attempt"`, `"factor":"otp-email"`, `"failedAttempts":2`},
			counters: map[string]map[string]string{
				"twofold_core_authentications_total": {"factor": "otp-email", "outcome": "INCORRECT_USER_INPUT_CODE_ERROR"},
			},
		},
		{
			name: "a lockout is counted by factor",
			msg:  "Locked sign-in",
			kv:   []any{"tenant", "public", "user", "", "ip", "192.0.2.3", "outcome", "locked", "recipe", "emailpassword", "email", "a@example.com", "forwardedFor", "203.0.113.9"},
			want: audit.Event{Type: audit.TypeLockout, Outcome: "locked", Tenant: "public", IP: "192.0.2.3", ForwardedFor: "203.0.113.9", Factor: "emailpassword",
				Actor: audit.ActorUser, Details: map[string]any{"recipe": "emailpassword", "email": "a@example.com"}},
			logged:    []string{`"type":"lockout"`, `"forwardedFor":"203.0.113.9"`},
			counters:  map[string]map[string]string{"twofold_core_lockouts_total": {"factor": "emailpassword"}},
			notCounts: []string{"twofold_core_authentications_total"},
		},
		{
			name: "an admin revocation is a session_revoked event by the admin and not an authentication",
			msg:  "Revoked user sessions",
			kv:   []any{"tenant", "", "user", "u3", "ip", "10.0.0.1", "outcome", "success", "revoked", 2, "by", "admin"},
			want: audit.Event{Type: audit.TypeSessionRevoked, Outcome: "success", User: "u3", IP: "10.0.0.1", Actor: audit.ActorAdmin,
				Details: map[string]any{"revoked": 2, "by": "admin"}},
			logged:    []string{`"type":"session_revoked"`, `"actor":"admin"`},
			notCounts: []string{"twofold_core_authentications_total", "twofold_core_lockouts_total"},
		},
		{
			name:   "a message the table does not know is recorded as type other, never lost",
			msg:    "Did something new",
			kv:     []any{"tenant", "public", "user", "u4", "ip", "192.0.2.4", "outcome", "success"},
			want:   audit.Event{Type: audit.TypeOther, Outcome: "success", Tenant: "public", User: "u4", IP: "192.0.2.4", Actor: audit.ActorUser},
			logged: []string{`"type":"other"`},
			counters: map[string]map[string]string{
				"twofold_core_audit_events_total": {"type": "other", "outcome": "success"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			var mu sync.Mutex
			var lines []string
			var got []audit.Event
			base := funcr.NewJSON(func(obj string) { mu.Lock(); lines = append(lines, obj); mu.Unlock() }, funcr.Options{}).WithName("audit")
			rec := audit.NewRecorder(reg, sinkFunc(func(e audit.Event) { got = append(got, e) }), func() time.Time { return now })
			before := map[string]float64{}
			for _, n := range tt.notCounts {
				before[n] = metricValue(reg, n, "")
			}
			rec.Logger(base).Info(tt.msg, tt.kv...)

			if len(got) != 1 {
				t.Fatalf("the sink got %d events, want 1", len(got))
			}
			e := got[0]
			if e.ID == "" || e.Schema != audit.SchemaVersion || !e.Time.Equal(now) || e.Message != tt.msg {
				t.Errorf("event = %+v, want an id, schema 1, the clock's time and the message", e)
			}
			tt.want.ID, tt.want.Schema, tt.want.Time, tt.want.Message = e.ID, e.Schema, e.Time, e.Message
			gotJSON, _ := json.Marshal(e)
			wantJSON, _ := json.Marshal(tt.want)
			if string(gotJSON) != string(wantJSON) {
				t.Errorf("event =\n%s\nwant\n%s", gotJSON, wantJSON)
			}
			if len(lines) != 1 {
				t.Fatalf("logged %d lines, want 1: %v", len(lines), lines)
			}
			for _, part := range append(tt.logged, `"logger":"audit"`, `"id":"`+e.ID+`"`) {
				if !strings.Contains(lines[0], part) {
					t.Errorf("log line %s lacks %s", lines[0], part)
				}
			}
			for name, labels := range tt.counters {
				if v := counter(reg, name, labels); v != 1 {
					t.Errorf("%s%v = %v, want 1", name, labels, v)
				}
			}
			for _, n := range tt.notCounts {
				if v := metricValue(reg, n, ""); v != before[n] {
					t.Errorf("%s changed from %v to %v; the event is not one it counts", n, before[n], v)
				}
			}
		})
	}
}

func TestTheAuditLoggerRecordsEvenWhenTheBaseLoggerDiscards(t *testing.T) {
	reg := prometheus.NewRegistry()
	n := 0
	rec := audit.NewRecorder(reg, sinkFunc(func(audit.Event) { n++ }), nil)
	log := rec.Logger(funcr.NewJSON(func(string) {}, funcr.Options{}).V(5).WithName("audit"))
	log.Info("Signed out", "tenant", "public", "user", "u1", "ip", "192.0.2.1", "outcome", "success")
	if n != 1 {
		t.Fatalf("the sink got %d events, want 1", n)
	}
}

// auditCall finds the messages of audit events in the core's code: the message argument of
// Audit, AuditClient, auditEvent, auditLine and a factor's own audit helper.
var auditCall = regexp.MustCompile(`(?:\.Audit|\.AdminAudit|\.AuditClient|\.auditEvent|\.auditLine|\.audit)\([^,()]+(?:\([^()]*\))?,\s*"([^"]+)"`)

// TestEveryAuditMessageOfTheCoreHasAType keeps docs/audit.md complete: an event added to
// the code without a row in audit.Types (and in the document) fails here.
func TestEveryAuditMessageOfTheCoreHasAType(t *testing.T) {
	root := filepath.Join("..")
	found := 0
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range auditCall.FindAllStringSubmatch(string(b), -1) {
			found++
			if _, ok := audit.Types[m[1]]; !ok {
				t.Errorf("%s records audit message %q, which audit.Types does not know: add it there and to docs/audit.md", path, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found < 20 {
		t.Fatalf("found %d audit messages in core/, want the twenty-odd the core records: is the pattern stale?", found)
	}
}

func TestDocsAuditListsEveryType(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "audit.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for msg, ty := range audit.Types {
		if !strings.Contains(doc, "`"+ty.Type+"`") {
			t.Errorf("docs/audit.md does not document type %s", ty.Type)
		}
		if !strings.Contains(doc, msg) {
			t.Errorf("docs/audit.md does not document message %q", msg)
		}
	}
}
