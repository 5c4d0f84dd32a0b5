// Package feedsim measures the enforcement feed at scale: one real core process, a thousand
// simulated sidecars polling it every second, and a steady stream of revocations.
//
//	go test ./test/feedsim -run '^$' -bench . -benchtime 1x
//
// FEEDSIM_SIDECARS, FEEDSIM_RATE (revocations per second) and FEEDSIM_SECONDS change the load
// (1,000, 100 and 20 by default). Each benchmark reports the core's CPU in cores, the bytes of
// an average poll answer, how long after a revocation was acknowledged the sidecars refused
// the session (p50, p99, max over every sidecar and revocation) and how many (sidecar,
// revocation) pairs were still not refused two seconds after the last revocation.
package feedsim_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/core/store"
	"github.com/twofold-dev/twofold/core/store/sqlite"
	"github.com/twofold-dev/twofold/sidecar/proxy"
	"github.com/twofold-dev/twofold/test/coreproc"
)

const tenant = "acme"

func envInt(b *testing.B, name string, def int) int {
	b.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q: want a positive whole number", name, v)
	}
	return n
}

// countingTransport counts the bytes of the answers it carries.
type countingTransport struct {
	rt    http.RoundTripper
	bytes atomic.Int64
	polls atomic.Int64
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

func (t *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.rt.RoundTrip(r)
	if err == nil && strings.HasSuffix(r.URL.Path, "/enforcement") {
		t.polls.Add(1)
		resp.Body = countingBody{resp.Body, &t.bytes}
	}
	return resp, err
}

// follower is one simulated sidecar: it polls and answers whether it refuses a session.
type follower interface {
	poll(ctx context.Context) error
	revoked(handle string) bool
}

// newSidecar is the current sidecar: a real proxy.Proxy following the incremental feed.
func newSidecar(b *testing.B, core *coreproc.Core, client *http.Client) follower {
	p, err := proxy.New(proxy.Options{CoreURL: core.URL, Tenant: tenant, Upstream: "http://127.0.0.1:1", CoreClient: client,
		Logger: discardLogger})
	if err != nil {
		b.Fatal(err)
	}
	return sidecar{p}
}

type sidecar struct{ p *proxy.Proxy }

func (s sidecar) poll(ctx context.Context) error { return s.p.Refresh(ctx) }
func (s sidecar) revoked(handle string) bool     { return s.p.SessionRevoked(handle) }

// fullPoller asks for the version 2 feed, the whole list every time it changes, as sidecars
// of the previous release do.
type fullPoller struct {
	url    string
	client *http.Client
	etag   string
	set    atomic.Pointer[map[string]bool]
}

func (f *fullPoller) poll(ctx context.Context) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.url, nil)
	if f.etag != "" {
		req.Header.Set("If-None-Match", f.etag)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotModified {
		return nil
	}
	var e contract.Enforcement
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		return err
	}
	set := make(map[string]bool, len(e.RevokedSessions))
	for _, r := range e.RevokedSessions {
		set[r.HandleHash] = true
	}
	f.set.Store(&set)
	f.etag = resp.Header.Get("ETag")
	return nil
}

func (f *fullPoller) revoked(handle string) bool {
	set := f.set.Load()
	return set != nil && (*set)[contract.SessionHandleHash(handle)]
}

// revocation is one acknowledged revocation.
type revocation struct {
	handle string
	acked  time.Time
}

func BenchmarkEnforcementFeedAtScale(b *testing.B) {
	sidecars := envInt(b, "FEEDSIM_SIDECARS", 1000)
	rate := envInt(b, "FEEDSIM_RATE", 100)
	seconds := envInt(b, "FEEDSIM_SECONDS", 20)
	modes := []struct {
		name string
		make func(b *testing.B, core *coreproc.Core, client *http.Client) follower
		// mustKeepUp fails the benchmark when a sidecar never refused a revoked session; the
		// version 2 list is measured for comparison only, and falls behind at this scale.
		mustKeepUp bool
	}{
		{"incremental", newSidecar, true},
		{"full list (version 2)", func(b *testing.B, core *coreproc.Core, client *http.Client) follower {
			return &fullPoller{url: core.URL + "/auth/" + tenant + "/enforcement", client: client}
		}, false},
	}
	for _, mode := range modes {
		b.Run(mode.name, func(b *testing.B) {
			for range b.N {
				simulate(b, sidecars, rate, seconds, mode.make, mode.mustKeepUp)
			}
		})
	}
}

