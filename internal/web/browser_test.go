package web

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/tensfer-golive/dashboard/internal/accounts"
	"github.com/tensfer-golive/dashboard/internal/dbtest"
)

// newBrowser starts headless Chromium for one test, with a minute for everything the test does
// in it. Without Chromium the test is skipped with a clear message, except in CI (CI=true),
// where .ci/run installs it and a missing browser fails.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(newBrowserTab(t), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newBrowserTab is newBrowser without the deadline, for a test that sets one per step.
func newBrowserTab(t *testing.T) context.Context {
	t.Helper()
	if testing.Short() {
		t.Skip("browser tests skipped with -short")
	}
	if dbtest.Postgres() {
		// Pages in Chromium look and behave the same whatever the store; every handler behind
		// them runs on PostgreSQL in this package's HTTP tests. Once is enough: the SQLite pass.
		t.Skip("browser tests run in the SQLite pass only")
	}
	var path string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("CI=true but no Chromium on PATH; .ci/run must install Debian's chromium package")
		}
		t.Skip("browser test skipped: no chromium on PATH (install it with: apt-get install chromium)")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1360, 900),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// Start the browser on the untimed context (a timeout there would stop the browser).
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// screenshot saves a full-page PNG to $SCREENSHOT_DIR (when set) so a person can look at pages.
func screenshot(t *testing.T, ctx context.Context, name string) {
	dir := os.Getenv("SCREENSHOT_DIR")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	_ = os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644)
}

func mustDo(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		if dir := os.Getenv("SCREENSHOT_DIR"); dir != "" {
			// The step's context may be spent; grab the page with a fresh deadline.
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			screenshot(t, sctx, "failure-"+strings.ReplaceAll(what, " ", "-"))
			cancel()
		}
		t.Fatalf("%s: %v", what, err)
	}
}

// clickToLoad clicks sel, which loads a new page, and waits for the new page: the old document
// is marked first, so an element that the old page had too (a flash message) cannot satisfy the
// steps that follow.
func clickToLoad(sel string, then ...chromedp.Action[chromedp.Void]) []chromedp.Action[chromedp.Void] {
	return append([]chromedp.Action[chromedp.Void]{
		chromedp.SetAttributeValue(chromedp.CSS("body"), "data-old-page", "1"),
		chromedp.Click(chromedp.CSS(sel)),
		chromedp.WaitReady(chromedp.CSS("body:not([data-old-page])")),
	}, then...)
}

