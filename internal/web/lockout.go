package web

import (
	"math"
	"net/http"
	"strconv"

	"github.com/tensfer-golive/dashboard/internal/accounts"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/web/templates"
)

// The HTTP side of the login soft lockout (accounts/lockout.go has the rules): where a sign-in
// comes from, the known-device cookie, and the 429 answer.

// deviceCookieName is the known-device cookie; __Host- prefixed over https like the session's.
func (s *Server) deviceCookieName() string {
	if s.sessions.secure {
		return "__Host-tfd_device"
	}
	return "tfd_device"
}

// loginFrom is where a sign-in comes from: the address rate limits count by, and the
// known-device cookie if the browser has one.
func (s *Server) loginFrom(r *http.Request) accounts.LoginFrom {
	from := accounts.LoginFrom{Addr: s.clientKey(r)}
	if c, err := r.Cookie(s.deviceCookieName()); err == nil {
		from.Device = c.Value
	}
	return from
}

// rememberDevice marks this browser as one that has signed in as u, so a flood of failed
// sign-ins for u from elsewhere does not lock it out. The cookie only names the email (under a
// MAC); it signs nobody in.
func (s *Server) rememberDevice(w http.ResponseWriter, u db.User) {
	token := s.accounts.DeviceToken(u.Email)
	if token == "" {
		return
	}
	http.SetCookie(w, &http.Cookie{Name: s.deviceCookieName(), Value: token, Path: "/", MaxAge: int(accounts.KnownDeviceLife.Seconds()),
		Secure: s.sessions.secure, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// refuseLockedLogin answers a sign-in the lockout refused (its password unchecked): 429 with
// Retry-After and the wait on the page; the first refusal of each lock is audited.
func (s *Server) refuseLockedLogin(w http.ResponseWriter, r *http.Request, vm templates.AuthVM, locked *accounts.LockedError) error {
	secs := int(math.Ceil(locked.RetryAfter.Seconds()))
	if locked.First {
		a := s.auditFor(r, "auth.login_locked")
		a.Actor = "anonymous"
		var err error
		if a.Target, err = s.accounts.FailedLoginTarget(r.Context(), vm.Email); err != nil {
			return err
		}
		a.After = map[string]any{"scope": string(locked.Scope), "failures": locked.Failures, "retry_after_s": secs}
		if err := s.accounts.AuditSignIn(r.Context(), a); err != nil {
			return err
		}
	}
	w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	vm.Error = "Too many failed sign-ins for this account; try again in " + accounts.WaitText(locked.RetryAfter) + "."
	if locked.Scope == accounts.LockAccount {
		vm.Error += " A browser that has signed in to this account before can still sign in."
	}
	return render(w, r, http.StatusTooManyRequests, templates.LoginPage(vm))
}
