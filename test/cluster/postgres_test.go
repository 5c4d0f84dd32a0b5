//go:build cluster

package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// nodeIP is the host's address on the cluster's bridge (hack/cluster/lib.sh): the one host
// address pods may reach, where the PostgreSQL of the second variant listens as a managed
// database outside the cluster would.
const nodeIP = "198.18.0.1"

// hostPostgres is a PostgreSQL server running on the host beside the cluster.
type hostPostgres struct {
	adminDSN string // superuser, over loopback
	port     int
}

// startHostPostgres starts a throw-away PostgreSQL server (hack/postgres.sh) on 127.0.0.1 and
// the bridge address, accepting password connections from the pod network. It stops, and its
// folder goes, when the test ends or its binary dies.
func startHostPostgres(t *testing.T) hostPostgres {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir, err := os.MkdirTemp("", "tfc-pg-")
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(dir) // hack/postgres.sh creates it, owned by the server's user
	script := filepath.Join(repoRoot(t), "hack", "postgres.sh")
	t.Cleanup(func() {
		if out, err := runErr(t, 2*time.Minute, "", script, "stop", dir); err != nil {
			t.Errorf("stopping PostgreSQL: %v\n%s", err, out)
		}
	})
	out := run(t, "starting PostgreSQL on the host (hack/postgres.sh)", 10*time.Minute, "",
		"env", "PG_LISTEN="+nodeIP, "PG_ALLOW=198.18.0.0/16", script, "start", dir, strconv.Itoa(port), strconv.Itoa(os.Getpid()))
	return hostPostgres{adminDSN: lastLine(out), port: port}
}

// exec runs SQL as the superuser.
func (p hostPostgres) exec(t *testing.T, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.adminDSN)
	if err != nil {
		t.Fatalf("connecting to PostgreSQL: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// signUps counts what a load of sign-ups against the core saw.
type signUps struct {
	mu      sync.Mutex
	acked   map[string]string // email -> user id, for every sign-up answered OK
	refused map[string]int    // why the others were not acknowledged -> how many
	n       atomic.Int64
}

func (s *signUps) ackedCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.acked)
}

