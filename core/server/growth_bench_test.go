package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/coretest"
	"github.com/twofold-dev/twofold/core/emailpassword"
	"github.com/twofold-dev/twofold/core/factors/totp"
	"github.com/twofold-dev/twofold/core/server"
	"github.com/twofold-dev/twofold/core/store"
)

// BenchmarkGrowth measures sign-in, refresh, TOTP verify and mfa/info on one tenant seeded
// with 1,000 users and with 1,000,000 (TWOFOLD_GROWTH_USERS changes the larger count), side by
// side in one run, and reports p50 and p99 besides the rate. Every seeded user has an
// emailpassword login (one argon2id hash at the production parameters, computed once) and a
// verified TOTP device: the users, login and device tables hold N rows each.
// Seeding goes through the store's bulk import, not the HTTP API. Sign-ins pick users
// uniformly from all N; the other three use sessions of 1,000 users spread evenly over the
// id space, so each request reads other pages of every index. Seeded users have no live
// session: the sessions table holds what the benchmarks create, as a tenant whose sessions
// are pruned by age holds its active users' sessions, not one per user ever seen. It also reports the database's
// size per user on the mfa-info line (the SQLite file, or the PostgreSQL schema's tables and
// indexes), measured after the other benchmarks' writes.
//
//	go test ./core/server -run '^$' -bench Growth -benchtime 4s -timeout 60m
func BenchmarkGrowth(b *testing.B) {
	large := 1_000_000
	if v := os.Getenv("TWOFOLD_GROWTH_USERS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1000 {
			b.Fatalf("TWOFOLD_GROWTH_USERS=%q: give a user count of at least 1000", v)
		}
		large = n
	}
	cores := []*growthCore{newGrowthCore(b, 1_000), newGrowthCore(b, large)}
	// Each operation runs at both sizes back to back, so the two figures of a pair are
	// measured minutes apart at most on a machine whose speed drifts.
	for _, op := range []struct {
		name string
		run  func(g *growthCore, b *testing.B)
	}{
		{"signin", (*growthCore).signIn},
		{"refresh", (*growthCore).refresh},
		{"totp-verify", (*growthCore).totpVerify},
		{"mfa-info", (*growthCore).mfaInfo},
	} {
		b.Run(op.name, func(b *testing.B) {
			for _, g := range cores {
				b.Run(fmt.Sprintf("users=%d", g.n), func(b *testing.B) { op.run(g, b) })
			}
		})
	}
}

const growthPassword = "correct-horse-battery-2"

// growthCore is a core whose store holds n seeded users, and the sessions the benchmarks use.
type growthCore struct {
	*benchCore
	db     string
	n      int
	secret string
	base   time.Time
	// nowNanos is the core's clock; TOTP verify moves it forward a step per round of users.
	nowNanos atomic.Int64
	// working are the users the benchmarks hold sessions for, spread over the id space.
	working []growthUser
	// turns count each benchmark's requests across its runs (the testing package calls a
	// benchmark again with a larger b.N), so users keep taking turns in order.
	turns map[string]*atomic.Int64
	// seeded is how long seeding took.
	seeded time.Duration
}

type growthUser struct {
	id  string
	mu  sync.Mutex // one request at a time per refresh chain and TOTP device
	acc atomic.Value
	ref string
}

func growthUserID(i int) string { return fmt.Sprintf("growth-%07d", i) }

