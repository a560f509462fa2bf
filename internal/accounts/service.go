package accounts

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/cluster"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/validation"
)

// Config is what a Service needs.
type Config struct {
	DB *db.DB
	// Params is the argon2id cost (auth.DefaultParams when zero; cheap in tests).
	Params auth.Params
	// HashSlots bounds how many password hashes run at once (default: the number of CPUs), so a
	// burst of logins queues instead of exhausting memory: each takes 64 MiB.
	HashSlots int
	// Lockout tunes the login soft lockout (lockout.go), whose counters are kept in DB; Now is
	// its clock (default time.Now).
	Lockout LockoutPolicy
	Now     func() time.Time
	// DeviceKey signs known-device cookies (a key derived from the master key); without one,
	// no browser is known and every sign-in goes through the per-account counter.
	DeviceKey []byte
	// Bus tells every instance that access changed (a token revoked, a user's sessions, role or
	// access changed), so that their token caches and live streams catch up at once (nil: no
	// other instance to tell, as in the CLI).
	Bus cluster.Bus
	// ForgetAccess drops what this instance cached of access (tokens, live streams' session
	// checks); it is called before the Bus is told, so the caller reads its own change at once.
	ForgetAccess func()
}

// Service applies the account rules: creating users and tokens, passwords, roles and access.
type Service struct {
	db           *db.DB
	params       auth.Params
	slots        chan struct{}
	dummyOnce    sync.Once
	dummy        string
	checks       atomic.Int64 // password hashes compared
	now          func() time.Time
	lockout      *lockout
	deviceKey    []byte
	bus          cluster.Bus
	forgetAccess func()
}

// New returns a Service.
func New(cfg Config) *Service {
	if cfg.Params.KeyLen == 0 {
		cfg.Params = auth.DefaultParams
	}
	if cfg.HashSlots <= 0 {
		cfg.HashSlots = max(1, runtime.NumCPU())
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{db: cfg.DB, params: cfg.Params, slots: make(chan struct{}, cfg.HashSlots),
		now: cfg.Now, lockout: newLockout(cfg.DB, cfg.Lockout, cfg.Now, cfg.DeviceKey), deviceKey: cfg.DeviceKey,
		bus: cfg.Bus, forgetAccess: cfg.ForgetAccess}
}

// withHashSlot runs fn when a hashing slot is free; a waiter gives up when ctx ends.
func (s *Service) withHashSlot(ctx context.Context, fn func()) error {
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.slots }()
	fn()
	return nil
}

// CheckPassword reports whether pw matches hash; false also when ctx ends while waiting.
func (s *Service) CheckPassword(ctx context.Context, pw, hash string) bool {
	ok := false
	_ = s.withHashSlot(ctx, func() {
		s.checks.Add(1)
		ok = auth.CheckPassword(pw, hash) == nil
	})
	return ok
}

// HashPassword hashes a new password with the configured cost.
func (s *Service) HashPassword(ctx context.Context, pw string) (string, error) {
	var h string
	var err error
	if werr := s.withHashSlot(ctx, func() { h, err = auth.HashPassword(pw, s.params) }); werr != nil {
		return "", werr
	}
	return h, err
}

// ErrBadCredentials is Authenticate's one answer for an unknown email, a wrong password and a
// disabled account, so the answer does not reveal which emails exist.
var ErrBadCredentials = errors.New("accounts: email or password is incorrect")

// Authenticate returns the active user with this email and password. An unknown email costs the
// same hashing time as a real check. After repeated failures it answers a *LockedError without
// checking the password (the login lockout, lockout.go), the same way for unknown emails.
func (s *Service) Authenticate(ctx context.Context, email, password string, from LoginFrom) (db.User, error) {
	att, err := s.lockout.begin(ctx, email, from.Addr, s.knownDevice(email, from.Device))
	if err != nil {
		return db.User{}, err
	}
	u, err := s.checkCredentials(ctx, email, password)
	if endErr := att.end(ctx, errors.Is(err, ErrBadCredentials), err == nil); endErr != nil {
		return db.User{}, endErr
	}
	return u, err
}

