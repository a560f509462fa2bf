package web

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tensfer-golive/dashboard/internal/accounts"
	"github.com/tensfer-golive/dashboard/internal/db"
)

// screenshotWidths saves the page at desktop width and at a phone's 390 px (SCREENSHOT_DIR only).
func screenshotWidths(t *testing.T, ctx context.Context, name string) {
	if os.Getenv("SCREENSHOT_DIR") == "" {
		return
	}
	screenshot(t, ctx, name)
	mustDo(t, ctx, "phone width", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)))
	screenshot(t, ctx, name+"-390")
	mustDo(t, ctx, "desktop width", chromedp.EmulateViewport(1360, 900))
}

// TestBrowserTwoFactorEnrolAndLogin: a user sets up two-factor from Settings with a code computed
// from the secret shown with the QR code, saves the recovery codes, signs out, and signs in again
// with the password and a code.
func TestBrowserTwoFactorEnrolAndLogin(t *testing.T) {
	app := newTestApp(t)
	clock := app.totpClock()
	ctx := newBrowser(t)
	u := app.addUser("tina@example.com", db.RoleAdmin)
	mustDo(t, ctx, "log in", signIn(app.url+"/settings/account", u.Email, `[data-testid="two-factor-setup-link"]`)...)
	mustDo(t, ctx, "open the set-up", clickToLoad(`[data-testid="two-factor-setup-link"]`,
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="two-factor-setup-form"]`)))...)
	mustDo(t, ctx, "confirm the password",
		chromedp.SendKeys(chromedp.CSS(`#setup-password`), testPassword),
		chromedp.Click(chromedp.CSS(`[data-testid="two-factor-begin"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="totp-qr"] svg`)),
	)
	// The QR code is drawn: an SVG of real size with the modules as one path.
	size, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.querySelector('[data-testid="totp-qr"] svg').getBoundingClientRect().width`))
	if err != nil || size < 150 {
		t.Fatalf("QR code %v px wide (%v)", size, err)
	}
	if focused, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement && document.activeElement.id`)); focused != "enrol-code" {
		t.Errorf("focus on %q, want the code field", focused)
	}
	secret := strings.ReplaceAll(mustText(t, ctx, `[data-testid="totp-secret"]`), " ", "")
	screenshotWidths(t, ctx, "two-factor-enrol")
	mustDo(t, ctx, "type the first code",
		chromedp.SendKeys(chromedp.CSS(`#enrol-code`), totpCode(t, secret, clock.now())),
		chromedp.Click(chromedp.CSS(`[data-testid="enrol-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="recovery-code-list"]`)),
	)
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('[data-testid="recovery-code"]').length`))
	if err != nil || n != accounts.RecoveryCodeCount {
		t.Fatalf("%d recovery codes shown (%v)", n, err)
	}
	screenshotWidths(t, ctx, "two-factor-recovery-codes")
	mustDo(t, ctx, "saved the codes", clickToLoad(`[data-testid="recovery-codes-done"]`,
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="two-factor-on"]`)))...)
	screenshotWidths(t, ctx, "two-factor-manage")

	mustDo(t, ctx, "log out and in",
		chromedp.Click(chromedp.CSS(`[data-testid="logout"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="login-form"]`)),
		chromedp.SendKeys(chromedp.CSS(`#email`), u.Email),
		chromedp.SendKeys(chromedp.CSS(`#password`), testPassword),
		chromedp.Click(chromedp.CSS(`[data-testid="login-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="login-code-form"]`)),
	)
	if focused, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement && document.activeElement.id`)); focused != "code" {
		t.Errorf("focus on %q, want the code field", focused)
	}
	screenshotWidths(t, ctx, "two-factor-login")
	clock.advance(30 * time.Second) // the enrolment's code counts once; the app shows the next
	mustDo(t, ctx, "type the code",
		chromedp.SendKeys(chromedp.CSS(`#code`), totpCode(t, secret, clock.now())),
		chromedp.Click(chromedp.CSS(`[data-testid="login-code-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="nav"]`)),
	)
	if got := mustText(t, ctx, `[data-testid="role"]`); got != "admin" {
		t.Fatalf("signed in as %q", got)
	}
	mustDo(t, ctx, "open users",
		chromedp.Navigate(app.url+"/settings/users"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="two-factor-policy"]`)),
	)
	if got := mustText(t, ctx, `[data-testid="user-row"][data-email="tina@example.com"] [data-testid="user-two-factor"]`); got != "on" {
		t.Errorf("users page shows two-factor %q", got)
	}
	screenshotWidths(t, ctx, "two-factor-users")
}
