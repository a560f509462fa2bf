package secrets

import (
	"bytes"
	"testing"
)

func TestDeriveKey(t *testing.T) {
	k1, _ := GenerateKey()
	k2, _ := GenerateKey()
	b1, _ := NewBox(k1)
	b2, _ := NewBox(k2)
	again, _ := NewBox(k1)
	a := b1.DeriveKey("known-device cookie")
	switch {
	case len(a) != 32:
		t.Fatalf("derived key has %d bytes", len(a))
	case !bytes.Equal(a, again.DeriveKey("known-device cookie")):
		t.Fatal("not stable across restarts with the same master key")
	case bytes.Equal(a, b1.DeriveKey("another purpose")):
		t.Fatal("two purposes share a key")
	case bytes.Equal(a, b2.DeriveKey("known-device cookie")):
		t.Fatal("does not depend on the master key")
	case bytes.Contains(a, k1.raw[:8]):
		t.Fatal("the master key shows through")
	}
}
