package mfaengine

import (
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/core/config"
	"github.com/twofold-dev/twofold/core/mfa"
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

func TestRecoveryCodeStandIn(t *testing.T) {
	tests := []struct {
		name      string
		req       string
		completed mfa.Completed
		hasCodes  bool
		want      []string
	}{
		{"a user with unused codes is offered recovery-code next to a single factor", `["totp"]`, mfa.Completed{}, true, []string{"totp", "recovery-code"}},
		{"a user without codes is offered only the factor", `["totp"]`, mfa.Completed{}, false, []string{"totp"}},
		{"a used code satisfies a single-factor item", `["totp"]`, mfa.Completed{"recovery-code": 1}, true, nil},
		{"a used code satisfies a oneOf group", `[{"oneOf":["totp","otp-phone"]}]`, mfa.Completed{"recovery-code": 1}, false, nil},
		{"a used code stands in for one item only", `["totp","otp-email"]`, mfa.Completed{"recovery-code": 1}, true, []string{"otp-email"}},
		{"a used code replaces the last missing member of an allOfInAnyOrder group", `[{"allOfInAnyOrder":["totp","otp-phone"]}]`, mfa.Completed{"totp": 1, "recovery-code": 2}, false, nil},
		{"a used code does not replace two missing members", `[{"allOfInAnyOrder":["totp","otp-phone"]}]`, mfa.Completed{"recovery-code": 2}, true, []string{"totp", "otp-phone"}},
		{"a requirement naming recovery-code gets no stand-in", `["totp","recovery-code"]`, mfa.Completed{"recovery-code": 1}, true, []string{"totp"}},
		{"the stand-in is not offered where it names recovery-code", `[{"oneOf":["totp","recovery-code"]}]`, mfa.Completed{}, true, []string{"totp", "recovery-code"}},
		{"an empty requirement is satisfied", `[]`, mfa.Completed{}, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := nextSet(req(t, tt.req), tt.completed, tt.hasCodes); !slices.Equal(got, tt.want) {
				t.Fatalf("nextSet = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRequirementComposition(t *testing.T) {
	tenantWith := func(enforcement, requirement string) tenant.Tenant {
		return tenant.Tenant{ID: "acme", Config: config.TenantConfig{MFA: config.MFA{Enforcement: enforcement, Requirement: req(t, requirement)}}}
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
