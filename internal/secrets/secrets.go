// Package secrets keeps the master key and seals values with AES-256-GCM. A sealed value names the
// key that sealed it, and is bound to a context string (for example "production/secret_key") so a
// ciphertext cannot be moved to another environment or field.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// KeySize is the master key length in bytes (AES-256).
const KeySize = 32

// KeyFileName is the master key file created in the data directory when no key is given.
const KeyFileName = "master.key"

// Key is one master key and its public id.
type Key struct {
	ID  string
	raw []byte
}

// NewKey wraps 32 raw bytes as a Key.
func NewKey(raw []byte) (Key, error) {
	if len(raw) != KeySize {
		return Key{}, fmt.Errorf("master key must be %d bytes, got %d", KeySize, len(raw))
	}
	sum := sha256.Sum256(append([]byte("tensfer-dashboard master key id\x00"), raw...))
	return Key{ID: hex.EncodeToString(sum[:4]), raw: append([]byte(nil), raw...)}, nil
}

// GenerateKey makes a new random master key.
func GenerateKey() (Key, error) {
	raw := make([]byte, KeySize)
	if _, err := rand.Read(raw); err != nil {
		return Key{}, err
	}
	return NewKey(raw)
}

// Encode returns the key in the text form used in files and DASHBOARD_MASTER_KEY (base64).
func (k Key) Encode() string { return base64.StdEncoding.EncodeToString(k.raw) }

// ParseKey decodes a key given as base64 (std or url, padded or not) or 64 hex characters.
func ParseKey(s string) (Key, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Key{}, errors.New("master key is empty")
	}
	if len(s) == 2*KeySize {
		if raw, err := hex.DecodeString(s); err == nil {
			return NewKey(raw)
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if raw, err := enc.DecodeString(s); err == nil {
			return NewKey(raw)
		}
	}
	return Key{}, fmt.Errorf("master key must be %d bytes encoded as base64 or hex (generate one with: head -c 32 /dev/urandom | base64)", KeySize)
}

// Source says where LoadKey found the key, for the startup log.
type Source string

// LoadKey finds the master key: the literal value if given (DASHBOARD_MASTER_KEY), else the file
// if given (DASHBOARD_MASTER_KEY_FILE), else dataDir/master.key, which is created with mode 0600
// when missing. A key file readable by group or others is refused.
func LoadKey(dataDir, value, file string) (Key, Source, error) {
	switch {
	case value != "":
		k, err := ParseKey(value)
		if err != nil {
			return Key{}, "", fmt.Errorf("DASHBOARD_MASTER_KEY: %w", err)
		}
		return k, "environment", nil
	case file != "":
		k, err := readKeyFile(file)
		return k, Source("file " + file), err
	}
	path := filepath.Join(dataDir, KeyFileName)
	k, err := readKeyFile(path)
	if err == nil {
		return k, Source("file " + path), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return Key{}, "", err
	}
	k, err = GenerateKey()
	if err != nil {
		return Key{}, "", err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return Key{}, "", fmt.Errorf("create master key file: %w", err)
	}
	if _, err := f.WriteString(k.Encode() + "\n"); err != nil {
		f.Close()
		return Key{}, "", fmt.Errorf("write master key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return Key{}, "", fmt.Errorf("write master key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return Key{}, "", fmt.Errorf("write master key file: %w", err)
	}
	return k, Source("generated " + path), nil
}

func readKeyFile(path string) (Key, error) {
	st, err := os.Stat(path)
	if err != nil {
		return Key{}, fmt.Errorf("master key file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return Key{}, fmt.Errorf("master key file %s is readable by other users (mode %04o); run: chmod 600 %s", path, st.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return Key{}, fmt.Errorf("master key file: %w", err)
	}
	k, err := ParseKey(string(b))
	if err != nil {
		return Key{}, fmt.Errorf("master key file %s: %w", path, err)
	}
	return k, nil
}

// Box seals and opens values with the current key; older keys can still open what they sealed
// (so a master-key rotation can re-encrypt at its own pace).
type Box struct {
	current Key
	byID    map[string]cipher.AEAD
	fpKey   []byte
}

// NewBox builds a Box that seals with current and opens with current or any of old.
func NewBox(current Key, old ...Key) (*Box, error) {
	fp := hmac.New(sha256.New, current.raw)
	fp.Write([]byte("tensfer-dashboard fingerprint key"))
	b := &Box{current: current, byID: map[string]cipher.AEAD{}, fpKey: fp.Sum(nil)}
	for _, k := range append([]Key{current}, old...) {
		block, err := aes.NewCipher(k.raw)
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		b.byID[k.ID] = aead
	}
	return b, nil
}

// KeyID is the id of the key new values are sealed with.
func (b *Box) KeyID() string { return b.current.ID }

const sealedPrefix = "v1."

// Seal encrypts plaintext bound to context; the result is text safe to store.
func (b *Box) Seal(plaintext []byte, context string) (string, error) {
	aead := b.byID[b.current.ID]
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	ct := aead.Seal(nonce, nonce, plaintext, []byte(context))
	return sealedPrefix + b.current.ID + "." + base64.RawStdEncoding.EncodeToString(ct), nil
}

// ErrOpen is returned when a sealed value cannot be opened: wrong key, wrong context or tampering.
var ErrOpen = errors.New("secrets: cannot decrypt value (wrong master key, wrong environment or field, or tampered)")

// KeyIDOf returns the id of the key that sealed s.
func KeyIDOf(sealed string) (string, error) {
	rest, ok := strings.CutPrefix(sealed, sealedPrefix)
	id, _, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 {
		return "", errors.New("secrets: not a sealed value")
	}
	return id, nil
}

// Open decrypts a value made by Seal with the same context.
func (b *Box) Open(sealed, context string) ([]byte, error) {
	id, err := KeyIDOf(sealed)
	if err != nil {
		return nil, err
	}
	aead, ok := b.byID[id]
	if !ok {
		return nil, fmt.Errorf("secrets: value was sealed with master key %s, which is not loaded", id)
	}
	ct, err := base64.RawStdEncoding.DecodeString(sealed[len(sealedPrefix)+len(id)+1:])
	if err != nil || len(ct) < aead.NonceSize() {
		return nil, ErrOpen
	}
	pt, err := aead.Open(nil, ct[:aead.NonceSize()], ct[aead.NonceSize():], []byte(context))
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// Fingerprint is a short, stable identifier of a secret value, shown instead of the value and
// used to spot the same key set twice (e.g. in sandbox and production). It is an HMAC under a
// key derived from the master key, so a copy of the database alone cannot confirm a guessed
// value from it.
func (b *Box) Fingerprint(value []byte) string {
	m := hmac.New(sha256.New, b.fpKey)
	m.Write(value)
	return hex.EncodeToString(m.Sum(nil))[:12]
}

// Last4 returns the last four characters of a secret for display ("…a1b2").
func Last4(value string) string {
	r := []rune(value)
	if len(r) <= 4 {
		return string(r)
	}
	return string(r[len(r)-4:])
}
