package coretest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/sidecar/proxy"
)

// ViaSidecar puts a real sidecar for tenant in front of an app that echoes the identity it
// receives, with the core behind it, and returns a copy of the core whose requests go
// through that sidecar, and the sidecar.
func (c *Core) ViaSidecar(tenant string, extraTenants ...string) (*Core, *proxy.Proxy) {
	c.T.Helper()
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{
			"app": "yes", "user": r.Header.Get(contract.HeaderUserID), "tenant": r.Header.Get(contract.HeaderTenantID),
		})
	}))
	c.T.Cleanup(app.Close)
	p, err := proxy.New(proxy.Options{CoreURL: c.TS.URL, Tenant: tenant, Upstream: app.URL,
		ExtraAuthTenants: extraTenants, Now: c.Clock.Now})
	if err != nil {
		c.T.Fatal(err)
	}
	if err := p.Refresh(c.T.Context()); err != nil {
		c.T.Fatal(err)
	}
	srv := httptest.NewServer(p)
	c.T.Cleanup(srv.Close)
	via := *c
	via.TS = srv
	return &via, p
}
