package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
)

func TestRunServesAndStopsOnCancel(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "admin-key")
	os.WriteFile(keyFile, []byte("file-key\n"), 0o600)
	tests := []struct {
		name      string
		keyFile   string
		adminCode int
	}{
		{"without an admin key the public API serves and the admin API is off", "", 404},
		{"with a key file the admin API accepts that key", keyFile, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("TWOFOLD_ADMIN_KEY", "")
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			started := make(chan string, 1)
			go func() {
				done <- run(ctx, settings{addr: "127.0.0.1:0", database: filepath.Join(t.TempDir(), "twofold.db"), adminKeyFile: tt.keyFile,
					started: func(addr string) { started <- addr }}, logr.Discard())
			}()
			var url string
			select {
			case addr := <-started:
				url = "http://" + addr
			case err := <-done:
				t.Fatalf("run stopped before serving: %v", err)
			}
			ready, err := http.Get(url + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			ready.Body.Close()
			if ready.StatusCode != 200 {
				t.Fatalf("readyz = %d", ready.StatusCode)
			}
			req, _ := http.NewRequest("GET", url+"/admin/v1/tenants", nil)
			req.Header.Set("Authorization", "Bearer file-key")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.adminCode {
				t.Fatalf("admin API = %d, want %d", resp.StatusCode, tt.adminCode)
			}
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("run returned %v after a clean stop", err)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("run did not stop after the context ended")
			}
		})
	}
}

func TestRunRefusesBadSettings(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty-key")
	os.WriteFile(empty, []byte("\n"), 0o600)
	tests := []struct {
		name string
		s    settings
		want string
	}{
		{"an empty admin key file is refused", settings{addr: "127.0.0.1:0", database: "x.db", adminKeyFile: empty}, "is empty"},
		{"a missing admin key file is refused", settings{addr: "127.0.0.1:0", database: "x.db", adminKeyFile: "/nonexistent/key"}, "read admin key file"},
		{"a database URL of another kind is refused", settings{addr: "127.0.0.1:0", database: "mysql://db/twofold"}, "give a SQLite file path or a postgres:// URL"},
		{"an outbound allow-list entry that is no address or name is refused", settings{addr: "127.0.0.1:0", database: "x.db", outboundAllow: "10.0.0.0/33"}, "-outbound-allow"},
		{"a trusted proxy that is no address or CIDR is refused", settings{addr: "127.0.0.1:0", database: "x.db", trustedProxies: "10.0.0.0/8,sidecar"}, "-trusted-proxies"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(context.Background(), tt.s, logr.Discard())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("run = %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}

func TestTheOutboundAllowListDecidesWhichInternalURLsATenantMaySave(t *testing.T) {
	tests := []struct {
		name  string
		allow string
		want  int
	}{
		{"without an allow-list a webhook on loopback is refused", "", http.StatusBadRequest},
		{"an allow-list naming loopback lets the tenant save it", "127.0.0.1/32", http.StatusCreated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("TWOFOLD_ADMIN_KEY", "the-admin-key")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			started := make(chan string, 1)
			go func() {
				done <- run(ctx, settings{addr: "127.0.0.1:0", database: filepath.Join(t.TempDir(), "twofold.db"), outboundAllow: tt.allow,
					started: func(addr string) { started <- addr }}, logr.Discard())
			}()
			var addr string
			select {
			case addr = <-started:
			case err := <-done:
				t.Fatalf("run stopped before serving: %v", err)
			}
			body := `{"sms":{"provider":"webhook","webhook":{"url":"http://127.0.0.1:9/hook","secret":"s"}}}`
			req, _ := http.NewRequest("PUT", "http://"+addr+"/admin/v1/tenants/acme", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer the-admin-key")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			answer, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Fatalf("PUT = %d %s, want %d", resp.StatusCode, answer, tt.want)
			}
			if tt.want == http.StatusBadRequest && !strings.Contains(string(answer), "sms.webhook.url") {
				t.Fatalf("the refusal %s does not name the field", answer)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("run returned %v after a clean stop", err)
			}
		})
	}
}
