package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/go-logr/logr"
)

func TestTheAuditWebhookGetsTheEventsWithItsTokenAndIsFlushedOnStop(t *testing.T) {
	var mu sync.Mutex
	var auths []string
	var events []map[string]any
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Events []map[string]any `json:"events"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		auths = append(auths, r.Header.Get("Authorization"))
		events = append(events, body.Events...)
		mu.Unlock()
	}))
	defer collector.Close()
	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte("collector-token\n"), 0o600)
	t.Setenv("TWOFOLD_ADMIN_KEY", "")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	started := make(chan string, 1)
	go func() {
		done <- run(ctx, settings{addr: "127.0.0.1:0", database: filepath.Join(t.TempDir(), "twofold.db"),
			auditWebhookURL: collector.URL, auditWebhookTokenFile: tokenFile, auditWebhookQueueSize: 100,
			started: func(addr string) { started <- addr }}, logr.Discard())
	}()
	var base string
	select {
	case addr := <-started:
		base = "http://" + addr
	case err := <-done:
		t.Fatalf("run stopped before serving: %v", err)
	}
	resp, err := http.Post(base+"/auth/signup", "application/json",
		strings.NewReader(`{"formFields":[{"id":"email","value":"a@example.com"},{"id":"password","value":"secret123"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cancel()
	if err := <-done; err != nil { // run returns once the webhook delivered what was queued
		t.Fatal(err)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(events) != 1 || events[0]["type"] != "sign_up" || events[0]["message"] != "Signed up" || events[0]["tenant"] != "public" {
		t.Fatalf("the collector got %v, want the one sign_up event", events)
	}
	for _, a := range auths {
		if a != "Bearer collector-token" {
			t.Errorf("Authorization = %q, want the token file's token", a)
		}
	}
}

func TestRunRefusesBadAuditWebhookSettings(t *testing.T) {
	tests := []struct {
		name string
		s    settings
		want string
	}{
		{"a URL without a scheme is refused", settings{auditWebhookURL: "siem.example.com/hook", auditWebhookQueueSize: 10}, "not an absolute http(s) URL"},
		{"a token file that cannot be read is refused", settings{auditWebhookURL: "https://siem.example.com", auditWebhookTokenFile: "/nonexistent/token", auditWebhookQueueSize: 10}, "read audit webhook token file"},
		{"a queue of no events is refused", settings{auditWebhookURL: "https://siem.example.com", auditWebhookQueueSize: 0}, "-audit-webhook-queue-size is 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.s.addr, tt.s.database = "127.0.0.1:0", filepath.Join(t.TempDir(), "twofold.db")
			err := run(context.Background(), tt.s, logr.Discard())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("run = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
