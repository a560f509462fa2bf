//go:build !unix

package main

// chownLikeDir does nothing where files have no unix owner; see owner_unix.go.
func chownLikeDir(path, dir string) error { return nil }
