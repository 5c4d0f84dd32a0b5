// Package controllers reconciles AuthTenant and MFAPolicy objects into the auth core through
// its admin API. The AuthTenant reconciler owns the core's tenant configuration: it compiles
// the tenant, the MFAPolicies that name it and the referenced Secrets into one declarative
// PUT. The MFAPolicy reconciler only reports whether each of its tenants has applied it.
//
// A tenant id belongs to one AuthTenant. The core records the owner of each tenant
// (namespace/name/uid of the AuthTenant that first put it) and refuses a PUT or DELETE by
// any other owner, so the claim survives manager restarts and also keeps two managers
// sharing one core apart. A second AuthTenant naming a claimed id shows Ready=False,
// reason TenantIdClaimed, and changes nothing in the core, not even when it is deleted with
// deletionPolicy Delete. Deleting the owner releases the claim (Retain) or removes the
// tenant (Delete); only then may another AuthTenant, or a re-created one with a new UID,
// claim the id. The public tenant may only be declared from PublicTenantNamespace.
package controllers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	authv1alpha1 "github.com/twofold-dev/twofold/api/v1alpha1"
	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/core/adminclient"
)

// Finalizer holds an AuthTenant until the core has been told about its deletion.
const Finalizer = "auth.twofold.dev/tenant"

const (
	secretIndex   = "twofold.secretNames"
	tenantIndex   = "twofold.tenantRefs"
	tenantIDIndex = "twofold.tenantID"
)

// CoreClient is the part of the core's admin API the reconcilers use. Every write names the
// AuthTenant as the owner, so the core refuses it when another owner holds the tenant.
type CoreClient interface {
	GetTenant(ctx context.Context, tenantID string) (*contract.TenantState, error)
	PutTenantAs(ctx context.Context, tenantID, owner string, cfg contract.TenantConfig) (*contract.TenantState, error)
	DeleteTenantAs(ctx context.Context, tenantID, owner string) error
	ReleaseTenant(ctx context.Context, tenantID, owner string) (*contract.TenantState, error)
}

// OwnerOf is the owner the reconciler names in the core for an AuthTenant:
// namespace/name/uid. The UID tells a re-created object from the one that claimed the id.
func OwnerOf(t *authv1alpha1.AuthTenant) string {
	return t.Namespace + "/" + t.Name + "/" + string(t.UID)
}

// describeOwner names an owner recorded in the core for a person reading a condition.
func describeOwner(owner string, self *authv1alpha1.AuthTenant) string {
	parts := strings.Split(owner, "/")
	if len(parts) != 3 {
		return fmt.Sprintf("%q (not an AuthTenant of this manager)", owner)
	}
	if parts[0] == self.Namespace && parts[1] == self.Name {
		return fmt.Sprintf("AuthTenant %s/%s with uid %s, an earlier object of the same name that has not released it", parts[0], parts[1], parts[2])
	}
	return fmt.Sprintf("AuthTenant %s/%s", parts[0], parts[1])
}

// AuthTenantReconciler keeps the core's tenant configuration equal to the declared one.
type AuthTenantReconciler struct {
	client.Client
	// SecretReader reads referenced Secrets straight from the API server, so the manager
	// never caches the cluster's Secrets; only their metadata is watched.
	SecretReader client.Reader
	Core         CoreClient
	Recorder     events.EventRecorder
	// ResyncPeriod is how often a synced tenant is compared with the core again, so a core
	// that lost or changed its configuration gets the declared state back.
	ResyncPeriod time.Duration
	// PublicTenantNamespace is the only namespace whose AuthTenants may declare the public
	// tenant; empty means none may, and the core's built-in public tenant stays as it is.
	PublicTenantNamespace string
}

