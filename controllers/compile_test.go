package controllers

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	authv1alpha1 "github.com/twofold-dev/twofold/api/v1alpha1"
	"github.com/twofold-dev/twofold/contract"
)

func policy(t *testing.T, name, spec string) authv1alpha1.MFAPolicy {
	t.Helper()
	p := authv1alpha1.MFAPolicy{}
	p.Name = name
	if err := json.Unmarshal([]byte(spec), &p.Spec); err != nil {
		t.Fatalf("policy %s: %v", name, err)
	}
	return p
}

func TestCombinePolicies(t *testing.T) {
	tests := []struct {
		name     string
		policies []string // name=spec JSON
		want     string   // the combined contract.MFA as JSON
		conflict string
	}{
		{
			name:     "no policy requires nothing",
			policies: nil,
			want:     `{}`,
		},
		{
			name:     "one policy is taken as written, allowing its factors and recovery codes",
			policies: []string{`a={"requirement":[{"factor":"totp"}]}`},
			want:     `{"requirement":["totp"],"enforcement":"Required","allowedSecondaryFactors":["totp","recovery-code"]}`,
		},
		{
			name: "two policies must both hold, in the order of their names",
			policies: []string{
				`b={"requirement":[{"factor":"otp-phone"}],"maxFactorAge":"12h"}`,
				`a={"requirement":[{"oneOf":["totp","otp-email"]}],"maxFactorAge":"1h","enrollmentGracePeriod":"24h"}`,
			},
			want: `{"requirement":[{"oneOf":["totp","otp-email"]},"otp-phone"],"enforcement":"Required","allowedSecondaryFactors":["otp-email","otp-phone","totp","recovery-code"],"enrollmentGracePeriodSeconds":86400,"maxFactorAgeSeconds":3600}`,
		},
		{
			name: "an item both policies require is required once",
			policies: []string{
				`a={"requirement":[{"factor":"totp"}],"allowedSecondaryFactors":["totp"]}`,
				`b={"requirement":[{"factor":"totp"}],"allowedSecondaryFactors":["totp","webauthn"]}`,
			},
			want: `{"requirement":["totp"],"enforcement":"Required","allowedSecondaryFactors":["totp","webauthn"]}`,
		},
		{
			name: "routes from several policies are merged by path prefix",
			policies: []string{
				`a={"routes":[{"pathPrefix":"/admin","methods":["POST","DELETE"],"requirement":[{"factor":"totp"}],"maxFactorAge":"5m"}]}`,
				`b={"requirement":[{"factor":"totp"}],"routes":[{"pathPrefix":"/healthz","public":true}]}`,
			},
			want: `{"requirement":["totp"],"enforcement":"Required","allowedSecondaryFactors":["totp","recovery-code"],"routes":[{"pathPrefix":"/admin","methods":["DELETE","POST"],"requirement":["totp"],"maxFactorAgeSeconds":300},{"pathPrefix":"/healthz","public":true}]}`,
		},
		{
			name: "policies that disagree on enforcement conflict",
			policies: []string{
				`a={"requirement":[{"factor":"totp"}],"enforcement":"Required"}`,
				`b={"requirement":[{"factor":"otp-email"}],"enforcement":"UserOptIn"}`,
			},
			conflict: "MFAPolicy a enforces Required but b enforces UserOptIn",
		},
		{
			name: "two different rules for one path conflict",
			policies: []string{
				`a={"routes":[{"pathPrefix":"/admin","maxFactorAge":"5m"}]}`,
				`b={"routes":[{"pathPrefix":"/admin","public":true}]}`,
			},
			conflict: "MFAPolicies a and b both set a different rule for path prefix /admin",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ps []authv1alpha1.MFAPolicy
			for _, p := range tt.policies {
				name, spec, _ := strings.Cut(p, "=")
				ps = append(ps, policy(t, name, spec))
			}
			got, err := combinePolicies(ps)
			if tt.conflict != "" {
				if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), tt.conflict) {
					t.Fatalf("error = %v, want a conflict saying %q", err, tt.conflict)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(got)
			if string(b) != tt.want {
				t.Fatalf("combined =\n  %s\nwant\n  %s", b, tt.want)
			}
		})
	}
}

func TestCompileTenantCarriesTheCodeSendingLimits(t *testing.T) {
	contact, user, window := int32(3), int32(7), authv1alpha1.Duration("30m")
	tests := []struct {
		name   string
		limits *authv1alpha1.CodeSendingLimits
		want   contract.CodeSending
	}{
		{"no limits leave the core's defaults", nil, contract.CodeSending{}},
		{"limits given are carried in seconds", &authv1alpha1.CodeSendingLimits{MaxPerContact: &contact, MaxPerUser: &user, Window: &window},
			contract.CodeSending{MaxPerContact: 3, MaxPerUser: 7, WindowSeconds: 1800}},
		{"a partial block leaves the rest to the defaults", &authv1alpha1.CodeSendingLimits{MaxPerContact: &contact},
			contract.CodeSending{MaxPerContact: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tenant := &authv1alpha1.AuthTenant{Spec: authv1alpha1.AuthTenantSpec{FirstFactors: []authv1alpha1.FactorID{"otp-email"}, CodeSending: tt.limits}}
			cfg, err := compileTenant(tenant, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.CodeSending != tt.want {
				t.Fatalf("codeSending = %+v, want %+v", cfg.CodeSending, tt.want)
			}
		})
	}
}

func TestCompileTenantCarriesWhetherOTPEmailMayUseNewAddresses(t *testing.T) {
	for _, allow := range []bool{false, true} {
		tenant := &authv1alpha1.AuthTenant{Spec: authv1alpha1.AuthTenantSpec{FirstFactors: []authv1alpha1.FactorID{"emailpassword"},
			OTPEmail: &authv1alpha1.OTPEmailSettings{AllowNewAddresses: allow}}}
		cfg, err := compileTenant(tenant, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.OTPEmail.AllowNewAddresses != allow {
			t.Fatalf("allowNewAddresses %v compiled to %v", allow, cfg.OTPEmail.AllowNewAddresses)
		}
	}
}
