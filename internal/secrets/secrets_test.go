package secrets

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSealOpen(t *testing.T) {
	k1, _ := GenerateKey()
	k2, _ := GenerateKey()
	box, err := NewBox(k1)
	if err != nil {
		t.Fatal(err)
	}
	s, err := box.Seal([]byte("sk_live_123"), "production/secret_key")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(s, "sk_live") {
		t.Fatal("plaintext visible in sealed value")
	}
	if got, err := box.Open(s, "production/secret_key"); err != nil || string(got) != "sk_live_123" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := box.Open(s, "sandbox/secret_key"); !errors.Is(err, ErrOpen) {
		t.Fatalf("moved to another context: got %v, want ErrOpen", err)
	}
	tampered := s[:len(s)-2] + "AA"
	if _, err := box.Open(tampered, "production/secret_key"); !errors.Is(err, ErrOpen) {
		t.Fatalf("tampered: got %v, want ErrOpen", err)
	}
	other, _ := NewBox(k2)
	if _, err := other.Open(s, "production/secret_key"); err == nil || !strings.Contains(err.Error(), k1.ID) {
		t.Fatalf("other key: got %v, want a message naming key %s", err, k1.ID)
	}
	rotated, _ := NewBox(k2, k1)
	if got, err := rotated.Open(s, "production/secret_key"); err != nil || string(got) != "sk_live_123" {
		t.Fatalf("old key after rotation: %q %v", got, err)
	}
}

func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	k, src, err := LoadKey(dir, "", "")
	if err != nil || !strings.HasPrefix(string(src), "generated") {
		t.Fatalf("first load: %v %v", src, err)
	}
	st, err := os.Stat(filepath.Join(dir, KeyFileName))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", st.Mode(), err)
	}
	k2, _, err := LoadKey(dir, "", "")
	if err != nil || k2.ID != k.ID {
		t.Fatalf("second load gave another key: %v %v", k2.ID, err)
	}
	if k3, src, err := LoadKey(dir, k.Encode(), ""); err != nil || k3.ID != k.ID || src != "environment" {
		t.Fatalf("from value: %v %v %v", k3.ID, src, err)
	}
	os.Chmod(filepath.Join(dir, KeyFileName), 0o644)
	if _, _, err := LoadKey(dir, "", ""); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable key file accepted: %v", err)
	}
	for _, bad := range []string{"short", "!!!!", strings.Repeat("a", 63)} {
		if _, err := ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q) accepted", bad)
		}
	}
}

func TestFingerprint(t *testing.T) {
	k1, _ := GenerateKey()
	k2, _ := GenerateKey()
	b1, _ := NewBox(k1)
	b2, _ := NewBox(k2)
	a, b := b1.Fingerprint([]byte("sk_live_1")), b1.Fingerprint([]byte("sk_live_1"))
	if a != b || len(a) != 12 {
		t.Fatalf("fingerprint not stable: %q %q", a, b)
	}
	if a == b1.Fingerprint([]byte("sk_live_2")) {
		t.Fatal("different values share a fingerprint")
	}
	if a == b2.Fingerprint([]byte("sk_live_1")) {
		t.Fatal("fingerprint does not depend on the master key")
	}
	if Last4("abcdef") != "cdef" || Last4("ab") != "ab" {
		t.Fatal("Last4")
	}
}
