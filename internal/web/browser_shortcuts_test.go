package web

import (
	"net/url"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserKeyboardShortcuts: "?" opens the list of shortcuts, Esc closes it, and the go-to
// keys it lists lead where it says ("g e" to Events, "g n" to Environments, "g l" to Lookup).
func TestBrowserKeyboardShortcuts(t *testing.T) {
	app := newTestApp(t)
	ctx := newBrowser(t)
	u := app.addUser("kim@example.com", "viewer")
	mustDo(t, ctx, "log in",
		chromedp.Navigate(app.url+"/login"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="login-form"]`)),
		chromedp.SendKeys(chromedp.CSS(`#email`), u.Email),
		chromedp.SendKeys(chromedp.CSS(`#password`), testPassword),
		chromedp.Click(chromedp.CSS(`[data-testid="login-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="nav"]`)),
	)
	mustDo(t, ctx, "? opens the list",
		chromedp.KeyEvent("?"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="shortcuts"]`)),
	)
	keys, what := mustText(t, ctx, `#shortcuts tr[data-goto="e"] td:first-child`), mustText(t, ctx, `#shortcuts tr[data-goto="e"] td:last-child`)
	if keys != "g e" || what != "Go to Events" {
		t.Fatalf("the list says %q: %q", keys, what)
	}
	// A viewer does not see Audit, so neither does the list.
	if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#shortcuts tr[data-goto="a"]').length`)); n != 0 {
		t.Fatal("the list offers Audit to a viewer")
	}
	screenshot(t, ctx, "shortcuts")
	mustDo(t, ctx, "Esc closes it",
		chromedp.KeyEvent("\x1b"),
		chromedp.WaitNotVisible(chromedp.CSS(`[data-testid="shortcuts"]`)),
	)
	for _, tt := range []struct{ key, path string }{{"e", "/events"}, {"n", "/environments"}, {"o", "/"}, {"l", "/lookup"}} {
		mustDo(t, ctx, "g "+tt.key, append([]chromedp.Action[chromedp.Void]{
			chromedp.SetAttributeValue(chromedp.CSS("body"), "data-old-page", "1"),
			chromedp.KeyEvent("g"),
			chromedp.KeyEvent(tt.key),
		}, chromedp.WaitReady(chromedp.CSS("body:not([data-old-page])")), chromedp.WaitVisible(chromedp.CSS(`[data-testid="nav"]`)))...)
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		if p, _ := url.Parse(loc); p.Path != tt.path {
			t.Fatalf("g %s went to %s, want %s", tt.key, loc, tt.path)
		}
	}
}
