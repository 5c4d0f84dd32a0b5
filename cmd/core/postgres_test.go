package main

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/twofold-dev/twofold/test/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func TestRunServesFromPostgreSQL(t *testing.T) {
	for _, scheme := range []string{"postgres://", "postgresql://"} {
		t.Run(scheme, func(t *testing.T) {
			dsn := strings.Replace(pgtest.Schema(t), "postgres://", scheme, 1)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			started := make(chan string, 1)
			go func() {
				done <- run(ctx, settings{addr: "127.0.0.1:0", database: dsn, started: func(addr string) { started <- addr }}, logr.Discard())
			}()
			var url string
			select {
			case addr := <-started:
				url = "http://" + addr
			case err := <-done:
				t.Fatalf("run stopped before serving: %v", err)
			}
			resp, err := http.Get(url + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("readyz = %d", resp.StatusCode)
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

func TestRedactHidesThePassword(t *testing.T) {
	got := redact("postgres://twofold:s3cret@db:5432/twofold?sslmode=require")
	if strings.Contains(got, "s3cret") || !strings.Contains(got, "@db:5432/twofold") {
		t.Fatalf("redact = %q", got)
	}
}