func (s *Service) checkCredentials(ctx context.Context, email, password string) (db.User, error) {
	u, err := s.db.UserByEmail(ctx, strings.TrimSpace(email))
	if errors.Is(err, db.ErrNotFound) {
		s.dummyOnce.Do(func() { s.dummy, _ = auth.HashPassword(auth.RandomID(16), s.params) })
		_ = s.CheckPassword(ctx, password, s.dummy)
		return db.User{}, ErrBadCredentials
	}
	if err != nil {
		return db.User{}, err
	}
	if !s.CheckPassword(ctx, password, u.PasswordHash) || u.Disabled() {
		return db.User{}, ErrBadCredentials
	}
	return u, nil
}

// NewUser is a user to create.
type NewUser struct {
	Email, Name, Role, Password string
}

// CreateUser validates and stores a user with the audit row. Bad input, a duplicate email
// included, is validation.Errors and stores nothing.
func (s *Service) CreateUser(ctx context.Context, in NewUser, a db.Audit) (db.User, error) {
	in.Email, in.Name = strings.TrimSpace(in.Email), strings.TrimSpace(in.Name)
	errs := ValidateNewUser(in.Email, in.Name, in.Password)
	role, err := db.ParseRole(in.Role)
	if err != nil {
		errs["role"] = err.Error()
	}
	if err := errs.Err(); err != nil {
		return db.User{}, err
	}
	hash, err := s.HashPassword(ctx, in.Password)
	if err != nil {
		return db.User{}, err
	}
	u, err := s.db.InsertUser(ctx, db.User{Email: in.Email, Name: in.Name, Role: role, PasswordHash: hash}, a)
	if errors.Is(err, db.ErrConflict) {
		return db.User{}, validation.Errors{"email": "a user with this email already exists"}
	}
	return u, err
}

// ChangeOwnPassword sets u's password after checking the current one. Every session of u ends
// (the store revokes them). Bad input is validation.Errors on "current" or "password".
func (s *Service) ChangeOwnPassword(ctx context.Context, u db.User, current, next string, a db.Audit) (db.User, error) {
	errs := validation.Errors{}
	if !s.CheckPassword(ctx, current, u.PasswordHash) {
		errs["current"] = "current password is incorrect"
	}
	if err := auth.ValidatePassword(next, u.Email, u.Name); err != nil {
		errs["password"] = err.Error()
	} else if next == current {
		errs["password"] = "new password must differ from the current one"
	}
	if err := errs.Err(); err != nil {
		return db.User{}, err
	}
	return s.setPassword(ctx, u.ID, next, a)
}

// ResetPassword sets another user's password (an admin action) and ends their sessions. A
// password that breaks the rules is a validation.Problem.
func (s *Service) ResetPassword(ctx context.Context, id int64, password string, a db.Audit) (db.User, error) {
	u, err := s.db.UserByID(ctx, id)
	if err != nil {
		return db.User{}, err
	}
	if err := auth.ValidatePassword(password, u.Email, u.Name); err != nil {
		return db.User{}, validation.Problem(err.Error())
	}
	return s.setPassword(ctx, id, password, a)
}

func (s *Service) setPassword(ctx context.Context, id int64, password string, a db.Audit) (db.User, error) {
	hash, err := s.HashPassword(ctx, password)
	if err != nil {
		return db.User{}, err
	}
	return s.change(ctx, id, db.UserChange{PasswordHash: &hash}, a)
}

// SetRole changes a user's role and ends their sessions.
func (s *Service) SetRole(ctx context.Context, id int64, role string, a db.Audit) (db.User, error) {
	r, err := db.ParseRole(role)
	if err != nil {
		return db.User{}, validation.Problem(err.Error())
	}
	return s.change(ctx, id, db.UserChange{Role: &r}, a)
}

