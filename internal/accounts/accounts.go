// Package accounts holds the rules for the people and services that use the dashboard: what a
// valid new user and token name are, and the one-time link that creates the first admin. The web
// handlers and the CLI's `user add` and `token create` both call it.
package accounts

import (
	"context"
	"fmt"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/validation"
)

// SetupLinkTTL is how long the first-run setup link stays valid.
const SetupLinkTTL = 24 * time.Hour

// PrepareSetup returns a one-time setup URL when the database has no users yet, and "" otherwise.
// Each call replaces the previous link, so only the newest printed link works.
func PrepareSetup(ctx context.Context, d *db.DB, publicURL string) (string, error) {
	n, err := d.CountUsers(ctx)
	if err != nil || n > 0 {
		return "", err
	}
	token := auth.RandomID(24)
	if err := d.ReplaceSetupToken(ctx, token, SetupLinkTTL); err != nil {
		return "", err
	}
	return strings.TrimRight(publicURL, "/") + "/setup?token=" + token, nil
}

// ValidateNewUser checks the fields of a new user and says what to fix, field by field. The
// result is never nil, so a caller may add its own checks (a password confirmation) to it.
func ValidateNewUser(email, name, password string) validation.Errors {
	errs := validation.Errors{}
	if msg := validateEmail(email); msg != "" {
		errs["email"] = msg
	}
	if utf8.RuneCountInString(name) > 100 {
		errs["name"] = "name must be at most 100 characters"
	}
	if err := auth.ValidatePassword(password, email, name); err != nil {
		errs["password"] = err.Error()
	}
	return errs
}

func validateEmail(email string) string {
	if email == "" {
		return "email is required"
	}
	if len(email) > 254 {
		return "email must be at most 254 characters"
	}
	a, err := mail.ParseAddress(email)
	if err != nil || a.Address != email || !strings.Contains(email[strings.LastIndex(email, "@")+1:], ".") && !strings.HasSuffix(email, "@localhost") {
		return fmt.Sprintf("%q is not an email address like name@example.com", email)
	}
	return ""
}

// ValidateTokenName checks an API token's name from the UI or the CLI.
func ValidateTokenName(name string) error {
	switch n := utf8.RuneCountInString(name); {
	case n == 0:
		return validation.Problem("name is required, e.g. checkout-service")
	case n > 80:
		return validation.Problem("name must be at most 80 characters")
	}
	return nil
}
