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
func twoReplicas(t *testing.T, setup func(a *coretest.Core)) (a, b *coretest.Core) {
	t.Helper()
	dsn := pgtest.Schema(t)
	clock := coretest.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	a = coretest.StartOn(t, clock, dsn)
	setup(a)
	return a, coretest.StartOn(t, clock, dsn, func(o *server.Options) { o.Issuer = a.TS.URL + "/auth" })
}

// concurrently sends n requests at once, the even ones to a and the odd ones to b, and
// returns the answers in order.
func concurrently(n int, a, b *coretest.Core, send func(h *coretest.Core) coretest.Response) []coretest.Response {
	out := make([]coretest.Response, n)
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
	var u *coretest.MFAUser
	a, b := twoReplicas(t, func(a *coretest.Core) {
		tp := a.MFATenant("acme", `{"requirement":["totp"]}`)
		u = a.SignUpMFA(tp, "ada@example.com")
		u.EnrolTOTP("phone")
	})
	s := u.SignIn()
	a.Clock.Advance(30 * time.Second)
	wrong := "123456"
	if wrong == s.Code(s.Secret) {
		wrong = "654321"
	}
	// Ten wrong codes at once, half on each replica: five are counted, one by one, and the
	// rest find the user locked.
	answers := concurrently(10, a, b, func(h *coretest.Core) coretest.Response {
		return h.Do("POST", "/auth/totp/verify", map[string]any{"totp": wrong}, "Authorization", "Bearer "+s.Access)
	})
	counted := map[float64]bool{}
	limited := 0
	for _, r := range answers {
		m := coretest.MustStatus(t, r, http.StatusOK, "")
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
	a.Clock.Advance(30 * time.Second)
	for _, h := range []*coretest.Core{a, b} {
		r := h.Do("POST", "/auth/totp/verify", map[string]any{"totp": s.Code(s.Secret)}, "Authorization", "Bearer "+s.Access)
		coretest.MustStatus(t, r, http.StatusOK, "LIMIT_REACHED_ERROR")
	}
}

func TestAPasswordlessCodeIsConsumedOnceAcrossReplicas(t *testing.T) {
	mails, email := coretest.StartSMTP(t)
	var tp string
	a, b := twoReplicas(t, func(a *coretest.Core) {
		tp = a.DeliveryTenant("acme", email, `"firstFactors":["otp-email"]`)
	})
	created := b.CreateCode(tp, map[string]any{"email": "ada@example.com"})
	code := mails.Wait(t, 1).Code(t)
	answers := concurrently(6, a, b, func(h *coretest.Core) coretest.Response { return h.Consume(tp, created, code) })
	ok := 0
	for _, r := range answers {
		if m := coretest.MustStatus(t, r, http.StatusOK, ""); m["status"] == "OK" {
			ok++
		}
	}
	if ok != 1 {
		t.Fatalf("%d of 6 concurrent uses of one code on two replicas signed in, want 1", ok)
	}
}
