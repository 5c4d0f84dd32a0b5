// Package factortest builds what the tests of a factor package need to call its operations
// directly: a whole core in process on a throw-away SQLite store, with a fake clock, a public
// tenant with the requirement the test chooses, a user with a password, and that user's
// sessions. It builds the core like core/coretest, without the HTTP server.
package factortest

import (
	"context"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/core/coretest"
	"github.com/twofold-dev/twofold/core/server"
	"github.com/twofold-dev/twofold/core/session"
	"github.com/twofold-dev/twofold/core/tenant"
)

// Email and Password are the user's.
const (
	Email    = "ada@example.com"
	Password = "correct horse 1"
)

// Core is a whole core in process whose clock reads Now.
type Core struct {
	T   testing.TB
	Srv *server.Server
	Now time.Time
}

// New starts a core whose public tenant requires req, and signs up the user.
func New(t testing.TB, req mfa.Requirement) *Core {
	t.Helper()
	return NewWithConfig(t, contract.TenantConfig{MFA: contract.MFA{Requirement: req}})
}

// NewWithConfig starts a core whose public tenant has cfg, and signs up the user.
func NewWithConfig(t testing.TB, cfg contract.TenantConfig) *Core {
	t.Helper()
	ctx := context.Background()
	c := &Core{T: t, Now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	var err error
	c.Srv, err = server.New(ctx, server.Options{Store: coretest.SQLite(t), Issuer: "http://core.test/auth", Clock: func() time.Time { return c.Now },
		PasswordParams: coretest.CheapHashes})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Srv.Tenants.Put(ctx, contract.PublicTenantID, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Srv.EmailPassword.SignUp(ctx, contract.PublicTenantID, Email, Password); err != nil {
		t.Fatal(err)
	}
	return c
}

// Tenant returns the public tenant's current configuration.
func (c *Core) Tenant() tenant.Tenant {
	c.T.Helper()
	t, err := c.Srv.Tenants.Current(context.Background(), contract.PublicTenantID)
	if err != nil {
		c.T.Fatal(err)
	}
	return t
}

// SignIn starts a session of the user with the password completed.
func (c *Core) SignIn() session.Session {
	c.T.Helper()
	ctx := context.Background()
	u, err := c.Srv.EmailPassword.SignIn(ctx, contract.PublicTenantID, Email, Password)
	if err != nil {
		c.T.Fatal(err)
	}
	t, err := c.Srv.Tenants.Current(ctx, contract.PublicTenantID)
	if err != nil {
		c.T.Fatal(err)
	}
	claims, err := c.Srv.MFA.Claims(ctx, c.Srv.Store, t, u, mfa.Completed{mfa.EmailPassword: c.Now.Unix()})
	if err != nil {
		c.T.Fatal(err)
	}
	sess, _, err := c.Srv.Sessions.Create(ctx, contract.PublicTenantID, u.ID, u.LoginMethods[0].RecipeUserID, claims)
	if err != nil {
		c.T.Fatal(err)
	}
	return sess
}
