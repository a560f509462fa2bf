package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/web/templates"
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

func (s *Server) showSetup(w http.ResponseWriter, r *http.Request) error {
	token := r.URL.Query().Get("token")
	ok, err := s.db.SetupTokenValid(r.Context(), token)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	if !ok {
		return render(w, r, http.StatusNotFound, templates.SetupPage(templates.AuthVM{Invalid: true}))
	}
	return render(w, r, http.StatusOK, templates.SetupPage(templates.AuthVM{Token: token, PasswordMinLen: auth.MinPasswordLen}))
}

// completeSetup creates the first admin and logs them in. The token is consumed in the same
// transaction that creates the user, so the link works exactly once.
func (s *Server) completeSetup(w http.ResponseWriter, r *http.Request) error {
	vm := templates.AuthVM{
		Token: r.PostFormValue("token"),
		Email: strings.TrimSpace(r.PostFormValue("email")),
		Name:  strings.TrimSpace(r.PostFormValue("name")),

		PasswordMinLen: auth.MinPasswordLen,
	}
	password := r.PostFormValue("password")
	vm.Errors = ValidateNewUser(vm.Email, vm.Name, password)
	if password != r.PostFormValue("confirm") {
		vm.Errors["confirm"] = "the two passwords differ"
	}
	w.Header().Set("Cache-Control", "no-store")
	if len(vm.Errors) > 0 {
		ok, err := s.db.SetupTokenValid(r.Context(), vm.Token)
		if err != nil {
			return err
		}
		vm.Invalid = !ok
		return render(w, r, http.StatusUnprocessableEntity, templates.SetupPage(vm))
	}
	hash, err := s.hashPassword(r.Context(), password)
	if err != nil {
		return err
	}
	a := s.auditFor(r, "setup.complete")
	a.Actor = "setup-link"
	u, err := s.db.CompleteSetup(r.Context(), vm.Token, db.User{Email: vm.Email, Name: vm.Name, PasswordHash: hash}, a)
	if errors.Is(err, db.ErrSetupUsed) {
		return render(w, r, http.StatusGone, templates.SetupPage(templates.AuthVM{Invalid: true}))
	}
	if err != nil {
		return err
	}
	if err := s.startSession(w, r, u); err != nil {
		return err
	}
	setFlash(w, "ok", "Welcome. You are the first admin: add your team under Settings → Users.")
	return redirect(w, r, "/")
}

// ValidateNewUser checks the fields of a new user and says what to fix, field by field.
func ValidateNewUser(email, name, password string) templates.FieldErrors {
	errs := templates.FieldErrors{}
	if msg := validateEmail(email); msg != "" {
		errs["email"] = msg
	}
	if utf8.RuneCountInString(name) > 100 {
		errs["name"] = "name must be at most 100 characters"
	}
	if err := auth.ValidatePassword(password); err != nil {
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
