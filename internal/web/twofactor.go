package web

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"

	"github.com/tensfer-golive/dashboard/internal/accounts"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/validation"
	"github.com/tensfer-golive/dashboard/web/templates"
)

// The second step of a login, for users with two-factor on: after the right password the browser
// holds only a short-lived token (in its own cookie) that names the step accounts.TwoFactor keeps
// in the database, so any instance can finish it; the session starts once the code is right.

// twoFactorPath is the page where a user sets up or manages two-factor.
const twoFactorPath = "/settings/account/two-factor"

// loginStepCookie names the cookie that holds a second step's token.
func (s *Server) loginStepCookie() string {
	if s.sessions.secure {
		return "__Host-tfd_login_step"
	}
	return "tfd_login_step"
}

func (s *Server) setLoginStep(w http.ResponseWriter, token string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: s.loginStepCookie(), Value: token, Path: "/", MaxAge: maxAge, HttpOnly: true,
		Secure: s.sessions.secure, SameSite: http.SameSiteStrictMode})
}

// askSecondFactor sends a user with two-factor on, whose password was right, to the second step
// instead of signing them in. It reports whether it did (or failed).
func (s *Server) askSecondFactor(w http.ResponseWriter, r *http.Request, u db.User, next string) (bool, error) {
	on, _, err := s.twoFactor.State(r.Context(), u.ID)
	if err != nil || !on {
		return err != nil, err
	}
	token, err := s.twoFactor.StartLogin(r.Context(), u)
	if err != nil {
		return true, err
	}
	s.setLoginStep(w, token, int(accounts.LoginStepTTL.Seconds()))
	return true, redirect(w, r, "/login/two-factor?next="+url.QueryEscape(next))
}

// showLoginCode is the second step's form. Without a step in progress it is the login form again.
func (s *Server) showLoginCode(w http.ResponseWriter, r *http.Request) error {
	next := safeNext(r.URL.Query().Get("next"))
	if _, ok := userFrom(r.Context()); ok {
		return redirect(w, r, next)
	}
	pending := false
	if c, err := r.Cookie(s.loginStepCookie()); err == nil {
		if pending, err = s.twoFactor.LoginPending(r.Context(), c.Value); err != nil {
			return err
		}
	}
	if !pending {
		return render(w, r, http.StatusOK, templates.LoginPage(templates.AuthVM{Next: next, Error: capitalize(accounts.ErrLoginExpired.Error())}))
	}
	return render(w, r, http.StatusOK, templates.LoginCodePage(templates.LoginCodeVM{Next: next}))
}

// verifyLoginCode checks the second step's code: rate-limited per client like the password, each
// refusal audited, the step ended after too many; the right code starts the session.
func (s *Server) verifyLoginCode(w http.ResponseWriter, r *http.Request) error {
	vm := templates.LoginCodeVM{Next: safeNext(r.PostFormValue("next"))}
	if ok, wait := s.loginLimit.Allow(s.clientKey(r)); !ok {
		secs := int(math.Ceil(wait.Seconds()))
		w.Header().Set("Retry-After", fmt.Sprint(secs))
		vm.Error = fmt.Sprintf("Too many attempts from your address. Try again in %d seconds.", secs)
		return render(w, r, http.StatusTooManyRequests, templates.LoginCodePage(vm))
	}
	token := ""
	if c, err := r.Cookie(s.loginStepCookie()); err == nil {
		token = c.Value
	}
	res, err := s.twoFactor.FinishLogin(r.Context(), token, r.PostFormValue("code"), s.auditFor(r, ""))
	var problem validation.Problem
	switch {
	case errors.Is(err, accounts.ErrLoginExpired) || errors.Is(err, accounts.ErrTooManyCodes) || errors.Is(err, accounts.ErrCodesLocked):
		s.setLoginStep(w, "", -1)
		if res.User.ID != 0 {
			if err := s.auditLoginCode(r, res.User, "session.login_failed", map[string]any{"reason": codeFailure(err)}); err != nil {
				return err
			}
		}
		return render(w, r, http.StatusUnauthorized, templates.LoginPage(templates.AuthVM{Next: vm.Next, Error: capitalize(err.Error())}))
	case errors.As(err, &problem):
		if err := s.auditLoginCode(r, res.User, "session.login_failed", map[string]any{"reason": codeFailure(err)}); err != nil {
			return err
		}
		vm.Error = capitalize(string(problem)) + ". " + plural(res.Left, "attempt", "attempts") + " left."
		return render(w, r, http.StatusUnauthorized, templates.LoginCodePage(vm))
	case err != nil:
		return err
	}
	s.setLoginStep(w, "", -1)
	if err := s.startSession(w, r, res.User); err != nil {
		return err
	}
	if err := s.auditLoginCode(r, res.User, "session.login", map[string]any{"second_factor": string(res.Method)}); err != nil {
		return err
	}
	return redirect(w, r, vm.Next)
}

