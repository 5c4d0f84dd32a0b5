//go:build unix

// Command pause is the sandbox ("pause") container of the throw-away cluster that the tests
// bring up: containerd starts it first in every pod to hold the pod's namespaces. It does what
// Kubernetes' own pause does, as a static Go program so that it builds without a C toolchain
// and without pulling an image: it sleeps until SIGTERM or SIGINT and then exits 0, and, being
// PID 1 when the pod shares its process namespace, it reaps every child that exits so no zombie
// stays behind. `make images` packs it as ghcr.io/twofold-dev/twofold-pause.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 {
		fmt.Fprintln(os.Stderr, "pause takes no arguments; it waits for SIGTERM or SIGINT")
		os.Exit(2)
	}
	wait(listen())
	os.Exit(0)
}

// listen subscribes to the signals pause acts on: the two that end it and SIGCHLD.
func listen() chan os.Signal {
	signals := make(chan os.Signal, 16)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	return signals
}

// wait reaps exited children on every SIGCHLD and returns the first SIGTERM or SIGINT.
func wait(signals <-chan os.Signal) os.Signal {
	for sig := range signals {
		if sig == syscall.SIGCHLD {
			reap()
			continue
		}
		return sig
	}
	return nil
}

// reap collects the exit status of every child that has exited. Signals coalesce, so one
// SIGCHLD may stand for several exits: it loops until no exited child is left.
func reap() int {
	n := 0
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return n
		}
		n++
	}
}
