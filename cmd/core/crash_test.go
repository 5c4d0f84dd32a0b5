package main

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/twofold-dev/twofold/test/coreproc"
)

func signUpOrIn(url, path, email string) (int, error) {
	body, _ := json.Marshal(map[string]any{"formFields": []map[string]string{{"id": "email", "value": email}, {"id": "password", "value": "secret123"}}})
	resp, err := http.Post(url+path, "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var out struct{ Status string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return resp.StatusCode, err
	}
	if out.Status != "OK" {
		return resp.StatusCode, fmt.Errorf("status %s", out.Status)
	}
	return resp.StatusCode, nil
}

// signUpsUntilKilled sends sign-ups to core from four workers and kills the process with
// SIGKILL once 20 were answered OK, with other sign-ups still in flight. It returns the
// emails whose sign-up was answered OK: the ones the core promised to keep.
func signUpsUntilKilled(core *coreproc.Core) []string {
	var mu sync.Mutex
	var answered []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				select {
				case <-stop:
					return
				default:
				}
				email := fmt.Sprintf("w%d-%d@example.com", w, i)
				if _, err := signUpOrIn(core.URL, "/auth/signup", email); err != nil {
					continue // in flight when the core died, or refused: no promise was made
				}
				mu.Lock()
				answered = append(answered, email)
				n := len(answered)
				mu.Unlock()
				if n == 20 {
					core.Kill()
					close(stop)
				}
			}
		}()
	}
	wg.Wait()
	return answered
}

// TestACrashLosesNoAnsweredSignUp kills the core with SIGKILL while sign-ups are in flight:
// every sign-up that was answered OK must survive, and the database must be intact.
func TestACrashLosesNoAnsweredSignUp(t *testing.T) {
	core := coreproc.Start(t, coreproc.Options{})
	answered := signUpsUntilKilled(core)
	if len(answered) < 20 {
		t.Fatalf("only %d sign-ups were answered before the workers gave up:\n%s", len(answered), core.Logs())
	}
	core.Restart()
	for _, email := range answered {
		if _, err := signUpOrIn(core.URL, "/auth/signin", email); err != nil {
			t.Errorf("%s was answered OK before the crash but cannot sign in after it: %v", email, err)
		}
	}
	core.Stop()
	db, err := sql.Open("sqlite", "file:"+core.Database+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var check string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check = %q, %v", check, err)
	}
}