// +kubebuilder:rbac:groups=auth.twofold.dev,resources=authtenants,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=auth.twofold.dev,resources=authtenants/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=auth.twofold.dev,resources=authtenants/finalizers,verbs=update
// +kubebuilder:rbac:groups=auth.twofold.dev,resources=mfapolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile fetches the tenant, makes sure it carries the finalizer, and syncs or deletes it,
// patching status once at the end.
func (r *AuthTenantReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, reterr error) {
	tenant := &authv1alpha1.AuthTenant{}
	if err := r.Get(ctx, req.NamespacedName, tenant); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}

	if tenant.DeletionTimestamp.IsZero() && !controllerutil.ContainsFinalizer(tenant, Finalizer) {
		patch := client.MergeFrom(tenant.DeepCopy())
		controllerutil.AddFinalizer(tenant, Finalizer)
		return ctrl.Result{}, r.Patch(ctx, tenant, patch)
	}

	before := tenant.DeepCopy()
	defer func() {
		if err := r.patchStatus(ctx, before, tenant); err != nil && !apierrors.IsNotFound(err) {
			reterr = errors.Join(reterr, err)
		}
	}()

	if !tenant.DeletionTimestamp.IsZero() {
		return r.reconcileDelete(ctx, tenant)
	}
	return r.reconcileNormal(ctx, tenant)
}

func (r *AuthTenantReconciler) reconcileNormal(ctx context.Context, tenant *authv1alpha1.AuthTenant) (ctrl.Result, error) {
	logger := log.FromContext(ctx)
	tenantID := tenant.EffectiveTenantID()
	tenant.Status.TenantID = tenantID
	owner := OwnerOf(tenant)

	if !r.mayDeclare(tenant) {
		r.refuse(tenant, authv1alpha1.ReasonTenantIDReserved, r.reservedMessage())
		return ctrl.Result{}, nil // the namespace of an object never changes
	}
	current, err := r.Core.GetTenant(ctx, tenantID)
	if err != nil && !errors.Is(err, adminclient.ErrNotFound) {
		return r.coreFailed(tenant, err)
	}
	if current != nil && current.Owner != "" && current.Owner != owner {
		return r.claimedElsewhere(tenant, current.Owner)
	}

	policies, err := r.policiesFor(ctx, tenant)
	if err != nil {
		return ctrl.Result{}, err
	}
	desired, err := compileTenant(tenant, policies, r.secretLookup(ctx, tenant.Namespace))
	switch {
	case errors.Is(err, ErrSecretNotFound):
		r.setReady(tenant, metav1.ConditionFalse, authv1alpha1.ReasonSecretNotFound, err.Error())
		return ctrl.Result{}, nil // the Secret watch brings us back
	case errors.Is(err, ErrConflict):
		r.setReady(tenant, metav1.ConditionFalse, authv1alpha1.ReasonConflict, err.Error()+"; the core keeps its previous configuration")
		return ctrl.Result{}, nil // a policy change brings us back
	case err != nil:
		r.setReady(tenant, metav1.ConditionFalse, authv1alpha1.ReasonInvalidSpec, err.Error())
		return ctrl.Result{}, nil
	}
	if err := desired.Normalize().Validate(); err != nil {
		r.setReady(tenant, metav1.ConditionFalse, authv1alpha1.ReasonInvalidSpec, "the tenant with its MFAPolicies is not valid: "+err.Error())
		return ctrl.Result{}, nil
	}

	want := desired.Hash()
	if current == nil || current.ConfigHash != want || current.Owner != owner {
		drift := current != nil && tenant.Status.ConfigHash == current.ConfigHash && tenant.Status.ObservedGeneration == tenant.Generation
		lost := current == nil && tenant.Status.ConfigVersion > 0
		claimed := current != nil && current.Owner != owner
		current, err = r.Core.PutTenantAs(ctx, tenantID, owner, desired)
		var ce *adminclient.ClaimedError
		if errors.As(err, &ce) {
			return r.claimedElsewhere(tenant, ce.Owner) // another claimant won the race
		}
		if err != nil {
			return r.coreFailed(tenant, err)
		}
		if claimed {
			logger.Info("Claimed tenant", "tenant", tenantID, "owner", owner)
			r.event(tenant, corev1.EventTypeNormal, "Claimed", fmt.Sprintf("This AuthTenant now owns tenant id %s in the auth core", tenantID))
		}
		switch {
		case lost:
			logger.Info("Restored tenant the core had lost", "tenant", tenantID, "configVersion", current.ConfigVersion)
			r.event(tenant, corev1.EventTypeWarning, "DriftCorrected", "Restored the tenant configuration the auth core had lost")
		case drift:
			logger.Info("Corrected drifted tenant", "tenant", tenantID, "configVersion", current.ConfigVersion)
			r.event(tenant, corev1.EventTypeWarning, "DriftCorrected", "Restored the declared configuration over a change made outside Kubernetes")
		default:
			logger.Info("Synced tenant", "tenant", tenantID, "configVersion", current.ConfigVersion)
			r.event(tenant, corev1.EventTypeNormal, "Synced", fmt.Sprintf("The auth core holds configuration version %d", current.ConfigVersion))
		}
	}

	tenant.Status.ConfigVersion = current.ConfigVersion
	tenant.Status.ConfigHash = current.ConfigHash
	tenant.Status.AppliedPolicies = appliedPolicies(policies)
	tenant.Status.ObservedGeneration = tenant.Generation
	r.setReady(tenant, metav1.ConditionTrue, authv1alpha1.ReasonSynced, fmt.Sprintf("The auth core holds configuration version %d", current.ConfigVersion))
	return ctrl.Result{RequeueAfter: r.ResyncPeriod}, nil
}

