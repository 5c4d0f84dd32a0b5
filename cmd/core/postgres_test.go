package main

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/twofold-dev/twofold/test/coreproc"
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

// TestAKilledReplicaLosesNoAnsweredSignUpAndTheOtherServesThem runs two core processes on one
// PostgreSQL schema and kills one with SIGKILL while sign-ups are in flight on it: every
// sign-up it answered OK signs in on the other replica, which never stopped serving, and on the
// killed one once it is back.
func TestAKilledReplicaLosesNoAnsweredSignUpAndTheOtherServesThem(t *testing.T) {
	dsn := pgtest.Schema(t)
	a := coreproc.Start(t, coreproc.Options{Database: dsn})
	b := coreproc.Start(t, coreproc.Options{Database: dsn})
	answered := signUpsUntilKilled(a)
	if len(answered) < 20 {
		t.Fatalf("only %d sign-ups were answered before the workers gave up:\n%s", len(answered), a.Logs())
	}
	for _, email := range answered {
		if _, err := signUpOrIn(b.URL, "/auth/signin", email); err != nil {
			t.Errorf("%s was answered OK by the killed replica but cannot sign in on the other: %v", email, err)
		}
	}
	a.Restart()
	if _, err := signUpOrIn(a.URL, "/auth/signin", answered[0]); err != nil {
		t.Errorf("the killed replica, restarted, refuses %s: %v", answered[0], err)
	}
}
