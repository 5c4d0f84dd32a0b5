package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/passwordless"
)

// seedDevices stores n devices for email, as POST /signinup/code would without sending the
// email, and returns the consume bodies with their right codes.
func seedDevices(b *testing.B, c *benchCore, tenantID, email string, n int) [][]byte {
	b.Helper()
	bodies := make([][]byte, n)
	for i := range bodies {
		d, sec, err := passwordless.NewDevice(passwordless.Contact{Email: email}, passwordless.FlowUserInputCode, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		if err := c.srv.Store.CreatePasswordlessDevice(context.Background(), tenantID, d); err != nil {
			b.Fatal(err)
		}
		bodies[i], _ = json.Marshal(map[string]any{"preAuthSessionId": d.PreAuthSessionID, "deviceId": sec.DeviceID, "userInputCode": sec.UserInputCode})
	}
	return bodies
}

// BenchmarkPasswordlessConsume is POST /signinup/code/consume as a first factor: the device
// checked and deleted in one transaction, the passwordless user found, a session created
// and its token signed. Every request signs the same user in with a fresh device.
func BenchmarkPasswordlessConsume(b *testing.B) { bySigningAlgorithm(b, benchmarkPasswordlessConsume) }

func benchmarkPasswordlessConsume(b *testing.B, alg jose.SignatureAlgorithm) {
	c := newBenchCoreSigning(b, alg)
	ctx := context.Background()
	if _, _, err := c.srv.Tenants.Put(ctx, "acme", contract.TenantConfig{FirstFactors: []string{"otp-email"}}); err != nil {
		b.Fatal(err)
	}
	bodies := seedDevices(b, c, "acme", "bench@example.com", b.N)
	if resp := c.post(b, "/auth/acme/signinup/code/consume", seedDevices(b, c, "acme", "bench@example.com", 1)[0]); resp.StatusCode != 200 {
		b.Fatal("seed sign-up failed")
	}
	var next atomic.Int64
	measure(b, func(pb *testing.PB) {
		for pb.Next() {
			resp := c.post(b, "/auth/acme/signinup/code/consume", bodies[next.Add(1)-1])
			if resp == nil || resp.StatusCode != http.StatusOK || resp.Header.Get("st-access-token") == "" {
				b.Errorf("consume failed: %v", resp)
				return
			}
		}
	})
}

// BenchmarkPasswordlessConsumeSecondFactor is the same consume completing otp-email in an
// existing session: the linking checks, the MFA engine's evaluation, the session's claims
// updated in one transaction and a new access token signed.
func BenchmarkPasswordlessConsumeSecondFactor(b *testing.B) {
	c := newBenchCore(b)
	ctx := context.Background()
	var req mfa.Requirement
	if err := json.Unmarshal([]byte(`["otp-email"]`), &req); err != nil {
		b.Fatal(err)
	}
	if _, _, err := c.srv.Tenants.Put(ctx, "acme", contract.TenantConfig{FirstFactors: []string{"emailpassword"}, MFA: contract.MFA{Requirement: req}}); err != nil {
		b.Fatal(err)
	}
	resp := c.post(b, "/auth/acme/signup", formBody("bench@example.com", "secret123"))
	access := resp.Header.Get("st-access-token")
	if resp.StatusCode != 200 || access == "" {
		b.Fatal("seed sign-up failed")
	}
	auth := []string{"Authorization", "Bearer " + access}
	// The first consume sets the factor up; the measured ones complete it.
	if resp := c.post(b, "/auth/acme/signinup/code/consume", seedDevices(b, c, "acme", "bench@example.com", 1)[0], auth...); resp.StatusCode != 200 {
		b.Fatal("seed setup failed")
	}
	bodies := seedDevices(b, c, "acme", "bench@example.com", b.N)
	var next atomic.Int64
	measure(b, func(pb *testing.PB) {
		for pb.Next() {
			resp := c.post(b, "/auth/acme/signinup/code/consume", bodies[next.Add(1)-1], auth...)
			if resp == nil || resp.StatusCode != http.StatusOK || resp.Header.Get("st-access-token") == "" {
				b.Errorf("consume failed: %v", resp)
				return
			}
		}
	})
}