// reconcileDelete applies the deletion policy to a tenant this object owns, and leaves a
// tenant owned by anyone else as it is: the core refuses the DELETE or release of a tenant
// the named owner does not hold, so the decision does not rest on what this manager saw.
func (r *AuthTenantReconciler) reconcileDelete(ctx context.Context, tenant *authv1alpha1.AuthTenant) (ctrl.Result, error) {
	logger := log.FromContext(ctx)
	tenantID := tenant.EffectiveTenantID()
	owner := OwnerOf(tenant)
	switch {
	case !r.mayDeclare(tenant):
		// It never wrote to the core.
	case tenant.Spec.DeletionPolicy == "Delete":
		err := r.Core.DeleteTenantAs(ctx, tenantID, owner)
		var ce *adminclient.ClaimedError
		switch {
		case errors.As(err, &ce):
			logger.Info("Left tenant owned by another in the core", "tenant", tenantID, "owner", ce.Owner)
			r.event(tenant, corev1.EventTypeWarning, authv1alpha1.ReasonTenantIDClaimed, fmt.Sprintf("Did not delete tenant %s from the auth core: %s", tenantID, notOwnedMessage(ce.Owner, tenant)))
		case err != nil:
			return r.coreFailed(tenant, err)
		default:
			logger.Info("Deleted tenant configuration from the core", "tenant", tenantID)
			r.event(tenant, corev1.EventTypeNormal, "Deleted", "Removed the tenant configuration from the auth core; users are kept")
		}
	default:
		_, err := r.Core.ReleaseTenant(ctx, tenantID, owner)
		switch {
		case errors.Is(err, adminclient.ErrClaimed), errors.Is(err, adminclient.ErrNotFound):
			// Not ours, or gone: nothing to release.
		case err != nil:
			return r.coreFailed(tenant, err)
		default:
			logger.Info("Released tenant", "tenant", tenantID, "deletionPolicy", "Retain")
			r.event(tenant, corev1.EventTypeNormal, "Retained", "The auth core keeps the tenant and its users; it is no longer managed and another AuthTenant may claim its id")
		}
	}
	patch := client.MergeFrom(tenant.DeepCopy())
	controllerutil.RemoveFinalizer(tenant, Finalizer)
	return ctrl.Result{}, r.Patch(ctx, tenant, patch)
}

// mayDeclare reports whether the object may manage its tenant id at all: the public tenant
// only from PublicTenantNamespace.
func (r *AuthTenantReconciler) mayDeclare(tenant *authv1alpha1.AuthTenant) bool {
	return tenant.EffectiveTenantID() != contract.PublicTenantID || (r.PublicTenantNamespace != "" && tenant.Namespace == r.PublicTenantNamespace)
}

