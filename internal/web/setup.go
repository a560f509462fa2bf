package web

import (
	"errors"
	"net/http"
	"strings"

	"github.com/tensfer-golive/dashboard/internal/accounts"
	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/web/templates"
)

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
	return render(w, r, http.StatusOK, templates.SetupPage(templates.AuthVM{Token: token, PasswordMinLen: auth.MinPasswordLen, PasswordRule: auth.PasswordRule()}))
}

// completeSetup creates the first admin and logs them in. The token is consumed in the same
// transaction that creates the user, so the link works exactly once.
func (s *Server) completeSetup(w http.ResponseWriter, r *http.Request) error {
	vm := templates.AuthVM{
		Token: r.PostFormValue("token"),
		Email: strings.TrimSpace(r.PostFormValue("email")),
		Name:  strings.TrimSpace(r.PostFormValue("name")),

		PasswordMinLen: auth.MinPasswordLen, PasswordRule: auth.PasswordRule(),
	}
	password := r.PostFormValue("password")
	vm.Errors = templates.FieldErrors(accounts.ValidateNewUser(vm.Email, vm.Name, password))
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
	a := s.auditFor(r, "setup.complete")
	a.Actor = "setup-link"
	u, err := s.accounts.CompleteSetup(r.Context(), vm.Token, vm.Email, vm.Name, password, a)
	if errors.Is(err, db.ErrSetupUsed) {
		return render(w, r, http.StatusGone, templates.SetupPage(templates.AuthVM{Invalid: true}))
	}
	if err != nil {
		return err
	}
	if err := s.startSession(w, r, u); err != nil {
		return err
	}
	setFlash(w, r, "ok", "Welcome. You are the first admin: add your team under Settings → Users.")
	return redirect(w, r, "/")
}
