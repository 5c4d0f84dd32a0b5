package httpapi_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/twofold-dev/twofold/core/coretest"
	"github.com/twofold-dev/twofold/core/emailpassword"
)

var limits = emailpassword.DefaultSignInLimits

// A password guesser spreading guesses over two core replicas on one database is stopped
// after limits.MaxAccountFailures wrong passwords, before the right one is tried.
func TestPasswordGuessingIsLockedOutAcrossReplicas(t *testing.T) {
	a := coretest.New(t)
	b := coretest.StartOn(t, a.Clock, a.Database)
	coretest.MustStatus(t, a.SignUp("", "victim@example.com", "secret123"), 200, "OK")

	for i := 0; i < limits.MaxAccountFailures; i++ {
		replica := []*coretest.Core{a, b}[i%2]
		coretest.MustStatus(t, replica.Do("POST", "/auth/signin", coretest.Form("victim@example.com", "guess-"+string(rune('a'+i))+"1")), 200, "WRONG_CREDENTIALS_ERROR")
	}

	tests := []struct {
		name     string
		replica  *coretest.Core
		email    string
		password string
		status   int
		want     string
	}{
		{"the right password is refused on the first replica once the account is locked", a, "victim@example.com", "secret123", 200, "GENERAL_ERROR"},
		{"the right password is refused on the other replica too", b, "victim@example.com", "secret123", 200, "GENERAL_ERROR"},
		{"another account is not affected", a, "someone@example.com", "secret123", 200, "WRONG_CREDENTIALS_ERROR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.replica.Do("POST", "/auth/signin", coretest.Form(tt.email, tt.password))
			if r.Status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tt.status, r.Body)
			}
			m := coretest.MustStatus(t, r, tt.status, tt.want)
			if tt.want == "GENERAL_ERROR" && (r.Header.Get("Retry-After") == "" || m["retryAfterMs"] == nil || r.Header.Get("front-token") != "") {
				t.Fatalf("a locked sign-in must say when to retry and issue no tokens: %v %v", r.Header, m)
			}
		})
	}

	t.Run("the lock ends after its duration and a success clears the count", func(t *testing.T) {
		a.Clock.Advance(limits.AccountLock)
		coretest.MustStatus(t, b.Do("POST", "/auth/signin", coretest.Form("victim@example.com", "secret123")), 200, "OK")
		for i := 0; i < limits.MaxAccountFailures-1; i++ {
			coretest.MustStatus(t, a.Do("POST", "/auth/signin", coretest.Form("victim@example.com", "wrong-again1")), 200, "WRONG_CREDENTIALS_ERROR")
		}
		coretest.MustStatus(t, a.Do("POST", "/auth/signin", coretest.Form("victim@example.com", "secret123")), 200, "OK")
	})

	t.Run("an unknown email locks the same way, so the lock reveals nothing", func(t *testing.T) {
		for i := 0; i < limits.MaxAccountFailures; i++ {
			a.Do("POST", "/auth/signin", coretest.Form("nobody@example.com", "guess1"))
		}
		coretest.MustStatus(t, a.Do("POST", "/auth/signin", coretest.Form("nobody@example.com", "guess1")), 200, "GENERAL_ERROR")
	})
}

// Wrong passwords sent all at once used to be checked against the lock before any of them
// was counted, so a burst was evaluated in full. Each attempt is now counted before its hash.
func TestABurstOfConcurrentGuessesIsEvaluatedOnlyUpToTheLimit(t *testing.T) {
	a := coretest.New(t)
	b := coretest.StartOn(t, a.Clock, a.Database)
	coretest.MustStatus(t, a.SignUp("", "victim@example.com", "secret123"), 200, "OK")
	const burst = 40
	statuses := make(chan string, burst)
	var wg sync.WaitGroup
	for i := range burst {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := []*coretest.Core{a, b}[i%2].Do("POST", "/auth/signin", coretest.Form("victim@example.com", fmt.Sprintf("guess-%d-x", i)))
			statuses <- fmt.Sprintf("%d %s", r.Status, r.JSON(t)["status"])
		}()
	}
	wg.Wait()
	close(statuses)
	counts := map[string]int{}
	for s := range statuses {
		counts[s]++
	}
	if counts["200 WRONG_CREDENTIALS_ERROR"] != limits.MaxAccountFailures || counts["200 GENERAL_ERROR"] != burst-limits.MaxAccountFailures {
		t.Fatalf("answers to %d concurrent guesses: %v; want %d evaluated and the rest refused", burst, counts, limits.MaxAccountFailures)
	}
}

// One source guessing a few passwords at each of many accounts never trips an account's lock;
// the per-client budget stops it, and fake X-Forwarded-For entries do not get it a new budget.
func TestOneClientCannotSprayGuessesOverManyAccounts(t *testing.T) {
	h := coretest.New(t)
	coretest.MustStatus(t, h.SignUp("", "victim@example.com", "secret123"), 200, "OK")
	// The harness is reached over loopback, a trusted proxy like the sidecar: the client is
	// the address the proxy appended last.
	from := func(chain string) []string { return []string{"X-Forwarded-For", chain} }
	for i := range limits.MaxClientAttempts {
		coretest.MustStatus(t, h.Do("POST", "/auth/signin", coretest.Form(fmt.Sprintf("user%d@example.com", i), "guess-1x"), from("198.51.100.7")...), 200, "WRONG_CREDENTIALS_ERROR")
	}
	tests := []struct {
		name   string
		chain  string
		status int // 200 signs in; 0 is refused
	}{
		{"the spraying client is refused even for an account it never tried", "198.51.100.7", 0},
		{"the spraying client cannot hide behind addresses it puts in front", "203.0.113.50, 198.51.100.7", 0},
		{"another client over IPv6 still signs in", "2001:db8::1", 200},
		{"another client still signs in", "203.0.113.9", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.Do("POST", "/auth/signin", coretest.Form("victim@example.com", "secret123"), from(tt.chain)...)
			if tt.status == 200 {
				coretest.MustStatus(t, r, 200, "OK")
				return
			}
			if m := coretest.MustStatus(t, r, 200, "GENERAL_ERROR"); !strings.Contains(m["message"].(string), "from your network") || m["retryAfterMs"] == nil {
				t.Fatalf("the refusal does not say it is the network's budget and when to retry: %s", r.Body)
			}
		})
	}
	t.Run("the budget comes back when its window ends", func(t *testing.T) {
		h.Clock.Advance(limits.ClientWindow)
		coretest.MustStatus(t, h.Do("POST", "/auth/signin", coretest.Form("victim@example.com", "secret123"), from("198.51.100.7")...), 200, "OK")
	})
}
