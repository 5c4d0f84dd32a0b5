//go:build unix

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/twofold-dev/twofold/test/proc"
)

const coreUID, coreGID = 65532, 65532

// rootOwnedFolder returns a root-owned 0755 folder that uid 65532 can reach but not write,
// as the kubelet creates a hostPath or local volume's folder. t.TempDir is closed to other
// users, so the folder lives in a temporary folder opened for them.
func rootOwnedFolder(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test hands folders to another user and needs root, as in the test containers; run it as root")
	}
	base, err := os.MkdirTemp("", "twofold-datadir-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(base, "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func ownerOf(t *testing.T, path string) (uint32, uint32, os.FileMode) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return st.Uid, st.Gid, fi.Mode().Perm()
}

func TestPrepareDataHandsTheFolderToTheCoresUser(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		check func(t *testing.T, dir string)
	}{
		{
			name: "a root-owned folder becomes the core user's, closed to others",
			check: func(t *testing.T, dir string) {
				if uid, gid, mode := ownerOf(t, dir); uid != coreUID || gid != coreGID || mode != 0o750 {
					t.Fatalf("folder is %d:%d %s, want 65532:65532 -rwxr-x---", uid, gid, mode)
				}
			},
		},
		{
			name:  "a missing folder is created for the core's user",
			setup: func(t *testing.T, dir string) { _ = os.Remove(dir) },
			check: func(t *testing.T, dir string) {
				if uid, _, mode := ownerOf(t, dir); uid != coreUID || mode != 0o700 {
					t.Fatalf("folder is owned by %d with mode %s", uid, mode)
				}
			},
		},
		{
			name: "database files left by root are handed over too",
			setup: func(t *testing.T, dir string) {
				for _, f := range []string{"twofold.db", "twofold.db-wal", "twofold.db-shm"} {
					if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			},
			check: func(t *testing.T, dir string) {
				for _, f := range []string{"twofold.db", "twofold.db-wal", "twofold.db-shm"} {
					if uid, gid, _ := ownerOf(t, filepath.Join(dir, f)); uid != coreUID || gid != coreGID {
						t.Errorf("%s is owned by %d:%d", f, uid, gid)
					}
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := rootOwnedFolder(t)
			if tt.setup != nil {
				tt.setup(t, dir)
			}
			if _, err := prepareData(dir, coreUID, coreGID); err != nil {
				t.Fatal(err)
			}
			tt.check(t, dir)
			report, err := prepareData(dir, coreUID, coreGID)
			if err != nil || !strings.Contains(report, "65532:65532 -> 65532:65532") || !strings.Contains(report, "0 files handed over") {
				t.Fatalf("a second run = %q, %v; want nothing changed", report, err)
			}
		})
	}
}

func TestASymlinkPlantedInTheDataFolderDoesNotHandItsTargetToTheCoresUser(t *testing.T) {
	dir := rootOwnedFolder(t)
	target := filepath.Join(filepath.Dir(dir), "host-secret")
	if err := os.WriteFile(target, []byte("root only"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(dir, "twofold.db")); err != nil {
		t.Fatal(err)
	}
	if _, err := prepareData(dir, coreUID, coreGID); err != nil {
		t.Fatal(err)
	}
	if uid, gid, mode := ownerOf(t, target); uid != 0 || gid != 0 || mode != 0o600 {
		t.Fatalf("the link's target became %d:%d %s", uid, gid, mode)
	}
}

func TestAHardLinkPlantedInTheDataFolderIsRefusedAndItsFileKeepsItsOwner(t *testing.T) {
	dir := rootOwnedFolder(t)
	target := filepath.Join(filepath.Dir(dir), "host-secret")
	if err := os.WriteFile(target, []byte("root only"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(target, filepath.Join(dir, "twofold.db")); err != nil {
		t.Fatal(err)
	}
	_, err := prepareData(dir, coreUID, coreGID)
	if err == nil || !strings.Contains(err.Error(), "has 2 hard links") {
		t.Fatalf("prepareData = %v, want a refusal naming the hard links", err)
	}
	if uid, _, _ := ownerOf(t, target); uid != 0 {
		t.Fatalf("the linked file was handed to uid %d", uid)
	}
	if uid, _, mode := ownerOf(t, dir); uid != 0 || mode != 0o755 {
		t.Fatalf("the refused folder was changed: owner %d mode %s", uid, mode)
	}
}

func TestPrepareDataRefusesBadArguments(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"a relative folder is refused", []string{"-dir", "data"}, `-dir "data": give the folder as a clean absolute path`},
		{"root as the core's user is refused", []string{"-dir", "/data", "-uid", "0"}, "-uid 0: give the non-root id the core runs as"},
		{"a negative group is refused", []string{"-dir", "/data", "-gid", "-1"}, "-gid -1: give the non-root id"},
		{"a file instead of a folder is refused", []string{"-dir", file}, "is not a folder"},
		{"a folder given without -dir is refused", []string{"/data"}, "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if code := prepareDataMain(tt.args, &out); code == 0 || !strings.Contains(out.String(), tt.want) {
				t.Fatalf("exit %d, output %q; want a failure saying %q", code, out.String(), tt.want)
			}
		})
	}
}