// signUpDirect signs an email up with the core's API at base, as a browser whose requests the
// sidecar forwards would. It returns the user id when the core acknowledged the sign-up.
func signUpDirect(client *http.Client, base, email, password string) (string, string) {
	req, _ := http.NewRequest(http.MethodPost, base+"/auth/demo/signup", strings.NewReader(fmt.Sprintf(
		`{"formFields":[{"id":"email","value":%q},{"id":"password","value":%q}]}`, email, password)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("rid", "emailpassword")
	req.Header.Set("st-auth-mode", "header")
	a, err := doAnswer(client, req)
	if err != nil {
		return "", "no answer"
	}
	user, _ := a.body["user"].(map[string]any)
	id, _ := user["id"].(string)
	if a.status != http.StatusOK || a.body["status"] != "OK" || id == "" {
		return "", fmt.Sprintf("%d %v", a.status, a.body["status"])
	}
	return id, ""
}

// TestTheChartRunsThreeCoreReplicasOnPostgreSQL is the chart's second variant: the core with
// three replicas on a PostgreSQL the chart reaches by a DSN in a Secret. One core process is
// killed while sign-ups run; every sign-up the core acknowledged is in the database afterwards,
// and its user signs in. An opted-in app then takes 1,000 requests/s through its sidecar,
// beside the same app without one, to measure what the sidecar adds on a real node.
func TestTheChartRunsThreeCoreReplicasOnPostgreSQL(t *testing.T) {
	c := bringUp(t)
	c.buildImages()
	pg := startHostPostgres(t)
	secret := make([]byte, 16)
	rand.Read(secret)
	password := hex.EncodeToString(secret)
	pg.exec(t, "CREATE ROLE twofold LOGIN PASSWORD '"+password+"'")
	pg.exec(t, "CREATE DATABASE twofold OWNER twofold")
	coreDSN := fmt.Sprintf("postgres://twofold:%s@%s:%d/twofold?sslmode=disable", password, nodeIP, pg.port)

	c.kube("creating the release namespace", "create", "namespace", releaseNS)
	c.kube("creating the database Secret", "-n", releaseNS, "create", "secret", "generic", "twofold-core-db", "--from-literal=dsn="+coreDSN)
	i := prepareInstall(c)
	i.install("--set", "core.replicas=3", "--set", "core.database.type=postgres",
		"--set", "core.database.postgres.existingSecret=twofold-core-db", "--set", "core.trustedProxies={198.18.0.0/16}")
	c.apply("applying the AuthTenant and the MFAPolicy", tenantAndPolicy)
	c.kube("waiting for the AuthTenant to be Ready", "wait", "authtenant/demo", "mfapolicy/totp-required",
		"--for=condition=Ready", "--timeout=120s")
	coreIP := c.kube("reading the core Service's address", "-n", releaseNS, "get", "service", release+"-core", "-o", "jsonpath={.spec.clusterIP}")
	base := "http://" + coreIP + ":3567"

	t.Run("the release runs three core replicas, rolled one at a time, with a disruption budget", func(t *testing.T) {
		if got := c.kube("counting the core's ready replicas", "-n", releaseNS, "get", "deployment", release+"-core", "-o", "jsonpath={.status.readyReplicas}"); got != "3" {
			t.Errorf("the core has %s ready replicas, want 3", got)
		}
		if got := c.kube("reading the core's strategy", "-n", releaseNS, "get", "deployment", release+"-core", "-o", "jsonpath={.spec.strategy.type}"); got != "RollingUpdate" {
			t.Errorf("the core Deployment's strategy is %q, want RollingUpdate on PostgreSQL", got)
		}
		if got := c.kube("reading the core's PodDisruptionBudget", "-n", releaseNS, "get", "pdb", release+"-core", "-o", "jsonpath={.spec.minAvailable}"); got != "1" {
			t.Errorf("the core's PodDisruptionBudget has minAvailable %q, want 1", got)
		}
		if out, _ := c.kubeErr("", "-n", releaseNS, "get", "pvc", "-o", "name"); strings.TrimSpace(out) != "" {
			t.Errorf("the release made a PersistentVolumeClaim on PostgreSQL: %s", out)
		}
	})

	t.Run("killing a core process during sign-ups loses no acknowledged sign-up", func(t *testing.T) {
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil,
			DialContext: (&net.Dialer{Timeout: 3 * time.Second}).DialContext, MaxIdleConnsPerHost: 8}}
		const userPassword = "correct horse 42"
		s := &signUps{acked: map[string]string{}, refused: map[string]int{}}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					email := fmt.Sprintf("load-%d-%d@example.com", w, s.n.Add(1))
					id, why := signUpDirect(client, base, email, userPassword)
					s.mu.Lock()
					if id != "" {
						s.acked[email] = id
					} else {
						s.refused[why]++
					}
					s.mu.Unlock()
				}
			}()
		}
		stopLoad := sync.OnceFunc(func() { close(stop); wg.Wait() })
		defer stopLoad()

		poll(t, "30 sign-ups acknowledged before the kill", 2*time.Minute, func() (bool, string) {
			n := s.ackedCount()
			return n >= 30, fmt.Sprintf("%d acknowledged", n)
		})
		victim := strings.Fields(c.kube("reading the core pods", "-n", releaseNS, "get", "pod", "-l", "app.kubernetes.io/component=core",
			"-o", "jsonpath={.items[*].metadata.name}"))[0]
		container := c.kube("reading the core container's id", "-n", releaseNS, "get", "pod", victim,
			"-o", `jsonpath={.status.containerStatuses[?(@.name=="core")].containerID}`)
		ackedBefore := s.ackedCount()
		killed := time.Now()
		run(t, "killing the core process of "+victim, time.Minute, "", "ctr", "--address", filepath.Join(c.state, "containerd", "containerd.sock"),
			"--namespace", "k8s.io", "tasks", "kill", "--signal", "SIGKILL", strings.TrimPrefix(container, "containerd://"))
		poll(t, "the killed core container to restart and be Ready", 3*time.Minute, func() (bool, string) {
			out, _ := c.kubeErr("", "-n", releaseNS, "get", "pod", victim, "-o",
				`jsonpath={.status.containerStatuses[?(@.name=="core")].restartCount} {.status.containerStatuses[?(@.name=="core")].ready}`)
			return out == "1 true", "restarts and ready: " + out
		})
		t.Logf("core process killed -> its container restarted and Ready: %s", time.Since(killed).Round(100*time.Millisecond))
		poll(t, "30 more sign-ups acknowledged after the restart", 2*time.Minute, func() (bool, string) {
			n := s.ackedCount() - ackedBefore
			return n >= 30, fmt.Sprintf("%d acknowledged since the kill", n)
		})
		stopLoad()
		t.Logf("sign-ups: %d acknowledged (%d before the kill), not acknowledged: %v", len(s.acked), ackedBefore, s.refused)

		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn, err := pgx.Connect(ctx, pg.adminDSN[:strings.LastIndex(pg.adminDSN, "/")]+"/twofold?sslmode=disable")
		if err != nil {
			t.Fatalf("connecting to the core's database: %v", err)
		}
		defer conn.Close(ctx)
		rows, err := conn.Query(ctx, `SELECT email, user_id FROM login_methods WHERE tenant_id = 'demo' AND recipe_id = 'emailpassword'`)
		if err != nil {
			t.Fatal(err)
		}
		stored := map[string]string{}
		for rows.Next() {
			var email, id string
			if err := rows.Scan(&email, &id); err != nil {
				t.Fatal(err)
			}
			stored[email] = id
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		lost := 0
		for email, id := range s.acked {
			if got, ok := stored[email]; !ok || got != id {
				lost++
				if lost <= 5 {
					t.Errorf("the acknowledged sign-up of %s (user %s) is stored as %q", email, id, got)
				}
			}
		}
		if lost > 0 {
			t.Errorf("%d of %d acknowledged sign-ups are not in the database", lost, len(s.acked))
		}

		// A sample of the users, signed up before and after the kill, sign in with their password.
		checked := 0
		for email, id := range s.acked {
			if checked == 10 {
				break
			}
			checked++
			req, _ := http.NewRequest(http.MethodPost, base+"/auth/demo/signin", strings.NewReader(fmt.Sprintf(
				`{"formFields":[{"id":"email","value":%q},{"id":"password","value":%q}]}`, email, userPassword)))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("rid", "emailpassword")
			a, err := doAnswer(client, req)
			if err != nil {
				t.Fatalf("signing %s in: %v", email, err)
			}
			user, _ := a.body["user"].(map[string]any)
			if a.status != http.StatusOK || a.body["status"] != "OK" || user["id"] != id {
				t.Errorf("signing %s in = %d %s, want OK as user %s", email, a.status, a.raw, id)
			}
		}
	})

	t.Run("the injected sidecar lets 1,000 requests/s of an MFA-complete session through", func(t *testing.T) {
		c.apply("deploying the opted-in sample app", sampleApp)
		c.kube("waiting for the sample app's rollout", "-n", appNS, "rollout", "status", "deployment/sampleapp", "--timeout=240s")
		poll(t, "the Service to answer from the host", 60*time.Second, func() (bool, string) {
			_, err := call(http.MethodGet, "/healthz", "", nil)
			return err == nil, fmt.Sprint(err)
		})
		access, _ := signUpWithTOTP(t, "load@example.com", "correct horse 42")
		measureSidecarUnderLoad(t, c, access)
	})
}
