package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Role is a user's role. Roles are ordered: viewer < operator < admin.
type Role string

// The three roles.
const (
	RoleViewer   Role = "viewer"
	RoleOperator Role = "operator"
	RoleAdmin    Role = "admin"
)

// Rank orders roles so that a check is one comparison; an unknown role ranks below viewer.
func (r Role) Rank() int {
	switch r {
	case RoleViewer:
		return 1
	case RoleOperator:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// AtLeast reports whether r grants everything min grants.
func (r Role) AtLeast(min Role) bool { return r.Rank() >= min.Rank() && r.Rank() > 0 }

// ParseRole validates a role name from outside.
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if r.Rank() == 0 {
		return "", fmt.Errorf("role must be one of viewer, operator or admin (got %q)", s)
	}
	return r, nil
}

// User is one person who can log in.
type User struct {
	ID                int64
	Email             string
	Name              string
	Role              Role
	PasswordHash      string
	CreatedAt         time.Time
	UpdatedAt         time.Time
	PasswordChangedAt time.Time
	DisabledAt        time.Time
	LastLoginAt       time.Time
}

// Disabled reports whether the user may no longer log in.
func (u User) Disabled() bool { return !u.DisabledAt.IsZero() }

// DisplayName is the name if set, else the email.
func (u User) DisplayName() string {
	if u.Name != "" {
		return u.Name
	}
	return u.Email
}

const userCols = `id, email, name, role, password_hash, created_at, updated_at, password_changed_at, disabled_at, last_login_at`

func scanUser(row interface{ Scan(...any) error }) (User, error) {
	var u User
	var created, updated, pwChanged int64
	var disabled, lastLogin sql.NullInt64
	err := row.Scan(&u.ID, &u.Email, &u.Name, &u.Role, &u.PasswordHash, &created, &updated, &pwChanged, &disabled, &lastLogin)
	if err != nil {
		return User{}, err
	}
	u.CreatedAt, u.UpdatedAt, u.PasswordChangedAt = fromMS(created), fromMS(updated), fromMS(pwChanged)
	u.DisabledAt, u.LastLoginAt = fromNullMS(disabled), fromNullMS(lastLogin)
	return u, nil
}

// CountUsers returns how many users exist (disabled ones included).
func (d *DB) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := d.R.QueryRowContext(ctx, "SELECT count(*) FROM users").Scan(&n); err != nil {
		return 0, fmt.Errorf("db: count users: %w", err)
	}
	return n, nil
}

