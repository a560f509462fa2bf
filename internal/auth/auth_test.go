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

func TestNewToken(t *testing.T) {
	a, pa := NewToken()
	b, _ := NewToken()
	if a == b || !strings.HasPrefix(a, TokenPrefix) || !strings.HasPrefix(a, pa) || len(a) < 40 {
		t.Fatalf("bad tokens %q %q (prefix %q)", a, b, pa)
	}
}
