package web

import (
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserKeyboardShortcuts: "?" opens the list of shortcuts, Esc closes it, and the go-to
// keys it lists lead where it says ("g e" to Events, "g n" to Environments, "g l" to Lookup).
func TestBrowserKeyboardShortcuts(t *testing.T) {
	app := newTestApp(t)
	ctx := newBrowser(t)
	u := app.addUser("kim@example.com", "viewer")
	mustDo(t, ctx, "log in", signIn(app.url+"/login", u.Email, `[data-testid="nav"]`)...)
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

// TestBrowserMenuDrawer: on a phone the navigation hides behind the top bar's menu button. The
// button opens it with the current page's link focused, Esc and the scrim close it, and focus
// comes back to the button; on a desktop the sidebar is simply there and the button is not. The
// Events filters fold the same way: away on a phone unless a filter is on, always there wider.
func TestBrowserMenuDrawer(t *testing.T) {
	app := newTestApp(t)
	ctx := newBrowser(t)
	u := app.addUser("kim@example.com", "viewer")
	visible := func(sel string) bool {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { const el = document.querySelector('`+sel+`');
			if (!el) return false; const r = el.getBoundingClientRect();
			return el.checkVisibility({visibilityProperty: true}) && r.right > 0 && r.left < window.innerWidth && r.width > 0; })()`))
		if err != nil {
			t.Fatalf("visible %s: %v", sel, err)
		}
		return v
	}
	state := func() (expanded, focused string) {
		t.Helper()
		expanded = mustAttr(t, ctx, `[data-testid="menu-button"]`, "aria-expanded")
		focused, _ = chromedp.Run(ctx, chromedp.Evaluate[string](`(document.activeElement && (document.activeElement.getAttribute('data-testid') || document.activeElement.textContent.trim())) || ''`))
		return expanded, focused
	}
	mustDo(t, ctx, "a phone",
		// The drawer slides in, unless the user asks for less motion: then it is in place as soon
		// as it shows, which is what the steps below wait for.
		emulateMedia("prefers-reduced-motion", "reduce"),
		chromedp.EmulateViewport(390, 844),
	)
	mustDo(t, ctx, "log in on it", append(signIn(app.url+"/login", u.Email, `#content`),
		chromedp.Navigate(app.url+"/events"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="menu-button"]`)),
	)...)
	if visible(`[data-testid="nav-events"]`) || visible(`[data-testid="menu-logout"]`) {
		t.Fatal("the navigation shows on a phone before the menu is opened")
	}
	if !visible(`#lookup-q`) {
		t.Fatal("no search box in the phone's top bar")
	}
	// The Events filters fold away on a phone, so the feed starts near the top.
	if visible(`[data-testid="event-filters"]`) || !visible(`[data-testid="filters-toggle"]`) {
		t.Fatal("on a phone the Events filters are not folded behind their toggle")
	}
	mustDo(t, ctx, "unfold the filters", chromedp.Click(chromedp.CSS(`[data-testid="filters-toggle"]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid="event-filters"]`)))
	mustDo(t, ctx, "a filter on", chromedp.Navigate(app.url+"/events?source=webhook"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="event-filters"]`)))
	mustDo(t, ctx, "back to the feed", chromedp.Navigate(app.url+"/events"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="menu-button"]`)))
	mustDo(t, ctx, "open the menu", chromedp.Click(chromedp.CSS(`[data-testid="menu-button"]`)), chromedp.WaitVisible(chromedp.CSS(`[data-testid="nav-events"]`)))
	if exp, foc := state(); exp != "true" || foc != "nav-events" {
		t.Fatalf("open menu: aria-expanded=%s, focus on %q; want true and the current page's link", exp, foc)
	}
	if !visible(`[data-testid="menu-logout"]`) || !visible(`[data-testid="version"]`) {
		t.Fatal("the drawer lacks log-out or the version")
	}
	screenshot(t, ctx, "menu-open-390")
	// The drawer is modal: Tab goes round its links and buttons, never to the page behind it.
	if role := mustAttr(t, ctx, `#sidebar`, "aria-modal"); role != "true" {
		t.Fatalf("the open drawer's aria-modal is %q", role)
	}
	for i := range 14 {
		mustDo(t, ctx, "Tab", chromedp.KeyEvent("\t"))
		in, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.activeElement === document.body || !!document.activeElement.closest('#sidebar')`))
		if !in {
			_, foc := state()
			t.Fatalf("Tab %d left the open drawer for %q", i+1, foc)
		}
	}
	mustDo(t, ctx, "Esc closes it", chromedp.KeyEvent("\x1b"), chromedp.WaitNotVisible(chromedp.CSS(`[data-testid="nav-events"]`)))
	if exp, foc := state(); exp != "false" || foc != "menu-button" {
		t.Fatalf("after Esc: aria-expanded=%s, focus on %q; want false and the menu button", exp, foc)
	}
	mustDo(t, ctx, "the scrim closes it",
		chromedp.Click(chromedp.CSS(`[data-testid="menu-button"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="nav-events"]`)),
		// The scrim covers the page to the right of the drawer.
		chromedp.MouseClickXY(370, 400),
		chromedp.WaitNotVisible(chromedp.CSS(`[data-testid="nav-events"]`)),
	)
	mustDo(t, ctx, "a link in the drawer opens its page", append([]chromedp.Action[chromedp.Void]{
		chromedp.Click(chromedp.CSS(`[data-testid="menu-button"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="nav-lookup"]`)),
	}, clickToLoad(`[data-testid="nav-lookup"]`, chromedp.WaitVisible(chromedp.CSS(`#content`)))...)...)
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.HasSuffix(loc, "/lookup") {
		t.Fatalf("the drawer's Lookup link went to %s", loc)
	}
	if visible(`[data-testid="nav-events"]`) {
		t.Fatal("the drawer stays open on the new page")
	}
	mustDo(t, ctx, "desktop", chromedp.EmulateViewport(1440, 900), chromedp.Navigate(app.url+"/events"), chromedp.WaitVisible(chromedp.CSS(`[data-testid="nav-events"]`)))
	if visible(`[data-testid="menu-button"]`) || visible(`[data-testid="menu-logout"]`) || !visible(`[data-testid="logout"]`) {
		t.Fatal("at desktop width the menu button or the drawer's copy of the user block shows, or the top bar's log-out does not")
	}
	if !visible(`[data-testid="event-filters"]`) || visible(`[data-testid="filters-toggle"]`) {
		t.Fatal("at desktop width the Events filters are folded or their toggle shows")
	}
}
