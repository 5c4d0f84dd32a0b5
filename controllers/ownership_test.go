package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crconfig "sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	authv1alpha1 "github.com/twofold-dev/twofold/api/v1alpha1"
	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/controllers"
	"github.com/twofold-dev/twofold/core/adminclient"
	"github.com/twofold-dev/twofold/test/coreproc"
)

// multi is a manager watching several namespaces of its own, as a real one watches the whole
// cluster, in front of one real core; it can be stopped and started again.
type multi struct {
	t          *testing.T
	core       *coreproc.Core
	admin      *adminclient.Client
	namespaces map[string]string // role -> namespace
	publicNS   string
	resync     time.Duration
	stop       func()
}

// newMulti creates one namespace per role and starts a manager over them. The namespace of
// the role "system" (when there is one) is the one allowed to declare the public tenant.
func newMulti(t *testing.T, resync time.Duration, roles ...string) *multi {
	t.Helper()
	core := coreproc.Start(t, coreproc.Options{})
	m := &multi{t: t, core: core, resync: resync, namespaces: map[string]string{},
		admin: adminclient.New(core.URL, func() (string, error) { return core.AdminKey, nil }, nil)}
	for _, role := range roles {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "test-" + role + "-"}}
		if err := env.Client.Create(context.Background(), ns); err != nil {
			t.Fatal(err)
		}
		m.namespaces[role] = ns.Name
	}
	m.publicNS = m.namespaces["system"]
	m.start()
	t.Cleanup(func() { m.stopManager() })
	return m
}

func (m *multi) start() {
	m.t.Helper()
	watched := map[string]cache.Config{}
	for _, ns := range m.namespaces {
		watched[ns] = cache.Config{}
	}
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:     env.Scheme,
		Metrics:    metricsserver.Options{BindAddress: "0"},
		Cache:      cache.Options{DefaultNamespaces: watched},
		Controller: crconfig.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		m.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := controllers.Setup(ctx, mgr, controllers.Options{Core: m.admin, ResyncPeriod: m.resync, PublicTenantNamespace: m.publicNS}); err != nil {
		m.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(ctx); err != nil {
			m.t.Errorf("manager: %v", err)
		}
	}()
	m.stop = func() { cancel(); <-done }
}

func (m *multi) stopManager() {
	if m.stop != nil {
		m.stop()
		m.stop = nil
	}
}

func (m *multi) key(role, name string) client.ObjectKey {
	return client.ObjectKey{Namespace: m.namespaces[role], Name: name}
}

// tenant creates an AuthTenant in the role's namespace whose email goes through smtpHost.
func (m *multi) tenant(role, name, tenantID, smtpHost, deletionPolicy string) *authv1alpha1.AuthTenant {
	m.t.Helper()
	at := &authv1alpha1.AuthTenant{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: m.namespaces[role]}}
	at.Spec.TenantID = tenantID
	at.Spec.FirstFactors = []authv1alpha1.FactorID{authv1alpha1.FactorEmailPassword}
	at.Spec.Email = &authv1alpha1.EmailDelivery{SMTP: authv1alpha1.SMTPSettings{Host: smtpHost, Port: 587, From: "no-reply@" + smtpHost}}
	at.Spec.DeletionPolicy = deletionPolicy
	if err := env.Client.Create(context.Background(), at); err != nil {
		m.t.Fatalf("creating AuthTenant %s/%s: %v", at.Namespace, name, err)
	}
	return at
}

func (m *multi) delete(key client.ObjectKey) {
	m.t.Helper()
	at := &authv1alpha1.AuthTenant{}
	if err := env.Client.Get(context.Background(), key, at); err != nil {
		m.t.Fatal(err)
	}
	if err := env.Client.Delete(context.Background(), at); err != nil {
		m.t.Fatal(err)
	}
	eventually(m.t, key.String()+" gone from the API", wait, func() (bool, string) {
		err := env.Client.Get(context.Background(), key, &authv1alpha1.AuthTenant{})
		return client.IgnoreNotFound(err) == nil && err != nil, fmt.Sprint(err)
	})
}

func (m *multi) state(tenantID string) *contract.TenantState {
	m.t.Helper()
	st, err := m.admin.GetTenant(context.Background(), tenantID)
	if err != nil {
		m.t.Fatalf("reading tenant %s from the core: %v", tenantID, err)
	}
	return st
}

func smtpHostOf(st *contract.TenantState) string {
	if st.Config.Email == nil || st.Config.Email.SMTP == nil {
		return "<no smtp>"
	}
	return st.Config.Email.SMTP.Host
}

