package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/tensfer-golive/dashboard/internal/accounts"
	"github.com/tensfer-golive/dashboard/internal/db"
)

// TestUserResetTwoFactor: the last admin who lost the phone and the recovery codes gets back in
// through the command line.
func TestUserResetTwoFactor(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	if _, _, err := cli(t, nil, "a very long password\n", "user", "add", "--data", dir, "--email", "solo@example.com", "--role", "admin"); err != nil {
		t.Fatal(err)
	}
	d, box, _, err := openData(ctx, dir, "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := d.UserByEmail(ctx, "solo@example.com")
	now := time.Date(2026, 3, 2, 9, 0, 10, 0, time.UTC)
	tf := accounts.NewTwoFactor(accounts.TwoFactorConfig{DB: d, Box: box, Now: func() time.Time { return now }})
	e, err := tf.BeginEnrolment(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	code, _ := totp.GenerateCode(e.Secret, now)
	if _, err := tf.ConfirmEnrolment(ctx, u, code, db.Audit{Actor: "test", Action: "auth.totp_enabled"}); err != nil {
		t.Fatal(err)
	}
	d.Close()

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"user", "reset-2fa", "--data", dir}, "usage: dashboard user reset-2fa"},
		{[]string{"user", "reset-2fa", "--data", dir, "--email", "nobody@example.com"}, `no user with email "nobody@example.com"`},
	} {
		if _, _, err := cli(t, nil, "", tt.args...); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: %v, want %q", tt.args, err, tt.want)
		}
	}
	out, _, err := cli(t, nil, "", "user", "reset-2fa", "--data", dir, "--email", "solo@example.com")
	if err != nil || !strings.Contains(out, "reset two-factor of user") {
		t.Fatalf("reset: %q %v", out, err)
	}
	if _, _, err := cli(t, nil, "", "user", "reset-2fa", "--data", dir, "--email", "solo@example.com"); err == nil || !strings.Contains(err.Error(), "no two-factor authentication to reset") {
		t.Fatalf("second reset: %v", err)
	}
	d, err = db.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if on, _, _ := d.TwoFactorStatus(ctx, u.ID); on {
		t.Fatal("two-factor still on")
	}
	rows, _, _ := d.ListAudit(ctx, db.AuditFilter{Action: "auth.totp_reset"})
	if len(rows) != 1 || rows[0].Actor != "cli" {
		t.Fatalf("reset audited as %+v", rows)
	}
}
