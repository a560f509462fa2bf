// Package auth holds the credential primitives: argon2id password hashing, random opaque ids and
// API token formats. It knows nothing about HTTP or the database.
package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id cost parameters. Defaults follow RFC 9106's second recommended option
// (64 MiB, 3 passes), a sensible cost for an interactive login on a small server.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
	KeyLen  uint32
	SaltLen uint32
}

// DefaultParams are used for new hashes.
var DefaultParams = Params{Memory: 64 * 1024, Time: 3, Threads: 2, KeyLen: 32, SaltLen: 16}

// TestParams are cheap parameters so tests stay fast; never use them in production.
var TestParams = Params{Memory: 1024, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}

// MinPasswordLen and MaxPasswordLen bound passwords accepted by ValidatePassword.
const (
	MinPasswordLen = 12
	MaxPasswordLen = 256
)

// ValidatePassword checks a new password for the account with this email and name (either may
// be empty), with a message a person can act on: besides its length, it must not be easy to
// guess (one of the most common passwords, a sequence, or made of the email, the name or the
// product's name; see weakness), and zxcvbn's estimate must reach 10^MinGuessesLog10 guesses
// (see guessable). Every refusal says why and what to do instead.
func ValidatePassword(pw, email, name string) error {
	n := utf8.RuneCountInString(pw)
	switch {
	case n < MinPasswordLen:
		return fmt.Errorf("password must be at least %d characters", MinPasswordLen)
	case n > MaxPasswordLen:
		return fmt.Errorf("password must be at most %d characters", MaxPasswordLen)
	case strings.TrimSpace(pw) != pw:
		return errors.New("password must not start or end with spaces")
	}
	if why := weakness(pw, email, name); why != "" {
		return errors.New("password " + why + "; " + passwordAdvice)
	}
	if why := guessable(pw, email, name); why != "" {
		return errors.New("password " + why + "; " + passwordAdvice)
	}
	return nil
}

// passwordAdvice ends every refusal of a weak password with what to do instead.
const passwordAdvice = "use four or five unrelated words, or a password manager's random password"

// PasswordRule says what a new password must be, for the hint under every form that sets one.
func PasswordRule() string {
	return fmt.Sprintf("At least %d characters and hard to guess: not a common password, word, sequence or pattern, "+
		"and not made of the product's name or the account's email or name. Four or five unrelated words work well", MinPasswordLen)
}

// HashPassword returns a PHC-format argon2id hash ($argon2id$v=19$m=..,t=..,p=..$salt$hash).
func HashPassword(pw string, p Params) (string, error) {
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// ErrMismatch is returned by CheckPassword when the password is wrong.
var ErrMismatch = errors.New("auth: password does not match")

// CheckPassword compares pw with a hash made by HashPassword, in constant time.
func CheckPassword(pw, hash string) error {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return errors.New("auth: unsupported password hash format")
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return errors.New("auth: unsupported argon2 version")
	}
	var p Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return fmt.Errorf("auth: bad argon2 parameters: %w", err)
	}
	enc := base64.RawStdEncoding
	salt, err := enc.DecodeString(parts[4])
	if err != nil {
		return fmt.Errorf("auth: bad salt: %w", err)
	}
	want, err := enc.DecodeString(parts[5])
	if err != nil {
		return fmt.Errorf("auth: bad hash: %w", err)
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return ErrMismatch
	}
	return nil
}
