package web

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/tensfer-golive/dashboard/internal/accounts"
	"github.com/tensfer-golive/dashboard/internal/validation"
	"github.com/tensfer-golive/dashboard/web/templates"
)

// Two-factor under Settings: the user's own set-up (password again, QR code, a confirmed code,
// recovery codes shown once), new recovery codes and turning it off (password and code again),
// and the admins' reset of another user's second factor and the requirement for everyone.

func (s *Server) twoFactorVM(w http.ResponseWriter, r *http.Request) (templates.TwoFactorVM, error) {
	u, _ := userFrom(r.Context())
	vm := templates.TwoFactorVM{Layout: s.page(w, r, "settings", "Two-factor authentication"), Tabs: settingsTabs(u.Role), Errors: templates.FieldErrors{}}
	var err error
	if vm.On, vm.Required, err = s.twoFactor.State(r.Context(), u.ID); err != nil || !vm.On {
		return vm, err
	}
	vm.RecoveryLeft, err = s.twoFactor.RecoveryCodesLeft(r.Context(), u.ID)
	return vm, err
}

// showTwoFactor is the set-up, or the management, of the user's second factor.
func (s *Server) showTwoFactor(w http.ResponseWriter, r *http.Request) error {
	vm, err := s.twoFactorVM(w, r)
	if err != nil {
		return err
	}
	return render(w, r, http.StatusOK, templates.TwoFactorPage(vm))
}

// twoFactorFormError re-renders the two-factor page with form's error (422).
func (s *Server) twoFactorFormError(w http.ResponseWriter, r *http.Request, form, msg string) error {
	vm, err := s.twoFactorVM(w, r)
	if err != nil {
		return err
	}
	vm.Errors[form] = msg
	formFailed(&vm.Layout, "Not done", templates.FieldErrors{form: msg})
	return render(w, r, http.StatusUnprocessableEntity, templates.TwoFactorPage(vm))
}

// beginTwoFactor checks the password and shows a new set-up: the QR code and the secret, sent
// no-store like a revealed key.
func (s *Server) beginTwoFactor(w http.ResponseWriter, r *http.Request) error {
	if msg := s.reauth(r, "auth.totp_setup"); msg != "" {
		return s.twoFactorFormError(w, r, "setup", msg)
	}
	u, _ := userFrom(r.Context())
	e, err := s.twoFactor.BeginEnrolment(r.Context(), u.User)
	if handled, err := flashProblem(w, r, err, twoFactorPath); handled {
		return err
	}
	return s.renderEnrol(w, r, http.StatusOK, e, "")
}

func (s *Server) renderEnrol(w http.ResponseWriter, r *http.Request, status int, e accounts.Enrolment, msg string) error {
	qr, err := templates.NewQRCode(e.URL)
	if err != nil {
		return err
	}
	u, _ := userFrom(r.Context())
	vm := templates.EnrolVM{
		Layout: s.page(w, r, "settings", "Set up two-factor"), Tabs: settingsTabs(u.Role),
		QR: qr, Secret: e.Secret, Account: u.Email, Error: msg,
	}
	if msg != "" {
		formFailed(&vm.Layout, "Two-factor not turned on", templates.FieldErrors{"code": msg})
	}
	return render(w, r, status, templates.EnrolPage(vm))
}

// confirmTwoFactor turns two-factor on with the first code from the app, signs every other
// session out, and shows the recovery codes once. A wrong code shows the set-up again.
func (s *Server) confirmTwoFactor(w http.ResponseWriter, r *http.Request) error {
	u, _ := userFrom(r.Context())
	codes, err := s.twoFactor.ConfirmEnrolment(r.Context(), u.User, r.PostFormValue("code"), s.auditFor(r, "auth.totp_enabled"))
	var problem validation.Problem
	switch {
	case errors.Is(err, accounts.ErrEnrolmentExpired):
		setFlash(w, r, "err", capitalize(err.Error())+".")
		return redirect(w, r, twoFactorPath)
	case errors.As(err, &problem):
		e, err := s.twoFactor.PendingEnrolment(r.Context(), u.User)
		if err != nil {
			return err
		}
		return s.renderEnrol(w, r, http.StatusUnprocessableEntity, e, string(problem))
	case err != nil:
		return err
	}
	if err := s.startSession(w, r, u.User); err != nil {
		return err
	}
	_, required, err := s.twoFactor.State(r.Context(), u.ID)
	if err != nil {
		return err
	}
	next := twoFactorPath
	if required {
		next = "/"
	}
	return s.renderRecoveryCodes(w, r, codes, next, "Two-factor authentication is on. Every other session of yours has been signed out.")
}

