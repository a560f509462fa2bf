package web

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/go-chi/chi/v5"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
)

// layoutPages are the HTML pages the layout test visits, by route pattern: the path to open (with
// real ids) and whether it needs a session. Every GET route that answers a page must be here or
// in layoutSkipped, so a new page cannot miss the test.
func layoutPages(ids seededIDs) map[string][]string {
	return map[string][]string{
		"/":                            {"/"},
		"/login":                       {"/login"},
		"/setup":                       {freshPrefix + "/setup?token=" + layoutSetupToken},
		"/login/two-factor":            {"/login/two-factor"},
		"/callbacks/{env}/return":      {"/callbacks/sandbox/return?event=accounts_connected&request_id=req_layout_long_0123456789abcdef"},
		"/environments":                {"/environments"},
		"/go-live":                     {"/go-live"},
		"/events":                      {"/events", "/events?source=webhook&status=error"},
		"/events/{id}":                 {"/events/" + itoa(ids.webhook), "/events/" + itoa(ids.callback), "/events/" + itoa(ids.apiCall)},
		"/events/replay":               {"/events/replay?env=production"},
		"/events/rejected":             {"/events/rejected"},
		"/lookup":                      {"/lookup", "/lookup?q=" + ids.requestID, "/lookup?q=nothing-carries-this"},
		"/rollout":                     {"/rollout"},
		"/settings":                    {"/settings"},
		"/settings/account":            {"/settings/account"},
		"/settings/account/two-factor": {"/settings/account/two-factor"},
		"/audit":                       {"/audit"},
		"/settings/users":              {"/settings/users"},
		"/settings/tokens":             {"/settings/tokens"},
		"/settings/alerts":             {"/settings/alerts"},
		"/settings/alerts/{id}":        {"/settings/alerts/" + ids.channel},
	}
}

// layoutSkipped are GET routes that answer something other than a page, with the reason.
var layoutSkipped = map[string]string{
	"/events/stream":                "a text/event-stream, not a page",
	"/events/export":                "a CSV or NDJSON download",
	"/lookup/bundle":                "a JSON download",
	"/rollout/cohorts/{id}/members": "a CSV download",
	"/healthz":                      "plain text for probes",
	"/readyz":                       "plain text for probes",
	"/metrics":                      "Prometheus text",
}

// layoutSetupToken is a first-run link's token, so /setup shows its form. Its page is opened on a
// second, fresh server (freshPrefix): the form is only there while no user exists.
const (
	layoutSetupToken = "layout-setup-token-0123456789"
	freshPrefix      = "fresh:"
)

type seededIDs struct {
	webhook, callback, apiCall int64
	requestID, channel         string
}