// The crash a hostPath volume caused, replayed with the real binary: the core as uid 65532
// cannot create its database in a root-owned folder and says why; prepare-data, run as root
// with only CAP_CHOWN and CAP_FOWNER as the chart's init container is, fixes the folder; then
// the core serves from it.
func TestTheCoreOnARootOwnedVolumeFailsClearlyUntilPrepareDataRuns(t *testing.T) {
	dir := rootOwnedFolder(t)
	bin := filepath.Join(filepath.Dir(dir), "twofold-core")
	data, err := os.ReadFile(proc.Build(t, "./cmd/core"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	database := filepath.Join(dir, "twofold.db")
	asCore := func(ctx context.Context) *exec.Cmd {
		cmd := exec.CommandContext(ctx, bin)
		cmd.Env = []string{"TWOFOLD_ADDR=127.0.0.1:0", "TWOFOLD_DATABASE=" + database, "TWOFOLD_ADMIN_KEY="}
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: coreUID, Gid: coreGID}}
		return cmd
	}

	t.Run("the core says which database, which user and what to run", func(t *testing.T) {
		out, err := asCore(context.Background()).CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			t.Fatalf("the core did not fail: %v\n%s", err, out)
		}
		for _, want := range []string{"open the SQLite database " + database + " as uid 65532 gid 65532", "its folder " + dir + " (owner 0:0, mode -rwxr-xr-x) is not writable by uid 65532", "twofold-core prepare-data -dir " + dir + " -uid 65532 -gid 65532"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("the error lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("prepare-data with only CAP_CHOWN and CAP_FOWNER hands the folder over", func(t *testing.T) {
		setpriv, err := exec.LookPath("setpriv")
		if err != nil {
			t.Fatal("setpriv (Debian's util-linux) is needed to run prepare-data with only two capabilities: apt-get install util-linux")
		}
		cmd := exec.Command(setpriv, "--reuid=0", "--regid=0", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all,+chown,+fowner",
			"--", bin, prepareDataCommand, "-dir", dir, "-uid", "65532", "-gid", "65532")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("prepare-data: %v\n%s", err, out)
		}
		if uid, _, _ := ownerOf(t, dir); uid != coreUID {
			t.Fatalf("the folder is still owned by %d:\n%s", uid, out)
		}
	})

	t.Run("then the core serves from the folder", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		cmd := asCore(ctx)
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cancel(); _ = cmd.Wait() }()
		var lines []string
		sc := bufio.NewScanner(stderr)
		for sc.Scan() && !strings.Contains(sc.Text(), "twofold-core listening on") {
			lines = append(lines, sc.Text())
		}
		if sc.Err() != nil || !strings.Contains(sc.Text(), "twofold-core listening on") {
			t.Fatalf("the core stopped before serving: %v\n%s", sc.Err(), strings.Join(lines, "\n"))
		}
		if uid, _, _ := ownerOf(t, database); uid != coreUID {
			t.Fatalf("the database is owned by %d", uid)
		}
	})
}