// signIn opens pageURL, which shows the login form, signs in as email with testPassword and waits
// for landing on the page it returns to.
func signIn(pageURL, email, landing string) []chromedp.Action[chromedp.Void] {
	return []chromedp.Action[chromedp.Void]{
		chromedp.Navigate(pageURL),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="login-form"]`)),
		chromedp.SendKeys(chromedp.CSS(`#email`), email),
		chromedp.SendKeys(chromedp.CSS(`#password`), testPassword),
		chromedp.Click(chromedp.CSS(`[data-testid="login-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(landing)),
	}
}

// emulateMedia makes the page see a media feature, e.g. prefers-color-scheme: dark.
func emulateMedia(name, value string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{{Name: name, Value: value}}})
		return err
	})
}

func mustText(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

// TestBrowserFirstRunLoginLogout is the newcomer's first journey: open the setup link, create the
// admin, see the frame, log out, fail a login with a wrong password, log in again.
func TestBrowserFirstRunLoginLogout(t *testing.T) {
	app := newTestApp(t)
	ctx := newBrowser(t)
	link, err := accounts.PrepareSetup(context.Background(), app.db, app.url)
	if err != nil {
		t.Fatal(err)
	}
	password := "correct horse battery staple"
	mustDo(t, ctx, "first-run setup",
		chromedp.Navigate(link),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="setup-form"]`)),
		chromedp.SendKeys(chromedp.CSS(`#name`), "Olga Ops"),
		chromedp.SendKeys(chromedp.CSS(`#email`), "olga@example.com"),
		chromedp.SendKeys(chromedp.CSS(`#password`), password),
		chromedp.SendKeys(chromedp.CSS(`#confirm`), password),
	)
	screenshot(t, ctx, "setup")
	mustDo(t, ctx, "submit setup",
		chromedp.Click(chromedp.CSS(`[data-testid="setup-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="nav"]`)),
	)
	if got := mustText(t, ctx, `[data-testid="role"]`); got != "admin" {
		t.Fatalf("role badge %q, want admin", got)
	}
	if got := mustText(t, ctx, `[data-testid="flash"]`); !strings.Contains(got, "first admin") {
		t.Fatalf("welcome flash %q", got)
	}
	nav := mustText(t, ctx, `[data-testid="nav"]`)
	for _, item := range []string{"Overview", "Environments", "Go-live", "Events", "Lookup", "Rollout", "Audit", "Settings"} {
		if !strings.Contains(nav, item) {
			t.Errorf("nav lacks %s: %q", item, nav)
		}
	}
	screenshot(t, ctx, "overview")

	// The rollout page opens on a fresh install: not started, the default plan.
	mustDo(t, ctx, "open rollout", chromedp.Click(chromedp.CSS(`[data-testid="nav-rollout"]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid="plan-stages"]`)))
	if got := mustText(t, ctx, `[data-testid="rollout-state"]`); got != "active" {
		t.Errorf("rollout state %q on a fresh install", got)
	}

	// "/" focuses the lookup box from anywhere on the page.
	mustDo(t, ctx, "press /", chromedp.KeyEvent("/"))
	focused, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement && document.activeElement.id`))
	if err != nil || focused != "lookup-q" {
		t.Errorf("after pressing / the focus is on %q (%v), want lookup-q", focused, err)
	}

	mustDo(t, ctx, "log out",
		chromedp.Click(chromedp.CSS(`[data-testid="logout"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="login-form"]`)),
	)
	mustDo(t, ctx, "wrong password",
		chromedp.SendKeys(chromedp.CSS(`#email`), "olga@example.com"),
		chromedp.SendKeys(chromedp.CSS(`#password`), "not my password"),
		chromedp.Click(chromedp.CSS(`[data-testid="login-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="login-error"]`)),
	)
	if got := mustText(t, ctx, `[data-testid="login-error"]`); got != loginFailed {
		t.Fatalf("login error %q", got)
	}
	screenshot(t, ctx, "login-error")
	// The email is kept; only the password is typed again.
	mustDo(t, ctx, "log in",
		chromedp.SendKeys(chromedp.CSS(`#password`), password),
		chromedp.Click(chromedp.CSS(`[data-testid="login-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="nav"]`)),
	)
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	if u, _ := url.Parse(loc); u.Path != "/" {
		t.Fatalf("after login at %s, want /", loc)
	}

	// The admin creates an API token and sees it exactly once.
	mustDo(t, ctx, "open settings",
		chromedp.Click(chromedp.CSS(`[data-testid="nav-settings"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="password-form"]`)),
		chromedp.Click(chromedp.CSS(`[data-testid="tab-users"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="users-table"]`)),
	)
	screenshot(t, ctx, "users")
	mustDo(t, ctx, "create a token",
		chromedp.Click(chromedp.CSS(`[data-testid="tab-tokens"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="tokens-empty"]`)),
		chromedp.SendKeys(chromedp.CSS(`#token-name`), "checkout-service"),
		chromedp.Click(chromedp.CSS(`input[value="events:read"]`)),
		chromedp.Click(chromedp.CSS(`[data-testid="create-token-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="token-once"]`)),
	)
	secret := mustText(t, ctx, `[data-testid="token-secret"]`)
	if res := app.api("GET", "/api/v1/whoami", secret, nil); res.StatusCode != 200 {
		t.Fatalf("token from the browser does not work: %d", res.StatusCode)
	}
	screenshot(t, ctx, "tokens")
}

// TestBrowserViewerSeesLess logs in as a viewer and checks the frame hides admin-only parts.
func TestBrowserViewerSeesLess(t *testing.T) {
	app := newTestApp(t)
	ctx := newBrowser(t)
	u := app.addUser("vera@example.com", "viewer")
	mustDo(t, ctx, "log in as viewer", signIn(app.url+"/audit", u.Email, `[data-testid="error-page"]`)...)
	// It came back to /audit after login, which a viewer may not open.
	if got := mustText(t, ctx, `.error-page h1`); got != "Forbidden" {
		t.Fatalf("viewer on /audit: %q", got)
	}
	nav := mustText(t, ctx, `[data-testid="nav"]`)
	if strings.Contains(nav, "Audit") {
		t.Errorf("viewer nav shows Audit: %q", nav)
	}
	screenshot(t, ctx, "viewer-forbidden")
}

func mustAttr(t *testing.T, ctx context.Context, sel, name string) string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%q).getAttribute(%q) || ""`, sel, name)))
	if err != nil {
		t.Fatalf("attribute %s of %s: %v", name, sel, err)
	}
	return v
}
