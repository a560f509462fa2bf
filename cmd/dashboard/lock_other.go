//go:build !unix

package main

import "errors"

var errDataInUse = errors.New("data directory in use")

// lockData does nothing where flock is not available; see lock_unix.go.
func lockData(dir, what string) (func(), error) { return func() {}, nil }