func (r *AuthTenantReconciler) reservedMessage() string {
	if r.PublicTenantNamespace == "" {
		return "tenant id public is reserved: this manager lets no AuthTenant declare it, so the auth core keeps its built-in public tenant; choose another tenant id"
	}
	return fmt.Sprintf("tenant id public may only be declared by an AuthTenant in namespace %s; choose another tenant id", r.PublicTenantNamespace)
}

func notOwnedMessage(owner string, tenant *authv1alpha1.AuthTenant) string {
	if owner == "" {
		return fmt.Sprintf("this AuthTenant does not own tenant id %s (nobody has claimed it)", tenant.EffectiveTenantID())
	}
	return fmt.Sprintf("tenant id %s is owned by %s", tenant.EffectiveTenantID(), describeOwner(owner, tenant))
}

// claimedElsewhere records that another owner holds the tenant id: nothing of this object
// reaches the core. It looks again after the resync period, since the owner may release
// the id through the admin API without any object changing; the owner's deletion requeues
// it at once.
func (r *AuthTenantReconciler) claimedElsewhere(tenant *authv1alpha1.AuthTenant, owner string) (ctrl.Result, error) {
	msg := notOwnedMessage(owner, tenant) + "; this AuthTenant changes nothing in the auth core until the owner is deleted"
	r.refuse(tenant, authv1alpha1.ReasonTenantIDClaimed, msg)
	return ctrl.Result{RequeueAfter: r.ResyncPeriod}, nil
}

// refuse sets Ready=False for an object that may not manage its tenant id, with a Warning
// Event when that is news, and clears what status said the core held for it.
func (r *AuthTenantReconciler) refuse(tenant *authv1alpha1.AuthTenant, reason, msg string) {
	if c := meta.FindStatusCondition(tenant.Status.Conditions, authv1alpha1.ConditionReady); c == nil || c.Reason != reason || c.Message != msg {
		r.event(tenant, corev1.EventTypeWarning, reason, msg)
	}
	tenant.Status.ConfigVersion, tenant.Status.ConfigHash, tenant.Status.AppliedPolicies = 0, "", nil
	r.setReady(tenant, metav1.ConditionFalse, reason, msg)
}

// coreFailed records why the core did not take the configuration. Unreachable cores are
// retried with the controller's backoff; refusals wait for a change to the objects.
func (r *AuthTenantReconciler) coreFailed(tenant *authv1alpha1.AuthTenant, err error) (ctrl.Result, error) {
	var invalid *adminclient.InvalidError
	if errors.As(err, &invalid) {
		r.setReady(tenant, metav1.ConditionFalse, authv1alpha1.ReasonInvalidSpec, invalid.Error())
		r.event(tenant, corev1.EventTypeWarning, authv1alpha1.ReasonInvalidSpec, invalid.Error())
		return ctrl.Result{}, nil
	}
	r.setReady(tenant, metav1.ConditionFalse, authv1alpha1.ReasonCoreUnavailable, err.Error())
	return ctrl.Result{}, err
}

func (r *AuthTenantReconciler) setReady(tenant *authv1alpha1.AuthTenant, status metav1.ConditionStatus, reason, message string) {
	if !tenant.DeletionTimestamp.IsZero() && status == metav1.ConditionTrue {
		status, reason = metav1.ConditionFalse, authv1alpha1.ReasonDeleting
	}
	meta.SetStatusCondition(&tenant.Status.Conditions, metav1.Condition{
		Type: authv1alpha1.ConditionReady, Status: status, Reason: reason, Message: message,
		ObservedGeneration: tenant.Generation,
	})
}

func (r *AuthTenantReconciler) event(obj client.Object, eventType, reason, note string) {
	if r.Recorder != nil {
		r.Recorder.Eventf(obj, nil, eventType, reason, "Sync", "%s", note)
	}
}

// patchStatus writes status only when it changed.
func (r *AuthTenantReconciler) patchStatus(ctx context.Context, before, after *authv1alpha1.AuthTenant) error {
	if equalStatus(before.Status, after.Status) {
		return nil
	}
	return r.Status().Patch(ctx, after, client.MergeFrom(before))
}
