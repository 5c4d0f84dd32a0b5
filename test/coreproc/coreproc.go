// Package coreproc runs the real auth core binary (cmd/core) as a child process for tests that
// need a core they can stop, kill and restart: controller tests, end-to-end tests.
package coreproc

import (
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/twofold-dev/twofold/test/proc"
)

// Core is a running core process.
type Core struct {
	// URL is the core's base URL, such as http://127.0.0.1:40123.
	URL string
	// AdminKey authenticates to the admin API.
	AdminKey string
	// Database is the SQLite file or PostgreSQL DSN the core uses; change it before Restart
	// to start on another database.
	Database string

	t    testing.TB
	addr string
	env  []string
	p    *proc.Process
}

// Options configure a core.
type Options struct {
	// Database defaults to a SQLite file in a fresh temporary folder.
	Database string
	// Env adds environment variables (NAME=value).
	Env []string
	// Addr is the host:port to listen on; a free loopback port when empty. Tests that reach
	// the core through the Kubernetes API server's service proxy, which dials a Pod's
	// address, give a non-loopback address of the machine.
	Addr string
}

// Start runs a core on a free loopback port and waits until /readyz answers 200. The process
// is stopped when the test ends.
func Start(t testing.TB, o Options) *Core {
	t.Helper()
	if o.Database == "" {
		o.Database = filepath.Join(t.TempDir(), "twofold.db")
	}
	if o.Addr == "" {
		o.Addr = proc.FreeAddr(t)
	}
	c := &Core{AdminKey: "test-admin-key-0123456789abcdef", Database: o.Database, t: t, addr: o.Addr, env: o.Env}
	c.URL = "http://" + c.addr
	c.Restart()
	return c
}

// Restart starts the process again (after Stop or Kill) on the same address.
func (c *Core) Restart() {
	c.t.Helper()
	env := append([]string{
		"TWOFOLD_ADDR=" + c.addr,
		"TWOFOLD_DATABASE=" + c.Database,
		"TWOFOLD_ADMIN_KEY=" + c.AdminKey,
		"TWOFOLD_ISSUER=" + c.URL + "/auth",
	}, c.env...)
	c.p = proc.Start(c.t, "twofold-core", proc.Build(c.t, "./cmd/core"), env)
	c.p.WaitHTTP(c.t, c.URL+"/readyz", 200, 30*time.Second)
}

// Stop ends the process with SIGTERM (a graceful shutdown) and waits for it.
func (c *Core) Stop() { c.p.Signal(syscall.SIGTERM) }

// Kill ends the process with SIGKILL, as a crash would.
func (c *Core) Kill() { c.p.Signal(syscall.SIGKILL) }

// CPUTime returns the CPU time (user and system) the current process has used so far.
func (c *Core) CPUTime() (time.Duration, error) { return c.p.CPUTime() }

// Logs returns what the current process printed so far.
func (c *Core) Logs() string { return c.p.Output() }
