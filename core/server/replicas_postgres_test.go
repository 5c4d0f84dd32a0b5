package server_test

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/core/coretest"
	"github.com/twofold-dev/twofold/core/server"
	"github.com/twofold-dev/twofold/test/pgtest"
)

// twoReplicas starts two cores on one fresh PostgreSQL schema with one clock and one issuer,
// as two replicas of a deployment behind a load balancer; setup runs on the first before the
// second starts.
func twoReplicas(t *testing.T, setup func(a *harness)) (a, b *harness) {
	t.Helper()
	dsn := pgtest.Schema(t)
	clock := coretest.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	a = startHarness(t, clock, dsn)
	setup(a)
	return a, startHarness(t, clock, dsn, func(o *server.Options) { o.Issuer = a.ts.URL + "/auth" })
}

// concurrently sends n requests at once, the even ones to a and the odd ones to b, and
// returns the answers in order.
func concurrently(n int, a, b *harness, send func(h *harness) response) []response {
	out := make([]response, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		h := a
		if i%2 == 1 {
			h = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i] = send(h)
		}()
	}
	close(start)
	wg.Wait()
	return out
}

func TestTOTPLockoutHoldsAcrossReplicas(t *testing.T) {
	var u *mfaUser
	a, b := twoReplicas(t, func(a *harness) {
		tp := a.mfaTenant("acme", `{"requirement":["totp"]}`)
		u = a.signUpMFA(tp, "ada@example.com")
		u.enrolTOTP("phone")
	})
	s := u.signIn()
	a.clock.Advance(30 * time.Second)
	wrong := "123456"
	if wrong == s.code(s.secret) {
		wrong = "654321"
	}
	// Ten wrong codes at once, half on each replica: five are counted, one by one, and the
	// rest find the user locked.
	answers := concurrently(10, a, b, func(h *harness) response {
		return h.do("POST", "/auth/totp/verify", map[string]any{"totp": wrong}, "Authorization", "Bearer "+s.access)
	})
	counted := map[float64]bool{}
	limited := 0
	for _, r := range answers {
		m := mustStatus(t, r, http.StatusOK, "")
		switch m["status"] {
		case "INVALID_TOTP_ERROR":
			counted[m["currentNumberOfFailedAttempts"].(float64)] = true
		case "LIMIT_REACHED_ERROR":
			limited++
		default:
			t.Fatalf("a wrong code answered %s", r.Body)
		}
	}
	if len(counted) != 5 || !counted[1] || !counted[5] || limited != 5 {
		t.Fatalf("failure counts reported %v and %d lockouts; want 1 to 5 once each and 5 lockouts", counted, limited)
	}
	// The right code is refused on both replicas until the lockout ends.
	a.clock.Advance(30 * time.Second)
	for _, h := range []*harness{a, b} {
		r := h.do("POST", "/auth/totp/verify", map[string]any{"totp": s.code(s.secret)}, "Authorization", "Bearer "+s.access)
		mustStatus(t, r, http.StatusOK, "LIMIT_REACHED_ERROR")
	}
}

func TestAPasswordlessCodeIsConsumedOnceAcrossReplicas(t *testing.T) {
	mails, email := startSMTP(t)
	var tp string
	a, b := twoReplicas(t, func(a *harness) {
		tp = a.deliveryTenant("acme", email, `"firstFactors":["otp-email"]`)
	})
	created := b.createCode(tp, map[string]any{"email": "ada@example.com"})
	code := mails.wait(t, 1).code(t)
	answers := concurrently(6, a, b, func(h *harness) response { return h.consume(tp, created, code) })
	ok := 0
	for _, r := range answers {
		if m := mustStatus(t, r, http.StatusOK, ""); m["status"] == "OK" {
			ok++
		}
	}
	if ok != 1 {
		t.Fatalf("%d of 6 concurrent uses of one code on two replicas signed in, want 1", ok)
	}
}
