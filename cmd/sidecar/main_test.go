package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/contract/mfa"
	"github.com/twofold-dev/twofold/sidecar/fakecore"
)

func TestSettingsComeFromTheEnvironmentAndFlags(t *testing.T) {
	env := map[string]string{
		"TWOFOLD_CORE_URL":           "http://core:3567",
		"TWOFOLD_TENANT":             "acme",
		"TWOFOLD_APP_PORT":           "8081",
		"TWOFOLD_PUBLIC_PATHS":       "/healthz, /static/ ,",
		"TWOFOLD_POLL_INTERVAL":      "2s",
		"TWOFOLD_EXTRA_AUTH_TENANTS": "public, beta",
	}
	s, err := parseSettings([]string{"-listen", ":9000"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if s.proxy.CoreURL != "http://core:3567" || s.proxy.Tenant != "acme" || s.proxy.Upstream != "http://127.0.0.1:8081" {
		t.Errorf("proxy options %+v", s.proxy)
	}
	if !slices.Equal(s.proxy.ExtraAuthTenants, []string{"public", "beta"}) {
		t.Errorf("extra auth tenants %q", s.proxy.ExtraAuthTenants)
	}
	if !slices.Equal(s.proxy.PublicPaths, []string{"/healthz", "/static/"}) {
		t.Errorf("public paths %q", s.proxy.PublicPaths)
	}
	if s.proxy.PollInterval != 2*time.Second || s.listen != ":9000" || s.adminListen != ":9090" {
		t.Errorf("poll %v listen %q admin %q", s.proxy.PollInterval, s.listen, s.adminListen)
	}
}

func TestBadSettingsAreRefusedWithAReason(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"a missing core URL is refused", []string{"-upstream", "http://127.0.0.1:1"}, "core is unknown"},
		{"a missing app is refused", []string{"-core-url", "http://core"}, "app is unknown"},
		{"both an upstream and an app port are refused", []string{"-core-url", "http://core", "-upstream", "http://127.0.0.1:1", "-app-port", "2"}, "not both"},
		{"an app port out of range is refused", []string{"-core-url", "http://core", "-app-port", "70000"}, "app port"},
		{"a zero poll interval is refused", []string{"-core-url", "http://core", "-app-port", "1", "-poll-interval", "0s"}, "poll-interval"},
		{"a zero read-header timeout is refused", []string{"-core-url", "http://core", "-app-port", "1", "-read-header-timeout", "0s"}, "read-header-timeout"},
		{"a read timeout without a unit is refused", []string{"-core-url", "http://core", "-app-port", "1", "-read-timeout", "60"}, "read-timeout"},
		{"an unknown log level is refused", []string{"-core-url", "http://core", "-app-port", "1", "-log-level", "loud"}, "log-level"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseSettings(tc.args, func(string) string { return "" }, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestSIGTERMDrainsInFlightRequests runs the real binary: a request still at the app when
// SIGTERM arrives gets its answer, and the process then exits cleanly.
func TestSIGTERMDrainsInFlightRequests(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "twofold-sidecar")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	core, err := fakecore.New("public", "https://core.test/auth")
	if err != nil {
		t.Fatal(err)
	}
	coreSrv := httptest.NewServer(core)
	defer coreSrv.Close()
	entered, release := make(chan struct{}), make(chan struct{})
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		_, _ = io.WriteString(w, "done")
	}))
	defer app.Close()

	listen, admin := freeAddr(t), freeAddr(t)
	cmd := exec.Command(bin, "-core-url", coreSrv.URL, "-upstream", app.URL, "-listen", listen, "-admin-listen", admin)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	logs := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs <- sc.Text()
		}
		close(logs)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("sidecar not ready within 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}

	now := time.Now().Unix()
	tok := core.Mint(fakecore.Token{Sub: "u", TenantID: "public", SessionHandle: "h", Iss: "https://core.test/auth",
		Iat: now, Exp: now + 600, MFA: mfa.Claim{C: mfa.Completed{mfa.EmailPassword: now}, V: true}})
	type result struct {
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		req, _ := http.NewRequestWithContext(context.Background(), "GET", "http://"+listen+"/slow", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		done <- result{string(b), err}
	}()
	<-entered
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Wait until the sidecar says it is draining before letting the app answer.
	for l := range logs {
		if strings.Contains(l, "Draining in-flight requests") {
			break
		}
	}
	close(release)
	r := <-done
	if r.err != nil || r.body != "done" {
		t.Fatalf("in-flight request: %q, %v", r.body, r.err)
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit: %v", err)
	}
}

func TestTheInjectedPodEnvironmentPicksTheListenAddress(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"an IPv4 pod IP and the app's port", map[string]string{"TWOFOLD_POD_IP": "10.1.2.3", "TWOFOLD_LISTEN_PORT": "8080"}, "10.1.2.3:8080"},
		{"an IPv6 pod IP is bracketed", map[string]string{"TWOFOLD_POD_IP": "fd00::5", "TWOFOLD_LISTEN_PORT": "8080"}, "[fd00::5]:8080"},
		{"an explicit TWOFOLD_LISTEN wins", map[string]string{"TWOFOLD_POD_IP": "10.1.2.3", "TWOFOLD_LISTEN_PORT": "8080", "TWOFOLD_LISTEN": "127.0.0.1:9999"}, "127.0.0.1:9999"},
		{"outside a pod the default is :8080", map[string]string{}, ":8080"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"TWOFOLD_CORE_URL": "http://core:3567", "TWOFOLD_APP_PORT": "8080"}
			for k, v := range tc.env {
				env[k] = v
			}
			s, err := parseSettings(nil, func(k string) string { return env[k] }, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if s.listen != tc.want {
				t.Fatalf("listen = %q, want %q", s.listen, tc.want)
			}
		})
	}
}

