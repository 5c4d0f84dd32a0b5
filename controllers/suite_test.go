package controllers_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	authv1alpha1 "github.com/twofold-dev/twofold/api/v1alpha1"
	"github.com/twofold-dev/twofold/controllers"
	"github.com/twofold-dev/twofold/test/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	ctrl.SetLogger(zap.New(zap.UseDevMode(true), zap.WriteTo(os.Stderr), zap.Level(zapLevel())))
	var err error
	env, err = testenv.Start(testenv.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

// zapLevel keeps test output to errors unless TWOFOLD_TEST_VERBOSE is set.
func zapLevel() zapcore.Level {
	if os.Getenv("TWOFOLD_TEST_VERBOSE") != "" {
		return zapcore.DebugLevel
	}
	// Reconcile errors are expected when tests stop the core; the conditions are what count.
	return zapcore.DPanicLevel
}

// startManager runs the reconcilers against the test API server and the given core until the
// test ends, in a namespace of the test's own.
func startManager(t testing.TB, core controllers.CoreClient, resync time.Duration) string {
	return env.StartControllers(t, core, resync)
}

// eventually polls cond until it holds or the time limit passes. The controllers work
// asynchronously, so tests wait for an observable outcome rather than for time to pass.
func eventually(t *testing.T, what string, limit time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	last := ""
	for {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last seen: %s", what, limit, last)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func readyCondition(conds []metav1.Condition) *metav1.Condition {
	return meta.FindStatusCondition(conds, authv1alpha1.ConditionReady)
}

func tenantReady(t *testing.T, key client.ObjectKey, reason string) func() (bool, string) {
	return func() (bool, string) {
		var at authv1alpha1.AuthTenant
		if err := env.Client.Get(context.Background(), key, &at); err != nil {
			return false, err.Error()
		}
		c := readyCondition(at.Status.Conditions)
		if c == nil {
			return false, "no Ready condition"
		}
		return c.Reason == reason && (reason != authv1alpha1.ReasonSynced || at.Status.ObservedGeneration == at.Generation), fmt.Sprintf("%s/%s: %s", c.Status, c.Reason, c.Message)
	}
}
