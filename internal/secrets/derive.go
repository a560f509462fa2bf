package secrets

import (
	"crypto/hmac"
	"crypto/sha256"
)

// DeriveKey returns a 32-byte key for one purpose (e.g. "known-device cookie"), derived from the
// current master key with HMAC-SHA256, for a MAC that must survive restarts without a secret of
// its own. Different purposes get unrelated keys; rotating the master key changes them all.
func (b *Box) DeriveKey(purpose string) []byte {
	m := hmac.New(sha256.New, b.current.raw)
	m.Write([]byte("tensfer-dashboard derived key\x00" + purpose))
	return m.Sum(nil)
}
