package controllers

import (
	"context"
	"fmt"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
)

// Options configure the reconcilers.
type Options struct {
	// Core is the auth core's admin API.
	Core CoreClient
	// ResyncPeriod is how often synced tenants are compared with the core (drift correction).
	ResyncPeriod time.Duration
	// MaxConcurrentReconciles is how many tenants sync at once; default 4. The core's admin
	// API is cheap and tenants are independent, so a little parallelism helps large fleets
	// converge after a restart.
	MaxConcurrentReconciles int
	// PublicTenantNamespace is the only namespace whose AuthTenants may declare the public
	// tenant (the manager passes its own); empty lets none.
	PublicTenantNamespace string
}

// Leader election uses a Lease in the manager's own namespace.
// +kubebuilder:rbac:groups=coordination.k8s.io,namespace=twofold-system,resources=leases,verbs=get;list;watch;create;update;patch;delete

// Setup registers the field indexes and both reconcilers with the manager.
func Setup(ctx context.Context, mgr ctrl.Manager, o Options) error {
	if o.ResyncPeriod <= 0 {
		o.ResyncPeriod = 30 * time.Second
	}
	if o.MaxConcurrentReconciles <= 0 {
		o.MaxConcurrentReconciles = 4
	}
	if err := SetupIndexes(ctx, mgr); err != nil {
		return err
	}
	if err := (&AuthTenantReconciler{
		Client:                mgr.GetClient(),
		SecretReader:          mgr.GetAPIReader(),
		Core:                  o.Core,
		Recorder:              mgr.GetEventRecorder("twofold-manager"),
		ResyncPeriod:          o.ResyncPeriod,
		PublicTenantNamespace: o.PublicTenantNamespace,
	}).SetupWithManager(mgr, o.MaxConcurrentReconciles); err != nil {
		return fmt.Errorf("setting up the AuthTenant controller: %w", err)
	}
	if err := (&MFAPolicyReconciler{Client: mgr.GetClient()}).SetupWithManager(mgr, o.MaxConcurrentReconciles); err != nil {
		return fmt.Errorf("setting up the MFAPolicy controller: %w", err)
	}
	return nil
}
