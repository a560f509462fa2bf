package auth

import (
	"strings"
	"testing"
)

func TestPasswordRoundTrip(t *testing.T) {
	h, err := HashPassword("correct horse battery", TestParams)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=1024,t=1,p=1$") {
		t.Fatalf("unexpected hash format %q", h)
	}
	if err := CheckPassword("correct horse battery", h); err != nil {
		t.Fatalf("right password rejected: %v", err)
	}
	if err := CheckPassword("correct horse batterx", h); err != ErrMismatch {
		t.Fatalf("wrong password: got %v, want ErrMismatch", err)
	}
	h2, _ := HashPassword("correct horse battery", TestParams)
	if h == h2 {
		t.Fatal("two hashes of one password are equal: salt not random")
	}
	for _, bad := range []string{"", "$bcrypt$x", "$argon2id$v=19$m=x$a$b", "$argon2id$v=18$m=1,t=1,p=1$AA$AA"} {
		if err := CheckPassword("x", bad); err == nil {
			t.Errorf("CheckPassword accepted malformed hash %q", bad)
		}
	}
}

func TestScopes(t *testing.T) {
	tests := []struct {
		have []string
		need string
		want bool
	}{
		{[]string{"admin"}, "secrets:read", true},
		{[]string{"rollout:write"}, "rollout:decide", true},
		{[]string{"rollout:decide"}, "rollout:write", false},
		{[]string{"secrets:read"}, "config:read", true},
		{[]string{"config:read"}, "secrets:read", false},
		{[]string{"events:read"}, "events:write", false},
		{nil, "events:read", false},
	}
	for _, tt := range tests {
		if got := HasScope(tt.have, tt.need); got != tt.want {
			t.Errorf("HasScope(%v, %s) = %v, want %v", tt.have, tt.need, got, tt.want)
		}
	}
	if s, err := ParseScopes(" events:read,events:read , admin"); err != nil || len(s) != 2 {
		t.Errorf("ParseScopes dedupe: %v %v", s, err)
	}
	for _, bad := range []string{"", " , ", "events:read,root"} {
		if _, err := ParseScopes(bad); err == nil {
			t.Errorf("ParseScopes(%q) accepted", bad)
		}
	}
}

// TestNeedsRecheck: every scope that is or implies secrets:read or admin asks for a re-check, and
// only those; a scope added to AllScopes later is judged by what it implies.
func TestNeedsRecheck(t *testing.T) {
	for _, sc := range AllScopes {
		want := HasScope([]string{sc}, ScopeSecretsRead) || HasScope([]string{sc}, ScopeAdmin)
		if got := NeedsRecheck([]string{sc}); got != want {
			t.Errorf("NeedsRecheck(%s) = %v, want %v", sc, got, want)
		}
	}
	for _, tt := range []struct {
		scopes []string
		want   bool
	}{
		{[]string{ScopeSecretsRead}, true},
		{[]string{ScopeAdmin}, true},
		{[]string{ScopeEventsRead, ScopeSecretsRead}, true},
		{[]string{ScopeConfigRead, ScopeEventsRead, ScopeEventsWrite, ScopeRolloutWrite, ScopeMetricsRead}, false},
		{nil, false},
	} {
		if got := NeedsRecheck(tt.scopes); got != tt.want {
			t.Errorf("NeedsRecheck(%v) = %v, want %v", tt.scopes, got, tt.want)
		}
	}
}

func TestNewToken(t *testing.T) {
	a, pa := NewToken()
	b, _ := NewToken()
	if a == b || !strings.HasPrefix(a, TokenPrefix) || !strings.HasPrefix(a, pa) || len(a) < 40 {
		t.Fatalf("bad tokens %q %q (prefix %q)", a, b, pa)
	}
}
