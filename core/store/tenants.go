package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ErrClaimed is wrapped (by *ClaimedError) when a tenant is owned by someone other than the
// caller.
var ErrClaimed = errors.New("tenant is claimed by another owner")

// ClaimedError says who owns a tenant that the caller tried to write, delete or release as
// another owner. Owner is empty when nobody owns it and the operation needed the caller to.
type ClaimedError struct {
	TenantID string
	Owner    string
}

func (e *ClaimedError) Error() string {
	if e.Owner == "" {
		return fmt.Sprintf("tenant %q is not owned by the caller: nobody has claimed it", e.TenantID)
	}
	return fmt.Sprintf("tenant %q is owned by %s", e.TenantID, e.Owner)
}

// Is makes errors.Is(err, ErrClaimed) hold.
func (e *ClaimedError) Is(target error) bool { return target == ErrClaimed }

// TenantOwnership records who manages each tenant, so that two managers (or two objects of
// one manager) never overwrite each other's tenant: the first owner to put a tenant keeps it
// until it releases it or deletes the tenant. Each method checks and writes in one
// transaction. PutTenant and DeleteTenant, without an owner, are the admin's own writes:
// they leave the owner as it is.
type TenantOwnership interface {
	// PutTenantOwned is PutTenant on behalf of owner (non-empty). It creates the tenant
	// owned by owner, or updates a tenant that owner owns or that nobody owns (owner then
	// owns it; claiming alone does not change the version). A tenant owned by another
	// changes nothing and gives a *ClaimedError naming its owner.
	PutTenantOwned(ctx context.Context, id string, cfg json.RawMessage, hash, owner string, now time.Time) (t Tenant, created bool, err error)
	// ReleaseTenant clears the tenant's owner when it is owner, or whoever it is when owner
	// is empty, and returns the tenant. A tenant nobody owns is returned unchanged; one
	// owned by another gives a *ClaimedError; an unknown one ErrNotFound.
	ReleaseTenant(ctx context.Context, id, owner string) (Tenant, error)
	// DeleteTenantOwned is DeleteTenant on behalf of owner (non-empty): only a tenant owner
	// owns is deleted; otherwise nothing changes and a *ClaimedError names the owner (empty
	// when nobody owns it).
	DeleteTenantOwned(ctx context.Context, id, owner string, deleteUsers bool) error
}
