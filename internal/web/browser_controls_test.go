package web

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/launch"
	"github.com/tensfer-golive/dashboard/internal/rollout"
)

// TestBrowserRolloutControlsOnAPhone drives the rollout's controls at a 390 px phone width as
// on-call meets them (issue 17, items 9 to 14): a cohort form refused and refilled with every
// problem named, a deletion that says how many users it moves and is undone from the history, an
// advance while a guardrail is breached that needs a second, explicit confirmation naming it, and
// a kill from a page that went stale when the rollout was paused under it.
func TestBrowserRolloutControlsOnAPhone(t *testing.T) {
	app := newTestApp(t)
	ctx := newBrowser(t)
	bg := context.Background()
	u := app.addUser("ada@example.com", db.RoleAdmin)
	admin := app.addToken("ops", auth.ScopeAdmin)
	mustDo(t, ctx, "phone width", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)))
	mustDo(t, ctx, "log in", signIn(app.url+"/rollout", u.Email, `[data-testid="plan-stages"]`)...)

	// 13: a refused form keeps what was typed and names every problem.
	mustDo(t, ctx, "a cohort with two bad rule lines", append([]chromedp.Action[chromedp.Void]{
		chromedp.Click(chromedp.CSS(`[data-testid="cohort-add"] summary`)),
		chromedp.SendKeys(chromedp.CSS(`#cohort-name`), "nordic pilot"),
		chromedp.SetValue(chromedp.CSS(`#cohort-env`), "sandbox"),
		chromedp.SendKeys(chromedp.CSS(`#cohort-rules`), "country like SE\nplan pro"),
		chromedp.SendKeys(chromedp.CSS(`#cohort-password`), testPassword),
	}, clickToLoad(`[data-testid="cohort-create"]`, chromedp.WaitVisible(chromedp.CSS(`#cohort-name`)))...)...)
	name, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(`#cohort-name`)))
	if err != nil || name != "nordic pilot" {
		t.Fatalf("the name after a refusal: %q %v", name, err)
	}
	rules, _ := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(`#cohort-rules`)))
	env, _ := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(`#cohort-env`)))
	if !strings.Contains(rules, "country like SE") || !strings.Contains(rules, "plan pro") || env != "sandbox" {
		t.Fatalf("the rules and environment after a refusal: %q %q", rules, env)
	}
	if got := mustText(t, ctx, `#err-cohort-rules`); !strings.Contains(got, "line 1") || !strings.Contains(got, "line 2") {
		t.Fatalf("not every problem is named: %q", got)
	}
	if cs, _ := app.srv.rollout.Cohorts(bg); len(cs) != 0 {
		t.Fatal("a refused cohort was stored")
	}

	// 11: the deletion says how many users it moves, asks for the password, and is undone.
	ids := make([]string, 10_000)
	for i := range ids {
		ids[i] = fmt.Sprintf("pilot-%d", i)
	}
	app.createCohort(t, admin, map[string]any{"name": "pilot", "environment": "production", "user_ids": ids})
	row := `[data-testid="cohort-pilot"] `
	mustDo(t, ctx, "open the deletion", chromedp.Navigate(app.url+"/rollout"),
		chromedp.Click(chromedp.CSS(row+`[data-testid="delete-pilot"] summary`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="delete-consequence-pilot"]`)))
	if got := mustText(t, ctx, `[data-testid="delete-consequence-pilot"]`); !strings.Contains(got, "10,000 ids stop going to production") {
		t.Fatalf("the confirmation says %q", got)
	}
	screenshot(t, ctx, "rollout-delete-390")
	mustDo(t, ctx, "delete", append([]chromedp.Action[chromedp.Void]{
		chromedp.SendKeys(chromedp.CSS(row+`[data-testid="delete-pilot"] input[type=password]`), testPassword),
	}, clickToLoad(`[data-testid="delete-confirm-pilot"]`, chromedp.WaitVisible(chromedp.CSS(`[data-testid="flash"]`)))...)...)
	if d := app.srv.rollout.Check(rollout.User{ID: "pilot-9999"}); d.Cohort == "pilot" {
		t.Fatalf("a deleted cohort still decides: %+v", d)
	}
	mustDo(t, ctx, "undo from the history", append([]chromedp.Action[chromedp.Void]{
		chromedp.Click(chromedp.CSS(`[data-testid="undo-pilot"] summary`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid="undo-pilot"] input[type=password]`), testPassword),
	}, clickToLoad(`[data-testid="undo-confirm-pilot"]`, chromedp.WaitVisible(chromedp.CSS(`[data-testid="cohort-pilot"]`)))...)...)
	if d := app.srv.rollout.Check(rollout.User{ID: "pilot-9999"}); d.Cohort != "pilot" || d.Env != rollout.Production {
		t.Fatalf("after the undo: %+v", d)
	}

	// 10 and 14: an advance while a guardrail is breached names it, links to its events, and
	// needs the second confirmation.
	rate := []launch.GuardrailInput{{Signal: rollout.SignalAPIErrors, MaxRate: 0.01, MinVolume: 1, Window: "15m"}}
	if _, err := app.srv.rollout.Configure(bg, launch.Plan{Guardrails: &rate}, 0, db.Audit{Actor: "test", Action: "rollout.configure"}); err != nil {
		t.Fatal(err)
	}
	writer := app.addToken("checkout", auth.ScopeEventsWrite)
	if res := app.api(http.MethodPost, "/api/v1/api-calls", writer, jsonBody(map[string]any{"env": "production", "method": "POST", "path": "/payments",
		"status": 503, "duration_ms": 30, "request_id": "req_breach"})); res.StatusCode != http.StatusCreated {
		t.Fatalf("report a failed call: %d %s", res.StatusCode, res.body)
	}
	mustDo(t, ctx, "advance while breached", append([]chromedp.Action[chromedp.Void]{chromedp.Navigate(app.url + "/rollout"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="action-advance"]`))},
		clickToLoad(`[data-testid="action-advance"]`, chromedp.WaitVisible(chromedp.CSS(`[data-testid="breach-confirm"]`)))...)...)
	if got := mustText(t, ctx, `[data-testid="breach-api_errors"]`); !strings.Contains(got, "API 5xx") || !strings.Contains(got, "1 of 1") {
		t.Fatalf("the confirmation names %q", got)
	}
	if href := mustAttr(t, ctx, `[data-testid="breach-api_errors"] a`, "href"); !strings.Contains(href, "source=api") || !strings.Contains(href, "status=error") {
		t.Fatalf("the breached guardrail links to %q", href)
	}
	screenshot(t, ctx, "rollout-breach-390")
	if st := app.srv.rollout.Snapshot().Rollout; st.Stage != 0 {
		t.Fatalf("advanced without the confirmation: stage %d", st.Stage)
	}
	mustDo(t, ctx, "confirm the override", clickToLoad(`[data-testid="override-confirm"]`, chromedp.WaitVisible(chromedp.CSS(`[data-testid="flash"]`)))...)
	if st := app.srv.rollout.Snapshot().Rollout; st.Stage != 1 {
		t.Fatalf("after the override: stage %d", st.Stage)
	}
	rows, _, _ := app.db.ListAudit(bg, db.AuditFilter{Action: "rollout.advance", Limit: 1})
	if len(rows) != 1 || !strings.Contains(string(rows[0].After), `"override_guardrails":true`) {
		t.Fatalf("the override is not audited as such: %+v", rows)
	}

	// 9: the page goes stale (a guardrail pauses the rollout under it); the kill still works.
	mustDo(t, ctx, "open the page", chromedp.Navigate(app.url+"/rollout"), chromedp.WaitVisible(chromedp.CSS(`#kill-confirm`)))
	app.actOnRollout(t, admin, "pause", "")
	mustDo(t, ctx, "kill from the stale page", append([]chromedp.Action[chromedp.Void]{
		chromedp.SendKeys(chromedp.CSS(`#kill-confirm`), "kill"),
	}, clickToLoad(`[data-testid="kill"]`, chromedp.WaitVisible(chromedp.CSS(`[data-testid="rollout-killed"]`)))...)...)
	if got := mustText(t, ctx, `[data-testid="flash"]`); !strings.Contains(got, "Killed") {
		t.Fatalf("the kill's flash: %q", got)
	}
	if d := app.srv.rollout.Check(rollout.User{ID: "pilot-1"}); d.Env != rollout.Off || d.Reason != rollout.ReasonKilled {
		t.Fatalf("after the kill: %+v", d)
	}
	screenshot(t, ctx, "rollout-killed-390")
}
