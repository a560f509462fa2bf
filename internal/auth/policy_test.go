package auth

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"strings"
	"testing"
)

func TestValidatePassword(t *testing.T) {
	const email, name = "ana.lopez@acme-payments.io", "Ana Lopez"
	tests := []struct {
		pw   string
		want string // part of the message; "" when accepted
	}{
		{"short", "at least 12"},
		{" leading-space-pw", "spaces"},
		{strings.Repeat("x", 257), "at most 256"},

		// the examples of the issue
		{"password1234", "is one of the 30,000 most common passwords"},
		{"aaaaaaaaaaaa", "one character repeated"},
		{"123456789012", "simple sequence"},

		// one character, sequences, short patterns
		{"............", "one character repeated"},
		{"ÄÄÄÄÄÄÄÄÄÄÄÄ", "one character repeated"},
		{"abcdefghijkl", "simple sequence"},
		{"LKJIHGFEDCBA", "simple sequence"},
		{"qwertyuiopas", "simple sequence"},
		{"mnbvcxzlkjhg", "simple sequence"},
		{"azertyuiopqs", "simple sequence"},
		{"1qaz2wsx3edc4rfv", "simple sequence"},
		{"098765432109", "simple sequence"},
		{"abcabcabcabc", "short pattern repeated"},
		{"12121212121212", "short pattern repeated"},

		// the list, case-insensitively, and its trivial variants
		{"qwertyuiop123", "most common passwords"},
		{"qwertyuiop98765", "most common passwords with digits or symbols added"},
		{"1qaz2wsx3edc", "simple sequence"},
		{"PASSWORD98765", "most common passwords with digits"},
		{"trustno1trustno1", "most common passwords"},
		{"Password123!", "most common passwords with digits"},
		{"!!password!!", "most common passwords with digits"},
		{"2024superman!", "most common passwords with digits"},
		{"P@ssw0rd2024", "most common passwords with digits"},
		{"iloveyou1234", "most common passwords with digits"},
		{"monkeymonkey", "most common passwords, repeated"},
		{"dragon-dragon-dragon", "most common passwords, repeated"},
		{"abc123abc123", "most common passwords"},
		{"monkey12monkey1", "most common passwords, repeated"},
		{"1234567890!!", "most common passwords with digits"},

		// the person's email and name, and the product
		{"ana.lopez@acme-payments.io", "made of the account's email address"},
		{"ANA.LOPEZ@ACME-PAYMENTS.IO!", "made of the account's email address"},
		{"ana.lopez2024!!", "made of the account's email address"},
		{"2024-ana.lopez-2024", "made of the account's email address"},
		{"lopez.ana.1990", "made of the account's email address"},
		{"acme-payments-2024", "made of the account's email address"},
		{"ana.lopez.password", "made of the account's email address and a common password"},
		{"Tensfer2024!!", "made of the product's name"},
		{"dashboard-2024", "made of the product's name"},
		{"go-live-2024!", "made of the product's name"},
		{"GoLive123456", "made of the product's name"},
		{"tensfer dashboard", "made of the product's name"},

		// accepted: long, not on the list, not made of anything above
		{"a good long passphrase", ""},
		{"correct horse battery staple", ""},
		{"ana went to lisbon in may", ""},
		{"my tensfer keys live here", ""},
		{"Tr0ub4dor&3-x9", ""},
		{"hunter2 is not my password", ""},
		{"password manager generated: k9#Lq2!vZp", ""},
		{"vivid otter mango quartz", ""},
		{"kT9#vQ2!mZp4", ""},

		// the examples of issue 18, and what the strength estimate finds beyond the rules above
		{"1234567890ab", `too easy to guess ("1234567890" is a common password`},
		{"ABCDEFGHIJKL1", `too easy to guess ("ABCDEFGHIJKL" is a sequence`},
		{"tensferr2026!", `too easy to guess ("tensfer" is the product's name`},
		{"aaaaaaaaaaab", `"aaaaaaaaaaa" is a repeat`},
		{"abcdefghijkx", `"abcdefghijk" is a sequence`},
		{"839271645302", "too easy to guess"},
		{"anabanana2024!", "too easy to guess"},
	}
	for _, tt := range tests {
		err := ValidatePassword(tt.pw, email, name)
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("ValidatePassword(%q) = %v, want %q", tt.pw, err, tt.want)
		}
	}
	// Every refusal says what to do instead.
	for _, pw := range []string{"1234567890ab", "ABCDEFGHIJKL1", "tensferr2026!", "password1234"} {
		if err := ValidatePassword(pw, email, name); err == nil || !strings.Contains(err.Error(), "four or five unrelated words") {
			t.Errorf("ValidatePassword(%q) = %v, want advice", pw, err)
		}
	}
	// The account's own words count: a word that is fine for one account is not for another.
	if err := ValidatePassword("zephyrine ravensworth", "", ""); err != nil {
		t.Errorf("an unrelated name: %v", err)
	}
	if err := ValidatePassword("zephyrine ravensworth", "z.ravensworth@example.com", "Zephyrine Ravensworth"); err == nil {
		t.Error("a password made of the account's name is accepted")
	}
	// Without an email or name, only the general rules apply.
	if err := ValidatePassword("ana.lopez2024!!", "", ""); err != nil {
		t.Errorf("no email given: %v", err)
	}
}

