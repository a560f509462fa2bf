//go:build unix

package main

import (
	"os"
	"syscall"
)

// chownLikeDir gives path the owner of dir when running as root, so a file that a command run as
// root puts in a data directory owned by the service's user (systemd's DynamicUser, a container's
// non-root user) stays readable by the service.
func chownLikeDir(path, dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	st, err := os.Stat(dir)
	if err != nil {
		return err
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	return os.Chown(path, int(sys.Uid), int(sys.Gid))
}
