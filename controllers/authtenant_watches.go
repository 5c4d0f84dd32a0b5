package controllers

import (
	"context"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	authv1alpha1 "github.com/twofold-dev/twofold/api/v1alpha1"
)

// What an AuthTenant's reconcile reads besides the tenant (its MFAPolicies and Secrets), and the
// indexes and watches that bring a change of those back to it.

func (r *AuthTenantReconciler) policiesFor(ctx context.Context, tenant *authv1alpha1.AuthTenant) ([]authv1alpha1.MFAPolicy, error) {
	var list authv1alpha1.MFAPolicyList
	if err := r.List(ctx, &list, client.InNamespace(tenant.Namespace), client.MatchingFields{tenantIndex: tenant.Name}); err != nil {
		return nil, fmt.Errorf("listing MFAPolicies for tenant %s: %w", tenant.Name, err)
	}
	var out []authv1alpha1.MFAPolicy
	for _, p := range list.Items {
		if p.DeletionTimestamp.IsZero() {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (r *AuthTenantReconciler) secretLookup(ctx context.Context, namespace string) SecretLookup {
	return func(ref authv1alpha1.SecretKeySelector) (string, error) {
		var s corev1.Secret
		if err := r.SecretReader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: ref.Name}, &s); err != nil {
			if apierrors.IsNotFound(err) {
				return "", fmt.Errorf("%w: Secret %s/%s does not exist", ErrSecretNotFound, namespace, ref.Name)
			}
			return "", fmt.Errorf("reading Secret %s/%s: %w", namespace, ref.Name, err)
		}
		v, ok := s.Data[ref.Key]
		if !ok {
			return "", fmt.Errorf("%w: Secret %s/%s has no key %q", ErrSecretNotFound, namespace, ref.Name, ref.Key)
		}
		return string(v), nil
	}
}

func appliedPolicies(ps []authv1alpha1.MFAPolicy) []authv1alpha1.AppliedPolicy {
	var out []authv1alpha1.AppliedPolicy
	for _, p := range ps {
		out = append(out, authv1alpha1.AppliedPolicy{Name: p.Name, Generation: p.Generation})
	}
	return out
}

// secretNames lists the Secrets a tenant refers to, for the Secret watch.
func secretNames(t *authv1alpha1.AuthTenant) []string {
	seen := map[string]bool{}
	add := func(ref *authv1alpha1.SecretKeySelector) {
		if ref != nil {
			seen[ref.Name] = true
		}
	}
	for i := range t.Spec.ThirdPartyProviders {
		add(&t.Spec.ThirdPartyProviders[i].ClientSecretRef)
	}
	if t.Spec.Email != nil {
		add(t.Spec.Email.SMTP.UsernameRef)
		add(t.Spec.Email.SMTP.PasswordRef)
	}
	if t.Spec.SMS != nil {
		if t.Spec.SMS.Twilio != nil {
			add(&t.Spec.SMS.Twilio.AuthTokenRef)
		}
		if t.Spec.SMS.Webhook != nil {
			add(&t.Spec.SMS.Webhook.SecretRef)
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// SetupIndexes registers the field indexes both reconcilers use; call it once per manager
// before SetupWithManager.
func SetupIndexes(ctx context.Context, mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(ctx, &authv1alpha1.AuthTenant{}, secretIndex, func(o client.Object) []string {
		return secretNames(o.(*authv1alpha1.AuthTenant))
	}); err != nil {
		return fmt.Errorf("indexing AuthTenants by Secret: %w", err)
	}
	if err := mgr.GetFieldIndexer().IndexField(ctx, &authv1alpha1.AuthTenant{}, tenantIDIndex, func(o client.Object) []string {
		return []string{o.(*authv1alpha1.AuthTenant).EffectiveTenantID()}
	}); err != nil {
		return fmt.Errorf("indexing AuthTenants by tenant id: %w", err)
	}
	if err := mgr.GetFieldIndexer().IndexField(ctx, &authv1alpha1.MFAPolicy{}, tenantIndex, func(o client.Object) []string {
		return o.(*authv1alpha1.MFAPolicy).Spec.TenantRefs
	}); err != nil {
		return fmt.Errorf("indexing MFAPolicies by tenant: %w", err)
	}
	return nil
}

// SetupWithManager registers the reconciler and its watches: the AuthTenants themselves, the
// other AuthTenants naming the same tenant id (so a claimant waiting for an id takes it as
// soon as its owner is deleted), the MFAPolicies that name them and the Secrets they refer to.
func (r *AuthTenantReconciler) SetupWithManager(mgr ctrl.Manager, concurrency int) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&authv1alpha1.AuthTenant{}).
		Watches(&authv1alpha1.AuthTenant{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			var list authv1alpha1.AuthTenantList
			if err := r.List(ctx, &list, client.MatchingFields{tenantIDIndex: o.(*authv1alpha1.AuthTenant).EffectiveTenantID()}); err != nil {
				log.FromContext(ctx).Error(err, "Failed to list AuthTenants naming a tenant id", "authTenant", client.ObjectKeyFromObject(o))
				return nil
			}
			var reqs []reconcile.Request
			for _, t := range list.Items {
				if t.Namespace != o.GetNamespace() || t.Name != o.GetName() {
					reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&t)})
				}
			}
			return reqs
		})).
		Watches(&authv1alpha1.MFAPolicy{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			var reqs []reconcile.Request
			for _, name := range o.(*authv1alpha1.MFAPolicy).Spec.TenantRefs {
				reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}})
			}
			return reqs
		})).
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			var list authv1alpha1.AuthTenantList
			if err := r.List(ctx, &list, client.InNamespace(o.GetNamespace()), client.MatchingFields{secretIndex: o.GetName()}); err != nil {
				log.FromContext(ctx).Error(err, "Failed to list AuthTenants for a Secret", "secret", client.ObjectKeyFromObject(o))
				return nil
			}
			reqs := make([]reconcile.Request, 0, len(list.Items))
			for _, t := range list.Items {
				reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&t)})
			}
			return reqs
		})).
		Named("authtenant").
		WithOptions(controller.Options{MaxConcurrentReconciles: concurrency}).
		Complete(r)
}
