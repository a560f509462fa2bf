package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/tensfer-golive/dashboard/internal/accounts"
	"github.com/tensfer-golive/dashboard/internal/db"
)

// userResetTwoFactor removes a user's second factor from the command line: the way back in for
// the last admin who lost both the phone and the recovery codes. Their sessions end, and they set
// two-factor up again at their next sign-in when it is required.
func userResetTwoFactor(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	var st storeFlags
	var email string
	f := newFlags("user reset-2fa", stderr, getenv)
	st.bind(f)
	f.fs.StringVar(&email, "email", "", "email address of the user (required)")
	if err := st.parse(f, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if email = strings.TrimSpace(email); email == "" {
		return usageError{"usage: dashboard user reset-2fa --email E"}
	}
	d, err := st.open(ctx, getenv)
	if err != nil {
		return err
	}
	defer d.Close()
	u, err := d.UserByEmail(ctx, email)
	if errors.Is(err, db.ErrNotFound) {
		return fmt.Errorf("no user with email %q", email)
	}
	if err != nil {
		return err
	}
	if _, err := accounts.NewTwoFactor(accounts.TwoFactorConfig{DB: d}).Reset(ctx, 0, u.ID, cliAudit("auth.totp_reset")); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "reset two-factor of user %d (%s) and ended their sessions\n", u.ID, u.Email)
	return nil
}
