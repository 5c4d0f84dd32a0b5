// Package tenant manages tenant configurations: it normalises and validates what the admin
// API receives, stores it with its hash and version, and serves the current configuration to
// the recipes through a short-lived cache.
package tenant

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/core/store"
)

// ErrUnknownTenant: no tenant with that id.
var ErrUnknownTenant = errors.New("unknown tenant")

// ErrPublicTenantUsers: the public tenant's users cannot be deleted along with its configuration.
var ErrPublicTenantUsers = errors.New("the public tenant cannot be deleted; deleting it resets its configuration and keeps its users")

// CacheTTL bounds how long a replica serves a configuration another replica has replaced.
const CacheTTL = time.Second

// Tenant is a tenant's current, normalised configuration.
type Tenant struct {
	ID      string
	Config  contract.TenantConfig
	Version int64
	Hash    string
}

// Service manages tenants. It is safe for concurrent use.
type Service struct {
	// CheckDestination, when set, must accept every URL the core would call for a
	// configuration (contract.TenantConfig.Destinations) before Put stores it. The server sets
	// it to the operator's outbound policy, so no tenant can save a URL that points the core
	// at an internal service. Set it before serving.
	CheckDestination func(url string) error

	store store.Tenants
	clock func() time.Time

	mu    sync.Mutex
	cache map[string]cached
}

type cached struct {
	t  Tenant
	at time.Time
}

// New returns a Service over st.
func New(st store.Tenants, clock func() time.Time) *Service {
	if clock == nil {
		clock = time.Now
	}
	return &Service{store: st, clock: clock, cache: map[string]cached{}}
}

// EnsurePublic creates the public tenant with the default configuration unless it exists.
func (s *Service) EnsurePublic(ctx context.Context) error {
	_, err := s.store.GetTenant(ctx, contract.PublicTenantID)
	if errors.Is(err, store.ErrNotFound) {
		_, _, err = s.Put(ctx, contract.PublicTenantID, contract.TenantConfig{})
	}
	if err != nil {
		return fmt.Errorf("ensure the public tenant: %w", err)
	}
	return nil
}

// Put validates and stores a tenant's whole configuration. Putting the configuration the
// tenant already has changes nothing and keeps its version. Invalid input returns an error
// wrapping contract.ErrInvalid (a *contract.ValidationError) and stores nothing. Put is the
// admin's own write: it leaves the tenant's owner as it is.
func (s *Service) Put(ctx context.Context, id string, c contract.TenantConfig) (contract.TenantState, bool, error) {
	return s.PutOwned(ctx, id, "", c)
}

// PutOwned is Put on behalf of owner: it claims a tenant nobody owns and refuses, with a
// *store.ClaimedError and no change, one that another owner holds. An empty owner is Put.
func (s *Service) PutOwned(ctx context.Context, id, owner string, c contract.TenantConfig) (contract.TenantState, bool, error) {
	if err := contract.ValidateTenantID(id); err != nil {
		return contract.TenantState{}, false, err
	}
	norm := c.Normalize()
	if err := norm.Validate(); err != nil {
		return contract.TenantState{}, false, err
	}
	if s.CheckDestination != nil {
		if err := norm.CheckDestinations(s.CheckDestination); err != nil {
			return contract.TenantState{}, false, err
		}
	}
	body, err := json.Marshal(norm)
	if err != nil {
		return contract.TenantState{}, false, fmt.Errorf("encode tenant configuration: %w", err)
	}
	var t store.Tenant
	var created bool
	if owner == "" {
		t, created, err = s.store.PutTenant(ctx, id, body, norm.Hash(), s.clock())
	} else {
		t, created, err = s.store.PutTenantOwned(ctx, id, body, norm.Hash(), owner, s.clock())
	}
	if errors.Is(err, store.ErrClaimed) {
		return contract.TenantState{}, false, err
	}
	if err != nil {
		return contract.TenantState{}, false, fmt.Errorf("store tenant %q: %w", id, err)
	}
	s.forget(id)
	state, err := toState(t)
	return state, created, err
}

// Get returns a tenant's state, secrets included (the admin API redacts them).
func (s *Service) Get(ctx context.Context, id string) (contract.TenantState, error) {
	t, err := s.store.GetTenant(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return contract.TenantState{}, fmt.Errorf("%w %q", ErrUnknownTenant, id)
	}
	if err != nil {
		return contract.TenantState{}, err
	}
	return toState(t)
}

