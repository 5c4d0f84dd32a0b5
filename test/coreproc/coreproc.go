// Package coreproc runs the real auth core binary (cmd/core) as a child process for tests that
// need a core they can stop, kill and restart: controller tests, end-to-end tests.
package coreproc

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/test/testenv"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds cmd/core once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "twofold-core-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "twofold-core")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/core")
		cmd.Dir = testenv.RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("building cmd/core: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// Core is a running core process.
type Core struct {
	// URL is the core's base URL, such as http://127.0.0.1:40123.
	URL string
	// AdminKey authenticates to the admin API.
	AdminKey string
	// Database is the SQLite file or PostgreSQL DSN the core uses.
	Database string

	t    testing.TB
	addr string
	env  []string
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{}
}

// Options configure a core.
type Options struct {
	// Database defaults to a SQLite file in a fresh temporary folder.
	Database string
	// Env adds environment variables (NAME=value).
	Env []string
}

// Start runs a core on a free loopback port and waits until /readyz answers 200. The process
// is stopped when the test ends.
func Start(t testing.TB, o Options) *Core {
	t.Helper()
	if o.Database == "" {
		o.Database = filepath.Join(t.TempDir(), "twofold.db")
	}
	c := &Core{AdminKey: "test-admin-key-0123456789abcdef", Database: o.Database, t: t, addr: freeAddr(t), env: o.Env}
	c.URL = "http://" + c.addr
	c.Restart()
	t.Cleanup(c.Stop)
	return c
}

// Restart starts the process again (after Stop or Kill) on the same address and database.
func (c *Core) Restart() {
	c.t.Helper()
	c.logs = &syncBuffer{}
	cmd := exec.Command(Binary(c.t))
	cmd.Env = append(os.Environ(),
		"TWOFOLD_ADDR="+c.addr,
		"TWOFOLD_DATABASE="+c.Database,
		"TWOFOLD_ADMIN_KEY="+c.AdminKey,
		"TWOFOLD_ISSUER="+c.URL+"/auth",
	)
	cmd.Env = append(cmd.Env, c.env...)
	cmd.Stdout, cmd.Stderr = c.logs, c.logs
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("starting the core: %v", err)
	}
	c.cmd, c.done = cmd, make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); close(done) }(c.done)
	if err := c.waitReady(30 * time.Second); err != nil {
		c.Stop()
		c.t.Fatalf("the core did not become ready: %v\nlogs:\n%s", err, c.logs.String())
	}
}

// Stop ends the process with SIGTERM (a graceful shutdown) and waits for it.
func (c *Core) Stop() { c.signal(syscall.SIGTERM) }

// Kill ends the process with SIGKILL, as a crash would.
func (c *Core) Kill() { c.signal(syscall.SIGKILL) }

// Logs returns what the process printed so far.
func (c *Core) Logs() string { return c.logs.String() }

func (c *Core) signal(sig syscall.Signal) {
	if c.cmd == nil || c.cmd.Process == nil {
		return
	}
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Signal(sig)
	select {
	case <-c.done:
	case <-time.After(15 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

func (c *Core) waitReady(limit time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.URL+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-c.done:
			return fmt.Errorf("the process exited")
		case <-ctx.Done():
			return fmt.Errorf("no 200 from /readyz within %s (last error: %v)", limit, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// syncBuffer collects a process's output while tests read it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