func simulate(b *testing.B, sidecars, rate, seconds int, makeFollower func(*testing.B, *coreproc.Core, *http.Client) follower, mustKeepUp bool) {
	ctx := b.Context()
	// Sessions are seeded into the core's database before it starts: creating them through
	// sign-ins would cost a password hash each.
	db := filepath.Join(b.TempDir(), "twofold.db")
	handles := seed(b, db, rate*seconds+rate)
	core := coreproc.Start(b, coreproc.Options{Database: db})
	put, _ := http.NewRequest(http.MethodPut, core.URL+"/admin/v1/tenants/"+tenant,
		strings.NewReader(`{"session":{"accessTokenLifetimeSeconds":3600}}`))
	put.Header.Set("Authorization", "Bearer "+core.AdminKey)
	if resp, err := http.DefaultClient.Do(put); err != nil || resp.StatusCode >= 300 {
		b.Fatalf("creating the tenant: %v %v", resp, err)
	}

	transport := &countingTransport{rt: &http.Transport{MaxIdleConnsPerHost: 512, MaxConnsPerHost: 512, IdleConnTimeout: time.Minute}}
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}
	followers := make([]follower, sidecars)
	for i := range followers {
		followers[i] = makeFollower(b, core, client)
		if err := followers[i].poll(ctx); err != nil {
			b.Fatalf("first poll of sidecar %d: %v", i, err)
		}
	}
	transport.bytes.Store(0)
	transport.polls.Store(0)

	var mu sync.Mutex
	var log []revocation
	latencies := make([][]time.Duration, sidecars)
	var pollErrors atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, f := range followers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seen := map[int]bool{}
			// Each sidecar polls every second from its own phase.
			timer := time.NewTimer(time.Duration(rand.Int64N(int64(time.Second))))
			defer timer.Stop()
			for {
				select {
				case <-stop:
					return
				case <-timer.C:
				}
				timer.Reset(time.Second)
				if err := f.poll(ctx); err != nil {
					pollErrors.Add(1)
					continue
				}
				at := time.Now()
				mu.Lock()
				pending := log[:len(log):len(log)]
				mu.Unlock()
				for k, r := range pending {
					if !seen[k] && f.revoked(r.handle) {
						seen[k] = true
						latencies[i] = append(latencies[i], max(at.Sub(r.acked), 0))
					}
				}
			}
		}()
	}

	cpuBefore, err := core.CPUTime()
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	revoke := &http.Client{Timeout: 10 * time.Second}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	for k := range rate * seconds {
		<-tick.C
		req, _ := http.NewRequest(http.MethodDelete, core.URL+"/admin/v1/sessions/"+handles[k], nil)
		req.Header.Set("Authorization", "Bearer "+core.AdminKey)
		resp, err := revoke.Do(req)
		if err != nil || resp.StatusCode != http.StatusNoContent {
			b.Fatalf("revoking session %d: %v %v", k, resp, err)
		}
		resp.Body.Close()
		mu.Lock()
		log = append(log, revocation{handle: handles[k], acked: time.Now()})
		mu.Unlock()
	}
	tick.Stop()
	// Two more poll rounds so that every sidecar can take the last revocations.
	time.Sleep(2 * time.Second)
	elapsed := time.Since(start)
	cpuAfter, err := core.CPUTime()
	if err != nil {
		b.Fatal(err)
	}
	close(stop)
	wg.Wait()

	var all []time.Duration
	for _, l := range latencies {
		all = append(all, l...)
	}
	slices.Sort(all)
	want := sidecars * len(log)
	if len(all) != want && mustKeepUp {
		b.Errorf("%d of %d (sidecar, revocation) pairs were never refused", want-len(all), want)
	}
	b.ReportMetric(float64(want-len(all)), "never-refused")
	pct := func(p float64) time.Duration {
		if len(all) == 0 {
			return 0
		}
		return all[int(float64(len(all)-1)*p)]
	}
	polls := transport.polls.Load()
	b.ReportMetric((cpuAfter-cpuBefore).Seconds()/elapsed.Seconds(), "core-cores")
	b.ReportMetric(float64(transport.bytes.Load())/float64(max(polls, 1)), "bytes/poll")
	b.ReportMetric(float64(polls)/elapsed.Seconds(), "polls/s")
	b.ReportMetric(pct(0.5).Seconds(), "refused-p50-s")
	b.ReportMetric(pct(0.99).Seconds(), "refused-p99-s")
	b.ReportMetric(pct(1).Seconds(), "refused-max-s")
	b.ReportMetric(float64(pollErrors.Load()), "poll-errors")
}

// seed creates a user with n sessions of the tenant in the SQLite file at path and returns
// their handles.
func seed(b *testing.B, path string, n int) []string {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	if _, err := s.CreateEmailPasswordUser(ctx, store.NewEmailPasswordUser{UserID: "user-1", TenantID: tenant,
		Email: "user-1@example.com", PasswordHash: "unused", Now: now}); err != nil {
		b.Fatal(err)
	}
	handles := make([]string, n)
	for i := range handles {
		handles[i] = fmt.Sprintf("session-%06d", i)
		if err := s.CreateSession(ctx, store.Session{Handle: handles[i], UserID: "user-1", RecipeUserID: "user-1", TenantID: tenant,
			Claims: json.RawMessage(`{}`), CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour), CurrentRefreshHash: "r-" + handles[i]}); err != nil {
			b.Fatal(err)
		}
	}
	return handles
}

var discardLogger = slog.New(slog.NewTextHandler(io.Discard, nil))
