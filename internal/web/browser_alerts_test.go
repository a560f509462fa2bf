package web

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/tensfer-golive/dashboard/internal/db"
)

// TestBrowserAlertChannels: an admin adds a signed webhook channel under Settings → Alerts, copies
// its secret from the one page that shows it, sends a test and sees the receiver's answer in the
// flash and the deliveries table; the page fits a phone's width, in both themes.
func TestBrowserAlertChannels(t *testing.T) {
	app := newTestApp(t, loopbackAlerts)
	rec := newAlertReceiver(t, nil)
	ctx := newBrowser(t)
	u := app.addUser("alma@example.com", db.RoleAdmin)
	mustDo(t, ctx, "log in and open Alerts", signIn(app.url+"/settings/alerts", u.Email, `[data-testid="alert-channels-empty"]`)...)
	screenshotWidths(t, ctx, "alerts-empty")
	mustDo(t, ctx, "add a webhook channel", append([]chromedp.Action[chromedp.Void]{
		chromedp.SendKeys(chromedp.CSS(`#alert-name`), "pager"),
		chromedp.SetValue(chromedp.CSS(`#alert-kind`), "webhook"),
		chromedp.SendKeys(chromedp.CSS(`#alert-url`), rec.URL+"/alerts"),
		chromedp.Click(chromedp.CSS(`input[name="events"][value="rollout.killed"]`)),
	}, clickToLoad(`[data-testid="alert-create-submit"]`, chromedp.WaitVisible(chromedp.CSS(`[data-testid="alert-secret"]`)))...)...)
	if secret := mustText(t, ctx, `[data-testid="alert-secret"]`); !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("secret shown %q", secret)
	}
	mustDo(t, ctx, "send a test", clickToLoad(`[data-testid="alert-test"]`, chromedp.WaitVisible(chromedp.CSS(`[data-testid="flash"]`)))...)
	if flash := mustText(t, ctx, `[data-testid="flash"]`); !strings.Contains(flash, "Test alert delivered to pager: 200") {
		t.Errorf("flash %q", flash)
	}
	if got := mustText(t, ctx, `[data-testid="alert-delivery-answer"]`); !strings.Contains(got, "200") || !strings.Contains(got, "ok") {
		t.Errorf("answer column %q", got)
	}
	if len(rec.requests()) != 1 {
		t.Errorf("the receiver got %d requests", len(rec.requests()))
	}
	// Both pages fit a phone's width (tables scroll inside their cards), in both themes.
	fits := func(page string) {
		for _, theme := range []string{"dark", "light"} {
			mustDo(t, ctx, "phone width, "+theme,
				chromedp.Evaluate[chromedp.Void](`document.documentElement.dataset.theme = "`+theme+`"`),
				chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)))
			wide, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`))
			if err != nil || wide {
				t.Errorf("%s, %s: the page is wider than a 390 px screen (%v)", page, theme, err)
			}
			screenshot(t, ctx, page+"-"+theme+"-390")
			mustDo(t, ctx, "desktop width", chromedp.EmulateViewport(1360, 900))
			screenshot(t, ctx, page+"-"+theme)
		}
	}
	fits("alerts")
	mustDo(t, ctx, "open the channel", clickToLoad(`[data-testid="alert-channel-name"]`, chromedp.WaitVisible(chromedp.CSS(`[data-testid="alert-edit-form"]`)))...)
	if hint := mustText(t, ctx, `[data-testid="alert-edit-form"] .hint`); !strings.Contains(hint, "Leave empty to keep it") || strings.Contains(hint, "/alerts") {
		t.Errorf("URL hint %q: the host and fingerprint only", hint)
	}
	fits("alert-channel")
}
