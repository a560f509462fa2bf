package web

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/tensfer-golive/dashboard/internal/tensfer"
	"github.com/tensfer-golive/dashboard/internal/tensfer/tensfersim"
)

// TestBrowserEnvironmentsJourney sets sandbox keys and verifies them against the simulator, then
// configures production and watches the go-live checklist move.
func TestBrowserEnvironmentsJourney(t *testing.T) {
	_, root := newSimulator(t, tensfersim.Config{AccountName: "Acme"})
	app := newTestApp(t, loopbackOK)
	ctx := newBrowser(t)
	u := app.addUser("ada@example.com", "admin")
	keys := tensfersim.DefaultKeys()
	mustDo(t, ctx, "log in", signIn(app.url+"/environments", u.Email, `[data-testid="env-sandbox"]`)...)
	setKey := func(env, kind, value string) {
		t.Helper()
		card := `[data-testid="env-` + env + `"] `
		mustDo(t, ctx, "set "+env+" "+kind, append([]chromedp.Action[chromedp.Void]{
			chromedp.Click(chromedp.CSS(card + `[data-testid="set-` + kind + `"]`)),
			chromedp.SendKeys(chromedp.CSS(`#`+env+`-`+kind), value),
		}, clickToLoad(card+`[data-testid="save-`+kind+`"]`, chromedp.WaitVisible(chromedp.CSS(`[data-testid="flash"]`)))...)...)
		if got := mustText(t, ctx, card+`[data-testid="key-`+kind+`"] [data-testid="key-last4"]`); got != "…"+value[len(value)-4:] {
			t.Fatalf("%s %s shows %q", env, kind, got)
		}
	}
	// Sandbox: base URL, keys, verify.
	mustDo(t, ctx, "sandbox URLs", append([]chromedp.Action[chromedp.Void]{
		chromedp.SendKeys(chromedp.CSS(`#sandbox-base_url`), tensfersim.BaseURL(root, tensfer.Sandbox)),
	}, clickToLoad(`[data-testid="env-sandbox"] [data-testid="save-urls"]`, chromedp.WaitVisible(chromedp.CSS(`[data-testid="flash"]`)))...)...)
	setKey("sandbox", "secret_key", keys[tensfer.Sandbox].SecretKey)
	setKey("sandbox", "public_key", keys[tensfer.Sandbox].PublicKey)
	mustDo(t, ctx, "verify sandbox", clickToLoad(`[data-testid="env-sandbox"] [data-testid="verify"]`,
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="env-sandbox"] [data-testid="verify-result"]`)))...)
	if got := mustText(t, ctx, `[data-testid="env-sandbox"] [data-testid="verify-state"]`); got != "verified" {
		t.Fatalf("sandbox verify state %q", got)
	}
	// A sandbox key pasted into production is caught with a clear message.
	card := `[data-testid="env-production"] `
	mustDo(t, ctx, "paste sandbox key into production",
		chromedp.Click(chromedp.CSS(card+`[data-testid="set-secret_key"]`)),
		chromedp.SendKeys(chromedp.CSS(`#production-secret_key`), keys[tensfer.Sandbox].SecretKey),
		chromedp.Click(chromedp.CSS(card+`[data-testid="save-secret_key"]`)),
		chromedp.WaitVisible(chromedp.CSS(card+`.field-error`)),
	)
	if got := mustText(t, ctx, card+`.field-error`); !strings.Contains(got, "this is the sandbox secret API key") {
		t.Fatalf("mistake message %q", got)
	}
	// Production: URLs and all three keys, then verify; the checklist moves.
	mustDo(t, ctx, "production URLs", append([]chromedp.Action[chromedp.Void]{
		chromedp.SendKeys(chromedp.CSS(`#production-base_url`), tensfersim.BaseURL(root, tensfer.Production)),
		chromedp.SendKeys(chromedp.CSS(`#production-callback_url`), "https://app.example.com/tensfer/return"),
	}, clickToLoad(card+`[data-testid="save-urls"]`, chromedp.WaitVisible(chromedp.CSS(`[data-testid="flash"]`)))...)...)
	setKey("production", "secret_key", keys[tensfer.Production].SecretKey)
	setKey("production", "public_key", keys[tensfer.Production].PublicKey)
	setKey("production", "client_token", keys[tensfer.Production].ClientToken)
	mustDo(t, ctx, "open go-live before verify", chromedp.Click(chromedp.CSS(`[data-testid="nav-go-live"]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid="golive-progress"]`)))
	before := mustText(t, ctx, `[data-testid="golive-progress"]`)
	mustDo(t, ctx, "open environments", clickToLoad(`[data-testid="nav-environments"]`, chromedp.WaitVisible(chromedp.CSS(card+`[data-testid="verify"]`)))...)
	mustDo(t, ctx, "verify production", clickToLoad(card+`[data-testid="verify"]`, chromedp.WaitVisible(chromedp.CSS(card+`[data-testid="verify-result"]`)))...)
	screenshot(t, ctx, "environments")
	mustDo(t, ctx, "open go-live", chromedp.Click(chromedp.CSS(`[data-testid="nav-go-live"]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid="golive-progress"]`)))
	after := mustText(t, ctx, `[data-testid="golive-progress"]`)
	if before != "1 of 5 done" || after != "3 of 5 done" {
		t.Fatalf("checklist progress %q -> %q, want 1 of 5 -> 3 of 5 (webhook and rollout still open)", before, after)
	}
	screenshot(t, ctx, "go-live")
}