// seedForLayout fills every page with data, including the long values that break layouts: long
// names, emails, URLs, event types, request ids and summaries.
func seedForLayout(t *testing.T, app *testApp) seededIDs {
	t.Helper()
	admin := app.addToken("layout admin token with a rather long descriptive name", auth.ScopeAdmin)
	app.addToken("events reader", auth.ScopeEventsRead, auth.ScopeEventsWrite, auth.ScopeRolloutDecide, auth.ScopeConfigRead, auth.ScopeMetricsRead)
	for _, env := range []string{"sandbox", "production"} {
		if res := app.patchEnv(admin, env, map[string]any{
			"secret_key": "sk_" + env + "_" + strings.Repeat("Z", 40), "public_key": "pk_" + env + "_" + strings.Repeat("q", 40),
			"client_token": "ct_" + env + "_" + strings.Repeat("c", 40), "base_url": "https://api." + env + ".tensfer.example/v1/a/rather/long/base/path",
			"callback_url":    "https://app.example.com/integrations/tensfer/" + env + "/callbacks/with/a/very/long/path/segment",
			"allowed_origins": []string{"https://app.example.com", "https://checkout.example.com"},
		}); res.StatusCode != 200 {
			t.Fatalf("seed %s: %d %s", env, res.StatusCode, res.body)
		}
	}
	rid := "req_layout_0123456789abcdef0123456789abcdef"
	secret := app.withSecret("production")
	app.withSecret("sandbox")
	body := `{"type":"identity.profile_ready","request_id":"` + rid + `","data":{"profile_id":"idp_` + strings.Repeat("x", 60) + `","user_id":"usr_a_very_long_user_identifier_0001","note":"` + strings.Repeat("long words without breaks ", 8) + `"}}`
	if res := app.sendWebhook("production", secret, "msg_layout_1", body); res.StatusCode != 200 {
		t.Fatalf("seed webhook: %d %s", res.StatusCode, res.body)
	}
	if res := app.sendWebhook("production", "whsec_"+strings.Repeat("A", 32), "msg_layout_bad", body); res.StatusCode < 400 {
		t.Fatalf("seed rejected webhook: %d %s", res.StatusCode, res.body)
	}
	req, _ := http.NewRequest(http.MethodPost, app.url+"/callbacks/production", strings.NewReader(`{"event":"initialization_error","event_id":"cb_layout","request_id":"`+rid+`","screen":"consent_with_a_long_screen_name","error":{"code":"sdk_init_failed","message":"`+strings.Repeat("the client token was not accepted ", 5)+`"}}`))
	req.Header.Set("Content-Type", "text/plain")
	if res := app.client().do(req); res.StatusCode != http.StatusAccepted {
		t.Fatalf("seed callback: %d %s", res.StatusCode, res.body)
	}
	writer := app.addToken("reporter", auth.ScopeEventsWrite)
	for i, status := range []int{201, 400, 401, 500, 204} {
		if res := app.api("POST", "/api/v1/api-calls", writer, jsonBody(map[string]any{
			"env": "production", "method": "post", "path": "/v1/payments/pay_" + strings.Repeat("9", 30) + "/cancel", "status": status, "duration_ms": 80 + i,
			"request_id": rid, "error_code": "some_rather_long_error_code", "error_message": strings.Repeat("the server said no ", 6)})); res.StatusCode != 201 {
			t.Fatalf("seed api call: %d %s", res.StatusCode, res.body)
		}
	}
	var ids seededIDs
	ids.requestID = rid
	evs, _, err := app.db.ListEvents(context.Background(), db.EventFilter{Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		switch e.Source {
		case db.SourceWebhook:
			ids.webhook = e.ID
		case db.SourceCallback:
			ids.callback = e.ID
		case db.SourceAPI:
			ids.apiCall = e.ID
		}
	}
	if ids.webhook == 0 || ids.callback == 0 || ids.apiCall == 0 {
		t.Fatalf("seed: events %+v", ids)
	}
	app.createCohort(t, admin, map[string]any{"name": "pilot customers in a long-named cohort", "environment": "production", "user_ids": []string{"usr_a_very_long_user_identifier_0001", "u2"}})
	app.createCohort(t, admin, map[string]any{"name": "sweden", "environment": "sandbox",
		"rules": []map[string]any{{"attribute": "country", "op": "in", "values": []string{"SE", "NO", "DK", "FI", "IS"}}}})
	ch := app.createChannel(admin, map[string]any{"name": "#payments-oncall-with-a-long-channel-name", "kind": "slack",
		"url": "https://hooks.slack.example/services/T0000000/B0000000/" + strings.Repeat("t", 24), "events": []string{"rollout.killed"}, "environments": []string{"production"}})
	ids.channel = ch.ID
	app.addUser("a.person.with.a.really.long.email.address@subsidiary.example.com", db.RoleOperator)
	for i := range 4 {
		app.addUser(fmt.Sprintf("viewer%d@example.com", i), db.RoleViewer)
	}
	return ids
}

// TestBrowserEveryPageFits opens every page at phone and desktop width (360 to 1920), light and dark, with data
// that includes long values, and fails when the document scrolls sideways, an element sticks out
// of its card (or a table scrolls inside its card at desktop width), the console reports an
// error, or the content security policy refuses something.
func TestBrowserEveryPageFits(t *testing.T) {
	app := newTestApp(t, func(c *Config) { c.AllowLoopbackURLs = true })
	ids := seedForLayout(t, app)
	fresh := newTestApp(t)
	if err := fresh.db.ReplaceSetupToken(context.Background(), layoutSetupToken, time.Hour); err != nil {
		t.Fatal(err)
	}
	pages := layoutPages(ids)

	// Every GET route that is not an API, ingest or asset route is a page here or skipped.
	err := chi.Walk(app.srv.routes(), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if method != http.MethodGet || strings.HasPrefix(route, "/api/") || strings.HasPrefix(route, "/ofrep/") || strings.HasPrefix(route, "/static/") {
			return nil
		}
		if _, ok := pages[route]; ok {
			return nil
		}
		if _, ok := layoutSkipped[route]; !ok {
			t.Errorf("GET %s is in neither layoutPages nor layoutSkipped", route)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// One browser for some 200 page loads: each step has its own deadline, not the whole test.
	tab := newBrowserTab(t)
	step := func() context.Context {
		ctx, cancel := context.WithTimeout(tab, 30*time.Second)
		t.Cleanup(cancel)
		return ctx
	}
	var mu sync.Mutex
	var problems []string
	err = chromedp.Listen(tab, func(ev any) {
		var msg string
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			msg = "exception: " + e.ExceptionDetails.Text
			if e.ExceptionDetails.Exception != nil {
				msg += " " + e.ExceptionDetails.Exception.Description
			}
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeAssert {
				var parts []string
				for _, a := range e.Args {
					parts = append(parts, string(a.Value))
				}
				msg = "console error: " + strings.Join(parts, " ")
			}
		case *cdplog.EventEntryAdded:
			if e.Entry.Level == cdplog.EntryLevelError {
				msg = fmt.Sprintf("%s: %s %s", e.Entry.Source, e.Entry.Text, e.Entry.URL)
			}
		}
		if msg != "" {
			mu.Lock()
			problems = append(problems, msg)
			mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	// The page reports CSP violations to itself; this records them where the test can read them.
	mustDo(t, step(), "listen",
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			if _, err := chromedp.Call(ctx, runtime.Enable, cdp.Empty{}); err != nil {
				return err
			}
			if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
				return err
			}
			_, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `window.__csp = [];
				document.addEventListener('securitypolicyviolation', e => window.__csp.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline') + ' ' + e.sourceFile + ':' + e.lineNumber));`})
			return err
		}),
	)
	takeProblems := func() []string {
		mu.Lock()
		defer mu.Unlock()
		p := problems
		problems = nil
		return p
	}

	// Logged-out pages first, then the same browser signs in as an admin.
	u := app.addUser("ana.maria.long-surname@example.com", db.RoleAdmin)
	var routes []string
	for r := range pages {
		routes = append(routes, r)
	}
	sort.Strings(routes)
	loggedOut := map[string]bool{"/login": true, "/setup": true, "/login/two-factor": true, "/callbacks/{env}/return": true}

	// 390 and 1440 in both themes; the narrowest phone and a wide monitor in one theme each.
	prev := "the first page"
	type size struct{ w, h int64 }
	passes := map[string][]size{"light": {{360, 740}, {390, 844}, {1440, 900}}, "dark": {{390, 844}, {1440, 900}, {1920, 1080}}}
	for _, scheme := range []string{"light", "dark"} {
		for _, sz := range passes[scheme] {
			mustDo(t, step(), "emulate",
				chromedp.EmulateViewport(sz.w, sz.h),
				emulateMedia("prefers-color-scheme", scheme),
			)
			for _, signedIn := range []bool{false, true} {
				if signedIn {
					mustDo(t, step(), "log in", signIn(app.url+"/login", u.Email, `#content`)...)
					prev = "the sign-in"
				}
				for _, route := range routes {
					if loggedOut[route] == signedIn {
						continue
					}
					for _, path := range pages[route] {
						where := fmt.Sprintf("%s at %dx%d %s", path, sz.w, sz.h, scheme)
						// What the browser reported after the last check belongs to the page before.
						for _, p := range takeProblems() {
							t.Errorf("%s (reported after its check): %s", prev, p)
						}
						prev = where
						target := app.url + path
						if rest, ok := strings.CutPrefix(path, freshPrefix); ok {
							target = fresh.url + rest
						}
						mustDo(t, step(), "open "+where, chromedp.Navigate(target), chromedp.WaitReady(chromedp.CSS(`body`)))
						ctx := step()
						report, err := chromedp.Run(ctx, chromedp.Evaluate[layoutReport](layoutCheckJS, chromedp.EvalAwaitPromise))
						if err != nil {
							t.Fatalf("%s: check: %v", where, err)
						}
						found := report.Problems
						for _, p := range report.CSP {
							found = append(found, "CSP violation: "+p)
						}
						// Disclosures that open in the flow (a refused delivery's body, key history)
						// must fit too; a row's inline form is a panel over the page and is left shut.
						opened, err := chromedp.Run(ctx, chromedp.Evaluate[int](`(() => { let n = 0;
							for (const d of document.querySelectorAll('details:not(.inline-details):not([open])')) { d.open = true; n++; }
							return n; })()`))
						if err != nil {
							t.Fatalf("%s: open disclosures: %v", where, err)
						}
						if opened > 0 {
							again, err := chromedp.Run(ctx, chromedp.Evaluate[layoutReport](layoutCheckJS, chromedp.EvalAwaitPromise))
							if err != nil {
								t.Fatalf("%s: check with disclosures open: %v", where, err)
							}
							for _, p := range again.Problems {
								found = append(found, "with its disclosures open: "+p)
							}
						}
						found = append(found, takeProblems()...)
						for _, p := range found {
							t.Errorf("%s: %s", where, p)
						}
						if len(found) > 0 {
							screenshot(t, ctx, slug(fmt.Sprintf("layout %s %d %s", path, sz.w, scheme)))
						}
					}
				}
				if signedIn {
					mustDo(t, step(), "log out",
						chromedp.Evaluate[chromedp.Void](`document.querySelector('form[action="/logout"]').submit()`),
						chromedp.WaitVisible(chromedp.CSS(`#email`)))
					prev = "the sign-out"
				}
			}
		}
	}
	for _, p := range takeProblems() {
		t.Errorf("%s (reported after its check): %s", prev, p)
	}
}

