package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/crypto/argon2"

	"github.com/twofold-dev/twofold/core/coretest"
	"github.com/twofold-dev/twofold/core/emailpassword"
	"github.com/twofold-dev/twofold/core/keys"
	"github.com/twofold-dev/twofold/core/server"
	"github.com/twofold-dev/twofold/core/session"
	"github.com/twofold-dev/twofold/core/store"
)

var sessionCheckDB = session.VerifyOptions{CheckDatabase: true}

// benchCore is a core with the production defaults (argon2id at OWASP parameters, the real
// clock) on a SQLite file (a PostgreSQL schema with TWOFOLD_TEST_STORE=postgres), behind a real
// HTTP server and a keep-alive client.
type benchCore struct {
	srv    *server.Server
	url    string
	client *http.Client
}

func newBenchCore(b *testing.B) *benchCore { return newBenchCoreSigning(b, jose.RS256) }

// newBenchCoreSigning is newBenchCore with access tokens signed with alg.
func newBenchCoreSigning(b *testing.B, alg jose.SignatureAlgorithm) *benchCore {
	b.Helper()
	ctx := context.Background()
	st, err := coretest.OpenStore(ctx, coretest.Database(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	ts := httptest.NewUnstartedServer(nil)
	srv, err := server.New(ctx, server.Options{Store: st, Issuer: "http://" + ts.Listener.Addr().String() + "/auth", AdminKey: coretest.AdminKey,
		Keys: keys.Options{Algorithm: alg}})
	if err != nil {
		b.Fatal(err)
	}
	ts.Config.Handler = srv
	ts.Start()
	b.Cleanup(ts.Close)
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256}
	return &benchCore{srv: srv, url: ts.URL, client: &http.Client{Transport: tr}}
}

func (c *benchCore) post(b *testing.B, path string, body []byte, headers ...string) *http.Response {
	req, _ := http.NewRequest("POST", c.url+path, bytes.NewReader(body))
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.client.Do(req)
	if err != nil {
		b.Error(err)
		return nil
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func formBody(email, password string) []byte {
	b, _ := json.Marshal(coretest.Form(email, password))
	return b
}

// cpuTime is the CPU time this process has used. The machines are shared, so besides the
// wall-clock rate the benchmarks report CPU time per request (server and in-process client
// together, so an overestimate of the server's share): what a request costs whatever else runs.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measure runs the parallel benchmark body and reports req/s and CPU ms per request; on
// PostgreSQL also the database server's CPU ms per request (db-cpu-ms/op).
func measure(b *testing.B, body func(pb *testing.PB)) {
	b.ResetTimer()
	start, dbStart := cpuTime(), coretest.DBCPU(b)
	b.RunParallel(body)
	used, dbUsed := cpuTime()-start, coretest.DBCPU(b)-dbStart
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	b.ReportMetric(used.Seconds()*1000/float64(b.N), "cpu-ms/op")
	if coretest.OnPostgres() {
		b.ReportMetric(dbUsed.Seconds()*1000/float64(b.N), "db-cpu-ms/op")
	}
}

func BenchmarkSignUp(b *testing.B) {
	c := newBenchCore(b)
	var n atomic.Int64
	measure(b, func(pb *testing.PB) {
		for pb.Next() {
			resp := c.post(b, "/auth/signup", formBody(fmt.Sprintf("user%d@example.com", n.Add(1)), "secret123"))
			if resp == nil || resp.StatusCode != 200 || resp.Header.Get("st-access-token") == "" {
				b.Errorf("sign-up failed: %v", resp)
				return
			}
		}
	})
}

// BenchmarkSignIn is POST /auth/signin with the right password: the argon2id hash, the store
// and a new session whose access token is signed with each algorithm (the signature is the
// largest cost after the hash; compare with BenchmarkSignInHashCeiling in the same run).
func BenchmarkSignIn(b *testing.B) { bySigningAlgorithm(b, benchmarkSignIn) }

func benchmarkSignIn(b *testing.B, alg jose.SignatureAlgorithm) {
	c := newBenchCoreSigning(b, alg)
	if resp := c.post(b, "/auth/signup", formBody("bench@example.com", "secret123")); resp.StatusCode != 200 {
		b.Fatal("seed sign-up failed")
	}
	body := formBody("bench@example.com", "secret123")
	measure(b, func(pb *testing.PB) {
		for pb.Next() {
			resp := c.post(b, "/auth/signin", body)
			if resp == nil || resp.StatusCode != 200 || resp.Header.Get("st-access-token") == "" {
				b.Errorf("sign-in failed: %v", resp)
				return
			}
		}
	})
}

// BenchmarkRefresh rotates refresh tokens: each goroutine follows its own session's chain,
// so every request is a first use of a child token (the promoting, writing path).
// bySigningAlgorithm runs bench once per signing algorithm, side by side in one run.
func bySigningAlgorithm(b *testing.B, bench func(b *testing.B, alg jose.SignatureAlgorithm)) {
	for _, alg := range keys.Algorithms {
		b.Run(string(alg), func(b *testing.B) { bench(b, alg) })
	}
}

func BenchmarkRefresh(b *testing.B) { bySigningAlgorithm(b, benchmarkRefresh) }

func benchmarkRefresh(b *testing.B, alg jose.SignatureAlgorithm) {
	c := newBenchCoreSigning(b, alg)
	const sessions = 64
	tokens := make([]string, sessions)
	for i := range tokens {
		id := fmt.Sprintf("user-%d", i)
		if _, err := c.srv.Store.CreateEmailPasswordUser(context.Background(), store.NewEmailPasswordUser{
			UserID: id, TenantID: "public", Email: id + "@example.com", PasswordHash: "unused", Now: time.Now()}); err != nil {
			b.Fatal(err)
		}
		_, t, err := c.srv.Sessions.Create(context.Background(), "public", id, id, nil)
		if err != nil {
			b.Fatal(err)
		}
		tokens[i] = t.RefreshToken
	}
	var next atomic.Int64
	measure(b, func(pb *testing.PB) {
		token := tokens[next.Add(1)-1]
		for pb.Next() {
			resp := c.post(b, "/auth/session/refresh", nil, "Authorization", "Bearer "+token)
			if resp == nil || resp.StatusCode != 200 {
				b.Errorf("refresh failed: %v", resp)
				return
			}
			token = resp.Header.Get("st-refresh-token")
		}
	})
}

func BenchmarkJWKS(b *testing.B) {
	c := newBenchCore(b)
	measure(b, func(pb *testing.PB) {
		for pb.Next() {
			resp, err := c.client.Get(c.url + "/auth/jwt/jwks.json")
			if err != nil || resp.StatusCode != 200 {
				b.Errorf("jwks failed: %v", err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}

// BenchmarkVerifySession is the cost of Require on a core endpoint: signature, claims and
// the revocation check in the store.
func BenchmarkVerifySession(b *testing.B) {
	c := newBenchCore(b)
	resp := c.post(b, "/auth/signup", formBody("v@example.com", "secret123"))
	token := resp.Header.Get("st-access-token")
	measure(b, func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.srv.Sessions.Verify(context.Background(), token, sessionCheckDB); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkSignInHashCeiling is the ceiling of BenchmarkSignIn: argon2id with the production
// parameters and nothing else, on as many goroutines. Run the two in one run and compare.
func BenchmarkSignInHashCeiling(b *testing.B) {
	p := emailpassword.DefaultParams
	salt := make([]byte, p.SaltLen)
	measure(b, func(pb *testing.PB) {
		for pb.Next() {
			argon2.IDKey([]byte("secret123"), salt, p.Iterations, p.MemoryKiB, p.Parallelism, p.KeyLen)
		}
	})
}
