package web

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/tensfer-golive/dashboard/internal/accounts"
	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/validation"
	"github.com/tensfer-golive/dashboard/web/templates"
)

func (s *Server) usersVM(w http.ResponseWriter, r *http.Request) (templates.UsersVM, error) {
	me, _ := userFrom(r.Context())
	users, err := s.db.ListUsers(r.Context())
	if err != nil {
		return templates.UsersVM{}, err
	}
	vm := templates.UsersVM{Layout: s.page(w, r, "settings", "Users"), Tabs: settingsTabs(me.Role), Roles: roleNames(),
		Role: string(db.RoleViewer), Errors: templates.FieldErrors{}, PasswordMinLen: auth.MinPasswordLen,
		PasswordRule: auth.PasswordRule()}
	withTwoFactor, err := s.db.TwoFactorUsers(r.Context())
	if err != nil {
		return templates.UsersVM{}, err
	}
	if _, vm.TwoFactorRequired, err = s.twoFactor.State(r.Context(), me.ID); err != nil {
		return templates.UsersVM{}, err
	}
	for _, u := range users {
		vm.Users = append(vm.Users, templates.UserRow{ID: u.ID, Email: u.Email, Name: u.Name, Role: string(u.Role),
			Disabled: u.Disabled(), CreatedAt: u.CreatedAt, LastLogin: u.LastLoginAt, IsSelf: u.ID == me.ID, TwoFactor: withTwoFactor[u.ID]})
		if !u.Disabled() && !withTwoFactor[u.ID] {
			vm.WithoutTwoFactor++
		}
	}
	return vm, nil
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) error {
	vm, err := s.usersVM(w, r)
	if err != nil {
		return err
	}
	return render(w, r, http.StatusOK, templates.UsersPage(vm))
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request) error {
	vm, err := s.usersVM(w, r)
	if err != nil {
		return err
	}
	vm.Email, vm.Name, vm.Role = strings.TrimSpace(r.PostFormValue("email")), strings.TrimSpace(r.PostFormValue("name")), r.PostFormValue("role")
	refused := func(errs templates.FieldErrors) error {
		vm.Errors = errs
		formFailed(&vm.Layout, "User not added", vm.Errors)
		return render(w, r, http.StatusUnprocessableEntity, templates.UsersPage(vm))
	}
	// An account whose password the admin chose is an account the admin can sign in as: adding
	// one (an admin can reach the production keys) asks for the same re-check as revealing a key.
	if msg := s.reauth(r, "user.create"); msg != "" {
		return refused(templates.FieldErrors{"password": msg})
	}
	u, err := s.accounts.CreateUser(r.Context(), accounts.NewUser{Email: vm.Email, Name: vm.Name, Role: vm.Role, Password: r.PostFormValue("new_password")},
		s.auditFor(r, "user.create"))
	var errs validation.Errors
	if errors.As(err, &errs) {
		out := templates.FieldErrors{}
		for k, v := range errs {
			if k == "password" {
				k = "new_password" // the account's password; "password" is the admin's own
			}
			out[k] = v
		}
		return refused(out)
	}
	if err != nil {
		return err
	}
	setFlash(w, r, "ok", fmt.Sprintf("Added %s as %s.", u.Email, u.Role))
	return redirect(w, r, "/settings/users")
}

// changeUser applies one account change to the user in the URL and redirects back with what
// happened.
func (s *Server) changeUser(w http.ResponseWriter, r *http.Request, done string, change func(id int64) (db.User, error)) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	u, err := change(id)
	if handled, err := flashProblem(w, r, err, "/settings/users"); handled {
		return err
	}
	setFlash(w, r, "ok", fmt.Sprintf(done, u.Email))
	return redirect(w, r, "/settings/users")
}

func (s *Server) updateUserRole(w http.ResponseWriter, r *http.Request) error {
	role := r.PostFormValue("role")
	if _, err := db.ParseRole(role); err != nil {
		return errBadRequest("%s", err.Error())
	}
	if _, err := pathID(r, "id"); err != nil {
		return err // before the re-check: a bad address is not a failed password
	}
	if msg := s.reauth(r, "user.role"); msg != "" {
		setFlash(w, r, "err", "Role not changed: "+msg+".")
		return redirect(w, r, "/settings/users")
	}
	return s.changeUser(w, r, "%s is now "+role+"; their sessions were ended.", func(id int64) (db.User, error) {
		return s.accounts.SetRole(r.Context(), id, role, s.auditFor(r, "user.role"))
	})
}

func (s *Server) disableUser(w http.ResponseWriter, r *http.Request) error {
	me, _ := userFrom(r.Context())
	return s.changeUser(w, r, "Disabled %s and ended their sessions.", func(id int64) (db.User, error) {
		return s.accounts.SetDisabled(r.Context(), me.ID, id, true, s.auditFor(r, "user.disable"))
	})
}

func (s *Server) enableUser(w http.ResponseWriter, r *http.Request) error {
	me, _ := userFrom(r.Context())
	return s.changeUser(w, r, "Enabled %s.", func(id int64) (db.User, error) {
		return s.accounts.SetDisabled(r.Context(), me.ID, id, false, s.auditFor(r, "user.enable"))
	})
}

// resetUserPassword sets another user's password; the form's "password" is the admin's own, for
// the re-check, and "new_password" the one to set.
func (s *Server) resetUserPassword(w http.ResponseWriter, r *http.Request) error {
	if _, err := pathID(r, "id"); err != nil {
		return err
	}
	if r.PostFormValue("confirm_password") != r.PostFormValue("new_password") {
		setFlash(w, r, "err", "Password not changed: the two new passwords differ; type the same password in both boxes.")
		return redirect(w, r, "/settings/users")
	}
	if msg := s.reauth(r, "user.password_reset"); msg != "" {
		setFlash(w, r, "err", "Password not changed: "+msg+".")
		return redirect(w, r, "/settings/users")
	}
	return s.changeUser(w, r, "Set a new password for %s and ended their sessions.", func(id int64) (db.User, error) {
		u, err := s.accounts.ResetPassword(r.Context(), id, r.PostFormValue("new_password"), s.auditFor(r, "user.password_reset"))
		var problem validation.Problem
		if errors.As(err, &problem) {
			return u, validation.Problem("Password not changed: " + string(problem) + ".")
		}
		return u, err
	})
}

func (s *Server) signOutUser(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	u, err := s.db.UserByID(r.Context(), id)
	if err != nil {
		return err
	}
	n, err := s.accounts.SignOutEverywhere(r.Context(), id, s.auditFor(r, "user.sign_out")) // their live streams end now, not at the next check
	if err != nil {
		return err
	}
	setFlash(w, r, "ok", fmt.Sprintf("Ended %d session(s) of %s.", n, u.Email))
	me, _ := userFrom(r.Context())
	if id == me.ID {
		return redirect(w, r, "/login")
	}
	return redirect(w, r, "/settings/users")
}
