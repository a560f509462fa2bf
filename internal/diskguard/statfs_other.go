//go:build !(linux || darwin || freebsd)

package diskguard

import "errors"

// statSpace cannot read free space on this system: the watermarks stay off (level ok) and only
// failed writes are caught.
func statSpace(string) (Space, error) {
	return Space{}, errors.New("free space is not readable on this system")
}
