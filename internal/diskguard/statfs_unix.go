//go:build linux || darwin || freebsd

package diskguard

import "syscall"

// statSpace reads the free and total bytes of the filesystem holding dir.
func statSpace(dir string) (Space, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return Space{}, err
	}
	bs := uint64(st.Bsize)
	return Space{Free: uint64(st.Bavail) * bs, Total: uint64(st.Blocks) * bs}, nil
}
