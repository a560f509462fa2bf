package accounts

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/dbtest"
	"github.com/tensfer-golive/dashboard/internal/validation"
)

func TestValidateNewUser(t *testing.T) {
	good := "a good long passphrase"
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
		{"ana@example.com", "Ana", "password1234", map[string]string{"password": "is one of the 30,000 most common passwords"}},
		{"ana@example.com", "Ana", "ana@example.com1", map[string]string{"password": "is made of the account's email address"}},
		{"ana.lopez@example.com", "Ana Lopez", "Ana Lopez 1990!", map[string]string{"password": "is made of the account's email address"}},
		{"ops@example.com", "Maria Sanchez", "maria sanchez 1990", map[string]string{"password": "is made of the account's name"}},
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
	d, err := dbtest.New(t).Open(ctx)
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

func newService(t *testing.T) (*Service, *db.DB) {
	t.Helper()
	d, err := dbtest.New(t).Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return New(Config{DB: d, Params: auth.TestParams}), d
}

var testAudit = db.Audit{Actor: "test", Action: "test"}

func TestUsersAndPasswords(t *testing.T) {
	s, _ := newService(t)
	ctx := context.Background()
	pw := "correct horse battery"
	admin, err := s.CreateUser(ctx, NewUser{Email: " ana@example.com ", Name: "Ana", Role: "admin", Password: pw}, testAudit)
	if err != nil || admin.Email != "ana@example.com" || admin.Role != db.RoleAdmin {
		t.Fatalf("create: %+v %v", admin, err)
	}
	_, err = s.CreateUser(ctx, NewUser{Email: "ana@example.com", Role: "owner", Password: pw}, testAudit)
	var errs validation.Errors
	if !errors.As(err, &errs) || !errs.Has("role") {
		t.Fatalf("bad role: %v", err)
	}
	if _, err = s.CreateUser(ctx, NewUser{Email: "ana@example.com", Role: "viewer", Password: pw}, testAudit); !errors.As(err, &errs) || !strings.Contains(errs["email"], "already exists") {
		t.Fatalf("duplicate email: %v", err)
	}
	if u, err := s.Authenticate(ctx, "ana@example.com", pw, LoginFrom{}); err != nil || u.ID != admin.ID {
		t.Fatalf("authenticate: %+v %v", u, err)
	}
	for _, c := range [][2]string{{"ana@example.com", "wrong password!"}, {"nobody@example.com", pw}} {
		if _, err := s.Authenticate(ctx, c[0], c[1], LoginFrom{}); !errors.Is(err, ErrBadCredentials) {
			t.Errorf("authenticate %s: %v", c[0], err)
		}
	}
	if _, err := s.SetDisabled(ctx, admin.ID, admin.ID, true, testAudit); !errors.As(err, new(validation.Problem)) {
		t.Fatalf("disable yourself: %v", err)
	}
	if _, err := s.SetRole(ctx, admin.ID, "viewer", testAudit); err == nil || !strings.Contains(err.Error(), "no active admin") {
		t.Fatalf("demote the last admin: %v", err)
	}
	if _, err := s.ChangeOwnPassword(ctx, admin, "wrong", "short", testAudit); !errors.As(err, &errs) || !errs.Has("current") || !errs.Has("password") {
		t.Fatalf("change password: %v", err)
	}
	for _, weak := range []string{"ana@example.com!!", "ana ana ana ana", "password1234"} {
		if _, err := s.ChangeOwnPassword(ctx, admin, pw, weak, testAudit); !errors.As(err, &errs) || !errs.Has("password") {
			t.Errorf("change to %q: %v", weak, err)
		}
		if _, err := s.ResetPassword(ctx, admin.ID, weak, testAudit); !errors.As(err, new(validation.Problem)) {
			t.Errorf("reset to %q: %v", weak, err)
		}
	}
	if _, err := s.ResetPassword(ctx, 999, "a new long password", testAudit); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("reset of an unknown user: %v", err)
	}
	if u, _ := s.Authenticate(ctx, "ana@example.com", pw, LoginFrom{}); u.ID != admin.ID {
		t.Fatal("a refused password change was stored")
	}
	if _, err := s.ChangeOwnPassword(ctx, admin, pw, "a new long password", testAudit); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, "ana@example.com", "a new long password", LoginFrom{}); err != nil {
		t.Fatalf("the new password does not work: %v", err)
	}
}

func TestCreateToken(t *testing.T) {
	s, d := newService(t)
	ctx := context.Background()
	_, _, err := s.CreateToken(ctx, "", []string{"nope"}, time.Minute, "cli", testAudit)
	var errs validation.Errors
	if !errors.As(err, &errs) || !errs.Has("name") || !errs.Has("scopes") || !errs.Has("expires_in") {
		t.Fatalf("bad token: %v", err)
	}
	secret, tok, err := s.CreateToken(ctx, " checkout ", []string{auth.ScopeConfigRead, auth.ScopeEventsWrite}, 0, "cli", testAudit)
	if err != nil || tok.Name != "checkout" {
		t.Fatalf("create: %+v %v", tok, err)
	}
	got, err := d.TokenBySecret(ctx, secret)
	if err != nil || got.ID != tok.ID || len(got.Scopes) != 2 {
		t.Fatalf("the shown secret does not find the token: %+v %v", got, err)
	}
}

func TestTokensExpire(t *testing.T) {
	s, d := newService(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	d.SetClock(func() time.Time { return now })
	secret, tok, err := s.CreateToken(ctx, "short-lived", []string{auth.ScopeEventsRead}, 24*time.Hour, "cli", testAudit)
	if err != nil || !tok.ExpiresAt.Equal(now.Add(24*time.Hour)) {
		t.Fatalf("create: %+v %v", tok, err)
	}
	if _, err := d.TokenBySecret(ctx, secret); err != nil {
		t.Fatalf("before its expiry: %v", err)
	}
	now = now.Add(24 * time.Hour)
	if _, err := d.TokenBySecret(ctx, secret); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("at its expiry: %v", err)
	}
}