// auditLoginCode writes the audit row of a second step for u, who is not signed in yet; a
// failure (session.login_failed) is counted per user and reason (failureAudit).
func (s *Server) auditLoginCode(r *http.Request, u db.User, action string, after map[string]any) error {
	a := s.auditFor(r, action)
	a.Actor, a.Target, a.After = actorUser(u), "user:"+itoa(u.ID), after
	if reason, _ := after["reason"].(string); action == "session.login_failed" {
		return s.failures.record(r.Context(), a, reason)
	}
	return s.accounts.AuditSignIn(r.Context(), a)
}

// codeFailure names a refused second factor in the audit log.
func codeFailure(err error) string {
	switch {
	case errors.Is(err, accounts.ErrCodeReused):
		return "code_reused"
	case errors.Is(err, accounts.ErrCodeMissing):
		return "no_code"
	case errors.Is(err, accounts.ErrTooManyCodes):
		return "too_many_codes"
	case errors.Is(err, accounts.ErrCodesLocked):
		return "codes_locked"
	}
	return "wrong_code"
}

// requireTwoFactor records whether the signed-in user has two-factor on (forms that ask for the
// password again then ask for a code too) and, while an admin requires two-factor and the user
// has not set it up, sends every page to the set-up instead (enforce). API tokens never pass here.
func (s *Server) requireTwoFactor(enforce bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, ok := userFrom(r.Context())
			if !ok {
				next.ServeHTTP(w, r)
				return
			}
			on, required, err := s.twoFactor.State(r.Context(), u.ID)
			if err != nil {
				s.fail(w, r, err)
				return
			}
			if enforce && required && !on {
				if r.Method == http.MethodGet || r.Method == http.MethodHead {
					http.Redirect(w, r, twoFactorPath, http.StatusSeeOther)
					return
				}
				s.fail(w, r, errForbidden("an admin requires two-factor authentication: set it up under Settings, Your account, first"))
				return
			}
			next.ServeHTTP(w, r.WithContext(templates.WithTwoFactor(r.Context(), on)))
		})
	}
}

// reauthCode checks the two-factor code of a re-check whose password was right, for a user with
// two-factor on (for others it passes). A refusal is audited like a wrong password, and its
// attempt was already taken from the same budget (reauthAllowed).
func (s *Server) reauthCode(r *http.Request, what string) string {
	u, _ := userFrom(r.Context())
	a := s.auditFor(r, "")
	a.After = map[string]any{"for": what}
	_, err := s.twoFactor.Verify(r.Context(), u.ID, r.PostFormValue("code"), a)
	var problem validation.Problem
	switch {
	case errors.As(err, &problem):
		s.reauthFailed(r, what, codeFailure(err))
		return string(problem)
	case err != nil:
		s.log.Error("check two-factor code", "request_id", requestIDFrom(r.Context()), "error", err)
		return "the two-factor code could not be checked; try again"
	}
	return ""
}

// capitalize starts a domain message with a capital letter for a page.
func capitalize(msg string) string {
	if msg == "" || msg[0] < 'a' || msg[0] > 'z' {
		return msg
	}
	return string(msg[0]-'a'+'A') + msg[1:]
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprint(n) + " " + many
}