type layoutReport struct {
	Problems []string `json:"problems"`
	CSP      []string `json:"csp"`
}

// layoutCheckJS measures the open page once it is ready: loaded (deferred scripts have run),
// two frames painted, and the tasks queued until then (CSP violation reports among them) run. An
// element "sticks out" when its box passes its container's edge and no element in between clips
// it (a clipped element is measured itself). At desktop width a table must not scroll inside its
// frame either, and every stacking table carries its ARIA roles.
const layoutCheckJS = `(async () => {
	if (document.readyState !== 'complete') await new Promise(r => window.addEventListener('load', r, {once: true}));
	await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
	await new Promise(r => setTimeout(r, 0));
	const out = [];
	const de = document.documentElement;
	if (de.scrollWidth > de.clientWidth + 1) out.push('the document scrolls sideways: ' + de.scrollWidth + ' > ' + de.clientWidth);
	const name = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.getAttribute('data-testid') ? '[data-testid=' + el.getAttribute('data-testid') + ']' : '') +
		(typeof el.className === 'string' && el.className ? '.' + el.className.trim().split(/\s+/).join('.') : '') +
		' "' + (el.textContent || '').trim().slice(0, 40) + '"';
	const wide = window.innerWidth > 860;
	for (const box of document.querySelectorAll('.card, .table-wrap, .stat, .notice, .empty, .flash, .content, .auth-card, dialog[open]')) {
		const b = box.getBoundingClientRect();
		if (b.width === 0) continue;
		if (box.matches('.table-wrap') && box.scrollWidth > box.clientWidth + 1 && (wide || !box.querySelector('.table-stack'))) {
			out.push('table scrolls sideways in its card: ' + box.scrollWidth + ' > ' + box.clientWidth + ' in ' + name(box.querySelector('table') || box));
		}
		for (const el of box.querySelectorAll('*')) {
			const r = el.getBoundingClientRect();
			if (r.width === 0 || r.height === 0 || !el.checkVisibility({visibilityProperty: true})) continue;
			if (r.right <= b.right + 1 && r.left >= b.left - 1) continue;
			let clipped = false;
			for (let p = el.parentElement; p && p !== box; p = p.parentElement) {
				const cs = getComputedStyle(p);
				if (cs.overflowX !== 'visible' || cs.position === 'fixed') { clipped = true; break; }
			}
			if (clipped) continue;
			if (getComputedStyle(el).position === 'fixed' || el.closest('.sr-only')) continue;
			out.push('sticks out of ' + name(box).slice(0, 60) + ' by ' + Math.round(Math.max(r.right - b.right, b.left - r.left)) + 'px: ' + name(el));
			break;
		}
	}
	for (const t of document.querySelectorAll('table.table-stack')) {
		const rows = [...t.querySelectorAll(':scope > tbody > tr')];
		if (t.getAttribute('role') !== 'table' || rows.some(r => r.getAttribute('role') !== 'row' || [...r.children].some(c => c.getAttribute('role') !== 'cell'))) {
			out.push('a stacked table without its ARIA roles: ' + name(t));
		}
	}
	return {problems: out.slice(0, 10), csp: window.__csp || []};
})()`
