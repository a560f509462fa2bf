//go:build unix

package main

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/secrets"
)

// TestRestoreAsRootGivesFilesToTheDataDirectorysOwner: run as root in a data directory owned by
// the service's user (systemd's DynamicUser, a container's user), restore leaves every file it
// creates to that user, so the service can open them.
func TestRestoreAsRootGivesFilesToTheDataDirectorysOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, as an operator restoring a service's data")
	}
	src, backupFile := adminAndBackup(t)
	const service = 65532
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, service, service); err != nil {
		t.Fatal(err)
	}
	if _, _, err := cli(t, nil, "", "restore", "--data", dir, "--from", backupFile, "--master-key-file", filepath.Join(src, secrets.KeyFileName)); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{db.FileName, secrets.KeyFileName, lockFileName} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if sys := st.Sys().(*syscall.Stat_t); sys.Uid != service || sys.Gid != service {
			t.Errorf("%s is owned by %d:%d, want the data directory's %d:%d", name, sys.Uid, sys.Gid, service, service)
		}
	}
}
