package accounts

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/cluster"
	"github.com/tensfer-golive/dashboard/internal/db"
)

// The HTTP session's writes: a session row started, refreshed and ended, the login stamped, the
// audit rows of signing in and out, and what revokes access (a token, every session of a user).
// The web handlers call these rather than the store, so that a write that must also tell the
// other instances (the Bus) cannot be made without telling them.

// StartSession stores a new session of userID, from ip with userAgent, and returns its id: a
// fresh random value that only the session cookie holds (the store keeps its hash).
func (s *Service) StartSession(ctx context.Context, userID int64, ip, userAgent string) (string, error) {
	id := auth.RandomID(32)
	if err := s.db.InsertSession(ctx, id, db.Session{UserID: userID, IP: ip, UserAgent: userAgent}); err != nil {
		return "", err
	}
	return id, nil
}

// TouchSession records that the session was just used (its idle timeout starts again). Callers
// throttle it, so that page views are not a stream of writes.
func (s *Service) TouchSession(ctx context.Context, id string) error {
	return s.db.TouchSession(ctx, id)
}

// EndSession deletes one session: it timed out, its user is gone or disabled, or a new login
// replaces it. Ending a session that is not stored is not an error.
func (s *Service) EndSession(ctx context.Context, id string) error {
	return s.db.DeleteSession(ctx, id)
}

// SignOut ends the session id (a logout) and writes a's audit row (action session.logout).
func (s *Service) SignOut(ctx context.Context, id string, a db.Audit) error {
	if err := s.db.DeleteSession(ctx, id); err != nil {
		return err
	}
	return s.AuditSignIn(ctx, a)
}

// RecordLogin stamps userID's last login (shown on the users page).
func (s *Service) RecordLogin(ctx context.Context, userID int64) error {
	return s.db.RecordLogin(ctx, userID)
}

// PurgeSessions deletes the sessions idle since before idleCutoff or started before absCutoff,
// and says how many. Run by the leader's housekeeping.
func (s *Service) PurgeSessions(ctx context.Context, idleCutoff, absCutoff time.Time) (int64, error) {
	return s.db.PurgeSessions(ctx, idleCutoff, absCutoff)
}

// AuditSignIn writes the audit row of a sign-in step: a login, a refused or failed one, a
// lockout, a second factor, a logout, a failed password re-check. a's action must be one of
// session.* or auth.*: the rows of other domains are written by the service that acted.
func (s *Service) AuditSignIn(ctx context.Context, a db.Audit) error {
	if !strings.HasPrefix(a.Action, "session.") && !strings.HasPrefix(a.Action, "auth.") {
		return fmt.Errorf("accounts: audit action %q is not about signing in", a.Action)
	}
	return s.db.InsertAudit(ctx, a)
}

// SignOutEverywhere ends every session of userID with a's audit row (user.sign_out) and tells
// every instance, so that the user's live streams end at once. It returns how many ended.
func (s *Service) SignOutEverywhere(ctx context.Context, userID int64, a db.Audit) (int64, error) {
	n, err := s.db.DeleteUserSessions(ctx, userID, a)
	if err != nil {
		return 0, err
	}
	s.accessChanged(userID)
	return n, nil
}

// RevokeToken revokes API token id with a's audit row (token.revoke) and tells every instance,
// so that requests with it get 401 at once. A token that does not exist or is already revoked is
// db.ErrNotFound.
func (s *Service) RevokeToken(ctx context.Context, id int64, a db.Audit) (db.Token, error) {
	t, err := s.db.RevokeToken(ctx, id, a)
	if err != nil {
		return db.Token{}, err
	}
	s.accessChanged(0)
	return t, nil
}

// TouchToken records that token id was just used. Callers throttle it.
func (s *Service) TouchToken(ctx context.Context, id int64) error {
	return s.db.TouchToken(ctx, id)
}

// CompleteSetup creates the first admin with the one-time setup link's token and a's audit row
// (setup.complete). The fields must have passed ValidateNewUser. A used or expired link is
// db.ErrSetupUsed.
func (s *Service) CompleteSetup(ctx context.Context, token, email, name, password string, a db.Audit) (db.User, error) {
	hash, err := s.HashPassword(ctx, password)
	if err != nil {
		return db.User{}, err
	}
	return s.db.CompleteSetup(ctx, token, db.User{Email: email, Name: name, PasswordHash: hash}, a)
}

// accessChanged is called after a token is revoked or a user's sessions, role or access change
// (userID 0: no one user): this instance forgets what it cached of access at once (its caller
// reads its own write), then the Bus tells every instance to do the same.
func (s *Service) accessChanged(userID int64) {
	if s.forgetAccess != nil {
		s.forgetAccess()
	}
	if s.bus == nil {
		return
	}
	id := ""
	if userID != 0 {
		id = strconv.FormatInt(userID, 10)
	}
	s.bus.Publish(cluster.Message{Topic: cluster.TopicAccess, ID: id})
}
