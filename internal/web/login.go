package web

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"

	"github.com/gorilla/sessions"

	"github.com/tensfer-golive/dashboard/internal/accounts"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/web/templates"
)

// showLogin renders the login form, or sends a logged-in user on, or a fresh install with no
// users to a page explaining the setup link.
func (s *Server) showLogin(w http.ResponseWriter, r *http.Request) error {
	next := safeNext(r.URL.Query().Get("next"))
	if _, ok := userFrom(r.Context()); ok {
		return redirect(w, r, next)
	}
	vm := templates.AuthVM{Next: next}
	if n, err := s.db.CountUsers(r.Context()); err != nil {
		return err
	} else if n == 0 {
		vm.Error = "No users exist yet. Open the one-time setup link the dashboard printed when it started."
	}
	return render(w, r, http.StatusOK, templates.LoginPage(vm))
}

const loginFailed = "Email or password is incorrect."

// createSession logs a user in: rate-limited per client IP, the same answer for an unknown
// email, a wrong password and a disabled account, and a brand-new session id on success.
func (s *Server) createSession(w http.ResponseWriter, r *http.Request) error {
	if ok, wait := s.loginLimit.Allow(s.clientKey(r)); !ok {
		secs := int(math.Ceil(wait.Seconds()))
		w.Header().Set("Retry-After", fmt.Sprint(secs))
		vm := templates.AuthVM{Next: safeNext(r.PostFormValue("next")), Email: r.PostFormValue("email"),
			Error: fmt.Sprintf("Too many login attempts from your address. Try again in %d seconds.", secs)}
		return render(w, r, http.StatusTooManyRequests, templates.LoginPage(vm))
	}
	email := strings.TrimSpace(r.PostFormValue("email"))
	password := r.PostFormValue("password")
	vm := templates.AuthVM{Next: safeNext(r.PostFormValue("next")), Email: email}

	u, err := s.accounts.Authenticate(r.Context(), email, password, s.loginFrom(r))
	var locked *accounts.LockedError
	if errors.As(err, &locked) {
		return s.refuseLockedLogin(w, r, vm, locked)
	}
	if errors.Is(err, accounts.ErrBadCredentials) {
		a := s.auditFor(r, "session.login_failed")
		a.Actor = "anonymous"
		if a.Target, err = s.accounts.FailedLoginTarget(r.Context(), email); err != nil {
			return err
		}
		a.After = map[string]any{"reason": "wrong_password"}
		if err := s.failures.record(r.Context(), a, "wrong_password"); err != nil { // counted per account
			return err
		}
		vm.Error = loginFailed
		return render(w, r, http.StatusUnauthorized, templates.LoginPage(vm))
	}
	if err != nil {
		return err
	}
	if asked, err := s.askSecondFactor(w, r, u, vm.Next); asked {
		return err
	}
	if err := s.startSession(w, r, u); err != nil {
		return err
	}
	a := s.auditFor(r, "session.login")
	a.Actor, a.Target = actorUser(u), fmt.Sprintf("user:%d", u.ID)
	if err := s.accounts.AuditSignIn(r.Context(), a); err != nil {
		return err
	}
	return redirect(w, r, vm.Next)
}

// startSession ends any session the request came with and starts a new one for u.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, u db.User) error {
	name := s.sessions.cookieName()
	if old, ok := userFrom(r.Context()); ok {
		if err := s.accounts.EndSession(r.Context(), old.sessionID); err != nil {
			return err
		}
	}
	sess := sessions.NewSession(s.sessions, name)
	sess.Options = s.sessions.options()
	sess.IsNew = true
	sess.Values[keyUserID] = u.ID
	if err := s.sessions.Save(r, w, sess); err != nil {
		return err
	}
	s.rememberDevice(w, u)
	return s.accounts.RecordLogin(r.Context(), u.ID)
}

// deleteSession logs out: the session row is deleted, so the cookie is worthless even if copied.
func (s *Server) deleteSession(w http.ResponseWriter, r *http.Request) error {
	u, ok := userFrom(r.Context())
	if ok {
		if err := s.accounts.SignOut(r.Context(), u.sessionID, s.auditFor(r, "session.logout")); err != nil {
			return err
		}
	}
	opts := s.sessions.options()
	opts.MaxAge = -1
	http.SetCookie(w, sessions.NewCookie(s.sessions.cookieName(), "", opts))
	return redirect(w, r, "/login")
}
