package web

import (
	"errors"
	"net/http"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/validation"
	"github.com/tensfer-golive/dashboard/web/templates"
)

// settingsTabs are the tabs a role sees under Settings.
func settingsTabs(role db.Role) []templates.SettingsTab {
	tabs := []templates.SettingsTab{{Key: "account", Label: "Your account", Href: "/settings/account"}}
	if role.AtLeast(db.RoleAdmin) {
		tabs = append(tabs,
			templates.SettingsTab{Key: "users", Label: "Users", Href: "/settings/users"},
			templates.SettingsTab{Key: "tokens", Label: "API tokens", Href: "/settings/tokens"},
			templates.SettingsTab{Key: "alerts", Label: "Alerts", Href: "/settings/alerts"})
	}
	return tabs
}

func (s *Server) showSettings(w http.ResponseWriter, r *http.Request) error {
	return redirect(w, r, "/settings/account")
}

func (s *Server) accountVM(w http.ResponseWriter, r *http.Request) (templates.AccountVM, error) {
	u, _ := userFrom(r.Context())
	n, err := s.db.CountUserSessions(r.Context(), u.ID)
	vm := templates.AccountVM{
		Layout: s.page(w, r, "settings", "Your account"), Tabs: settingsTabs(u.Role),
		Name: u.Name, Email: u.Email, Role: string(u.Role), Sessions: n, Errors: templates.FieldErrors{},
		PasswordMinLen: auth.MinPasswordLen, PasswordRule: auth.PasswordRule(), TwoFactor: templates.TwoFactorOn(r.Context()),
	}
	if err == nil && vm.TwoFactor {
		vm.RecoveryLeft, err = s.twoFactor.RecoveryCodesLeft(r.Context(), u.ID)
	}
	return vm, err
}

func (s *Server) showAccount(w http.ResponseWriter, r *http.Request) error {
	vm, err := s.accountVM(w, r)
	if err != nil {
		return err
	}
	return render(w, r, http.StatusOK, templates.AccountPage(vm))
}

// updateOwnPassword changes the user's own password after checking the current one. Every session
// of the user ends (the store revokes them) and this browser gets a fresh one.
func (s *Server) updateOwnPassword(w http.ResponseWriter, r *http.Request) error {
	u, _ := userFrom(r.Context())
	vm, err := s.accountVM(w, r)
	if err != nil {
		return err
	}
	if msg := s.reauthAllowed(r, "user.password_change"); msg != "" {
		vm.Errors["current"] = msg
		return s.accountFailed(w, r, http.StatusTooManyRequests, vm)
	}
	if r.PostFormValue("confirm") != r.PostFormValue("password") {
		vm.Errors["confirm"] = "does not match the new password; type the same password in both boxes"
		return s.accountFailed(w, r, http.StatusUnprocessableEntity, vm)
	}
	// With two-factor on, a right current password also needs a code (checked first: the change
	// below applies at once). NB: the password is then hashed twice.
	on, _, err := s.twoFactor.State(r.Context(), u.ID)
	if err != nil {
		return err
	}
	if on && s.accounts.CheckPassword(r.Context(), r.PostFormValue("current"), u.PasswordHash) {
		if msg := s.reauthCode(r, "user.password_change"); msg != "" {
			vm.Errors["code"] = msg
			return s.accountFailed(w, r, http.StatusUnprocessableEntity, vm)
		}
	}
	updated, err := s.accounts.ChangeOwnPassword(r.Context(), u.User, r.PostFormValue("current"), r.PostFormValue("password"), s.auditFor(r, "user.password_change"))
	var errs validation.Errors
	if errors.As(err, &errs) {
		if errs.Has("current") {
			s.reauthFailed(r, "user.password_change", "wrong_password")
		}
		vm.Errors = templates.FieldErrors(errs)
		return s.accountFailed(w, r, http.StatusUnprocessableEntity, vm)
	}
	if err != nil {
		return err
	}
	if err := s.startSession(w, r, updated); err != nil {
		return err
	}
	setFlash(w, r, "ok", "Password changed. Every other session of yours has been signed out.")
	return redirect(w, r, "/settings/account")
}

func roleNames() []string {
	return []string{string(db.RoleViewer), string(db.RoleOperator), string(db.RoleAdmin)}
}

// accountFailed renders the account page with its form's errors, said in the flash too.
func (s *Server) accountFailed(w http.ResponseWriter, r *http.Request, status int, vm templates.AccountVM) error {
	formFailed(&vm.Layout, "Password not changed", vm.Errors)
	return render(w, r, status, templates.AccountPage(vm))
}