func TestSlowClientsAreCutOff(t *testing.T) {
	tests := []struct {
		name string
		args []string
		// start is what the client sends at once; then it dribbles drip, a byte every 20 ms.
		start, drip string
	}{
		{
			name:  "a client that dribbles its headers is cut off after the read-header timeout",
			args:  []string{"-read-header-timeout", "200ms"},
			start: "GET /healthz HTTP/1.1\r\nHost: app\r\n",
			drip:  strings.Repeat("X-Slow: loris\r\n", 100),
		},
		{
			name:  "a client that dribbles its body is cut off after the read timeout",
			args:  []string{"-read-timeout", "300ms"},
			start: "POST /upload HTTP/1.1\r\nHost: app\r\nContent-Length: 100000\r\n\r\n",
			drip:  strings.Repeat("x", 1000),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"-core-url", "http://core.invalid", "-app-port", "1"}, tc.args...)
			s, err := parseSettings(args, func(string) string { return "" }, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			srv := appServer(s, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
			}), nil)
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			go func() { _ = srv.Serve(l) }()
			t.Cleanup(func() { _ = srv.Close() })

			conn, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			// The bound of the test, not a timing assumption: the server must close first.
			_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
			start := time.Now()
			if _, err := io.WriteString(conn, tc.start); err != nil {
				t.Fatal(err)
			}
			closed := make(chan error, 1)
			go func() {
				_, err := io.Copy(io.Discard, conn) // returns when the server closes the connection
				closed <- err
			}()
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for i := 0; ; i++ {
				select {
				case err := <-closed:
					// EOF or a reset: either way the server closed the connection.
					if errors.Is(err, os.ErrDeadlineExceeded) {
						t.Fatalf("the server kept the connection open for %v", time.Since(start))
					}
					if took := time.Since(start); took > 5*time.Second {
						t.Fatalf("cut off after %v", took)
					}
					return
				case <-tick.C:
					if i >= len(tc.drip) {
						t.Fatalf("the server read the whole dribble over %v without cutting the client off", time.Since(start))
					}
					_, _ = conn.Write([]byte{tc.drip[i]})
				}
			}
		})
	}
}
