package mfaengine

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/tenant"
)

func req(t *testing.T, s string) mfa.Requirement {
	t.Helper()
	var r mfa.Requirement
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRequirementComposition(t *testing.T) {
	tenantWith := func(enforcement, requirement string) tenant.Tenant {
		return tenant.Tenant{ID: "acme", Config: contract.TenantConfig{MFA: contract.MFA{Enforcement: enforcement, Requirement: req(t, requirement)}}}
	}
	tests := []struct {
		name   string
		t      tenant.Tenant
		own    []string
		expect string
	}{
		{"Required applies the tenant's requirement to everyone", tenantWith("Required", `["totp"]`), nil, `["totp"]`},
		{"UserOptIn applies nothing to a user who did not opt in", tenantWith("UserOptIn", `["totp"]`), nil, `null`},
		{"UserOptIn applies the tenant's requirement and the user's factors once they opt in", tenantWith("UserOptIn", `["totp"]`), []string{"otp-email"}, `["totp",{"oneOf":["otp-email"]}]`},
		{"the user's own factors follow a Required tenant's items as one oneOf", tenantWith("Required", `[]`), []string{"totp", "otp-email"}, `[{"oneOf":["totp","otp-email"]}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := json.Marshal(Requirement(tt.t, tt.own))
			if string(b) != tt.expect {
				t.Fatalf("Requirement = %s, want %s", b, tt.expect)
			}
		})
	}
}

func TestPolicyState(t *testing.T) {
	now := time.Unix(100_000, 0)
	p := policy{req: req(t, `["totp"]`), setUp: []string{mfa.TOTP}, available: Supported, maxAge: time.Hour}
	if s := p.state(mfa.Completed{"totp": now.Add(-2 * time.Hour).Unix()}, now); s.V || !slices.Equal(s.Next, []string{"totp"}) {
		t.Fatalf("a factor older than the maximum age still counts: %+v", s)
	}
	if s := p.state(mfa.Completed{"totp": now.Add(-time.Minute).Unix()}, now); !s.V {
		t.Fatalf("a fresh factor does not count: %+v", s)
	}
	grace := policy{req: req(t, `["totp"]`), available: Supported, graceUntil: now.Add(time.Second)}
	if s := grace.state(mfa.Completed{}, now); !s.V || !s.InGracePeriod || !slices.Equal(s.Next, []string{"totp"}) {
		t.Fatalf("in the grace period: %+v", s)
	}
	if s := grace.state(mfa.Completed{}, now.Add(time.Second)); s.V {
		t.Fatalf("after the grace period: %+v", s)
	}
	if err := p.canSetUp(p.state(mfa.Completed{}, now), mfa.TOTP); !errors.Is(err, mfa.ErrSetupAlreadySatisfiable) {
		t.Fatalf("canSetUp = %v", err)
	}
}
