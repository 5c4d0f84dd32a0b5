package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/core/coretest"
	"github.com/twofold-dev/twofold/core/server"
	"github.com/twofold-dev/twofold/core/store"
	"github.com/twofold-dev/twofold/core/store/postgres"
	"github.com/twofold-dev/twofold/test/pgtest"
)

// benchReplicas starts n cores with production settings on one fresh PostgreSQL schema, each
// with its own pool, as n replicas of a deployment.
func benchReplicas(b *testing.B, n int) []*benchCore {
	b.Helper()
	ctx := context.Background()
	dsn := pgtest.Schema(b)
	out := make([]*benchCore, n)
	for i := range out {
		st, err := postgres.Open(ctx, dsn)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { st.Close() })
		ts := httptest.NewUnstartedServer(nil)
		srv, err := server.New(ctx, server.Options{Store: st, Issuer: "http://" + ts.Listener.Addr().String() + "/auth", AdminKey: coretest.AdminKey})
		if err != nil {
			b.Fatal(err)
		}
		ts.Config.Handler = srv
		ts.Start()
		b.Cleanup(ts.Close)
		out[i] = &benchCore{srv: srv, url: ts.URL, client: &http.Client{Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256}}}
	}
	return out
}

// BenchmarkRefreshReplicasPostgres rotates refresh tokens through 1 or 2 cores on one
// PostgreSQL database with 8 requests in flight per CPU, each client goroutine following its
// own session's chain and sending each request to the next replica in turn: what a load
// balancer in front of replicas does, on one machine. It always runs on PostgreSQL.
func BenchmarkRefreshReplicasPostgres(b *testing.B) {
	b.Setenv(coretest.StoreEnv, "postgres") // measure reports the database's CPU too
	for _, n := range []int{1, 2} {
		b.Run(fmt.Sprintf("replicas=%d", n), func(b *testing.B) {
			cores := benchReplicas(b, n)
			const sessions = 256
			tokens := make([]string, sessions)
			for i := range tokens {
				id := fmt.Sprintf("user-%d", i)
				if _, err := cores[0].srv.Store.CreateEmailPasswordUser(context.Background(), store.NewEmailPasswordUser{
					UserID: id, TenantID: "public", Email: id + "@example.com", PasswordHash: "unused", Now: time.Now()}); err != nil {
					b.Fatal(err)
				}
				_, t, err := cores[0].srv.Sessions.Create(context.Background(), "public", id, id, nil)
				if err != nil {
					b.Fatal(err)
				}
				tokens[i] = t.RefreshToken
			}
			var next atomic.Int64
			b.SetParallelism(8)
			measure(b, func(pb *testing.PB) {
				g := next.Add(1) - 1
				token := tokens[g]
				for i := int(g); pb.Next(); i++ {
					resp := cores[i%n].post(b, "/auth/session/refresh", nil, "Authorization", "Bearer "+token)
					if resp == nil || resp.StatusCode != 200 {
						b.Errorf("refresh failed: %v", resp)
						return
					}
					token = resp.Header.Get("st-refresh-token")
				}
			})
		})
	}
}
