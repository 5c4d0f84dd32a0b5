package controllers_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/twofold-dev/twofold/api/v1alpha1"
	"github.com/twofold-dev/twofold/core/adminclient"
	"github.com/twofold-dev/twofold/test/coreproc"
)

// BenchmarkApplyToLive measures the time from creating an AuthTenant to the core serving its
// configuration, as a controller user experiences it. Run with -benchtime=200x.
func BenchmarkApplyToLive(b *testing.B) {
	core := coreproc.Start(b, coreproc.Options{})
	admin := adminclient.New(core.URL, func() (string, error) { return core.AdminKey, nil }, nil)
	ns := startManager(b, admin, time.Minute)
	ctx := context.Background()
	// Warm up: the first tenant also waits for the manager's caches to sync.
	warm := &authv1alpha1.AuthTenant{ObjectMeta: metav1.ObjectMeta{Name: "warm-up", Namespace: ns}}
	warm.Spec.FirstFactors = []authv1alpha1.FactorID{authv1alpha1.FactorEmailPassword}
	if err := env.Client.Create(ctx, warm); err != nil {
		b.Fatal(err)
	}
	for start := time.Now(); ; time.Sleep(10 * time.Millisecond) {
		if _, err := admin.GetTenant(ctx, warm.Name); err == nil {
			break
		}
		if time.Since(start) > 30*time.Second {
			b.Fatal("the manager did not sync a first tenant within 30s")
		}
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		at := &authv1alpha1.AuthTenant{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("live-%d", i), Namespace: ns}}
		at.Spec.FirstFactors = []authv1alpha1.FactorID{authv1alpha1.FactorEmailPassword}
		start := time.Now()
		if err := env.Client.Create(ctx, at); err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := admin.GetTenant(ctx, at.Name); err == nil {
				break
			}
			if time.Since(start) > 30*time.Second {
				b.Fatalf("tenant %s not live after 30s", at.Name)
			}
			time.Sleep(time.Millisecond)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[(len(lat)*99)/100].Microseconds())/1000, "p99-ms")
}

// fleetSize is the number of tenants BenchmarkThousandTenantsConverge creates.
var fleetSize = 1000

// BenchmarkThousandTenantsConverge measures how long 1,000 AuthTenants created at once take
// to be live in the core and Ready. Run with -benchtime=1x.
func BenchmarkThousandTenantsConverge(b *testing.B) {
	core := coreproc.Start(b, coreproc.Options{})
	admin := adminclient.New(core.URL, func() (string, error) { return core.AdminKey, nil }, nil)
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		ns := startManager(b, admin, time.Minute)
		b.StartTimer()
		start := time.Now()
		for j := 0; j < fleetSize; j++ {
			at := &authv1alpha1.AuthTenant{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("fleet-%d-%d", i, j), Namespace: ns}}
			at.Spec.FirstFactors = []authv1alpha1.FactorID{authv1alpha1.FactorEmailPassword}
			if err := env.Client.Create(ctx, at); err != nil {
				b.Fatal(err)
			}
		}
		for {
			var list authv1alpha1.AuthTenantList
			if err := env.Client.List(ctx, &list); err != nil {
				b.Fatal(err)
			}
			ready := 0
			for _, at := range list.Items {
				if at.Namespace == ns && at.Status.ObservedGeneration == at.Generation && at.Status.ConfigVersion > 0 {
					ready++
				}
			}
			if ready == fleetSize {
				break
			}
			if time.Since(start) > 5*time.Minute {
				b.Fatalf("only %d of %d tenants Ready after 5 minutes", ready, fleetSize)
			}
			time.Sleep(100 * time.Millisecond)
		}
		b.ReportMetric(time.Since(start).Seconds(), "s-to-converge")
	}
}
