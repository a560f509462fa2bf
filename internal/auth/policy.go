package auth

import (
	"bufio"
	"bytes"
	"compress/gzip"
	_ "embed"
	"strings"
	"sync"
	"unicode"
)

// The password policy beyond length: a new password must not be one an attacker tries early.
// Everything here is a few map lookups and scans over at most MaxPasswordLen characters, cheap
// next to the argon2id hash that follows (see BenchmarkValidatePassword).

//go:embed common-passwords.txt.gz
var commonGz []byte

// CommonPasswordCount is how many passwords the embedded list holds (COMMON-PASSWORDS.md says
// where it comes from).
const CommonPasswordCount = 30000

// commonWords names the list in messages.
const commonWords = "one of the 30,000 most common passwords"

// productWords are the names of this product, which make a poor password for it.
var productWords = []string{"tensfer", "dashboard", "golive", "go-live", "go live", "go_live"}

// commonSet is the embedded list as a set, loaded at the first check.
var commonSet = sync.OnceValue(func() map[string]struct{} {
	zr, err := gzip.NewReader(bytes.NewReader(commonGz))
	if err != nil {
		panic("auth: embedded common password list: " + err.Error())
	}
	set := make(map[string]struct{}, CommonPasswordCount)
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		if w := sc.Text(); w != "" {
			set[w] = struct{}{}
		}
	}
	if err := sc.Err(); err != nil {
		panic("auth: embedded common password list: " + err.Error())
	}
	return set
})

// maxCommonLen bounds the length of an entry of the list, so variant checks try few substrings.
const maxCommonLen = 20

// weakness says why pw is easy to guess for the user with this email and name ("is one of the
// 30,000 most common passwords"), or "" when it is not.
func weakness(pw, email, name string) string {
	lower := strings.ToLower(pw)
	runes := []rune(lower)
	p := period(runes)
	switch {
	case p == 1:
		return "is one character repeated"
	case isSequence(lower):
		return "is a simple sequence like 123456, abcdef or qwerty"
	case p <= 4:
		return "is a short pattern repeated"
	}
	if whose := madeOf(lower, email, name); whose != "" {
		return "is made of " + whose
	}
	switch {
	case isCommon(lower):
		return "is " + commonWords
	case isCommonVariant(lower):
		return "is " + commonWords + " with digits or symbols added"
	}
	if p < len(runes) {
		if unit := string(runes[:p]); isCommon(unit) || isCommonVariant(unit) || isSequence(unit) {
			return "is " + commonWords + ", repeated"
		}
	}
	return ""
}

// period is the length of the shortest unit that s repeats (fully or in part): 1 for "aaaa", 3
// for "abcabca", len(s) when nothing repeats.
func period(s []rune) int {
	if len(s) == 0 {
		return 0
	}
	// Knuth-Morris-Pratt failure function: fail[i] is the longest proper border of s[:i+1].
	fail := make([]int, len(s))
	for i, k := 1, 0; i < len(s); i++ {
		for k > 0 && s[i] != s[k] {
			k = fail[k-1]
		}
		if s[i] == s[k] {
			k++
		}
		fail[i] = k
	}
	return len(s) - fail[len(s)-1]
}

// sequences are runs a person types without thinking: each character followed by the next one,
// forwards or backwards, wrapping at the end (so 123456789012 and qwertyuiopas are runs).
var sequences = []string{
	"0123456789",
	"abcdefghijklmnopqrstuvwxyz",
	"qwertyuiopasdfghjklzxcvbnm",      // keyboard rows, QWERTY
	"azertyuiopqsdfghjklmwxcvbn",      // keyboard rows, AZERTY
	"qwertzuiopasdfghjklyxcvbnm",      // keyboard rows, QWERTZ
	"1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik", // keyboard columns
	"!@#$%^&*()",                      // shifted digits
}

// isSequence reports whether s (lower case, at least 3 characters) is one run of a sequence.
func isSequence(s string) bool {
	if len(s) < 3 {
		return false
	}
	for _, seq := range sequences {
		for _, step := range []int{1, len(seq) - 1} { // forwards, backwards
			if runOf(s, seq, step) {
				return true
			}
		}
	}
	return false
}

