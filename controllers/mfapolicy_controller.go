package controllers

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	authv1alpha1 "github.com/twofold-dev/twofold/api/v1alpha1"
)

// ReasonPending: a tenant has not applied the policy's latest generation yet.
const ReasonPending = "Pending"

// MFAPolicyReconciler reports whether each tenant a policy names has applied it. The policy's
// effect lives in its tenants' configuration, which the AuthTenant reconciler writes; a
// deleted policy is dropped from it by that reconciler's watch, so policies need no
// finalizer.
type MFAPolicyReconciler struct {
	client.Client
}

// +kubebuilder:rbac:groups=auth.twofold.dev,resources=mfapolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups=auth.twofold.dev,resources=mfapolicies/status,verbs=get;update;patch

// Reconcile fetches the policy, reads its tenants' status and patches the policy's status.
func (r *MFAPolicyReconciler) Reconcile(ctx context.Context, req ctrl.Request) (_ ctrl.Result, reterr error) {
	policy := &authv1alpha1.MFAPolicy{}
	if err := r.Get(ctx, req.NamespacedName, policy); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !policy.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	before := policy.DeepCopy()
	defer func() {
		if equalStatus(before.Status, policy.Status) {
			return
		}
		if err := r.Status().Patch(ctx, policy, client.MergeFrom(before)); err != nil && !apierrors.IsNotFound(err) {
			reterr = errors.Join(reterr, err)
		}
	}()
	return r.reconcileNormal(ctx, policy)
}

func (r *MFAPolicyReconciler) reconcileNormal(ctx context.Context, policy *authv1alpha1.MFAPolicy) (ctrl.Result, error) {
	var live []string
	var problems []string
	reason := ""
	for _, name := range policy.Spec.TenantRefs {
		var tenant authv1alpha1.AuthTenant
		err := r.Get(ctx, types.NamespacedName{Namespace: policy.Namespace, Name: name}, &tenant)
		if apierrors.IsNotFound(err) {
			problems = append(problems, fmt.Sprintf("AuthTenant %s does not exist in namespace %s", name, policy.Namespace))
			reason = firstReason(reason, authv1alpha1.ReasonTenantNotFound)
			continue
		}
		if err != nil {
			return ctrl.Result{}, fmt.Errorf("reading AuthTenant %s: %w", name, err)
		}
		ready := meta.FindStatusCondition(tenant.Status.Conditions, authv1alpha1.ConditionReady)
		applied := slices.Contains(tenant.Status.AppliedPolicies, authv1alpha1.AppliedPolicy{Name: policy.Name, Generation: policy.Generation})
		switch {
		case ready != nil && ready.Status == metav1.ConditionTrue && applied:
			live = append(live, tenant.EffectiveTenantID())
		case ready != nil && ready.Status == metav1.ConditionFalse:
			problems = append(problems, fmt.Sprintf("AuthTenant %s: %s", name, ready.Message))
			reason = firstReason(reason, ready.Reason)
		default:
			problems = append(problems, fmt.Sprintf("AuthTenant %s has not applied generation %d yet", name, policy.Generation))
			reason = firstReason(reason, ReasonPending)
		}
	}
	policy.Status.Tenants = live
	if len(problems) > 0 {
		meta.SetStatusCondition(&policy.Status.Conditions, metav1.Condition{
			Type: authv1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: reason,
			Message: strings.Join(problems, "; "), ObservedGeneration: policy.Generation,
		})
		return ctrl.Result{}, nil // a tenant change brings us back
	}
	policy.Status.ObservedGeneration = policy.Generation
	meta.SetStatusCondition(&policy.Status.Conditions, metav1.Condition{
		Type: authv1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: authv1alpha1.ReasonSynced,
		Message: fmt.Sprintf("Live in the auth core for tenants %s", strings.Join(live, ", ")), ObservedGeneration: policy.Generation,
	})
	return ctrl.Result{}, nil
}

func firstReason(have, next string) string {
	if have != "" {
		return have
	}
	return next
}

// SetupWithManager registers the reconciler; a change to an AuthTenant's status requeues the
// policies that name it.
func (r *MFAPolicyReconciler) SetupWithManager(mgr ctrl.Manager, concurrency int) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&authv1alpha1.MFAPolicy{}).
		Watches(&authv1alpha1.AuthTenant{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			var list authv1alpha1.MFAPolicyList
			if err := r.List(ctx, &list, client.InNamespace(o.GetNamespace()), client.MatchingFields{tenantIndex: o.GetName()}); err != nil {
				ctrl.LoggerFrom(ctx).Error(err, "Failed to list MFAPolicies for an AuthTenant", "tenant", client.ObjectKeyFromObject(o))
				return nil
			}
			reqs := make([]reconcile.Request, 0, len(list.Items))
			for _, p := range list.Items {
				reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&p)})
			}
			return reqs
		})).
		Named("mfapolicy").
		WithOptions(controller.Options{MaxConcurrentReconciles: concurrency}).
		Complete(r)
}
