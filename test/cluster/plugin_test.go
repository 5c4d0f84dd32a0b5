//go:build cluster

package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/twofold-dev/twofold/contract"
	"github.com/twofold-dev/twofold/kubectl"
)

// plugin runs the kubectl-twofold binary as a kubeconfig's user would.
type plugin struct {
	t          *testing.T
	bin        string
	kubeconfig string
	// extra flags every command gets (the helpdesk's --admin-key-secret).
	extra []string
}

// run runs one command with stdin and returns its stdout, stderr and exit code.
func (p plugin) run(stdin string, args ...string) (string, string, int) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, p.bin, append(append(args, "--kubeconfig", p.kubeconfig), p.extra...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	return out.String(), errOut.String(), code
}

// must runs one command that has to succeed and returns its stdout.
func (p plugin) must(args ...string) string {
	p.t.Helper()
	out, errOut, code := p.run("", args...)
	if code != 0 {
		p.t.Fatalf("kubectl twofold %s = exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// mustJSON runs one command with -o json and decodes its answer into v.
func (p plugin) mustJSON(v any, args ...string) {
	p.t.Helper()
	out := p.must(append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		p.t.Fatalf("kubectl twofold %s -o json printed %q: %v", strings.Join(args, " "), out, err)
	}
}

// impersonating writes a copy of the admin kubeconfig that acts as user in groups, so the
// API server's RBAC judges that user's requests.
func impersonating(t *testing.T, admin, user string, groups ...string) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(admin)
	if err != nil {
		t.Fatalf("reading the admin kubeconfig: %v", err)
	}
	for _, a := range cfg.AuthInfos {
		a.Impersonate, a.ImpersonateGroups = user, groups
	}
	path := filepath.Join(t.TempDir(), user+".kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// helpdeskResolvesTheTickets plays the five support tickets of docs/operations.md against the
// chart on the real node with the kubectl-twofold binary: a platform engineer gives the
// helpdesk its own key and the documented Role, and the helpdesk, through the API server and
// its RBAC alone, explains a 403, unlocks a locked-out user, reads who signed in from the core
// Pod's log, resets MFA and erases the user. The sidecar in front of the app must see each
// change. It needs tightenedPolicy applied: /admin asks for a recovery code.
func helpdeskResolvesTheTickets(t *testing.T, c *cluster) {
	admin := filepath.Join(c.state, "kubeconfig")
	bin := c.buildStatic("./cmd/kubectl-twofold")
	platform := plugin{t: t, bin: bin, kubeconfig: admin, extra: []string{"--twofold-namespace", releaseNS}}

	t.Run("the platform team sees the AuthTenant in sync with the core", func(t *testing.T) {
		var rep kubectl.TenantsReport
		platform.mustJSON(&rep, "tenants", "-A")
		if rep.CoreVersion == "" || !strings.Contains(rep.Core, release+"-core") {
			t.Errorf("tenants reached core %q at version %q, want the chart's Service %s-core and its version", rep.Core, rep.CoreVersion, release)
		}
		var demo *kubectl.TenantRow
		for i := range rep.Tenants {
			if rep.Tenants[i].TenantID == "demo" {
				demo = &rep.Tenants[i]
			}
		}
		if demo == nil || demo.Ready != "True" || demo.Drift != "InSync" {
			t.Fatalf("tenants = %+v, want AuthTenant demo Ready and InSync", rep.Tenants)
		}
	})

	// The platform team's setup from docs/operations.md: a named key in the Secret the Role
	// lets the helpdesk read, and the Role bound to the group helpdesk.
	var key contract.AdminKeyCreated
	platform.mustJSON(&key, "admin-keys", "create", "helpdesk")
	c.kube("storing the helpdesk's key", "-n", releaseNS, "create", "secret", "generic", "twofold-helpdesk-key", "--from-literal=admin-key="+key.Key)
	c.kube("applying the helpdesk Role", "apply", "-f", filepath.Join(c.root, "plugins", "helpdesk-role.yaml"))
	helpdesk := plugin{t: t, bin: bin, kubeconfig: impersonating(t, admin, "hana", "helpdesk"),
		extra: []string{"--twofold-namespace", releaseNS, "--admin-key-secret", "twofold-helpdesk-key", "--tenant", "demo"}}
	stranger := plugin{t: t, bin: bin, kubeconfig: impersonating(t, admin, "sam"), extra: helpdesk.extra}

	const email, password = "carol@demo.example", "correct-horse-battery-5"
	access, userID := signUpWithTOTP(t, email, password)
	if a := mustCall(t, http.MethodGet, "/", access, nil); a.status != http.StatusOK {
		t.Fatalf("GET / with carol's complete session = %d %s, want 200", a.status, a.raw)
	}

	t.Run("someone outside the helpdesk group is refused by the API server", func(t *testing.T) {
		_, errOut, code := stranger.run("", "users", "show", email)
		if code != 1 || !strings.Contains(errOut, "forbidden") {
			t.Fatalf("users show as a stranger = exit %d %s, want the API server's refusal", code, errOut)
		}
	})

	t.Run("ticket: why does carol get 403 on /admin", func(t *testing.T) {
		if a := mustCall(t, http.MethodGet, "/admin", access, nil); a.status != http.StatusForbidden {
			t.Fatalf("GET /admin = %d %s, want the step-up's 403", a.status, a.raw)
		}
		var x contract.AdminExplanation
		helpdesk.mustJSON(&x, "explain", email, "--path", "/admin", "--method", "GET")
		route, _ := json.Marshal(x.Route)
		if x.UserID != userID || x.Route == nil || x.Route.Rule == nil || !strings.Contains(string(route), "recovery-code") {
			t.Fatalf("explain carol on GET /admin = user %s, route %s; want carol and the /admin rule's recovery-code requirement", x.UserID, route)
		}
		if table := helpdesk.must("explain", email, "--path", "/admin"); !strings.Contains(table, "recovery-code") {
			t.Errorf("the explain table does not name recovery-code:\n%s", table)
		}
	})

	t.Run("ticket: carol is locked out", func(t *testing.T) {
		for range 10 {
			signIn(email, "wrong-password")
		}
		if _, why := signIn(email, password); why == "" {
			t.Fatal("carol signed in with the right password after ten wrong ones: no lockout to clear")
		}
		if show := helpdesk.must("users", "show", email); !strings.Contains(show, "LOCKED") {
			t.Fatalf("users show of a locked-out user does not say LOCKED:\n%s", show)
		}
		if out := helpdesk.must("users", "unlock", email); !strings.Contains(out, "was LOCKED") {
			t.Fatalf("users unlock printed %q", out)
		}
		if id, why := signIn(email, password); id != userID {
			t.Fatalf("carol cannot sign in after the unlock: %s", why)
		}
	})

	t.Run("ticket: who signed in as carol, read from the core Pod's log", func(t *testing.T) {
		var rep struct{ Events []kubectl.AuditEvent }
		helpdesk.mustJSON(&rep, "audit", email, "--since", "1h")
		seen := map[string]bool{}
		for _, e := range rep.Events {
			seen[e.Message+"/"+e.Outcome] = true
			if e.Pod == "" || !strings.HasPrefix(e.Pod, release+"-core-") {
				t.Errorf("event %+v does not name the core Pod it was read from", e)
			}
		}
		for _, want := range []string{"Signed in/success", "Refused sign-in/wrong_credentials", "Locked sign-in/locked"} {
			if !seen[want] {
				t.Errorf("audit of carol misses %q; it has %v", want, seen)
			}
		}
		if table := helpdesk.must("audit", email, "--since", "1h"); !strings.Contains(table, "admin key helpdesk") {
			t.Errorf("the audit table does not show the helpdesk's unlock by its key:\n%s", table)
		}
	})

	t.Run("ticket: carol lost her phone and her recovery codes", func(t *testing.T) {
		if _, errOut, code := helpdesk.run("n\n", "users", "reset-mfa", email); code != 1 || !strings.Contains(errOut, "Cancelled") {
			t.Fatalf("reset-mfa answered no = exit %d %s, want it cancelled", code, errOut)
		}
		start := time.Now()
		if out := helpdesk.must("users", "reset-mfa", email, "--yes"); !strings.Contains(out, "removed 1 TOTP device") {
			t.Fatalf("users reset-mfa printed %q", out)
		}
		poll(t, "the sidecar to refuse the session the reset signed out", 5*time.Second, func() (bool, string) {
			a, err := call(http.MethodGet, "/", access, nil)
			return err == nil && a.status == http.StatusUnauthorized, fmt.Sprintf("%d %s %v", a.status, a.raw, err)
		})
		t.Logf("reset-mfa -> the old session refused by the sidecar: %s", time.Since(start).Round(time.Millisecond))
		if id, why := signIn(email, password); id != userID {
			t.Fatalf("carol cannot sign in after the reset: %s", why)
		}
		var x contract.AdminExplanation
		helpdesk.mustJSON(&x, "explain", email)
		if !x.MustSetUp {
			t.Fatalf("explain after the reset = %+v, want carol asked to set a factor up again", x)
		}
	})

	t.Run("ticket: delete carol's data", func(t *testing.T) {
		if _, errOut, code := helpdesk.run("", "users", "delete", email); code != 1 || !strings.Contains(errOut, "Cancelled") {
			t.Fatalf("users delete without --yes and no answer = exit %d %s, want it cancelled", code, errOut)
		}
		if out := helpdesk.must("users", "delete", email, "--yes"); !strings.Contains(out, "Erased user "+userID) {
			t.Fatalf("users delete printed %q", out)
		}
		var list contract.AdminUserList
		helpdesk.mustJSON(&list, "users", "find", "--email", email)
		if len(list.Users) != 0 {
			t.Fatalf("users find after the erasure = %+v, want nobody", list.Users)
		}
		if id, _ := signIn(email, password); id != "" {
			t.Fatalf("the erased user signed in as %s", id)
		}
	})
}