func runOf(s, seq string, step int) bool {
	at := strings.IndexByte(seq, s[0])
	for i := 1; i < len(s) && at >= 0; i++ {
		next := (at + step) % len(seq)
		if seq[next] != s[i] {
			return false
		}
		at = next
	}
	return at >= 0
}

// isFiller reports whether c is what people pad a weak password with: a digit, punctuation,
// a symbol or a space.
func isFiller(c rune) bool {
	return unicode.IsDigit(c) || unicode.IsPunct(c) || unicode.IsSymbol(c) || unicode.IsSpace(c)
}

// madeOf reports whose words s (lower case) is made of, with nothing else but filler around
// them: "the account's email address", "the account's name" or "the product's name"; "" when none.
func madeOf(s, email, name string) string {
	email = strings.ToLower(strings.TrimSpace(email))
	local, domain, _ := strings.Cut(email, "@")
	groups := []struct {
		whose string
		words []string
	}{
		{"the account's email address", append(append([]string{email, local}, pieces(local)...), pieces(domain)...)},
		{"the account's name", pieces(strings.ToLower(name))},
		{"the product's name", productWords},
	}
	rest, whose := s, ""
	for _, g := range groups {
		for _, w := range longestFirst(g.words) {
			if len(w) >= 3 && strings.Contains(rest, w) {
				rest = strings.ReplaceAll(rest, w, " ")
				if whose == "" {
					whose = g.whose
				}
			}
		}
	}
	if whose == "" {
		return ""
	}
	switch core := strings.TrimFunc(rest, isFiller); {
	case core == "":
		return whose
	case isCommon(core) || isCommonVariant(core):
		return whose + " and a common password"
	}
	return ""
}

// pieces splits s at anything but letters and digits ("ana.lopez+ops" -> ana, lopez, ops).
func pieces(s string) []string {
	return strings.FieldsFunc(s, func(c rune) bool { return !unicode.IsLetter(c) && !unicode.IsDigit(c) })
}

// longestFirst orders words by length, longest first, so a whole email goes before its parts.
func longestFirst(words []string) []string {
	out := append([]string(nil), words...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && len(out[j]) > len(out[j-1]); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// isCommon reports whether s (lower case) is on the list, as it is or read as leetspeak.
func isCommon(s string) bool {
	set := commonSet()
	if _, ok := set[s]; ok {
		return true
	}
	for _, table := range leet {
		if d := deleet(s, table); d != s {
			if _, ok := set[d]; ok {
				return true
			}
		}
	}
	return false
}

// isCommonVariant reports whether s (lower case) is a listed password with filler before or
// after it ("password1234", "!!monkey2024"), the listed part being at least half of s.
func isCommonVariant(s string) bool {
	if len(s) > 2*maxCommonLen {
		return false
	}
	lead := strings.IndexFunc(s, func(c rune) bool { return !isFiller(c) })
	if lead < 0 {
		lead = len(s)
	}
	trail := strings.LastIndexFunc(s, func(c rune) bool { return !isFiller(c) }) + 1
	for j := 0; j <= lead; j++ {
		for i := max(trail, j+4); i <= len(s) && i-j <= maxCommonLen; i++ {
			if (j == 0 && i == len(s)) || 2*(i-j) < len(s) {
				continue
			}
			if isCommon(s[j:i]) {
				return true
			}
		}
	}
	return false
}

// leet tables read common substitutions back as letters; "1" is tried as both i and l.
var leet = []*strings.Replacer{
	strings.NewReplacer("@", "a", "4", "a", "3", "e", "1", "i", "!", "i", "0", "o", "$", "s", "5", "s", "7", "t"),
	strings.NewReplacer("@", "a", "4", "a", "3", "e", "1", "l", "!", "i", "0", "o", "$", "s", "5", "s", "7", "t"),
}

// deleet applies table only to a string with a letter in it: "123456" stays digits.
func deleet(s string, table *strings.Replacer) string {
	if strings.IndexFunc(s, unicode.IsLetter) < 0 {
		return s
	}
	return table.Replace(s)
}
