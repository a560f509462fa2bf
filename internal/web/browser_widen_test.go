package web

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/rollout"
)

// TestBrowserRolloutKillAsAPhoneTypesIt: at a 390 px phone width, "Kill " (as a phone's keyboard
// capitalises and spaces it) is not blocked by the browser's own validation, the kill goes
// through, and a Pause and a Roll back from a page that went stale (a cohort change, a pause
// since) are done rather than refused.
func TestBrowserRolloutKillAsAPhoneTypesIt(t *testing.T) {
	app := newTestApp(t)
	ctx := newBrowser(t)
	u := app.addUser("ada@example.com", db.RoleAdmin)
	admin := app.addToken("ops", auth.ScopeAdmin)
	app.actOnRollout(t, admin, "advance", "")
	app.actOnRollout(t, admin, "advance", "")
	mustDo(t, ctx, "phone width", chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)))
	mustDo(t, ctx, "log in", signIn(app.url+"/rollout", u.Email, `[data-testid="action-pause"]`)...)

	app.createCohort(t, admin, map[string]any{"name": "blocked", "environment": "off", "user_ids": []string{"u1"}}) // the page is stale now
	mustDo(t, ctx, "pause from the stale page", clickToLoad(`[data-testid="action-pause"]`, chromedp.WaitVisible(chromedp.CSS(`[data-testid="action-resume"]`)))...)
	if st := app.srv.rollout.Snapshot().Rollout.State; st != rollout.Paused {
		t.Fatalf("after the pause: %s", st)
	}
	app.createCohort(t, admin, map[string]any{"name": "blocked-2", "environment": "off", "user_ids": []string{"u2"}})
	mustDo(t, ctx, "roll back from the stale page", clickToLoad(`[data-testid="action-rollback"]`, chromedp.WaitVisible(chromedp.CSS(`[data-testid="flash"]`)))...)
	if got := mustText(t, ctx, `[data-testid="flash"]`); !strings.Contains(got, "Done") || app.srv.rollout.Snapshot().Rollout.Stage != 1 {
		t.Fatalf("the rollback from a stale page: %q, stage %d", got, app.srv.rollout.Snapshot().Rollout.Stage)
	}

	mustDo(t, ctx, "kill typed as a phone types it", append([]chromedp.Action[chromedp.Void]{
		chromedp.SendKeys(chromedp.CSS(`#kill-confirm`), "Kill "),
	}, clickToLoad(`[data-testid="kill"]`, chromedp.WaitVisible(chromedp.CSS(`[data-testid="rollout-killed"]`)))...)...)
	if d := app.srv.rollout.Check(rollout.User{ID: "anyone"}); d.Env != rollout.Off || d.Reason != rollout.ReasonKilled {
		t.Fatalf("after the kill: %+v", d)
	}
}
