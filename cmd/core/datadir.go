//go:build unix

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// The prepare-data mode hands the SQLite folder to the core's user before the core starts.
// The kubelet applies a pod's fsGroup to most volumes, but not to hostPath and local
// PersistentVolumes: their folder stays owned by root, and the core, which runs as 65532,
// cannot create its database there. The Helm chart runs this mode in an init container of the
// core image itself (which has no shell), as root with only CAP_CHOWN and CAP_FOWNER.
//
// It changes the folder's owner and group, gives the owner read, write and search access and
// takes every access from others (the database holds password hashes and TOTP secrets), and
// hands the regular files directly in the folder (the database and its -wal and -shm files,
// say from a run as another user) to the same owner. Symbolic links are never followed and a
// file with several hard links is refused: either would otherwise let whoever planted it in
// the folder have another file handed to the core's user. Running it again changes nothing.

// prepareDataCommand is the name of the mode: `twofold-core prepare-data -dir /data`.
const prepareDataCommand = "prepare-data"

// prepareDataMain runs the prepare-data mode with its arguments and returns the exit code.
func prepareDataMain(args []string, out io.Writer) int {
	fs := flag.NewFlagSet(prepareDataCommand, flag.ContinueOnError)
	fs.SetOutput(out)
	dir := fs.String("dir", "/data", "the SQLite database's folder, absolute")
	uid := fs.Int("uid", 65532, "user the core runs as, who gets the folder")
	gid := fs.Int("gid", 65532, "group the folder gets")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(out, "twofold-core %s: unexpected arguments %q; the folder is given with -dir\n", prepareDataCommand, fs.Args())
		return 2
	}
	report, err := prepareData(*dir, *uid, *gid)
	if err != nil {
		fmt.Fprintf(out, "twofold-core %s: %v\n", prepareDataCommand, err)
		return 1
	}
	fmt.Fprintln(out, report)
	return 0
}

// prepareData makes dir (created if missing) owned by uid:gid as described above, and says
// what it changed.
func prepareData(dir string, uid, gid int) (string, error) {
	if !filepath.IsAbs(dir) || filepath.Clean(dir) != dir {
		return "", fmt.Errorf("-dir %q: give the folder as a clean absolute path, such as /data", dir)
	}
	for _, id := range []struct {
		flag string
		v    int
	}{{"-uid", uid}, {"-gid", gid}} {
		if id.v < 1 || id.v > 1<<31-2 {
			return "", fmt.Errorf("%s %d: give the non-root id the core runs as (1 to 2147483646), such as 65532", id.flag, id.v)
		}
	}
	fi, err := os.Lstat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return "", fmt.Errorf("create %s: %w", dir, err)
		}
		fi, err = os.Lstat(dir)
	}
	if err != nil {
		return "", err
	}
	if fi.Mode()&fs.ModeSymlink != 0 || !fi.IsDir() {
		return "", fmt.Errorf("%s is not a folder (%s); give the folder the database lives in", dir, fi.Mode().Type())
	}
	owner := fi.Sys().(*syscall.Stat_t)
	// Read the entries first: once the folder is the core's and closed to others, root
	// without CAP_DAC_READ_SEARCH can no longer list it.
	entries, err := os.ReadDir(dir)
	if err != nil && !(errors.Is(err, fs.ErrPermission) && int(owner.Uid) == uid) {
		return "", fmt.Errorf("list %s: %w", dir, err)
	}
	handed := 0
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		p := filepath.Join(dir, e.Name())
		info, err := e.Info()
		if err != nil {
			return "", err
		}
		st := info.Sys().(*syscall.Stat_t)
		if int(st.Uid) == uid && int(st.Gid) == gid {
			continue
		}
		if st.Nlink > 1 {
			// Another name of the same file may be anywhere on the volume's file system.
			return "", fmt.Errorf("%s has %d hard links: it may be another file under a second name, so it is not handed to %d:%d; remove the extra links or the file", p, st.Nlink, uid, gid)
		}
		if err := os.Lchown(p, uid, gid); err != nil {
			return "", fmt.Errorf("hand %s to %d:%d: %w", p, uid, gid, err)
		}
		handed++
	}
	mode := (fi.Mode().Perm() | 0o700) &^ 0o007
	if mode != fi.Mode().Perm() {
		// Before the chown, while root may still own it; CAP_FOWNER covers the other case.
		if err := os.Chmod(dir, mode); err != nil {
			return "", fmt.Errorf("set the mode of %s to %s: %w", dir, mode, err)
		}
	}
	if int(owner.Uid) != uid || int(owner.Gid) != gid {
		if err := os.Lchown(dir, uid, gid); err != nil {
			return "", fmt.Errorf("hand %s to %d:%d (needs CAP_CHOWN): %w", dir, uid, gid, err)
		}
	}
	return fmt.Sprintf("Prepared %s for uid %d gid %d: folder owner %d:%d -> %d:%d, mode %s -> %s, %d files handed over",
		dir, uid, gid, owner.Uid, owner.Gid, uid, gid, fi.Mode().Perm(), mode, handed), nil
}

// explainOpenError adds to a failure to open the SQLite database the user the core runs as
// and, when that user cannot write the database's folder, who owns it and what to do.
func explainOpenError(database string, err error) error {
	uid, gid := os.Getuid(), os.Getgid()
	abs, absErr := filepath.Abs(database)
	if absErr != nil {
		abs = database
	}
	dir := filepath.Dir(abs)
	err = fmt.Errorf("open the SQLite database %s as uid %d gid %d: %w", abs, uid, gid, err)
	fi, statErr := os.Stat(dir)
	if statErr != nil {
		return fmt.Errorf("%w; its folder %s: %v", err, dir, statErr)
	}
	const writeAndSearch = 0x2 | 0x1 // W_OK | X_OK of access(2)
	if syscall.Access(dir, writeAndSearch) == nil {
		return err
	}
	st := fi.Sys().(*syscall.Stat_t)
	return fmt.Errorf("%w; its folder %s (owner %d:%d, mode %s) is not writable by uid %d. fsGroup is not applied to hostPath and local volumes: hand the folder to this user first, as root, with `twofold-core %s -dir %s -uid %d -gid %d` (the Helm chart does, with core.database.sqlite.persistence.prepare)",
		err, dir, st.Uid, st.Gid, fi.Mode().Perm(), uid, prepareDataCommand, dir, uid, gid)
}