func newGrowthCore(b *testing.B, n int) *growthCore {
	b.Helper()
	ctx := context.Background()
	g := &growthCore{db: coretest.Database(b), n: n, base: time.Now(), turns: map[string]*atomic.Int64{}}
	for _, name := range []string{"refresh", "totp-verify", "mfa-info"} {
		g.turns[name] = new(atomic.Int64)
	}
	g.nowNanos.Store(g.base.UnixNano())
	st, err := coretest.OpenStore(ctx, g.db)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	ts := httptest.NewUnstartedServer(nil)
	srv, err := server.New(ctx, server.Options{Store: st, Issuer: "http://" + ts.Listener.Addr().String() + "/auth", AdminKey: coretest.AdminKey,
		Clock: func() time.Time { return time.Unix(0, g.nowNanos.Load()) }})
	if err != nil {
		b.Fatal(err)
	}
	ts.Config.Handler = srv
	ts.Start()
	b.Cleanup(ts.Close)
	g.benchCore = &benchCore{srv: srv, url: ts.URL, client: &http.Client{Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256}}}
	if _, _, err := srv.Tenants.Put(ctx, "public", contract.TenantConfig{MFA: contract.MFA{Requirement: mfa.Requirement{{Factor: mfa.TOTP}}}}); err != nil {
		b.Fatal(err)
	}
	if g.secret, err = totp.NewSecret(); err != nil {
		b.Fatal(err)
	}
	hash, err := emailpassword.DefaultParams.Hash(growthPassword)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	g.seed(b, st, hash)
	g.seeded = time.Since(start)
	b.Logf("seeded %d users in %s (%.0f users/s)", n, g.seeded.Round(time.Second), float64(n)/g.seeded.Seconds())

	// The working set: sessions with emailpassword completed (and the access token of one
	// with TOTP completed too, for mfa/info), signed by the core.
	const working = 1000
	g.working = make([]growthUser, working)
	claim, _ := json.Marshal(mfa.Claim{C: mfa.Completed{mfa.EmailPassword: g.base.Unix()}})
	for j := range g.working {
		u := &g.working[j]
		u.id = growthUserID(j * n / working)
		_, t, err := srv.Sessions.Create(ctx, "public", u.id, u.id, map[string]json.RawMessage{mfa.ClaimKey: claim})
		if err != nil {
			b.Fatal(err)
		}
		u.acc.Store(t.AccessToken)
		u.ref = t.RefreshToken
	}
	return g
}

// seed imports the n users through the store in batches of 1,000, each user as sign-up and
// TOTP set-up leave it: a verified login and a verified device.
func (g *growthCore) seed(b *testing.B, st store.Store, hash string) {
	ctx := context.Background()
	const batch = 1000
	users := make([]store.ImportedUser, 0, batch)
	for i := 0; i < g.n; i += batch {
		users = users[:0]
		for j := i; j < min(i+batch, g.n); j++ {
			id := growthUserID(j)
			users = append(users, store.ImportedUser{UserID: id, TenantID: "public", Email: id + "@example.com", PasswordHash: hash, TimeJoined: g.base,
				TOTPDevices: []store.TOTPDevice{{UserID: id, Name: "phone", Secret: g.secret, Digits: 6, Period: 30, Skew: 1, Verified: true, CreatedAt: g.base}}})
		}
		if err := st.ImportUsers(ctx, users); err != nil {
			b.Fatalf("seeding users %d-%d: %v", i, i+len(users)-1, err)
		}
	}
}

// latencies collects request latencies from RunParallel's goroutines.
type latencies struct {
	mu  sync.Mutex
	all []time.Duration
}

func (l *latencies) add(d []time.Duration) {
	l.mu.Lock()
	l.all = append(l.all, d...)
	l.mu.Unlock()
}

// report adds p50 and p99 in milliseconds to b's metrics.
func (l *latencies) report(b *testing.B) {
	if len(l.all) == 0 {
		return
	}
	slices.Sort(l.all)
	at := func(q float64) float64 {
		return float64(l.all[min(len(l.all)-1, int(q*float64(len(l.all))))].Microseconds()) / 1000
	}
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}

// timed runs measure with each request timed: do sends one request and reports success.
func (g *growthCore) timed(b *testing.B, do func() bool) {
	var lat latencies
	measure(b, func(pb *testing.PB) {
		var mine []time.Duration
		defer func() { lat.add(mine) }()
		for pb.Next() {
			t0 := time.Now()
			ok := do()
			mine = append(mine, time.Since(t0))
			if !ok {
				return
			}
		}
	})
	lat.report(b)
}

func (g *growthCore) signIn(b *testing.B) {
	g.timed(b, func() bool {
		id := growthUserID(rand.IntN(g.n))
		resp := g.post(b, "/auth/signin", formBody(id+"@example.com", growthPassword))
		if resp == nil || resp.StatusCode != 200 || resp.Header.Get("st-access-token") == "" {
			b.Errorf("sign-in of %s failed: %v", id, resp)
			return false
		}
		return true
	})
}

