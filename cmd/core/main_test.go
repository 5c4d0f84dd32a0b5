package main

import (
	"context"
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
