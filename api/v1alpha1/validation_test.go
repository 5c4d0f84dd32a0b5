package v1alpha1_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	authv1alpha1 "github.com/twofold-dev/twofold/api/v1alpha1"
	"github.com/twofold-dev/twofold/test/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	var err error
	env, err = testenv.Start(testenv.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

func decode(t *testing.T, doc string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
		t.Fatalf("decoding test object: %v", err)
	}
	if u.GetNamespace() == "" {
		u.SetNamespace("default")
	}
	return u
}

func TestSamplesAreAccepted(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(testenv.RepoRoot(), "config", "samples", "auth_*.yaml"))
	if err != nil || len(files) < 6 {
		t.Fatalf("expected at least 6 samples in config/samples, found %d (%v)", len(files), err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			u := decode(t, string(b))
			u.SetNamespace("samples")
			ensureNamespace(t, "samples")
			if err := env.Client.Create(context.Background(), u); err != nil {
				t.Fatalf("the API server refused the sample: %v", err)
			}
		})
	}

	t.Run("defaults are filled in by the API server", func(t *testing.T) {
		var tenant authv1alpha1.AuthTenant
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: "samples", Name: "acme"}, &tenant); err != nil {
			t.Fatal(err)
		}
		if tenant.Spec.DeletionPolicy != "Retain" {
			t.Errorf("deletionPolicy = %q, want the default Retain", tenant.Spec.DeletionPolicy)
		}
		if tenant.Spec.Email.SMTP.TLS != "StartTLS" {
			t.Errorf("smtp.tls = %q, want the default StartTLS", tenant.Spec.Email.SMTP.TLS)
		}
		var policy authv1alpha1.MFAPolicy
		if err := env.Client.Get(context.Background(), client.ObjectKey{Namespace: "samples", Name: "totp-or-email-otp"}, &policy); err != nil {
			t.Fatal(err)
		}
		if policy.Spec.Enforcement != "Required" {
			t.Errorf("enforcement = %q, want the default Required", policy.Spec.Enforcement)
		}
		if got := policy.Spec.Requirement[0].OneOf; len(got) != 2 || got[0] != authv1alpha1.FactorTOTP {
			t.Errorf("requirement oneOf = %v, want [totp otp-email]", got)
		}
	})
}

func ensureNamespace(t *testing.T, name string) {
	t.Helper()
	ns := decode(t, "apiVersion: v1\nkind: Namespace\nmetadata: {name: "+name+"}")
	ns.SetNamespace("")
	if err := env.Client.Create(context.Background(), ns); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatal(err)
	}
}

const tenantHead = "apiVersion: auth.twofold.dev/v1alpha1\nkind: AuthTenant\nmetadata: {name: %s}\n"
const policyHead = "apiVersion: auth.twofold.dev/v1alpha1\nkind: MFAPolicy\nmetadata: {name: %s}\n"