// InsertUser creates a user and returns it with its id. A taken email is ErrConflict.
func (d *DB) InsertUser(ctx context.Context, u User, a Audit) (User, error) {
	now := d.Now()
	u.CreatedAt, u.UpdatedAt, u.PasswordChangedAt = now, now, now
	err := d.tx(ctx, func(tx txer) error {
		var err error
		u.ID, err = tx.insertID(ctx, `INSERT INTO users (email, name, role, password_hash, created_at, updated_at, password_changed_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, u.Email, u.Name, u.Role, u.PasswordHash, ms(now), ms(now), ms(now))
		if err != nil {
			return err
		}
		a.Target = fmt.Sprintf("user:%d", u.ID)
		a.After = map[string]any{"email": u.Email, "name": u.Name, "role": u.Role}
		return insertAudit(ctx, tx, now, a)
	})
	if isUniqueViolation(err) {
		return User{}, fmt.Errorf("db: insert user: %w", ErrConflict)
	}
	if err != nil {
		return User{}, fmt.Errorf("db: insert user: %w", err)
	}
	return u, nil
}

// UserByID returns one user.
func (d *DB) UserByID(ctx context.Context, id int64) (User, error) {
	u, err := scanUser(d.R.QueryRowContext(ctx, "SELECT "+userCols+" FROM users WHERE id = ?", id))
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, ErrNotFound
	}
	if err != nil {
		return User{}, fmt.Errorf("db: user by id: %w", err)
	}
	return u, nil
}

// UserByEmail returns one user by email, case-insensitively.
func (d *DB) UserByEmail(ctx context.Context, email string) (User, error) {
	u, err := scanUser(d.R.QueryRowContext(ctx, "SELECT "+userCols+" FROM users WHERE email = ?", email))
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, ErrNotFound
	}
	if err != nil {
		return User{}, fmt.Errorf("db: user by email: %w", err)
	}
	return u, nil
}

// ListUsers returns every user, admins first then by email. The table is small (people, not
// events), so no pagination.
func (d *DB) ListUsers(ctx context.Context) ([]User, error) {
	return queryAll(ctx, d.R, "list users", scanUser, "SELECT "+userCols+` FROM users
		ORDER BY disabled_at IS NOT NULL, CASE role WHEN 'admin' THEN 0 WHEN 'operator' THEN 1 ELSE 2 END, email`)
}

// ErrLastAdmin is returned when a change would leave no active admin.
var ErrLastAdmin = errors.New("db: the last active admin cannot be demoted or disabled")

// UserChange is one change to a user, applied by UpdateUser. Nil fields are left alone.
type UserChange struct {
	Role         *Role
	PasswordHash *string
	Disabled     *bool
	Name         *string
}

// UpdateUser applies c to user id in one transaction: it writes the audit row, refuses to leave
// no active admin, and revokes every session of the user when the role, password or disabled
// state changes (so a demoted or disabled user is out at once).
func (d *DB) UpdateUser(ctx context.Context, id int64, c UserChange, a Audit) (User, error) {
	now := d.Now()
	var out User
	err := d.tx(ctx, func(tx txer) error {
		before, err := scanUser(tx.QueryRowContext(ctx, "SELECT "+userCols+" FROM users WHERE id = ?", id))
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		after := before
		revoke := false
		bm, am := map[string]any{}, map[string]any{}
		if c.Role != nil && *c.Role != before.Role {
			after.Role = *c.Role
			bm["role"], am["role"] = before.Role, after.Role
			revoke = true
		}
		if c.Name != nil && *c.Name != before.Name {
			after.Name = *c.Name
			bm["name"], am["name"] = before.Name, after.Name
		}
		if c.PasswordHash != nil {
			after.PasswordHash = *c.PasswordHash
			after.PasswordChangedAt = now
			bm["password"], am["password"] = "[redacted]", "[changed]"
			revoke = true
		}
		if c.Disabled != nil && *c.Disabled != before.Disabled() {
			if *c.Disabled {
				after.DisabledAt = now
			} else {
				after.DisabledAt = time.Time{}
			}
			bm["disabled"], am["disabled"] = before.Disabled(), *c.Disabled
			revoke = true
		}
		wasAdmin := before.Role == RoleAdmin && !before.Disabled()
		isAdmin := after.Role == RoleAdmin && !after.Disabled()
		if wasAdmin && !isAdmin {
			var n int
			if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM users WHERE role = 'admin' AND disabled_at IS NULL").Scan(&n); err != nil {
				return err
			}
			if n <= 1 {
				return ErrLastAdmin
			}
		}
		after.UpdatedAt = now
		_, err = tx.ExecContext(ctx, `UPDATE users SET name = ?, role = ?, password_hash = ?, password_changed_at = ?, disabled_at = ?, updated_at = ? WHERE id = ?`,
			after.Name, after.Role, after.PasswordHash, ms(after.PasswordChangedAt), nullMS(after.DisabledAt), ms(now), id)
		if err != nil {
			return err
		}
		if revoke {
			if _, err := tx.ExecContext(ctx, "DELETE FROM sessions WHERE user_id = ?", id); err != nil {
				return err
			}
		}
		// Tokens belong to the admin who made them and die with that access: only admins make
		// tokens, so a disabled or demoted admin's tokens are revoked (service tokens from the command line belong to nobody).
		if wasAdmin && !isAdmin {
			res, err := tx.ExecContext(ctx, "UPDATE api_tokens SET revoked_at = ? WHERE created_by = ? AND revoked_at IS NULL", ms(now), before.Email)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n > 0 {
				am["tokens_revoked"] = n
			}
		}
		a.Target = fmt.Sprintf("user:%d", id)
		a.Before, a.After = bm, am
		out = after
		return insertAudit(ctx, tx, now, a)
	})
	if err != nil {
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrLastAdmin) {
			return User{}, err
		}
		return User{}, fmt.Errorf("db: update user: %w", err)
	}
	return out, nil
}

// RecordLogin stamps the user's last login time.
func (d *DB) RecordLogin(ctx context.Context, id int64) error {
	if _, err := d.W.ExecContext(ctx, "UPDATE users SET last_login_at = ? WHERE id = ?", ms(d.Now()), id); err != nil {
		return fmt.Errorf("db: record login: %w", err)
	}
	return nil
}
