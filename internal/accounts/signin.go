package accounts

import (
	"context"
	"strconv"
	"time"

	"github.com/tensfer-golive/dashboard/internal/ratelimit"
)

// TakeReauthAttempt takes one attempt from the user's budget of password re-checks, a token
// bucket at rate kept in the database, so the budget is the same on every instance. When none is
// left it says how long until one is.
func (s *Service) TakeReauthAttempt(ctx context.Context, userID int64, rate ratelimit.Rate) (ok bool, retryAfter time.Duration, err error) {
	return s.db.TakeRateToken(ctx, "reauth:"+strconv.FormatInt(userID, 10), rate.Burst, rate.Every, s.now())
}

// purgeBatch bounds the rows of each kind one PurgeSignInState deletes, so a round stays short.
const purgeBatch = 5000

// PurgeSignInState deletes sign-in state that has ended: lockout counters with nothing left to
// remember, expired second steps of logins and full re-check budgets. Run by one instance (the
// leader's housekeeping); at most purgeBatch rows of each kind a call.
func (s *Service) PurgeSignInState(ctx context.Context) (int64, error) {
	return s.db.PurgeSignInState(ctx, s.now(), purgeBatch)
}
