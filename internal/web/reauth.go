package web

import (
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/tensfer-golive/dashboard/internal/ratelimit"
)

// reauthRate bounds password re-checks per user: 5 at once, then one a minute, on every instance
// together (the budget is kept in the database). A stolen session cannot guess its way to
// revealing a key.
var reauthRate = ratelimit.Rate{Burst: 5, Every: time.Minute}

// reauth checks the signed-in user's password again before a sensitive action (what names it in
// the audit log), and for a user with two-factor on a current code too (form field "code"). It
// answers "" when both are right, else what to tell the person; every failure, a wrong password,
// a wrong code or too many attempts, is audited (counted, see reauthFailed).
func (s *Server) reauth(r *http.Request, what string) string {
	if msg := s.reauthAllowed(r, what); msg != "" {
		return msg
	}
	u, _ := userFrom(r.Context())
	if !s.accounts.CheckPassword(r.Context(), r.PostFormValue("password"), u.PasswordHash) {
		s.reauthFailed(r, what, "wrong_password")
		return "your password was incorrect"
	}
	return s.reauthCode(r, what)
}

// reauthAllowed takes one attempt from the user's re-check budget; when none is left it audits
// that and says how long to wait.
func (s *Server) reauthAllowed(r *http.Request, what string) string {
	u, _ := userFrom(r.Context())
	ok, wait, err := s.accounts.TakeReauthAttempt(r.Context(), u.ID, reauthRate)
	if err != nil {
		s.log.Error("take a re-check attempt", "request_id", requestIDFrom(r.Context()), "error", err)
		return "your password could not be checked; try again"
	}
	if !ok {
		s.reauthFailed(r, what, "rate_limited")
		return fmt.Sprintf("too many password attempts; try again in %d seconds", int(math.Ceil(wait.Seconds())))
	}
	return ""
}

// reauthFailed audits a failed password re-check, counted per user and reason (failureAudit): a
// flood of guesses, or of refusals by the rate limit, writes a few rows, not one a try.
func (s *Server) reauthFailed(r *http.Request, what, reason string) {
	u, _ := userFrom(r.Context())
	a := s.auditFor(r, "auth.reauth_failed")
	a.Target = "user:" + itoa(u.ID)
	a.After = map[string]any{"for": what, "reason": reason}
	if err := s.failures.record(r.Context(), a, reason); err != nil {
		s.log.Error("audit failed re-authentication", "request_id", requestIDFrom(r.Context()), "error", err)
	}
}