func (s *Server) renderRecoveryCodes(w http.ResponseWriter, r *http.Request, codes []string, next, flash string) error {
	u, _ := userFrom(r.Context())
	l := s.page(w, r, "settings", "Recovery codes")
	l.FlashKind, l.Flash = "ok", flash
	return render(w, r, http.StatusOK, templates.RecoveryCodesPage(templates.RecoveryCodesVM{Layout: l, Tabs: settingsTabs(u.Role), Codes: codes, Next: next}))
}

// regenerateRecoveryCodes replaces the user's recovery codes after the password and a code, and
// shows the new ones once.
func (s *Server) regenerateRecoveryCodes(w http.ResponseWriter, r *http.Request) error {
	if msg := s.reauth(r, "auth.recovery_codes_regenerated"); msg != "" {
		return s.twoFactorFormError(w, r, "recovery", msg)
	}
	u, _ := userFrom(r.Context())
	codes, err := s.twoFactor.RegenerateRecoveryCodes(r.Context(), u.ID, s.auditFor(r, "auth.recovery_codes_regenerated"))
	if handled, err := flashProblem(w, r, err, twoFactorPath); handled {
		return err
	}
	return s.renderRecoveryCodes(w, r, codes, twoFactorPath, "New recovery codes made; the old ones no longer work.")
}

// disableTwoFactor turns the user's own two-factor off after the password and a code, unless an
// admin requires it.
func (s *Server) disableTwoFactor(w http.ResponseWriter, r *http.Request) error {
	if msg := s.reauth(r, "auth.totp_disabled"); msg != "" {
		return s.twoFactorFormError(w, r, "disable", msg)
	}
	u, _ := userFrom(r.Context())
	err := s.twoFactor.Disable(r.Context(), u.ID, s.auditFor(r, "auth.totp_disabled"))
	if handled, err := flashProblem(w, r, err, twoFactorPath); handled {
		return err
	}
	setFlash(w, r, "ok", "Two-factor authentication is off. Signing in needs only your password.")
	return redirect(w, r, twoFactorPath)
}

// resetUserTwoFactor removes another user's second factor (a lost phone) after the admin's
// password and code, and ends that user's sessions.
func (s *Server) resetUserTwoFactor(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	if msg := s.reauth(r, "auth.totp_reset"); msg != "" {
		setFlash(w, r, "err", "Two-factor not reset: "+msg+".")
		return redirect(w, r, "/settings/users")
	}
	me, _ := userFrom(r.Context())
	u, err := s.twoFactor.Reset(r.Context(), me.ID, id, s.auditFor(r, "auth.totp_reset"))
	if handled, err := flashProblem(w, r, err, "/settings/users"); handled {
		return err
	}
	setFlash(w, r, "ok", fmt.Sprintf("Reset two-factor for %s and ended their sessions; they set it up again at their next sign-in.", u.Email))
	return redirect(w, r, "/settings/users")
}

// updateTwoFactorRequirement turns the requirement that everyone uses two-factor on or off,
// after the admin's password (and code).
func (s *Server) updateTwoFactorRequirement(w http.ResponseWriter, r *http.Request) error {
	required := r.PostFormValue("required") == "1"
	if msg := s.reauth(r, "settings.two_factor_required"); msg != "" {
		vm, err := s.usersVM(w, r)
		if err != nil {
			return err
		}
		vm.TwoFactorError = msg
		formFailed(&vm.Layout, "Requirement not changed", templates.FieldErrors{"password": msg})
		return render(w, r, http.StatusUnprocessableEntity, templates.UsersPage(vm))
	}
	changed, err := s.twoFactor.SetRequired(r.Context(), required, s.auditFor(r, "settings.two_factor_required"))
	if err != nil {
		return err
	}
	switch {
	case !changed:
		setFlash(w, r, "info", "Nothing changed.")
	case required:
		setFlash(w, r, "ok", "Two-factor authentication is now required: anyone without it is asked to set it up before anything else.")
	default:
		setFlash(w, r, "ok", "Two-factor authentication is now optional.")
	}
	return redirect(w, r, "/settings/users")
}
