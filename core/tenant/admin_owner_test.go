package tenant_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/twofold-dev/twofold/core/coretest"
)

// Owners as the controllers send them: namespace/name/uid of the AuthTenant.
const (
	ownerTeam     = "team-a/acme/0d6f3c1e-0000-4000-8000-000000000001"
	ownerAttacker = "intruder/acme/0d6f3c1e-0000-4000-8000-000000000002"
)

func asOwner(path, owner string) string { return path + "?owner=" + url.QueryEscape(owner) }

const evilSMTP = `{"firstFactors":["emailpassword"],
	"email":{"smtp":{"host":"smtp.attacker.example","port":587,"from":"it@attacker.example"}}}`

func TestAnotherOwnerCannotRedirectAClaimedTenantsEmail(t *testing.T) {
	h := coretest.New(t)
	r := h.AdminDo("PUT", asOwner("/admin/v1/tenants/acme", ownerTeam), `{"firstFactors":["emailpassword"]}`)
	if r.Status != http.StatusCreated || r.JSON(t)["owner"] != ownerTeam {
		t.Fatalf("claim = %d %s", r.Status, r.Body)
	}
	before := h.Snapshot()

	t.Run("a PUT by another owner is 409 naming the owner and changes nothing", func(t *testing.T) {
		r := h.AdminDo("PUT", asOwner("/admin/v1/tenants/acme", ownerAttacker), evilSMTP)
		m := r.JSON(t)
		if r.Status != http.StatusConflict || m["owner"] != ownerTeam || m["field"] != "owner" ||
			!strings.Contains(m["message"].(string), "owned by "+ownerTeam) {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
		if h.Snapshot() != before {
			t.Fatal("a refused PUT changed the store")
		}
	})
	t.Run("a DELETE by another owner is 409 and the tenant stays", func(t *testing.T) {
		r := h.AdminDo("DELETE", asOwner("/admin/v1/tenants/acme", ownerAttacker), nil)
		if r.Status != http.StatusConflict || r.JSON(t)["owner"] != ownerTeam {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
		if h.Snapshot() != before {
			t.Fatal("a refused DELETE changed the store")
		}
	})
	t.Run("a release by another owner is 409 and the claim stays", func(t *testing.T) {
		r := h.AdminDo("DELETE", asOwner("/admin/v1/tenants/acme/owner", ownerAttacker), nil)
		if r.Status != http.StatusConflict {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
		if h.Snapshot() != before {
			t.Fatal("a refused release changed the store")
		}
	})
	t.Run("the owner still changes its tenant", func(t *testing.T) {
		r := h.AdminDo("PUT", asOwner("/admin/v1/tenants/acme", ownerTeam), `{"firstFactors":["emailpassword"],"branding":{"appName":"Acme"}}`)
		if r.Status != http.StatusOK || r.JSON(t)["configVersion"].(float64) != 2 {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
	})
	t.Run("after the owner releases it another owner may claim it", func(t *testing.T) {
		r := h.AdminDo("DELETE", asOwner("/admin/v1/tenants/acme/owner", ownerTeam), nil)
		if m := r.JSON(t); r.Status != http.StatusOK || m["owner"] != nil {
			t.Fatalf("release = %d %s", r.Status, r.Body)
		}
		if m := h.AdminDo("GET", "/admin/v1/tenants/acme", nil).JSON(t); m["owner"] != nil {
			t.Fatalf("GET after release shows owner %v", m["owner"])
		}
		r = h.AdminDo("PUT", asOwner("/admin/v1/tenants/acme", ownerAttacker), `{"firstFactors":["emailpassword"]}`)
		if r.Status != http.StatusOK || r.JSON(t)["owner"] != ownerAttacker {
			t.Fatalf("claim after release = %d %s", r.Status, r.Body)
		}
	})
}

func TestAnOwnerCanOnlyDeleteWhatItOwns(t *testing.T) {
	h := coretest.New(t)
	h.PutTenantJSON("unclaimed", `{"firstFactors":["emailpassword"]}`)
	before := h.Snapshot()
	r := h.AdminDo("DELETE", asOwner("/admin/v1/tenants/unclaimed", ownerAttacker), nil)
	if m := r.JSON(t); r.Status != http.StatusConflict || m["owner"] != "" || !strings.Contains(m["message"].(string), "nobody has claimed it") {
		t.Fatalf("got %d %s", r.Status, r.Body)
	}
	if h.Snapshot() != before {
		t.Fatal("a refused DELETE changed the store")
	}
	if r := h.AdminDo("PUT", asOwner("/admin/v1/tenants/mine", ownerTeam), `{}`); r.Status != http.StatusCreated {
		t.Fatalf("claim = %d %s", r.Status, r.Body)
	}
	if r := h.AdminDo("DELETE", asOwner("/admin/v1/tenants/mine", ownerTeam), nil); r.Status != http.StatusNoContent {
		t.Fatalf("owner's DELETE = %d %s", r.Status, r.Body)
	}
	if r := h.AdminDo("GET", "/admin/v1/tenants/mine", nil); r.Status != http.StatusNotFound {
		t.Fatalf("GET after the owner's DELETE = %d %s", r.Status, r.Body)
	}
}

func TestTheAdminKeepsTheLastWordOverOwnership(t *testing.T) {
	h := coretest.New(t)
	h.AdminDo("PUT", asOwner("/admin/v1/tenants/acme", ownerTeam), `{}`)
	t.Run("a PUT without an owner changes the configuration and keeps the owner", func(t *testing.T) {
		m := h.PutTenantJSON("acme", `{"branding":{"appName":"Acme"}}`)
		if m["owner"] != ownerTeam || m["configVersion"].(float64) != 2 {
			t.Fatalf("got %v", m)
		}
	})
	t.Run("a release without an owner frees a claim whose owner is gone", func(t *testing.T) {
		r := h.AdminDo("DELETE", "/admin/v1/tenants/acme/owner", nil)
		if r.Status != http.StatusOK || r.JSON(t)["owner"] != nil {
			t.Fatalf("got %d %s", r.Status, r.Body)
		}
	})
}

func TestTheOwnerOfThePublicTenantResetsAndReleasesItOnDelete(t *testing.T) {
	h := coretest.New(t)
	if r := h.AdminDo("PUT", asOwner("/admin/v1/tenants/public", ownerTeam), `{"firstFactors":["emailpassword"],"branding":{"appName":"Acme"}}`); r.Status != http.StatusOK {
		t.Fatalf("claim public = %d %s", r.Status, r.Body)
	}
	before := h.Snapshot()
	if r := h.AdminDo("DELETE", asOwner("/admin/v1/tenants/public", ownerAttacker), nil); r.Status != http.StatusConflict {
		t.Fatalf("another owner's DELETE of public = %d %s", r.Status, r.Body)
	}
	if h.Snapshot() != before {
		t.Fatal("a refused DELETE of public changed the store")
	}
	if r := h.AdminDo("DELETE", asOwner("/admin/v1/tenants/public", ownerTeam), nil); r.Status != http.StatusNoContent {
		t.Fatalf("owner's DELETE of public = %d %s", r.Status, r.Body)
	}
	m := h.AdminDo("GET", "/admin/v1/tenants/public", nil).JSON(t)
	if m["owner"] != nil || m["config"].(map[string]any)["branding"] != nil {
		t.Fatalf("public after its owner deleted it = %v; want the default configuration and no owner", m)
	}
}

func TestABadOwnerIsRefusedAndChangesNothing(t *testing.T) {
	h := coretest.New(t)
	tests := []struct {
		name, query, want string
	}{
		{"an empty owner", "?owner=", "owner is empty"},
		{"an owner with a space", "?owner=" + url.QueryEscape("ns/a b/uid"), "visible ASCII"},
		{"an owner with a control character", "?owner=" + url.QueryEscape("ns/a\x00/uid"), "visible ASCII"},
		{"an owner longer than 512 characters", "?owner=" + strings.Repeat("x", 513), "at most 512"},
	}
	for _, tt := range tests {
		for _, method := range []string{"PUT", "DELETE"} {
			t.Run(method+" with "+tt.name+" is 400", func(t *testing.T) {
				before := h.Snapshot()
				path := "/admin/v1/tenants/public" + tt.query
				var body any
				if method == "PUT" {
					body = evilSMTP
				}
				r := h.AdminDo(method, path, body)
				if m := r.JSON(t); r.Status != http.StatusBadRequest || m["field"] != "owner" || !strings.Contains(m["message"].(string), tt.want) {
					t.Fatalf("got %d %s", r.Status, r.Body)
				}
				if h.Snapshot() != before {
					t.Fatal("a refused request changed the store")
				}
			})
		}
	}
}