// List returns every tenant ordered by id.
func (s *Service) List(ctx context.Context) ([]contract.TenantState, error) {
	ts, err := s.store.ListTenants(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]contract.TenantState, 0, len(ts))
	for _, t := range ts {
		st, err := toState(t)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// Delete removes a tenant's configuration, and its users with deleteUsers. The public
// tenant is reset to the default configuration instead.
func (s *Service) Delete(ctx context.Context, id string, deleteUsers bool) error {
	return s.DeleteOwned(ctx, id, "", deleteUsers)
}

// DeleteOwned is Delete on behalf of owner: only a tenant owner owns is removed; any other
// gives a *store.ClaimedError and changes nothing. The public tenant is reset and released.
// An empty owner is Delete.
func (s *Service) DeleteOwned(ctx context.Context, id, owner string, deleteUsers bool) error {
	defer s.forget(id)
	if id == contract.PublicTenantID {
		if deleteUsers {
			return ErrPublicTenantUsers
		}
		return s.resetPublic(ctx, owner)
	}
	var err error
	if owner == "" {
		err = s.store.DeleteTenant(ctx, id, deleteUsers)
	} else {
		err = s.store.DeleteTenantOwned(ctx, id, owner, deleteUsers)
	}
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w %q", ErrUnknownTenant, id)
	}
	return err
}

// resetPublic gives the public tenant the default configuration and, for an owner, releases
// it. The owner is checked first and again by each write, so nobody else's public tenant is
// reset; a crash between the two writes leaves the owner holding the reset tenant, and
// repeating the delete finishes the release.
func (s *Service) resetPublic(ctx context.Context, owner string) error {
	if owner == "" {
		_, _, err := s.Put(ctx, contract.PublicTenantID, contract.TenantConfig{})
		return err
	}
	cur, err := s.store.GetTenant(ctx, contract.PublicTenantID)
	if err != nil {
		return fmt.Errorf("read the public tenant: %w", err)
	}
	if cur.Owner != owner {
		return &store.ClaimedError{TenantID: contract.PublicTenantID, Owner: cur.Owner}
	}
	if _, _, err := s.PutOwned(ctx, contract.PublicTenantID, owner, contract.TenantConfig{}); err != nil {
		return err
	}
	_, err = s.Release(ctx, contract.PublicTenantID, owner)
	return err
}

// Release gives up owner's claim on a tenant (any owner's when owner is empty: the admin's
// way out when the claimant is gone) and returns the tenant's state. A tenant owned by
// another gives a *store.ClaimedError and stays as it is.
func (s *Service) Release(ctx context.Context, id, owner string) (contract.TenantState, error) {
	t, err := s.store.ReleaseTenant(ctx, id, owner)
	if errors.Is(err, store.ErrNotFound) {
		return contract.TenantState{}, fmt.Errorf("%w %q", ErrUnknownTenant, id)
	}
	if err != nil {
		return contract.TenantState{}, err
	}
	return toState(t)
}

// Current returns a tenant's configuration for serving requests; it may be up to CacheTTL
// old when another replica changed it.
func (s *Service) Current(ctx context.Context, id string) (Tenant, error) {
	now := s.clock()
	s.mu.Lock()
	c, ok := s.cache[id]
	s.mu.Unlock()
	if ok && now.Sub(c.at) < CacheTTL && now.Sub(c.at) >= 0 {
		return c.t, nil
	}
	st, err := s.Get(ctx, id)
	if err != nil {
		return Tenant{}, err
	}
	t := Tenant{ID: st.TenantID, Config: st.Config, Version: st.ConfigVersion, Hash: st.ConfigHash}
	s.mu.Lock()
	s.cache[id] = cached{t: t, at: now}
	s.mu.Unlock()
	return t, nil
}

func (s *Service) forget(id string) {
	s.mu.Lock()
	delete(s.cache, id)
	s.mu.Unlock()
}

func toState(t store.Tenant) (contract.TenantState, error) {
	var c contract.TenantConfig
	if err := json.Unmarshal(t.Config, &c); err != nil {
		return contract.TenantState{}, fmt.Errorf("decode stored configuration of tenant %q: %w", t.ID, err)
	}
	return contract.TenantState{TenantID: t.ID, ConfigVersion: t.Version, ConfigHash: t.Hash, Config: c,
		UpdatedAt: t.UpdatedAt.UTC().Format(time.RFC3339), Owner: t.Owner}, nil
}
