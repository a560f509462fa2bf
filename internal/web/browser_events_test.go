package web

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserEventsJourney opens the live feed, sends a test event (a plain form post that comes
// back to the feed with a flash), watches a webhook from outside arrive without a reload, and
// follows its request_id to the lookup page.
func TestBrowserEventsJourney(t *testing.T) {
	app := newTestApp(t)
	ctx := newBrowser(t)
	secret := app.withSecret("sandbox")
	u := app.addUser("otto@example.com", "operator")
	mustDo(t, ctx, "log in and open events", append(signIn(app.url+"/events", u.Email, `[data-testid="events-empty"]`),
		chromedp.WaitVisible(chromedp.CSS(`.live[data-state="live"]`)),
	)...)
	screenshot(t, ctx, "events-empty")
	mustDo(t, ctx, "send a test event; the page comes back with a flash and the row",
		chromedp.Click(chromedp.CSS(`[data-testid="test-event-sandbox"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="flash"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#feed [data-testid="event-row"]`)),
	)
	if got := mustText(t, ctx, `#feed [data-testid="event-type"]`); got != "dashboard.test" {
		t.Fatalf("live row type %q", got)
	}
	// A webhook from outside the browser shows up too, on top.
	if res := app.sendWebhook("sandbox", secret, "msg_outside", `{"type":"payment.cancelled","request_id":"req_outside","data":{"payment_id":"pay_9"}}`); res.StatusCode != 200 {
		t.Fatalf("webhook: %d", res.StatusCode)
	}
	mustDo(t, ctx, "outside webhook arrives", chromedp.WaitVisible(chromedp.CSS(`#feed tr:first-child a[href="/lookup?q=req_outside"]`)))
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#feed tr').length`))
	if err != nil || rows != 2 {
		t.Fatalf("rows in feed: %d %v", rows, err)
	}
	// The new rows were announced to screen readers.
	// A row the feed added keeps the table's ARIA roles (the rows stack on a phone).
	if ok, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { const tr = document.querySelector('#feed tr:first-child');
		return tr.getAttribute('role') === 'row' && [...tr.children].every(c => c.getAttribute('role') === 'cell'); })()`)); !ok {
		t.Fatal("a live row lacks the table's ARIA roles")
	}
	mustDo(t, ctx, "rows announced", chromedp.WaitReady(chromedp.CSS(`[data-testid="feed-announce"]:not(:empty)`)))
	if got := mustAttr(t, ctx, `[data-testid="feed-announce"]`, "aria-live"); got != "polite" {
		t.Fatalf("feed announcer aria-live %q", got)
	}
	// Pause is a toggle: its label stays, aria-pressed changes, and what arrives meanwhile is
	// counted next to it until it is pressed again.
	mustDo(t, ctx, "pause", chromedp.Click(chromedp.CSS(`[data-testid="feed-toggle"]`)), chromedp.WaitReady(chromedp.CSS(`[data-testid="feed-toggle"][aria-pressed="true"]`)))
	if got := mustText(t, ctx, `[data-testid="feed-toggle"]`); got != "Pause" {
		t.Fatalf("paused toggle says %q", got)
	}
	if res := app.sendWebhook("sandbox", secret, "msg_held", `{"type":"payment.cancelled","request_id":"req_held","data":{"payment_id":"pay_8"}}`); res.StatusCode != 200 {
		t.Fatalf("webhook: %d", res.StatusCode)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector('[data-testid="feed-held"]').textContent.startsWith('1 new')`)); err != nil {
		t.Fatalf("held row not counted: %v", err)
	}
	if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#feed tr').length`)); n != 2 {
		t.Fatalf("paused feed shows %d rows, want 2", n)
	}
	mustDo(t, ctx, "unpause",
		chromedp.Click(chromedp.CSS(`[data-testid="feed-toggle"]`)),
		chromedp.WaitReady(chromedp.CSS(`[data-testid="feed-toggle"][aria-pressed="false"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#feed tr:first-child a[href="/lookup?q=req_held"]`)),
	)
	screenshot(t, ctx, "events-live")
	mustDo(t, ctx, "follow the request_id",
		chromedp.Click(chromedp.CSS(`#feed tr:nth-child(2) [data-testid="event-request-id"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="timeline"]`)),
	)
	if got := mustText(t, ctx, `[data-testid="lookup-query"]`); got != "req_outside" {
		t.Fatalf("lookup for %q", got)
	}
	if got := mustText(t, ctx, `[data-testid="timeline"] [data-testid="step-link"]`); !strings.Contains(got, "payment.cancelled") {
		t.Fatalf("lookup shows %q", got)
	}
	screenshot(t, ctx, "lookup")
}