// waitOwned waits until the core holds tenantID owned by the object at key with its SMTP host.
func (m *multi) waitOwned(tenantID string, key client.ObjectKey, smtpHost string) {
	m.t.Helper()
	eventually(m.t, tenantID+" owned by "+key.String(), wait, func() (bool, string) {
		var at authv1alpha1.AuthTenant
		if err := env.Client.Get(context.Background(), key, &at); err != nil {
			return false, err.Error()
		}
		st, err := m.admin.GetTenant(context.Background(), tenantID)
		if err != nil {
			return false, err.Error()
		}
		ok, _ := tenantReady(m.t, key, authv1alpha1.ReasonSynced)()
		return ok && st.Owner == controllers.OwnerOf(&at) && smtpHostOf(st) == smtpHost, fmt.Sprintf("owner %s smtp %s", st.Owner, smtpHostOf(st))
	})
}

// waitRefused waits for Ready=False with reason and a message containing want.
func waitRefused(t *testing.T, key client.ObjectKey, reason, want string) {
	t.Helper()
	eventually(t, key.String()+" refused with "+reason, wait, func() (bool, string) {
		var at authv1alpha1.AuthTenant
		if err := env.Client.Get(context.Background(), key, &at); err != nil {
			return false, err.Error()
		}
		c := readyCondition(at.Status.Conditions)
		if c == nil {
			return false, "no Ready condition"
		}
		return c.Status == metav1.ConditionFalse && c.Reason == reason && strings.Contains(c.Message, want), c.Reason + ": " + c.Message
	})
}

// waitWarning waits for a Warning Event with reason about the object at key.
func waitWarning(t *testing.T, key client.ObjectKey, reason, want string) {
	t.Helper()
	eventually(t, "Warning Event "+reason+" on "+key.String(), wait, func() (bool, string) {
		var list eventsv1.EventList
		if err := env.Client.List(context.Background(), &list, client.InNamespace(key.Namespace)); err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, e := range list.Items {
			if e.Regarding.Name == key.Name && e.Type == corev1.EventTypeWarning && e.Reason == reason && strings.Contains(e.Note, want) {
				return true, ""
			}
			seen = append(seen, e.Reason+": "+e.Note)
		}
		return false, strings.Join(seen, " | ")
	})
}

func TestASecondAuthTenantCannotTakeOverAClaimedTenantId(t *testing.T) {
	m := newMulti(t, time.Minute, "team", "intruder")
	owner := m.key("team", "acme")
	m.tenant("team", "acme", "", "smtp.team.example", "")
	m.waitOwned("acme", owner, "smtp.team.example")
	before := m.state("acme")

	// The attack: another namespace declares the same tenant id with its own mail server,
	// and asks for the tenant to be deleted with the object.
	intruder := m.key("intruder", "acme")
	m.tenant("intruder", "acme", "acme", "smtp.attacker.example", "Delete")
	waitRefused(t, intruder, authv1alpha1.ReasonTenantIDClaimed, "owned by AuthTenant "+owner.String())
	waitWarning(t, intruder, authv1alpha1.ReasonTenantIDClaimed, "owned by AuthTenant "+owner.String())
	if after := m.state("acme"); after.ConfigHash != before.ConfigHash || after.ConfigVersion != before.ConfigVersion || smtpHostOf(after) != "smtp.team.example" {
		t.Fatalf("the core changed for the second claimant: version %d smtp %s", after.ConfigVersion, smtpHostOf(after))
	}

	t.Run("its MFAPolicy does not reach the tenant either", func(t *testing.T) {
		p := &authv1alpha1.MFAPolicy{ObjectMeta: metav1.ObjectMeta{Name: "open-door", Namespace: intruder.Namespace}}
		p.Spec.TenantRefs = []string{"acme"}
		p.Spec.Requirement = authv1alpha1.Requirement{{Factor: authv1alpha1.FactorOTPEmail}}
		if err := env.Client.Create(context.Background(), p); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the policy shows the claim", wait, func() (bool, string) {
			var got authv1alpha1.MFAPolicy
			if err := env.Client.Get(context.Background(), client.ObjectKeyFromObject(p), &got); err != nil {
				return false, err.Error()
			}
			c := readyCondition(got.Status.Conditions)
			return c != nil && c.Reason == authv1alpha1.ReasonTenantIDClaimed && len(got.Status.Tenants) == 0, fmt.Sprintf("%+v", got.Status)
		})
		if after := m.state("acme"); after.ConfigHash != before.ConfigHash || len(after.Config.MFA.Requirement) != 0 {
			t.Fatalf("the intruder's policy reached the core: %s", requirementJSON(after))
		}
	})

	t.Run("the refusal survives a manager restart", func(t *testing.T) {
		m.stopManager()
		late := m.key("intruder", "acme-again")
		m.tenant("intruder", "acme-again", "acme", "smtp.attacker.example", "Delete")
		m.start()
		waitRefused(t, late, authv1alpha1.ReasonTenantIDClaimed, "owned by AuthTenant "+owner.String())
		waitRefused(t, intruder, authv1alpha1.ReasonTenantIDClaimed, "owned by AuthTenant "+owner.String())
		m.waitOwned("acme", owner, "smtp.team.example")
		if after := m.state("acme"); after.ConfigHash != before.ConfigHash {
			t.Fatalf("the core changed after the restart: smtp %s", smtpHostOf(after))
		}
		m.delete(late)
	})

	t.Run("deleting the second claimant with deletionPolicy Delete leaves the tenant", func(t *testing.T) {
		m.delete(intruder)
		waitWarning(t, intruder, authv1alpha1.ReasonTenantIDClaimed, "Did not delete tenant acme")
		after := m.state("acme")
		if after.ConfigHash != before.ConfigHash || after.Owner != before.Owner {
			t.Fatalf("deleting the second claimant changed the tenant: owner %s smtp %s", after.Owner, smtpHostOf(after))
		}
		m.waitOwned("acme", owner, "smtp.team.example")
	})
}