func TestInvalidObjectsAreRefusedWithAClearMessage(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want string
	}{
		{
			name: "an unknown first factor is refused",
			doc:  tenantHead + "spec: {firstFactors: [sms-magic]}",
			want: `Unsupported value: "sms-magic"`,
		},
		{
			name: "a code-sending window longer than a day is refused",
			doc:  tenantHead + "spec: {firstFactors: [otp-email], codeSending: {window: 48h}}",
			want: "codeSending.window must be a duration between 1m and 24h",
		},
		{
			name: "a code-sending limit of zero is refused",
			doc:  tenantHead + "spec: {firstFactors: [otp-email], codeSending: {maxPerContact: 0}}",
			want: "spec.codeSending.maxPerContact: Invalid value: 0: spec.codeSending.maxPerContact in body should be greater than or equal to 1",
		},
		{
			name: "totp as a first factor is refused",
			doc:  tenantHead + "spec: {firstFactors: [emailpassword, totp]}",
			want: "totp cannot be a first factor",
		},
		{
			name: "a passkey relying party id with a scheme is refused",
			doc:  tenantHead + "spec: {firstFactors: [webauthn], webauthn: {rpId: 'https://example.com'}}",
			want: "webauthn.rpId must be a lower-case domain name",
		},
		{
			name: "passkey origins without a relying party id are refused",
			doc:  tenantHead + "spec: {firstFactors: [webauthn], webauthn: {origins: ['https://a.example.com']}}",
			want: "webauthn.origins needs webauthn.rpId",
		},
		{
			name: "a plain http passkey origin is refused",
			doc:  tenantHead + "spec: {firstFactors: [webauthn], webauthn: {rpId: example.com, origins: ['http://a.example.com']}}",
			want: "each webauthn origin must be an https origin",
		},
		{
			name: "an unknown user verification is refused",
			doc:  tenantHead + "spec: {firstFactors: [webauthn], webauthn: {userVerification: always}}",
			want: `Unsupported value: "always"`,
		},
		{
			name: "recovery-code as a first factor is refused",
			doc:  tenantHead + "spec: {firstFactors: [recovery-code]}",
			want: "recovery-code cannot be a first factor",
		},
		{
			name: "an empty list of first factors is refused",
			doc:  tenantHead + "spec: {firstFactors: []}",
			want: "spec.firstFactors: Invalid value: 0: spec.firstFactors in body should have at least 1 items",
		},
		{
			name: "a missing list of first factors is refused",
			doc:  tenantHead + "spec: {}",
			want: "spec.firstFactors: Required value",
		},
		{
			name: "a first factor listed twice is refused",
			doc:  tenantHead + "spec: {firstFactors: [emailpassword, emailpassword]}",
			want: `spec.firstFactors[1]: Duplicate value: "emailpassword"`,
		},
		{
			name: "thirdparty without a provider is refused",
			doc:  tenantHead + "spec: {firstFactors: [thirdparty]}",
			want: "firstFactors lists thirdparty, so thirdPartyProviders needs at least one provider",
		},
		{
			name: "a provider secret reference without a key is refused",
			doc: tenantHead + `spec:
  firstFactors: [thirdparty]
  thirdPartyProviders: [{id: google, type: Google, clientId: abc, clientSecretRef: {name: google}}]`,
			want: "spec.thirdPartyProviders[0].clientSecretRef.key: Required value",
		},
		{
			name: "a provider secret reference with an invalid Secret name is refused",
			doc: tenantHead + `spec:
  firstFactors: [thirdparty]
  thirdPartyProviders: [{id: google, type: Google, clientId: abc, clientSecretRef: {name: Google_OAuth, key: secret}}]`,
			want: "spec.thirdPartyProviders[0].clientSecretRef.name: Invalid value",
		},
		{
			name: "a generic OIDC provider without an issuer is refused",
			doc: tenantHead + `spec:
  firstFactors: [thirdparty]
  thirdPartyProviders: [{id: corp, type: OIDC, clientId: abc, clientSecretRef: {name: corp, key: secret}}]`,
			want: "an OIDC provider needs issuer, used for discovery",
		},
		{
			name: "two providers with the same id are refused",
			doc: tenantHead + `spec:
  firstFactors: [thirdparty]
  thirdPartyProviders:
    - {id: google, type: Google, clientId: a, clientSecretRef: {name: g, key: s}}
    - {id: google, type: Google, clientId: b, clientSecretRef: {name: g, key: s}}`,
			want: `spec.thirdPartyProviders[1]: Duplicate value: {"id":"google"}`,
		},
		{
			name: "email codes without email delivery are refused",
			doc:  tenantHead + "spec: {firstFactors: [otp-email]}",
			want: "firstFactors lists otp-email or link-email, which send email: configure spec.email",
		},
		{
			name: "text-message codes without SMS delivery are refused",
			doc:  tenantHead + "spec: {firstFactors: [otp-phone]}",
			want: "firstFactors lists otp-phone or link-phone, which send text messages: configure spec.sms",
		},
		{
			name: "Twilio delivery without its settings is refused",
			doc:  tenantHead + "spec: {firstFactors: [otp-phone], sms: {provider: Twilio}}",
			want: "provider Twilio needs the twilio settings",
		},
		{
			name: "an access-token lifetime that is not a duration is refused",
			doc:  tenantHead + "spec: {firstFactors: [emailpassword], session: {accessTokenLifetime: ten minutes}}",
			want: "accessTokenLifetime must be a duration between 1m and 24h",
		},
		{
			name: "an access-token lifetime of a week is refused",
			doc:  tenantHead + "spec: {firstFactors: [emailpassword], session: {accessTokenLifetime: 168h}}",
			want: "accessTokenLifetime must be a duration between 1m and 24h",
		},
		{
			name: "SameSite None cookies that are not Secure are refused",
			doc:  tenantHead + "spec: {firstFactors: [emailpassword], session: {cookieSameSite: None, cookieSecure: false}}",
			want: "cookieSameSite None requires cookieSecure",
		},
		{
			name: "a tenant id with capital letters is refused",
			doc:  tenantHead + "spec: {tenantId: Acme, firstFactors: [emailpassword]}",
			want: "tenantId must be lower-case letters, digits and '-'",
		},
		{
			name: "a tenant id that collides with an API path is refused",
			doc:  tenantHead + "spec: {tenantId: session, firstFactors: [emailpassword]}",
			want: "tenantId is a reserved word of the auth API paths",
		},
		{
			name: "an object name that is not a valid tenant id needs spec.tenantId",
			doc:  strings.Replace(tenantHead, "%s", "acme.example.com", 1) + "spec: {firstFactors: [emailpassword]}",
			want: "the object name is not a valid tenant id",
		},
		{
			name: "a website domain with a path is refused",
			doc:  tenantHead + "spec: {firstFactors: [emailpassword], websiteDomain: 'https://app.example.com/login'}",
			want: "websiteDomain must be an origin such as https://app.example.com",
		},
		{
			name: "an unknown deletion policy is refused",
			doc:  tenantHead + "spec: {firstFactors: [emailpassword], deletionPolicy: Orphan}",
			want: `spec.deletionPolicy: Unsupported value: "Orphan"`,
		},
		{
			name: "an unknown secondary factor is refused",
			doc:  policyHead + "spec: {tenantRefs: [acme], requirement: [{factor: sms}]}",
			want: `Unsupported value: "sms"`,
		},
		{
			name: "thirdparty as a secondary factor is refused",
			doc:  policyHead + "spec: {tenantRefs: [acme], requirement: [{factor: thirdparty}]}",
			want: "thirdparty cannot be a secondary factor",
		},
		{
			name: "thirdparty inside a oneOf group is refused",
			doc:  policyHead + "spec: {tenantRefs: [acme], requirement: [{oneOf: [totp, thirdparty]}]}",
			want: "thirdparty cannot be a secondary factor",
		},
		{
			name: "a requirement item with two kinds set is refused",
			doc:  policyHead + "spec: {tenantRefs: [acme], requirement: [{factor: totp, oneOf: [otp-email]}]}",
			want: "set exactly one of factor, oneOf and allOfInAnyOrder",
		},
		{
			name: "an empty requirement item is refused",
			doc:  policyHead + "spec: {tenantRefs: [acme], requirement: [{}]}",
			want: "set exactly one of factor, oneOf and allOfInAnyOrder",
		},
		{
			name: "a factor listed twice in a group is refused",
			doc:  policyHead + "spec: {tenantRefs: [acme], requirement: [{allOfInAnyOrder: [totp, totp]}]}",
			want: `Duplicate value: "totp"`,
		},
		{
			name: "the same plain factor listed twice is refused",
			doc:  policyHead + "spec: {tenantRefs: [acme], requirement: [{factor: totp}, {factor: totp}]}",
			want: "a factor may appear only once as a plain requirement item",
		},
		{
			name: "a policy without tenants is refused",
			doc:  policyHead + "spec: {tenantRefs: [], requirement: [{factor: totp}]}",
			want: "spec.tenantRefs: Invalid value: 0: spec.tenantRefs in body should have at least 1 items",
		},
		{
			name: "a policy with neither requirement nor routes is refused",
			doc:  policyHead + "spec: {tenantRefs: [acme]}",
			want: "a policy needs a requirement, routes, or both",
		},
		{
			name: "an unknown enforcement mode is refused",
			doc:  policyHead + "spec: {tenantRefs: [acme], requirement: [{factor: totp}], enforcement: Sometimes}",
			want: `Unsupported value: "Sometimes"`,
		},
		{
			name: "a maximum factor age that is not a duration is refused",
			doc:  policyHead + "spec: {tenantRefs: [acme], requirement: [{factor: totp}], maxFactorAge: 1d}",
			want: "maxFactorAge must be a duration of at least 1m",
		},
		{
			name: "an enrollment grace period over 90 days is refused",
			doc:  policyHead + "spec: {tenantRefs: [acme], requirement: [{factor: totp}], enrollmentGracePeriod: 3000h}",
			want: "enrollmentGracePeriod must be a duration of at most 2160h",
		},
		{
			name: "a public route with a requirement is refused",
			doc:  policyHead + "spec: {tenantRefs: [acme], routes: [{pathPrefix: /health, public: true, requirement: [{factor: totp}]}]}",
			want: "a public route cannot also have a requirement or maxFactorAge",
		},
		{
			name: "a route that neither requires nor frees anything is refused",
			doc:  policyHead + "spec: {tenantRefs: [acme], routes: [{pathPrefix: /admin}]}",
			want: "a route needs a requirement, a maxFactorAge, or public: true",
		},
		{
			name: "a relative route path is refused",
			doc:  policyHead + "spec: {tenantRefs: [acme], routes: [{pathPrefix: admin, public: true}]}",
			want: "pathPrefix must be an absolute path such as /admin",
		},
		{
			name: "an unknown HTTP method is refused",
			doc:  policyHead + "spec: {tenantRefs: [acme], routes: [{pathPrefix: /admin, methods: [FETCH], requirement: [{factor: totp}]}]}",
			want: `Unsupported value: "FETCH"`,
		},
		{
			name: "a step-up age under 30 seconds is refused",
			doc:  policyHead + "spec: {tenantRefs: [acme], routes: [{pathPrefix: /admin, maxFactorAge: 5s}]}",
			want: "maxFactorAge must be a duration of at least 30s",
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := tt.doc
			if strings.Contains(doc, "%s") {
				doc = fmt.Sprintf(doc, fmt.Sprintf("invalid-%d", i))
			}
			u := decode(t, doc)
			err := env.Client.Create(context.Background(), u)
			if err == nil {
				_ = env.Client.Delete(context.Background(), u)
				t.Fatalf("the API server accepted the object; want it refused with %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("refused with\n  %v\nwant a message containing\n  %q", err, tt.want)
			}
		})
	}
}

