package kubectl

import (
	"context"
	"fmt"
	"io"
	"sort"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	authv1alpha1 "github.com/twofold-dev/twofold/api/v1alpha1"
	"github.com/twofold-dev/twofold/contract"
)

// AuthTenant is the AuthTenant custom resource.
type AuthTenant = authv1alpha1.AuthTenant

var authTenants = schema.GroupVersionResource{Group: "auth.twofold.dev", Version: "v1alpha1", Resource: "authtenants"}

// ListAuthTenants reads the AuthTenants of namespace (every namespace when empty) with the
// kubeconfig.
func ListAuthTenants(ctx context.Context, c Connection, namespace string) ([]AuthTenant, error) {
	cfg, err := c.RestConfig()
	if err != nil {
		return nil, err
	}
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	l, err := dc.Resource(authTenants).Namespace(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list AuthTenants: %w", err)
	}
	out := make([]AuthTenant, 0, len(l.Items))
	for _, u := range l.Items {
		var at AuthTenant
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &at); err != nil {
			return nil, fmt.Errorf("decode AuthTenant %s/%s: %w", u.GetNamespace(), u.GetName(), err)
		}
		out = append(out, at)
	}
	return out, nil
}

// TenantRow is one line of `kubectl twofold tenants`: an AuthTenant beside what the core
// holds, or a tenant of the core that no AuthTenant manages.
type TenantRow struct {
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name,omitempty"`
	TenantID  string `json:"tenantId"`
	Ready     string `json:"ready"`
	Reason    string `json:"reason,omitempty"`
	// StatusVersion and StatusHash are what the AuthTenant's status says the core accepted.
	StatusVersion int64  `json:"statusConfigVersion,omitempty"`
	StatusHash    string `json:"statusConfigHash,omitempty"`
	// CoreVersion and CoreHash are what the core holds now (0 and "" when it has no such
	// tenant).
	CoreVersion int64  `json:"coreConfigVersion,omitempty"`
	CoreHash    string `json:"coreConfigHash,omitempty"`
	// Drift is InSync, Drift (the core holds another configuration than the status says:
	// the controller puts it back at its next resync), MissingInCore, NotSynced (the status
	// has no hash yet) or Unmanaged (no AuthTenant for a tenant of the core).
	Drift string `json:"drift"`
}

// TenantsReport is the answer of `kubectl twofold tenants`.
type TenantsReport struct {
	Core        string      `json:"core"`
	CoreVersion string      `json:"coreVersion"`
	Tenants     []TenantRow `json:"tenants"`
}

// compareTenants lines up AuthTenants with the core's tenants.
func compareTenants(ats []AuthTenant, core []contract.TenantState) []TenantRow {
	held := map[string]contract.TenantState{}
	for _, s := range core {
		held[s.TenantID] = s
	}
	managed := map[string]bool{}
	rows := []TenantRow{}
	for _, at := range ats {
		id := at.Status.TenantID
		if id == "" {
			id = at.Spec.TenantID
		}
		if id == "" {
			id = at.Name
		}
		row := TenantRow{Namespace: at.Namespace, Name: at.Name, TenantID: id, Ready: "Unknown",
			StatusVersion: at.Status.ConfigVersion, StatusHash: at.Status.ConfigHash}
		if c := meta.FindStatusCondition(at.Status.Conditions, authv1alpha1.ConditionReady); c != nil {
			row.Ready, row.Reason = string(c.Status), c.Reason
		}
		s, ok := held[id]
		managed[id] = true
		switch {
		case !ok:
			row.Drift = "MissingInCore"
		case at.Status.ConfigHash == "":
			row.Drift = "NotSynced"
		case s.ConfigHash == at.Status.ConfigHash:
			row.Drift = "InSync"
		default:
			row.Drift = "Drift"
		}
		if ok {
			row.CoreVersion, row.CoreHash = s.ConfigVersion, s.ConfigHash
		}
		rows = append(rows, row)
	}
	var unmanaged []string
	for id := range held {
		if !managed[id] {
			unmanaged = append(unmanaged, id)
		}
	}
	sort.Strings(unmanaged)
	for _, id := range unmanaged {
		s := held[id]
		rows = append(rows, TenantRow{TenantID: id, Ready: "-", CoreVersion: s.ConfigVersion, CoreHash: s.ConfigHash, Drift: "Unmanaged"})
	}
	return rows
}

func (p *Plugin) tenants(ctx context.Context, args []string) error {
	c := p.newCmd("tenants")
	namespace := c.fs.String("namespace", "", "")
	c.fs.StringVar(namespace, "n", "", "")
	allNamespaces := c.fs.Bool("all-namespaces", false, "")
	c.fs.BoolVar(allNamespaces, "A", false, "")
	if err := c.parse(args); err != nil {
		return err
	}
	if *allNamespaces {
		*namespace = ""
	}
	core, err := c.core(ctx)
	if err != nil {
		return err
	}
	var v contract.AdminVersion
	if err := core.Do(ctx, "GET", "/admin/v1/version", nil, nil, &v); err != nil {
		return err
	}
	var held contract.TenantList
	if err := core.Do(ctx, "GET", "/admin/v1/tenants", nil, nil, &held); err != nil {
		return err
	}
	list := p.AuthTenants
	if list == nil {
		list = ListAuthTenants
	}
	ats, err := list(ctx, c.conn, *namespace)
	if err != nil {
		return err
	}
	rep := TenantsReport{Core: core.Describe(), CoreVersion: v.Version, Tenants: compareTenants(ats, held.Tenants)}
	return c.print(rep, func(w io.Writer) {
		fmt.Fprintf(w, "Core %s at %s\n", rep.CoreVersion, rep.Core)
		t := tw(w)
		fmt.Fprintln(t, "NAMESPACE\tAUTHTENANT\tTENANT\tREADY\tREASON\tSTATUS VERSION\tCORE VERSION\tDRIFT")
		for _, r := range rep.Tenants {
			fmt.Fprintf(t, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", dash(r.Namespace), dash(r.Name), r.TenantID, r.Ready, dash(r.Reason),
				configVersion(r.StatusVersion), configVersion(r.CoreVersion), r.Drift)
		}
		t.Flush()
	})
}

func configVersion(v int64) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprint(v)
}
