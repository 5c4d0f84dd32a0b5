package server_test

import (
	"testing"

	"github.com/twofold-dev/twofold/core/emailpassword"
)

// A password guesser spreading guesses over two core replicas on one database is stopped
// after emailpassword.MaxSignInFailures wrong passwords, before the right one is tried.
func TestPasswordGuessingIsLockedOutAcrossReplicas(t *testing.T) {
	a := newHarness(t)
	b := startHarness(t, a.clock, a.dbPath)
	mustStatus(t, a.signUp("", "victim@example.com", "secret123"), 200, "OK")

	for i := 0; i < emailpassword.MaxSignInFailures; i++ {
		replica := []*harness{a, b}[i%2]
		mustStatus(t, replica.do("POST", "/auth/signin", form("victim@example.com", "guess-"+string(rune('a'+i))+"1")), 200, "WRONG_CREDENTIALS_ERROR")
	}

	tests := []struct {
		name     string
		replica  *harness
		email    string
		password string
		status   int
		want     string
	}{
		{"the right password is refused on the first replica once the account is locked", a, "victim@example.com", "secret123", 429, "GENERAL_ERROR"},
		{"the right password is refused on the other replica too", b, "victim@example.com", "secret123", 429, "GENERAL_ERROR"},
		{"another account is not affected", a, "someone@example.com", "secret123", 200, "WRONG_CREDENTIALS_ERROR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.replica.do("POST", "/auth/signin", form(tt.email, tt.password))
			if r.Status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tt.status, r.Body)
			}
			mustStatus(t, r, tt.status, tt.want)
			if tt.status == 429 && (r.Header.Get("Retry-After") == "" || r.Header.Get("front-token") != "") {
				t.Fatalf("a locked sign-in must say when to retry and issue no tokens: %v", r.Header)
			}
		})
	}

	t.Run("the lock ends after its duration and a success clears the count", func(t *testing.T) {
		a.clock.Advance(emailpassword.SignInLockDuration)
		mustStatus(t, b.do("POST", "/auth/signin", form("victim@example.com", "secret123")), 200, "OK")
		for i := 0; i < emailpassword.MaxSignInFailures-1; i++ {
			mustStatus(t, a.do("POST", "/auth/signin", form("victim@example.com", "wrong-again1")), 200, "WRONG_CREDENTIALS_ERROR")
		}
		mustStatus(t, a.do("POST", "/auth/signin", form("victim@example.com", "secret123")), 200, "OK")
	})

	t.Run("an unknown email locks the same way, so the lock reveals nothing", func(t *testing.T) {
		for i := 0; i < emailpassword.MaxSignInFailures; i++ {
			a.do("POST", "/auth/signin", form("nobody@example.com", "guess1"))
		}
		r := a.do("POST", "/auth/signin", form("nobody@example.com", "guess1"))
		if r.Status != 429 {
			t.Fatalf("status %d, want 429: %s", r.Status, r.Body)
		}
	})
}