// turn returns the benchmark's next request number and the working-set user whose turn it is.
func (g *growthCore) turn(bench string) (int64, *growthUser) {
	i := g.turns[bench].Add(1) - 1
	return i, &g.working[int(i%int64(len(g.working)))]
}

func (g *growthCore) refresh(b *testing.B) {
	g.timed(b, func() bool {
		_, u := g.turn("refresh")
		u.mu.Lock()
		defer u.mu.Unlock()
		resp := g.post(b, "/auth/session/refresh", nil, "Authorization", "Bearer "+u.ref)
		if resp == nil || resp.StatusCode != 200 {
			b.Errorf("refresh of %s failed: %v", u.id, resp)
			return false
		}
		u.ref = resp.Header.Get("st-refresh-token")
		u.acc.Store(resp.Header.Get("st-access-token"))
		return true
	})
}

// totpVerify completes TOTP on the working set's sessions. A device accepts one code per
// step, so round r of turns (every user once) runs at base + r steps of 30 s on the injected
// clock, which only moves forward.
func (g *growthCore) totpVerify(b *testing.B) {
	cfg := totp.DefaultConfig()
	g.timed(b, func() bool {
		i, u := g.turn("totp-verify")
		u.mu.Lock()
		defer u.mu.Unlock()
		at := g.base.Add(time.Duration(i/int64(len(g.working))+1) * 30 * time.Second).UnixNano()
		for cur := g.nowNanos.Load(); cur < at && !g.nowNanos.CompareAndSwap(cur, at); cur = g.nowNanos.Load() {
		}
		code, err := cfg.Code(g.secret, time.Unix(0, at))
		if err != nil {
			b.Error(err)
			return false
		}
		resp := g.post(b, "/auth/totp/verify", []byte(`{"totp":"`+code+`"}`), "Authorization", "Bearer "+u.acc.Load().(string))
		if resp == nil || resp.StatusCode != 200 || resp.Header.Get("st-access-token") == "" {
			b.Errorf("TOTP verify of %s failed: %v", u.id, resp)
			return false
		}
		u.acc.Store(resp.Header.Get("st-access-token"))
		return true
	})
}

func (g *growthCore) mfaInfo(b *testing.B) {
	g.timed(b, func() bool {
		_, u := g.turn("mfa-info")
		req, _ := http.NewRequest(http.MethodPut, g.url+"/auth/mfa/info", nil)
		req.Header.Set("Authorization", "Bearer "+u.acc.Load().(string))
		resp, err := g.client.Do(req)
		if err != nil || resp.StatusCode != 200 {
			b.Errorf("mfa/info of %s failed: %v %v", u.id, resp, err)
			return false
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return true
	})
	g.reportSize(b)
}

// reportSize adds the database's size per user, and how long seeding took, to b's metrics.
// On SQLite the size is the database file's, and the WAL's size is reported apart: the store
// checkpoints in the background, so the file holds everything but the last fraction of a
// second, while the WAL file keeps the length it last grew to and is reused from its start.
func (g *growthCore) reportSize(b *testing.B) {
	bytes, err := databaseSize(g.db)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(bytes)/float64(g.n), "db-bytes/user")
	if !coretest.IsDSN(g.db) {
		if fi, err := os.Stat(g.db + "-wal"); err == nil {
			b.ReportMetric(float64(fi.Size())/(1<<20), "wal-MiB")
		}
	}
	b.ReportMetric(g.seeded.Seconds(), "seed-s")
}

// databaseSize is the SQLite database file, or the PostgreSQL schema's relations with their
// indexes and TOAST.
func databaseSize(db string) (int64, error) {
	if !coretest.IsDSN(db) {
		fi, err := os.Stat(db)
		if err != nil {
			return 0, fmt.Errorf("no database file: %w", err)
		}
		return fi.Size(), nil
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var total int64
	err = conn.QueryRow(ctx, `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r'`).Scan(&total)
	return total, err
}
