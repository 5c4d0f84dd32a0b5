package controllers_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/twofold-dev/twofold/api/v1alpha1"
	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/core/adminclient"
	"github.com/twofold-dev/twofold/test/coreproc"
)

const wait = 15 * time.Second

type fixture struct {
	t     *testing.T
	ns    string
	core  *coreproc.Core
	admin *adminclient.Client
}

func setup(t *testing.T, resync time.Duration) *fixture {
	t.Helper()
	core := coreproc.Start(t, coreproc.Options{})
	admin := adminclient.New(core.URL, func() (string, error) { return core.AdminKey, nil }, nil)
	ns := startManager(t, admin, resync)
	return &fixture{t: t, ns: ns, core: core, admin: admin}
}

func (f *fixture) create(obj client.Object) {
	f.t.Helper()
	obj.SetNamespace(f.ns)
	if err := env.Client.Create(context.Background(), obj); err != nil {
		f.t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
	}
}

func (f *fixture) key(name string) client.ObjectKey {
	return client.ObjectKey{Namespace: f.ns, Name: name}
}

func (f *fixture) secret(name string, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}, StringData: data}
	f.create(s)
	return s
}

func (f *fixture) tenant(name string, mutate ...func(*authv1alpha1.AuthTenantSpec)) *authv1alpha1.AuthTenant {
	at := &authv1alpha1.AuthTenant{ObjectMeta: metav1.ObjectMeta{Name: name}}
	at.Spec.FirstFactors = []authv1alpha1.FactorID{authv1alpha1.FactorEmailPassword}
	for _, m := range mutate {
		m(&at.Spec)
	}
	f.create(at)
	return at
}

