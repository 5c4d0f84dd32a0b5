//go:build cluster

package cluster

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// tightenedPolicy is tenantAndPolicy's MFAPolicy with a step-up rule on /admin that asks for a
// factor the user has not set up.
const tightenedPolicy = totpPolicy + `  routes:
    - pathPrefix: /admin
      requirement:
        - factor: recovery-code
`

// aroundPod asks the app pod's own address, on the app's port, and the Service for the app
// with a forged identity header, from a pod in another namespace.
const aroundPod = `
apiVersion: v1
kind: Namespace
metadata:
  name: smoke-client
---
apiVersion: v1
kind: Pod
metadata:
  name: around
  namespace: smoke-client
spec:
  restartPolicy: Never
  containers:
  - name: get
    image: ` + probeImage + `
    imagePullPolicy: Never
    args: [get, -timeout, 3s, -header, "X-Twofold-User-Id: mallory", "http://@POD_IP@:8080/", "http://` + appIP + `/"]
`

// signUpWithTOTP signs a user up through the sidecar and sets TOTP up, and returns the access
// token of the session that completed both factors and the user's id.
func signUpWithTOTP(t *testing.T, email, password string) (access, userID string) {
	t.Helper()
	a := mustCall(t, http.MethodPost, "/auth/signup", "", map[string]any{"formFields": []map[string]string{
		{"id": "email", "value": email}, {"id": "password", "value": password},
	}}, "rid", "emailpassword")
	access = a.header.Get("st-access-token")
	user, _ := a.body["user"].(map[string]any)
	userID, _ = user["id"].(string)
	if a.status != http.StatusOK || a.body["status"] != "OK" || access == "" || userID == "" {
		t.Fatalf("POST /auth/signup = %d %s (access token %t), want OK with a user and a session", a.status, a.raw, access != "")
	}
	v := setUpTOTP(t, access)
	if tok := v.header.Get("st-access-token"); tok != "" && tok != "remove" {
		access = tok
	}
	return access, userID
}

// signIn signs in through the sidecar; it returns the user id the core answered with, or an
// explanation of why the sign-in did not succeed.
func signIn(email, password string) (string, string) {
	a, err := call(http.MethodPost, "/auth/signin", "", map[string]any{"formFields": []map[string]string{
		{"id": "email", "value": email}, {"id": "password", "value": password},
	}}, "rid", "emailpassword")
	if err != nil {
		return "", err.Error()
	}
	user, _ := a.body["user"].(map[string]any)
	id, _ := user["id"].(string)
	if a.status != http.StatusOK || a.body["status"] != "OK" || id == "" {
		return "", fmt.Sprintf("POST /auth/signin = %d %s", a.status, a.raw)
	}
	return id, ""
}

// signInAgain waits until the user signs in again after what happened (which began at start),
// logs how long that took, and checks that the core still knows the same user.
func signInAgain(t *testing.T, after string, start time.Time, email, password, userID string) {
	t.Helper()
	var id string
	poll(t, "signing in again after "+after, 90*time.Second, func() (bool, string) {
		var why string
		id, why = signIn(email, password)
		return id != "", why
	})
	t.Logf("%s -> a sign-in answered: %s", after, time.Since(start).Round(100*time.Millisecond))
	if id != userID {
		t.Errorf("signed in as %q after %s, want the same user %q", id, after, userID)
	}
}

// listeners lists the TCP listening addresses on port in the network namespace of the process
// named comm (the only one of that name on the machine), read from the host.
func listeners(t *testing.T, comm string, port string) []string {
	t.Helper()
	pid := strings.TrimSpace(run(t, "finding the "+comm+" process", time.Minute, "", "pgrep", "-x", comm))
	if strings.Contains(pid, "\n") {
		t.Fatalf("more than one %s process runs: %s", comm, pid)
	}
	out := run(t, "listing the listeners in the pod's network namespace", time.Minute, "",
		"nsenter", "--net=/proc/"+pid+"/ns/net", "--", "ss", "-H", "-t", "-l", "-n")
	var got []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && strings.HasSuffix(f[3], ":"+port) {
			got = append(got, f[3])
		}
	}
	sort.Strings(got)
	return got
}