func TestTenantIDCannotChangeOnceSet(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name      string
		initial   string // spec.tenantId at creation; empty means defaulted from the name
		updated   string
		wantError bool
	}{
		{"changing an explicit tenant id is refused", "blue", "green", true},
		{"removing an explicit tenant id that differs from the name is refused", "blue", "", true},
		{"setting a tenant id different from the name it defaulted to is refused", "", "green", true},
		{"spelling out the tenant id the name gave is allowed", "", "immutable-3", false},
		{"keeping the tenant id is allowed", "blue", "blue", false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := fmt.Sprintf("immutable-%d", i)
			obj := &authv1alpha1.AuthTenant{}
			obj.Name, obj.Namespace = name, "default"
			obj.Spec.TenantID = tt.initial
			obj.Spec.FirstFactors = []authv1alpha1.FactorID{authv1alpha1.FactorEmailPassword}
			if err := env.Client.Create(ctx, obj); err != nil {
				t.Fatal(err)
			}
			obj.Spec.TenantID = tt.updated
			err := env.Client.Update(ctx, obj)
			if tt.wantError {
				if err == nil || !strings.Contains(err.Error(), "spec.tenantId cannot be changed once set") {
					t.Fatalf("update error = %v, want the immutability message", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("update refused: %v", err)
			}
		})
	}
}