// SetDisabled disables (and signs out) or enables a user. Nobody disables themselves.
func (s *Service) SetDisabled(ctx context.Context, actorID, id int64, disabled bool, a db.Audit) (db.User, error) {
	if disabled && actorID == id {
		return db.User{}, validation.Problem("You cannot disable yourself.")
	}
	return s.change(ctx, id, db.UserChange{Disabled: &disabled}, a)
}

// change applies c and tells every instance that the user's access changed (the store ended
// their sessions, and a disable or demotion revoked their tokens); a change that would leave no
// active admin is a validation.Problem.
func (s *Service) change(ctx context.Context, id int64, c db.UserChange, a db.Audit) (db.User, error) {
	u, err := s.db.UpdateUser(ctx, id, c, a)
	if errors.Is(err, db.ErrLastAdmin) {
		return db.User{}, validation.Problem("That would leave no active admin. Make someone else an admin first.")
	}
	if err != nil {
		return db.User{}, err
	}
	s.accessChanged(u.ID)
	return u, nil
}

// ServiceOwner is the CreatedBy of a service token: one made by `dashboard token create` without
// an owner. It belongs to no user, so no change to a user revokes it; Settings, API tokens lists it
// as a service token, and an admin revokes it there. ("cli" marks those made before owners.)
const ServiceOwner = "service"

// IsServiceToken reports whether a token's CreatedBy names no user.
func IsServiceToken(createdBy string) bool { return createdBy == ServiceOwner || createdBy == "cli" }

// TokenOwner checks the owner named for a token made on the command line: an active admin, as a
// token made in Settings belongs to the admin who made it, so that it dies with their access
// (disabled or no longer admin). It answers the owner's email, the token's CreatedBy.
func (s *Service) TokenOwner(ctx context.Context, email string) (string, error) {
	u, err := s.db.UserByEmail(ctx, strings.TrimSpace(email))
	switch {
	case errors.Is(err, db.ErrNotFound):
		return "", validation.Problem(fmt.Sprintf("no user has the email %q; give an admin's email, or no owner for a service token", email))
	case err != nil:
		return "", err
	case u.Disabled() || u.Role != db.RoleAdmin:
		return "", validation.Problem(fmt.Sprintf("%s is not an active admin; only admins own tokens, and a token dies with its owner's admin access", u.Email))
	}
	return u.Email, nil
}

// MaxTokenLife bounds a token's expiry.
const MaxTokenLife = 366 * 24 * time.Hour

// CreateToken validates and stores an API token for createdBy (an admin's email, or ServiceOwner),
// expiring after expiresIn (0: never), and returns its secret, which is shown once: only a hash
// is stored. Bad input is validation.Errors on "name", "scopes" or "expires_in".
func (s *Service) CreateToken(ctx context.Context, name string, scopes []string, expiresIn time.Duration, createdBy string, a db.Audit) (string, db.Token, error) {
	name = strings.TrimSpace(name)
	errs := validation.Errors{}
	if expiresIn != 0 && (expiresIn < time.Hour || expiresIn > MaxTokenLife) {
		errs["expires_in"] = "a token expires between 1 hour and 366 days from now, or never"
	}
	if err := ValidateTokenName(name); err != nil {
		errs["name"] = err.Error()
	}
	parsed, err := auth.ParseScopes(strings.Join(scopes, ","))
	if err != nil {
		errs["scopes"] = err.Error()
	}
	if err := errs.Err(); err != nil {
		return "", db.Token{}, err
	}
	secret, prefix := auth.NewToken()
	tok := db.Token{Name: name, Prefix: prefix, Scopes: parsed, CreatedBy: createdBy}
	if expiresIn > 0 {
		tok.ExpiresAt = s.db.Now().Add(expiresIn)
	}
	t, err := s.db.InsertToken(ctx, secret, tok, a)
	return secret, t, err
}
