//go:build unix

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// lockFileName is held (flock, exclusive) by a running server and by commands that must not run
// beside one, such as rotate-master-key.
const lockFileName = "dashboard.lock"

// errDataInUse means another process holds the data directory's lock.
var errDataInUse = errors.New("data directory in use")

// lockData takes the data directory's exclusive lock without waiting and records our pid in it.
// The lock goes away with the process, however it ends.
func lockData(dir, what string) (release func(), err error) {
	path := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			pid := strings.TrimSpace(string(holder))
			return nil, fmt.Errorf("%w: a dashboard (pid %s) is running with %s; stop it before %s", errDataInUse, pid, dir, what)
		}
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	// A command run as root in a service's data directory must not leave a lock file the service
	// cannot open.
	_ = chownLikeDir(path, dir)
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
