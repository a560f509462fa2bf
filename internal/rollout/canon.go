package rollout

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// ErrNotUTF8 is the answer to text that is not valid UTF-8: it cannot be decided faithfully
// (another implementation would read other characters), so it is refused rather than guessed.
var ErrNotUTF8 = errors.New("is not valid UTF-8 text")

// Canonical is the one form a user id, an attribute's name or value, and a rule's value take
// everywhere (saving, importing, deciding, OFREP): white space around it removed (as
// unicode.IsSpace defines it), then Unicode normalisation form C (NFC), case kept. So an id saved
// as " é " (e and a combining accent) and asked for as "é" (one code point) is one user, while
// "Alice" and "alice" are two. Text that is not valid UTF-8 is refused with ErrNotUTF8.
// An ASCII string costs a scan and nothing else: it is already in NFC.
func Canonical(s string) (string, error) {
	if isASCII(s) {
		return trimASCII(s), nil
	}
	if !utf8.ValidString(s) {
		return "", ErrNotUTF8
	}
	return strings.TrimSpace(norm.NFC.String(s)), nil
}

// canonical is Canonical for a decision, which has no error to return: the edge has already
// refused invalid UTF-8, so text that is not UTF-8 is only trimmed.
func canonical(s string) string {
	if isASCII(s) {
		return trimASCII(s)
	}
	if !utf8.ValidString(s) {
		return strings.TrimSpace(s)
	}
	return strings.TrimSpace(norm.NFC.String(s))
}

// isASCII reports whether s is all ASCII, eight bytes at a time.
func isASCII(s string) bool {
	i := 0
	for ; i+8 <= len(s); i += 8 {
		w := uint64(s[i]) | uint64(s[i+1])<<8 | uint64(s[i+2])<<16 | uint64(s[i+3])<<24 |
			uint64(s[i+4])<<32 | uint64(s[i+5])<<40 | uint64(s[i+6])<<48 | uint64(s[i+7])<<56
		if w&0x8080808080808080 != 0 {
			return false
		}
	}
	for ; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// trimASCII is strings.TrimSpace for ASCII text: the ASCII white space of unicode.IsSpace.
func trimASCII(s string) string {
	for len(s) > 0 && asciiSpace(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && asciiSpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

func asciiSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// ParseNumber reads a number as JSON writes it: an optional minus, digits without a leading zero
// (or a lone 0), an optional fraction and an optional exponent, e.g. 18, -2.5, 1e3, 0.25E-2.
// It is finite: 1e400 does not fit a float64 and is refused, as are Inf, NaN, hex floats, a
// leading + or ., and underscores, which strconv.ParseFloat would take. ok is false for those.
func ParseNumber(s string) (f float64, ok bool) {
	if !isJSONNumber(s) {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// isJSONNumber reports whether s is exactly a JSON number (RFC 8259, section 6).
func isJSONNumber(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i++; i < len(s) && isDigit(s[i]); i++ {
		}
	default:
		return false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i == len(s) || !isDigit(s[i]) {
			return false
		}
		for ; i < len(s) && isDigit(s[i]); i++ {
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i == len(s) || !isDigit(s[i]) {
			return false
		}
		for ; i < len(s) && isDigit(s[i]); i++ {
		}
	}
	return i == len(s)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