func (f *fixture) policy(name string, spec string) *authv1alpha1.MFAPolicy {
	p := &authv1alpha1.MFAPolicy{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := json.Unmarshal([]byte(spec), &p.Spec); err != nil {
		f.t.Fatal(err)
	}
	f.create(p)
	return p
}

// coreState returns the tenant as the core holds it, or nil when the core does not know it.
func (f *fixture) coreState(tenantID string) *contract.TenantState {
	st, err := f.admin.GetTenant(context.Background(), tenantID)
	if errors.Is(err, adminclient.ErrNotFound) {
		return nil
	}
	if err != nil {
		f.t.Fatalf("reading tenant %s from the core: %v", tenantID, err)
	}
	return st
}

func requirementJSON(st *contract.TenantState) string {
	if st == nil {
		return "<no tenant>"
	}
	b, _ := json.Marshal(st.Config.MFA.Requirement)
	return string(b)
}

func (f *fixture) waitRequirement(tenantID, want string) {
	f.t.Helper()
	eventually(f.t, "core requirement of "+tenantID+" = "+want, wait, func() (bool, string) {
		got := requirementJSON(f.coreState(tenantID))
		return got == want, got
	})
}

func withGoogle(secretName string) func(*authv1alpha1.AuthTenantSpec) {
	return func(s *authv1alpha1.AuthTenantSpec) {
		s.FirstFactors = append(s.FirstFactors, authv1alpha1.FactorThirdParty)
		s.ThirdPartyProviders = []authv1alpha1.ThirdPartyProvider{{
			ID: "google", Type: "Google", ClientID: "client-123",
			ClientSecretRef: authv1alpha1.SecretKeySelector{Name: secretName, Key: "client-secret"},
		}}
	}
}

func TestAnAppliedTenantIsLiveInTheCore(t *testing.T) {
	f := setup(t, time.Minute)
	f.secret("google", map[string]string{"client-secret": "s3cret-1"})
	f.tenant("acme", withGoogle("google"), func(s *authv1alpha1.AuthTenantSpec) {
		s.Branding = &authv1alpha1.Branding{AppName: "Acme"}
	})
	eventually(t, "tenant Ready", wait, tenantReady(t, f.key("acme"), authv1alpha1.ReasonSynced))

	st := f.coreState("acme")
	if st == nil {
		t.Fatal("the core does not know tenant acme")
	}
	if got := strings.Join(st.Config.FirstFactors, ","); got != "emailpassword,thirdparty" {
		t.Errorf("first factors in the core = %s", got)
	}
	if p := st.Config.ThirdPartyProviders; len(p) != 1 || p[0].ClientSecret != contract.Redacted || p[0].ClientID != "client-123" {
		t.Errorf("providers in the core = %+v, want google with a redacted secret", p)
	}
	var at authv1alpha1.AuthTenant
	if err := env.Client.Get(context.Background(), f.key("acme"), &at); err != nil {
		t.Fatal(err)
	}
	if at.Status.ConfigHash != st.ConfigHash || at.Status.ConfigVersion != st.ConfigVersion || at.Status.TenantID != "acme" {
		t.Errorf("status = %+v, core = version %d hash %s", at.Status, st.ConfigVersion, st.ConfigHash)
	}

	t.Run("a spec change reaches the core as a new version", func(t *testing.T) {
		before := st.ConfigVersion
		at.Spec.FirstFactors = []authv1alpha1.FactorID{authv1alpha1.FactorEmailPassword}
		at.Spec.ThirdPartyProviders = nil
		if err := env.Client.Update(context.Background(), &at); err != nil {
			t.Fatal(err)
		}
		eventually(t, "core drops thirdparty", wait, func() (bool, string) {
			st := f.coreState("acme")
			return st.ConfigVersion == before+1 && len(st.Config.ThirdPartyProviders) == 0, fmt.Sprintf("version %d providers %d", st.ConfigVersion, len(st.Config.ThirdPartyProviders))
		})
	})
}

func TestRotatingAReferencedSecretResyncsTheTenant(t *testing.T) {
	f := setup(t, time.Minute)
	s := f.secret("google", map[string]string{"client-secret": "first"})
	f.tenant("acme", withGoogle("google"))
	eventually(t, "tenant Ready", wait, tenantReady(t, f.key("acme"), authv1alpha1.ReasonSynced))
	first := f.coreState("acme")

	s.StringData = map[string]string{"client-secret": "second"}
	if err := env.Client.Update(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	eventually(t, "core takes the new secret", wait, func() (bool, string) {
		st := f.coreState("acme")
		return st.ConfigHash != first.ConfigHash && st.ConfigVersion == first.ConfigVersion+1, fmt.Sprintf("version %d", st.ConfigVersion)
	})
}

func TestAMissingSecretIsAConditionUntilItAppears(t *testing.T) {
	f := setup(t, time.Minute)
	f.tenant("acme", withGoogle("late"))
	eventually(t, "SecretNotFound", wait, tenantReady(t, f.key("acme"), authv1alpha1.ReasonSecretNotFound))
	if f.coreState("acme") != nil {
		t.Fatal("the core got a tenant whose secret is missing")
	}
	f.secret("late", map[string]string{"client-secret": "here"})
	eventually(t, "tenant Ready once the Secret exists", wait, tenantReady(t, f.key("acme"), authv1alpha1.ReasonSynced))
}

func TestPoliciesBecomeTheTenantRequirement(t *testing.T) {
	f := setup(t, time.Minute)
	f.tenant("acme")
	eventually(t, "tenant Ready", wait, tenantReady(t, f.key("acme"), authv1alpha1.ReasonSynced))

	f.policy("b-sms", `{"tenantRefs":["acme"],"requirement":[{"factor":"otp-phone"}]}`)
	f.policy("a-totp", `{"tenantRefs":["acme"],"requirement":[{"factor":"totp"}],"maxFactorAge":"12h"}`)
	f.waitRequirement("acme", `["totp","otp-phone"]`)
	eventually(t, "both policies Ready", wait, func() (bool, string) {
		for _, name := range []string{"a-totp", "b-sms"} {
			var p authv1alpha1.MFAPolicy
			if err := env.Client.Get(context.Background(), f.key(name), &p); err != nil {
				return false, err.Error()
			}
			c := readyCondition(p.Status.Conditions)
			if c == nil || c.Reason != authv1alpha1.ReasonSynced || strings.Join(p.Status.Tenants, ",") != "acme" {
				return false, fmt.Sprintf("%s: %+v", name, p.Status)
			}
		}
		return true, ""
	})
	if age := f.coreState("acme").Config.MFA.MaxFactorAgeSeconds; age != 12*3600 {
		t.Errorf("max factor age in the core = %d, want 43200", age)
	}

	t.Run("deleting a policy removes its requirement", func(t *testing.T) {
		var p authv1alpha1.MFAPolicy
		if err := env.Client.Get(context.Background(), f.key("a-totp"), &p); err != nil {
			t.Fatal(err)
		}
		if err := env.Client.Delete(context.Background(), &p); err != nil {
			t.Fatal(err)
		}
		f.waitRequirement("acme", `["otp-phone"]`)
	})
}

func TestContradictingPoliciesChangeNothingInTheCore(t *testing.T) {
	f := setup(t, time.Minute)
	f.tenant("acme")
	f.policy("strict", `{"tenantRefs":["acme"],"requirement":[{"factor":"totp"}],"enforcement":"Required"}`)
	f.waitRequirement("acme", `["totp"]`)
	before := f.coreState("acme")

	f.policy("relaxed", `{"tenantRefs":["acme"],"requirement":[{"factor":"otp-email"}],"enforcement":"UserOptIn"}`)
	eventually(t, "tenant shows the conflict", wait, tenantReady(t, f.key("acme"), authv1alpha1.ReasonConflict))
	eventually(t, "the new policy shows the conflict", wait, func() (bool, string) {
		var p authv1alpha1.MFAPolicy
		if err := env.Client.Get(context.Background(), f.key("relaxed"), &p); err != nil {
			return false, err.Error()
		}
		c := readyCondition(p.Status.Conditions)
		return c != nil && c.Reason == authv1alpha1.ReasonConflict && strings.Contains(c.Message, "MFAPolicy relaxed enforces UserOptIn but strict enforces Required"), fmt.Sprintf("%+v", c)
	})
	if after := f.coreState("acme"); after.ConfigHash != before.ConfigHash {
		t.Fatalf("the core changed during a conflict: %s", requirementJSON(after))
	}
}

func TestAPolicyNamingAMissingTenantSaysSo(t *testing.T) {
	f := setup(t, time.Minute)
	f.policy("orphan", `{"tenantRefs":["nobody"],"requirement":[{"factor":"totp"}]}`)
	eventually(t, "TenantNotFound", wait, func() (bool, string) {
		var p authv1alpha1.MFAPolicy
		if err := env.Client.Get(context.Background(), f.key("orphan"), &p); err != nil {
			return false, err.Error()
		}
		c := readyCondition(p.Status.Conditions)
		return c != nil && c.Reason == authv1alpha1.ReasonTenantNotFound && strings.Contains(c.Message, "AuthTenant nobody does not exist"), fmt.Sprintf("%+v", c)
	})
	f.tenant("nobody")
	f.waitRequirement("nobody", `["totp"]`)
}

func TestDriftIsCorrectedWithoutAnyObjectChanging(t *testing.T) {
	f := setup(t, 500*time.Millisecond)
	f.tenant("acme")
	f.policy("totp", `{"tenantRefs":["acme"],"requirement":[{"factor":"totp"}]}`)
	f.waitRequirement("acme", `["totp"]`)

	t.Run("a change made out of band is reverted", func(t *testing.T) {
		st := f.coreState("acme")
		cfg := st.Config
		cfg.MFA.Requirement = nil
		if _, err := f.admin.PutTenant(context.Background(), "acme", cfg); err != nil {
			t.Fatal(err)
		}
		f.waitRequirement("acme", `["totp"]`)
	})

	t.Run("a core restarted on an empty store gets the tenant back", func(t *testing.T) {
		f.core.Stop()
		f.core.Database = f.core.Database + ".fresh"
		f.core.Restart()
		f.waitRequirement("acme", `["totp"]`)
	})
}

func TestACoreThatIsDownIsAConditionAndConvergesWhenBack(t *testing.T) {
	f := setup(t, time.Minute)
	f.tenant("acme")
	eventually(t, "tenant Ready", wait, tenantReady(t, f.key("acme"), authv1alpha1.ReasonSynced))

	f.core.Stop()
	f.policy("totp", `{"tenantRefs":["acme"],"requirement":[{"factor":"totp"}]}`)
	eventually(t, "CoreUnavailable", wait, tenantReady(t, f.key("acme"), authv1alpha1.ReasonCoreUnavailable))

	f.core.Restart()
	f.waitRequirement("acme", `["totp"]`)
	eventually(t, "tenant Ready again", wait, tenantReady(t, f.key("acme"), authv1alpha1.ReasonSynced))
}

func TestDeletionFollowsTheDeletionPolicy(t *testing.T) {
	f := setup(t, time.Minute)
	f.tenant("kept")
	f.tenant("removed", func(s *authv1alpha1.AuthTenantSpec) { s.DeletionPolicy = "Delete" })
	eventually(t, "kept Ready", wait, tenantReady(t, f.key("kept"), authv1alpha1.ReasonSynced))
	eventually(t, "removed Ready", wait, tenantReady(t, f.key("removed"), authv1alpha1.ReasonSynced))

	for _, name := range []string{"kept", "removed"} {
		var at authv1alpha1.AuthTenant
		if err := env.Client.Get(context.Background(), f.key(name), &at); err != nil {
			t.Fatal(err)
		}
		if err := env.Client.Delete(context.Background(), &at); err != nil {
			t.Fatal(err)
		}
		eventually(t, name+" gone from the API", wait, func() (bool, string) {
			err := env.Client.Get(context.Background(), f.key(name), &authv1alpha1.AuthTenant{})
			return client.IgnoreNotFound(err) == nil && err != nil, fmt.Sprint(err)
		})
	}
	if f.coreState("kept") == nil {
		t.Error("deletionPolicy Retain removed the tenant from the core")
	}
	if f.coreState("removed") != nil {
		t.Error("deletionPolicy Delete left the tenant in the core")
	}
}
