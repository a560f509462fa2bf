package web

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/web/templates"
)

func (s *Server) usersVM(w http.ResponseWriter, r *http.Request) (templates.UsersVM, error) {
	me, _ := userFrom(r.Context())
	users, err := s.db.ListUsers(r.Context())
	if err != nil {
		return templates.UsersVM{}, err
	}
	vm := templates.UsersVM{Layout: s.page(w, r, "settings", "Users"), Tabs: settingsTabs(me.Role), Roles: roleNames(),
		Role: string(db.RoleViewer), Errors: templates.FieldErrors{}, PasswordMinLen: auth.MinPasswordLen}
	for _, u := range users {
		vm.Users = append(vm.Users, templates.UserRow{ID: u.ID, Email: u.Email, Name: u.Name, Role: string(u.Role),
			Disabled: u.Disabled(), CreatedAt: u.CreatedAt, LastLogin: u.LastLoginAt, IsSelf: u.ID == me.ID})
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
	vm.Email, vm.Name, vm.Role = normEmail(r.PostFormValue("email")), strings.TrimSpace(r.PostFormValue("name")), r.PostFormValue("role")
	password := r.PostFormValue("password")
	vm.Errors = ValidateNewUser(vm.Email, vm.Name, password)
	role, err := db.ParseRole(vm.Role)
	if err != nil {
		vm.Errors["role"] = err.Error()
	}
	if len(vm.Errors) > 0 {
		return render(w, r, http.StatusUnprocessableEntity, templates.UsersPage(vm))
	}
	hash, err := s.hashPassword(r.Context(), password)
	if err != nil {
		return err
	}
	_, err = s.db.InsertUser(r.Context(), db.User{Email: vm.Email, Name: vm.Name, Role: role, PasswordHash: hash}, s.auditFor(r, "user.create"))
	if errors.Is(err, db.ErrConflict) {
		vm.Errors["email"] = "a user with this email already exists"
		return render(w, r, http.StatusUnprocessableEntity, templates.UsersPage(vm))
	}
	if err != nil {
		return err
	}
	setFlash(w, "ok", fmt.Sprintf("Added %s as %s.", vm.Email, role))
	return redirect(w, r, "/settings/users")
}

// changeUser applies one change to the user in the URL and redirects back with what happened.
func (s *Server) changeUser(w http.ResponseWriter, r *http.Request, c db.UserChange, action, done string) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	u, err := s.db.UpdateUser(r.Context(), id, c, s.auditFor(r, action))
	if errors.Is(err, db.ErrLastAdmin) {
		setFlash(w, "err", "That would leave no active admin. Make someone else an admin first.")
		return redirect(w, r, "/settings/users")
	}
	if err != nil {
		return err
	}
	setFlash(w, "ok", fmt.Sprintf(done, u.Email))
	return redirect(w, r, "/settings/users")
}

func (s *Server) updateUserRole(w http.ResponseWriter, r *http.Request) error {
	role, err := db.ParseRole(r.PostFormValue("role"))
	if err != nil {
		return errBadRequest("%s", err.Error())
	}
	return s.changeUser(w, r, db.UserChange{Role: &role}, "user.role", "%s is now "+string(role)+"; their sessions were ended.")
}

func (s *Server) disableUser(w http.ResponseWriter, r *http.Request) error {
	me, _ := userFrom(r.Context())
	if id, _ := pathID(r, "id"); id == me.ID {
		setFlash(w, "err", "You cannot disable yourself.")
		return redirect(w, r, "/settings/users")
	}
	yes := true
	return s.changeUser(w, r, db.UserChange{Disabled: &yes}, "user.disable", "Disabled %s and ended their sessions.")
}

func (s *Server) enableUser(w http.ResponseWriter, r *http.Request) error {
	no := false
	return s.changeUser(w, r, db.UserChange{Disabled: &no}, "user.enable", "Enabled %s.")
}

func (s *Server) resetUserPassword(w http.ResponseWriter, r *http.Request) error {
	password := r.PostFormValue("password")
	if err := auth.ValidatePassword(password); err != nil {
		setFlash(w, "err", "Password not changed: "+err.Error()+".")
		return redirect(w, r, "/settings/users")
	}
	hash, err := s.hashPassword(r.Context(), password)
	if err != nil {
		return err
	}
	return s.changeUser(w, r, db.UserChange{PasswordHash: &hash}, "user.password_reset", "Set a new password for %s and ended their sessions.")
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
	n, err := s.db.DeleteUserSessions(r.Context(), id, s.auditFor(r, "user.sign_out"))
	if err != nil {
		return err
	}
	setFlash(w, "ok", fmt.Sprintf("Ended %d session(s) of %s.", n, u.Email))
	me, _ := userFrom(r.Context())
	if id == me.ID {
		return redirect(w, r, "/login")
	}
	return redirect(w, r, "/settings/users")
}