func TestDeletingTheOwnerLetsAnotherClaimTheId(t *testing.T) {
	m := newMulti(t, time.Minute, "first", "second")
	first, second := m.key("first", "acme"), m.key("second", "acme")
	m.tenant("first", "acme", "", "smtp.first.example", "")
	m.waitOwned("acme", first, "smtp.first.example")
	m.tenant("second", "acme", "", "smtp.second.example", "")
	waitRefused(t, second, authv1alpha1.ReasonTenantIDClaimed, "owned by AuthTenant "+first.String())

	t.Run("the owner deleted with Retain releases the id and the waiting claimant takes it", func(t *testing.T) {
		m.delete(first)
		m.waitOwned("acme", second, "smtp.second.example")
	})
	t.Run("an object re-created under the same name claims the id once it is free", func(t *testing.T) {
		m.delete(second)
		if st := m.state("acme"); st.Owner != "" {
			t.Fatalf("deleting the owner with Retain left owner %q", st.Owner)
		}
		m.tenant("second", "acme", "", "smtp.second-again.example", "")
		m.waitOwned("acme", second, "smtp.second-again.example")
	})
}

func TestARecreatedObjectWaitsUntilTheOldClaimIsReleased(t *testing.T) {
	m := newMulti(t, 500*time.Millisecond, "team")
	key := m.key("team", "acme")
	stale := key.Namespace + "/acme/00000000-0000-4000-8000-00000000dead"
	// An earlier object of the same name whose finalizer was removed by hand never released
	// its claim.
	if _, err := m.admin.PutTenantAs(context.Background(), "acme", stale, contract.TenantConfig{FirstFactors: []string{"emailpassword"}}); err != nil {
		t.Fatal(err)
	}
	m.tenant("team", "acme", "", "smtp.team.example", "")
	waitRefused(t, key, authv1alpha1.ReasonTenantIDClaimed, "an earlier object of the same name that has not released it")
	if st := m.state("acme"); st.Owner != stale || st.Config.Email != nil {
		t.Fatalf("the re-created object changed a tenant it does not own: owner %s smtp %s", st.Owner, smtpHostOf(st))
	}

	if _, err := m.admin.ReleaseTenant(context.Background(), "acme", ""); err != nil {
		t.Fatal(err)
	}
	m.waitOwned("acme", key, "smtp.team.example")
}

func TestThePublicTenantCanOnlyBeDeclaredFromTheManagersNamespace(t *testing.T) {
	m := newMulti(t, time.Minute, "system", "intruder")
	before := m.state(contract.PublicTenantID)
	intruder := m.key("intruder", "public")
	m.tenant("intruder", "public", "", "smtp.attacker.example", "Delete")
	waitRefused(t, intruder, authv1alpha1.ReasonTenantIDReserved, "only be declared by an AuthTenant in namespace "+m.namespaces["system"])
	waitWarning(t, intruder, authv1alpha1.ReasonTenantIDReserved, "tenant id public")
	if after := m.state(contract.PublicTenantID); after.ConfigHash != before.ConfigHash || after.Owner != "" {
		t.Fatalf("the public tenant changed for an unauthorised namespace: owner %s smtp %s", after.Owner, smtpHostOf(after))
	}

	t.Run("deleting the refused object leaves the public tenant", func(t *testing.T) {
		m.delete(intruder)
		if after := m.state(contract.PublicTenantID); after.ConfigHash != before.ConfigHash || after.ConfigVersion != before.ConfigVersion {
			t.Fatalf("deleting the refused object changed the public tenant: version %d", after.ConfigVersion)
		}
	})
	t.Run("the manager's namespace declares it", func(t *testing.T) {
		m.tenant("system", "public", "", "smtp.platform.example", "")
		m.waitOwned(contract.PublicTenantID, m.key("system", "public"), "smtp.platform.example")
	})
}