// TestTheChartKeepsEnforcingThroughChangesOnARealNode changes what runs under a protected app
// (policies, sessions, the core's pod, the manager's leader, the release's values) and checks
// that the sidecar keeps enforcing and the core keeps its users.
func TestTheChartKeepsEnforcingThroughChangesOnARealNode(t *testing.T) {
	i := installTwofold(t)
	c := i.cluster
	c.loadProbe()

	c.apply("applying the AuthTenant and the MFAPolicy", tenantAndPolicy)
	c.kube("waiting for the AuthTenant and the MFAPolicy to be Ready", "wait", "authtenant/demo", "mfapolicy/totp-required",
		"--for=condition=Ready", "--timeout=120s")
	c.apply("deploying the opted-in sample app", sampleApp)
	c.kube("waiting for the sample app's rollout", "-n", appNS, "rollout", "status", "deployment/sampleapp", "--timeout=240s")
	c.kube("waiting for the sample app's pod to be Ready", "-n", appNS, "wait", "pod", "-l", "app=sampleapp",
		"--for=condition=Ready", "--timeout=240s")
	poll(t, "the Service to answer from the host", 60*time.Second, func() (bool, string) {
		_, err := call(http.MethodGet, "/healthz", "", nil)
		return err == nil, fmt.Sprint(err)
	})

	const email, password = "bob@demo.example", "correct-horse-battery-7"
	access, userID := signUpWithTOTP(t, email, password)

	t.Run("a tightened MFAPolicy is enforced by the sidecar within 5 s", func(t *testing.T) {
		if a := mustCall(t, http.MethodGet, "/admin", access, nil); a.status != http.StatusOK {
			t.Fatalf("GET /admin with a TOTP session before the step-up rule = %d %s, want 200", a.status, a.raw)
		}
		start := time.Now()
		c.apply("adding a step-up rule on /admin to the MFAPolicy", tightenedPolicy)
		poll(t, "the sidecar to ask for the step-up on /admin", 5*time.Second-time.Since(start), func() (bool, string) {
			a, err := call(http.MethodGet, "/admin", access, nil)
			return err == nil && a.status == http.StatusForbidden && strings.Contains(a.raw, `"id":"st-mfa"`), fmt.Sprintf("%d %s %v", a.status, a.raw, err)
		})
		t.Logf("MFAPolicy applied -> step-up enforced by the sidecar: %s", time.Since(start).Round(time.Millisecond))
		if a := mustCall(t, http.MethodGet, "/", access, nil); a.status != http.StatusOK {
			t.Errorf("GET / outside the step-up route = %d %s, want 200", a.status, a.raw)
		}
	})

	t.Run("a session revoked with the admin API is refused within 5 s", func(t *testing.T) {
		a := mustCall(t, http.MethodGet, "/", access, nil)
		handle, _ := a.body["session"].(string)
		if a.status != http.StatusOK || handle == "" {
			t.Fatalf("GET / = %d %s, want 200 naming the session", a.status, a.raw)
		}
		key64 := c.kube("reading the admin key", "-n", releaseNS, "get", "secret", release+"-admin-key", "-o", "jsonpath={.data.admin-key}")
		key, err := base64.StdEncoding.DecodeString(key64)
		if err != nil || len(key) == 0 {
			t.Fatalf("the admin key Secret holds %q: %v", key64, err)
		}
		coreIP := c.kube("reading the core Service's ClusterIP", "-n", releaseNS, "get", "svc", release+"-core", "-o", "jsonpath={.spec.clusterIP}")
		if ip := net.ParseIP(coreIP); ip == nil || !serviceNet.Contains(ip) {
			t.Fatalf("the core Service's ClusterIP is %q, want an address in %s", coreIP, serviceNet)
		}
		req, err := http.NewRequest(http.MethodDelete, "http://"+net.JoinHostPort(coreIP, "3567")+"/admin/v1/sessions/"+handle, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+string(key))
		start := time.Now()
		resp, err := browser.Do(req)
		if err != nil {
			t.Fatalf("DELETE /admin/v1/sessions/<handle> on the core: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("DELETE /admin/v1/sessions/<handle> on the core = %d, want 204", resp.StatusCode)
		}
		poll(t, "the sidecar to refuse the revoked session", 5*time.Second, func() (bool, string) {
			a, err := call(http.MethodGet, "/", access, nil)
			return err == nil && a.status == http.StatusUnauthorized, fmt.Sprintf("%d %s %v", a.status, a.raw, err)
		})
		t.Logf("admin API revocation -> refused by the sidecar: %s", time.Since(start).Round(time.Millisecond))
	})

	t.Run("a helpdesk resolves the support tickets with kubectl twofold through the API server", func(t *testing.T) {
		helpdeskResolvesTheTickets(t, c)
	})

	t.Run("another pod reaches the app's port only through the sidecar", func(t *testing.T) {
		podIP := c.kube("reading the app pod's address", "-n", appNS, "get", "pod", "-l", "app=sampleapp", "-o", "jsonpath={.items[0].status.podIP}")
		if got, want := listeners(t, "sampleapp", "8080"), []string{"127.0.0.1:8080", podIP + ":8080"}; strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("listeners on port 8080 in the app pod = %q, want the app on %q and the proxy on %q", got, want[0], want[1])
		}
		c.apply("creating the probe pod", strings.ReplaceAll(aroundPod, "@POD_IP@", podIP))
		c.kube("waiting for the probe pod to finish", "-n", "smoke-client", "wait", "pod/around",
			"--for=jsonpath={.status.phase}=Succeeded", "--timeout=120s")
		got := strings.TrimSpace(c.kube("reading the probe pod's log", "-n", "smoke-client", "logs", "pod/around"))
		want := strings.Join([]string{
			"http://" + podIP + ":8080/ 401 {\"message\":\"unauthorised\"}",
			"http://" + appIP + "/ 401 {\"message\":\"unauthorised\"}",
		}, "\n")
		if got != want {
			t.Errorf("the probe pod saw\n%s\nwant the proxy's refusal on both\n%s", got, want)
		}
	})

	t.Run("deleting the core pod loses no user", func(t *testing.T) {
		old := c.kube("reading the core pod", "-n", releaseNS, "get", "pod", "-l", "app.kubernetes.io/component=core", "-o", "jsonpath={.items[*].metadata.name}")
		start := time.Now()
		c.kube("deleting the core pod", "-n", releaseNS, "delete", "pod", old, "--timeout=120s")
		c.kube("waiting for the core's replacement", "-n", releaseNS, "rollout", "status", "deployment/"+release+"-core", "--timeout=180s")
		signInAgain(t, "the core pod was replaced", start, email, password, userID)
		if now := c.kube("reading the core pod", "-n", releaseNS, "get", "pod", "-l", "app.kubernetes.io/component=core", "-o", "jsonpath={.items[*].metadata.name}"); now == old {
			t.Errorf("the core pod is still %s", now)
		}
	})

	t.Run("helm upgrade with a changed core value rolls the core and keeps users and the admin key", func(t *testing.T) {
		if got := c.kube("reading the core's strategy", "-n", releaseNS, "get", "deployment", release+"-core", "-o", "jsonpath={.spec.strategy.type}"); got != "Recreate" {
			t.Errorf("the core Deployment's strategy is %q, want Recreate as docs/install.md says for SQLite", got)
		}
		keyBefore := c.kube("reading the admin key", "-n", releaseNS, "get", "secret", release+"-admin-key", "-o", "jsonpath={.data.admin-key}")
		oldUID := c.kube("reading the core pod", "-n", releaseNS, "get", "pod", "-l", "app.kubernetes.io/component=core", "-o", "jsonpath={.items[*].metadata.uid}")
		start := time.Now()
		i.helm("upgrading the release with a core pod annotation", "upgrade", release, "charts/twofold", "-n", releaseNS,
			"--reuse-values", "--set-string", "core.podAnnotations.example\\.com/rolled=1")
		c.kube("waiting for the core's rollout", "-n", releaseNS, "rollout", "status", "deployment/"+release+"-core", "--timeout=180s")
		signInAgain(t, "the upgrade", start, email, password, userID)
		if uid := c.kube("reading the core pod", "-n", releaseNS, "get", "pod", "-l", "app.kubernetes.io/component=core", "-o", "jsonpath={.items[*].metadata.uid}"); uid == oldUID {
			t.Errorf("the core pod was not replaced by the upgrade (uid %s)", uid)
		}
		if keyAfter := c.kube("reading the admin key", "-n", releaseNS, "get", "secret", release+"-admin-key", "-o", "jsonpath={.data.admin-key}"); keyAfter != keyBefore {
			t.Errorf("helm upgrade changed the admin key")
		}
		c.kube("checking the AuthTenant is still Ready", "wait", "authtenant/demo", "--for=condition=Ready", "--timeout=60s")
	})

	t.Run("two manager replicas keep reconciling when the leader is deleted", func(t *testing.T) {
		i.helm("upgrading the release to two manager replicas", "upgrade", release, "charts/twofold", "-n", releaseNS,
			"--reuse-values", "--set", "manager.replicas=2")
		c.kube("waiting for the manager's rollout", "-n", releaseNS, "rollout", "status", "deployment/"+release+"-manager", "--timeout=240s")
		// Raising replicas changes the pod template (the chart then prefers spreading the
		// replicas), so the old pod, the leader, terminates after the rollout reports done.
		var leader string
		poll(t, "two running manager pods, one of them holding the leader Lease", 120*time.Second, func() (bool, string) {
			holder, err := c.kubeErr("", "-n", releaseNS, "get", "lease", "manager.auth.twofold.dev", "-o", "jsonpath={.spec.holderIdentity}")
			leader, _, _ = strings.Cut(holder, "_")
			pods, err2 := c.kubeErr("", "-n", releaseNS, "get", "pod", "-l", "app.kubernetes.io/component=manager", "-o",
				`jsonpath={range .items[*]}{.metadata.name}{.metadata.deletionTimestamp}{" "}{end}`)
			names := strings.Fields(pods)
			return err == nil && err2 == nil && len(names) == 2 && leader != "" && slices.Contains(names, leader),
				fmt.Sprintf("Lease holder %q, manager pods (a time after a name: terminating) %q", holder, pods)
		})
		start := time.Now()
		c.kube("deleting the leader", "-n", releaseNS, "delete", "pod", leader, "--timeout=120s")
		c.kube("changing the AuthTenant", "patch", "authtenant/demo", "--type=merge", "-p", `{"spec":{"branding":{"appName":"Demo shop"}}}`)
		gen := c.kube("reading the AuthTenant's generation", "get", "authtenant/demo", "-o", "jsonpath={.metadata.generation}")
		poll(t, "the AuthTenant to be Ready at its new generation", 120*time.Second, func() (bool, string) {
			got, err := c.kubeErr("", "get", "authtenant/demo", "-o", `jsonpath={.status.observedGeneration} {.status.conditions[?(@.type=="Ready")].status}`)
			return err == nil && got == gen+" True", fmt.Sprintf("observedGeneration and Ready %q, want %q", got, gen+" True")
		})
		t.Logf("leader deleted -> AuthTenant change reconciled: %s", time.Since(start).Round(100*time.Millisecond))
		holder := c.kube("reading the Lease", "-n", releaseNS, "get", "lease", "manager.auth.twofold.dev", "-o", "jsonpath={.spec.holderIdentity}")
		if strings.HasPrefix(holder, leader+"_") {
			t.Errorf("the deleted pod %s still holds the Lease (%s)", leader, holder)
		}
	})
}
