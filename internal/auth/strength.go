package auth

import (
	"fmt"
	"math"
	"strings"

	"github.com/trustelem/zxcvbn"
	"github.com/trustelem/zxcvbn/match"
)

// The strength estimate behind the password policy: zxcvbn (Dropbox's estimator, as ported by
// trustelem) counts the guesses an attacker who knows common passwords, words, names, keyboard
// patterns, dates and this product's and this person's words would need.

// MinGuessesLog10 is the estimate a new password needs: at least 10^10 guesses (zxcvbn's top
// score, 4). NB: its score 3 (10^8) lets "tensferr2026!" through, the product's name with a year;
// at argon2id's cost a stolen backup still gives up 10^8 guesses in days on one graphics card,
// while four unrelated words clear 10^10 with room to spare.
const MinGuessesLog10 = 10

// strengthRunes bounds the part of a password the estimate reads: its matching grows with the
// square of the length, and 64 characters that are hard to guess make the rest moot.
const strengthRunes = 64

// userInputs are the words an attacker who targets this account tries first: the product's
// names and the account's email and name, whole and in pieces.
func userInputs(email, name string) []string {
	in := append([]string(nil), productWords...)
	email = strings.ToLower(strings.TrimSpace(email))
	if email != "" {
		local, domain, _ := strings.Cut(email, "@")
		in = append(append(append(in, email, local), pieces(local)...), pieces(domain)...)
	}
	return append(in, pieces(strings.ToLower(name))...)
}

// guessable says why pw is too easy to guess for the account with this email and name ("is too
// easy to guess: ..."), or "" when the estimate reaches MinGuessesLog10.
func guessable(pw, email, name string) string {
	if r := []rune(pw); len(r) > strengthRunes {
		pw = string(r[:strengthRunes])
	}
	res := zxcvbn.PasswordStrength(pw, userInputs(email, name))
	if math.Log10(max(res.Guesses, 1)) >= MinGuessesLog10 {
		return ""
	}
	var parts []string
	for _, m := range res.Sequence {
		if what := describeMatch(m); what != "" && len(parts) < 3 {
			parts = append(parts, what)
		}
	}
	why := "is too easy to guess"
	if len(parts) > 0 {
		why += " (" + strings.Join(parts, ", ") + ")"
	}
	return why + fmt.Sprintf(": about 10^%d guesses would find it, and a password needs 10^%d", int(math.Log10(max(res.Guesses, 1))), MinGuessesLog10)
}

// describeMatch names one guessable part of a password as an attacker sees it; "" for a part
// that is only random characters.
func describeMatch(m *match.Match) string {
	q := fmt.Sprintf("%q", m.Token)
	switch m.Pattern {
	case "dictionary":
		switch m.DictionaryName {
		case "user_inputs":
			return q + " is the product's name or part of the account's email or name"
		case "passwords":
			return q + " is a common password"
		}
		return q + " is a common word or name"
	case "sequence":
		return q + " is a sequence"
	case "repeat":
		return q + " is a repeat"
	case "spatial":
		return q + " is a keyboard pattern"
	case "date", "regex":
		return q + " is a date or a year"
	}
	return ""
}
