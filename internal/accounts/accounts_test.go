package accounts

import (
	"context"
	"strings"
	"testing"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
)

func TestValidateNewUser(t *testing.T) {
	good := strings.Repeat("p", auth.MinPasswordLen)
	tests := []struct {
		email, name, password string
		want                  map[string]string // field -> part of its message
	}{
		{"ana@example.com", "Ana", good, nil},
		{"ops@localhost", "", good, nil},
		{"", "", good, map[string]string{"email": "email is required"}},
		{"ana", "", good, map[string]string{"email": "is not an email address"}},
		{"Ana <ana@example.com>", "", good, map[string]string{"email": "is not an email address"}},
		{"ana@example", "", good, map[string]string{"email": "is not an email address"}},
		{"ana@example.com", strings.Repeat("n", 101), "short", map[string]string{"name": "at most 100", "password": "at least"}},
	}
	for _, tt := range tests {
		errs := ValidateNewUser(tt.email, tt.name, tt.password)
		if len(errs) != len(tt.want) {
			t.Errorf("%q %q: %v, want %v", tt.email, tt.name, errs, tt.want)
		}
		for f, want := range tt.want {
			if !strings.Contains(errs[f], want) {
				t.Errorf("%q: %s = %q, want it to contain %q", tt.email, f, errs[f], want)
			}
		}
	}
}

func TestValidateTokenName(t *testing.T) {
	for name, ok := range map[string]bool{"checkout-service": true, "": false, strings.Repeat("é", 80): true, strings.Repeat("x", 81): false} {
		if err := ValidateTokenName(name); (err == nil) != ok {
			t.Errorf("ValidateTokenName(%d runes) = %v", len([]rune(name)), err)
		}
	}
}

func TestSetupLinkOnlyWithoutUsersAndOnlyTheNewest(t *testing.T) {
	ctx := context.Background()
	d, err := db.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	first, err := PrepareSetup(ctx, d, "https://dash.example/")
	if err != nil || !strings.HasPrefix(first, "https://dash.example/setup?token=") {
		t.Fatalf("first link: %q %v", first, err)
	}
	second, _ := PrepareSetup(ctx, d, "https://dash.example")
	token := func(link string) string { return link[strings.Index(link, "token=")+6:] }
	if ok, _ := d.SetupTokenValid(ctx, token(first)); ok {
		t.Error("an older setup link still works")
	}
	if ok, _ := d.SetupTokenValid(ctx, token(second)); !ok {
		t.Error("the newest setup link does not work")
	}
	if _, err := d.CompleteSetup(ctx, token(second), db.User{Email: "ana@example.com", PasswordHash: "x"}, db.Audit{Actor: "setup-link", Action: "setup.complete"}); err != nil {
		t.Fatal(err)
	}
	if link, err := PrepareSetup(ctx, d, "https://dash.example"); link != "" || err != nil {
		t.Fatalf("with a user: %q %v", link, err)
	}
}
