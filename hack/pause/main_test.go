//go:build linux

package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// These tests deliver real signals to the test process itself, which listen has subscribed,
// so that nothing races with the Go runtime's start-up in a child process.
func TestPauseReturnsOnTheSignalsAKubeletSends(t *testing.T) {
	for _, tc := range []struct {
		name string
		sig  syscall.Signal
	}{
		{"a pod being deleted sends SIGTERM", syscall.SIGTERM},
		{"a person pressing Ctrl-C sends SIGINT", syscall.SIGINT},
	} {
		t.Run(tc.name, func(t *testing.T) {
			signals := listen()
			defer signal.Stop(signals)
			if err := syscall.Kill(os.Getpid(), tc.sig); err != nil {
				t.Fatal(err)
			}
			if got := wait(signals); got != tc.sig {
				t.Errorf("wait returned %v, want %v", got, tc.sig)
			}
		})
	}
}

func TestPauseReapsChildrenThatExitWhileItWaits(t *testing.T) {
	signals := listen()
	defer signal.Stop(signals)
	var pids []int
	for range 3 {
		cmd := exec.Command("/bin/true")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		pids = append(pids, cmd.Process.Pid)
	}
	done := make(chan os.Signal, 1)
	go func() { done <- wait(signals) }()
	// Every child's exit raises SIGCHLD, on which wait reaps: poll /proc until the children are
	// gone from the process table (a zombie shows state Z until its parent reaps it).
	deadline := time.Now().Add(30 * time.Second)
	for _, pid := range pids {
		for processState(t, pid) != "" {
			if time.Now().After(deadline) {
				t.Fatalf("child %d is still in the process table in state %s: not reaped", pid, processState(t, pid))
			}
			runtime.Gosched()
		}
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if got := <-done; got != syscall.SIGTERM {
		t.Fatalf("wait returned %v, want SIGTERM", got)
	}
	if n := reap(); n != 0 {
		t.Errorf("a later reap collected %d children, want 0", n)
	}
}

func TestPauseRefusesArgumentsWithAMessage(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "pause")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "sleep").CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), "takes no arguments") {
		t.Fatalf("pause sleep: %v, %q; want exit status 2 and a message", err, out)
	}
}

// processState is the state letter of /proc/<pid>/stat, or "" when the process is gone.
func processState(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	// The command name in parentheses may contain spaces; the state follows the last ')'.
	return strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))[0]
}
