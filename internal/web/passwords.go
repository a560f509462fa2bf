package web

import (
	"context"

	"github.com/tensfer-golive/dashboard/internal/auth"
)

// Password hashing is deliberately expensive (argon2id takes 64 MiB and tens of milliseconds).
// checkPassword and hashPassword run at most a few at a time across the whole server, so a burst
// of logins from many addresses queues instead of exhausting memory. A waiter gives up when its
// request ends.

func (s *Server) withHashSlot(ctx context.Context, fn func()) error {
	select {
	case s.hashSlots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.hashSlots }()
	fn()
	return nil
}

// checkPassword reports whether pw matches hash; false also when the request ends while waiting.
func (s *Server) checkPassword(ctx context.Context, pw, hash string) bool {
	ok := false
	_ = s.withHashSlot(ctx, func() { ok = auth.CheckPassword(pw, hash) == nil })
	return ok
}

// hashPassword hashes a new password with the server's parameters.
func (s *Server) hashPassword(ctx context.Context, pw string) (string, error) {
	var h string
	var err error
	if werr := s.withHashSlot(ctx, func() { h, err = auth.HashPassword(pw, s.cfg.PasswordParams) }); werr != nil {
		return "", werr
	}
	return h, err
}
