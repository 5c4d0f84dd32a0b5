package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/coretest"
	"github.com/twofold-dev/twofold/core/factors/totp"
	"github.com/twofold-dev/twofold/core/keys"
	"github.com/twofold-dev/twofold/core/server"
	"github.com/twofold-dev/twofold/core/store"
)

// BenchmarkTOTPVerify is POST /auth/totp/verify with a correct code: verify the session, one
// store transaction for the attempt limit and the device's step (compare-and-set), a second
// for the session's claims, and a signature for the new access token (each algorithm). Replay
// protection accepts one code per device and time step, so the benchmark spreads requests
// over many users and moves an injected clock 30 s forward each time every user has had a
// turn; the client computes each code as an authenticator app would.
func BenchmarkTOTPVerify(b *testing.B) { bySigningAlgorithm(b, benchmarkTOTPVerify) }

func benchmarkTOTPVerify(b *testing.B, alg jose.SignatureAlgorithm) {
	const users = 1024
	ctx := context.Background()
	var nowNanos atomic.Int64
	base := time.Now()
	nowNanos.Store(base.UnixNano())
	clock := func() time.Time { return time.Unix(0, nowNanos.Load()) }

	st, err := coretest.OpenStore(ctx, coretest.Database(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	ts := httptest.NewUnstartedServer(nil)
	srv, err := server.New(ctx, server.Options{Store: st, Issuer: "http://" + ts.Listener.Addr().String() + "/auth", AdminKey: coretest.AdminKey, Clock: clock,
		Keys: keys.Options{Algorithm: alg}})
	if err != nil {
		b.Fatal(err)
	}
	ts.Config.Handler = srv
	ts.Start()
	b.Cleanup(ts.Close)
	if _, _, err := srv.Tenants.Put(ctx, "public", contract.TenantConfig{MFA: contract.MFA{Requirement: mfa.Requirement{{Factor: mfa.TOTP}}}}); err != nil {
		b.Fatal(err)
	}
	secret, err := totp.NewSecret()
	if err != nil {
		b.Fatal(err)
	}
	tokens := make([]atomic.Value, users)
	for i := range users {
		id := fmt.Sprintf("user-%d", i)
		if _, err := st.CreateEmailPasswordUser(ctx, store.NewEmailPasswordUser{UserID: id, TenantID: "public", Email: id + "@example.com", PasswordHash: "unused", Now: base}); err != nil {
			b.Fatal(err)
		}
		if err := st.CreateTOTPDevice(ctx, store.TOTPDevice{UserID: id, Name: "phone", Secret: secret, Digits: 6, Period: 30, Skew: 1, Verified: true, CreatedAt: base}); err != nil {
			b.Fatal(err)
		}
		claim, _ := json.Marshal(mfa.Claim{C: mfa.Completed{mfa.EmailPassword: base.Unix()}})
		_, t, err := srv.Sessions.Create(ctx, "public", id, id, map[string]json.RawMessage{mfa.ClaimKey: claim})
		if err != nil {
			b.Fatal(err)
		}
		tokens[i].Store(t.AccessToken)
	}
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256}
	c := &benchCore{srv: srv, url: ts.URL, client: &http.Client{Transport: tr}}
	cfg := totp.DefaultConfig()
	var n atomic.Int64
	measure(b, func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1) - 1
			user := int(i % users)
			// Round r of requests runs at base + r*30s; the clock only moves forward.
			at := base.Add(time.Duration(i/users) * 30 * time.Second).UnixNano()
			for cur := nowNanos.Load(); cur < at && !nowNanos.CompareAndSwap(cur, at); cur = nowNanos.Load() {
			}
			code, err := cfg.Code(secret, time.Unix(0, at))
			if err != nil {
				b.Error(err)
				return
			}
			resp := c.post(b, "/auth/totp/verify", []byte(`{"totp":"`+code+`"}`), "Authorization", "Bearer "+tokens[user].Load().(string))
			if resp == nil || resp.StatusCode != 200 || resp.Header.Get("st-access-token") == "" {
				b.Errorf("TOTP verify failed: %v", resp)
				return
			}
			tokens[user].Store(resp.Header.Get("st-access-token"))
		}
	})
}