func TestCommonPasswordList(t *testing.T) {
	zr, err := gzip.NewReader(bytes.NewReader(commonGz))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(zr)
	lines, longest := 0, 0
	for sc.Scan() {
		w := sc.Text()
		if w != strings.ToLower(w) || strings.TrimSpace(w) != w || w == "" {
			t.Fatalf("line %d %q: entries are lower case and trimmed", lines+1, w)
		}
		lines++
		longest = max(longest, len(w))
	}
	if lines != CommonPasswordCount || len(commonSet()) != CommonPasswordCount {
		t.Fatalf("list has %d lines, %d distinct; CommonPasswordCount is %d", lines, len(commonSet()), CommonPasswordCount)
	}
	if longest > maxCommonLen {
		t.Fatalf("longest entry has %d characters, maxCommonLen is %d", longest, maxCommonLen)
	}
	// Every listed password of an allowed length is refused as it is.
	refused := 0
	for w := range commonSet() {
		if len(w) >= MinPasswordLen {
			if err := ValidatePassword(w, "", ""); err == nil {
				t.Errorf("listed password %q accepted", w)
			}
			refused++
		}
	}
	if refused < 200 {
		t.Fatalf("only %d listed passwords are long enough to test", refused)
	}
}

// BenchmarkValidatePassword measures the policy on a strong password (every check runs to the
// end, zxcvbn's estimate included) on a common variant and on a long one, against one lookup in
// the list and against the argon2id hash that follows an accepted password, as baselines.
func BenchmarkValidatePassword(b *testing.B) {
	commonSet() // loaded once, at the first check; BenchmarkLoadCommonPasswords measures that
	for _, bc := range []struct{ name, pw string }{
		{"strong", "correct horse battery staple"},
		{"variant", "P@ssw0rd2024!!"},
		{"long", strings.TrimSpace(strings.Repeat("correct horse battery staple ", 8))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				_ = ValidatePassword(bc.pw, "ana.lopez@acme-payments.io", "Ana Lopez")
			}
		})
	}
	b.Run("baseline-argon2id-hash", func(b *testing.B) { // what every accepted password costs next
		for b.Loop() {
			_, _ = HashPassword("correct horse battery staple", DefaultParams)
		}
	})
	b.Run("baseline-one-map-hit", func(b *testing.B) {
		set, pw := commonSet(), "correct horse battery staple"
		for b.Loop() {
			_, _ = set[pw]
		}
	})
}

// BenchmarkLoadCommonPasswords is the one-off cost of the first check: gunzip and build the set.
func BenchmarkLoadCommonPasswords(b *testing.B) {
	for b.Loop() {
		zr, _ := gzip.NewReader(bytes.NewReader(commonGz))
		set := map[string]struct{}{}
		sc := bufio.NewScanner(zr)
		for sc.Scan() {
			set[sc.Text()] = struct{}{}
		}
	}
}
