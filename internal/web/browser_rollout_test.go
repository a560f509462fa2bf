package web

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/tensfer-golive/dashboard/internal/rollout"
)

// TestBrowserRolloutJourney: an admin creates a cohort from an allow-list file, advances the
// rollout, checks a user, kills it with the typed confirmation and leaves killed with the
// password, watching decisions change at each step.
func TestBrowserRolloutJourney(t *testing.T) {
	app := newTestApp(t)
	ctx := newBrowser(t)
	u := app.addUser("ada@example.com", "admin")
	list := filepath.Join(t.TempDir(), "pilot.csv")
	var b strings.Builder
	b.WriteString("user_id,plan\n")
	for i := range 1000 {
		fmt.Fprintf(&b, "pilot-%d,pro\n", i)
	}
	if err := os.WriteFile(list, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	mustDo(t, ctx, "log in", signIn(app.url+"/rollout", u.Email, `[data-testid="plan-stages"]`)...)
	mustDo(t, ctx, "create a cohort from a file",
		chromedp.Click(chromedp.CSS(`[data-testid="cohort-add"] summary`)),
		chromedp.SendKeys(chromedp.CSS(`#cohort-name`), "pilot"),
		chromedp.SetUploadFiles(chromedp.CSS(`#cohort-file`), []string{list}),
		chromedp.SendKeys(chromedp.CSS(`#cohort-password`), testPassword),
		chromedp.Click(chromedp.CSS(`[data-testid="cohort-create"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="cohort-pilot"]`)),
	)
	if got := mustText(t, ctx, `[data-testid="cohort-pilot"]`); !strings.Contains(got, "allow-list of 1,000 users") {
		t.Fatalf("cohort row %q", got)
	}
	if d := app.srv.rollout.Check(rollout.User{ID: "pilot-999"}); d.Env != rollout.Production || d.Cohort != "pilot" {
		t.Fatalf("an imported id is not decided by the cohort: %+v", d)
	}
	// Replace the members from the row's import form: one id a line this time.
	smaller := filepath.Join(t.TempDir(), "pilot.txt")
	if err := os.WriteFile(smaller, []byte("pilot-7\npilot-8\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	row := `[data-testid="cohort-pilot"] `
	mustDo(t, ctx, "replace the members", append([]chromedp.Action[chromedp.Void]{
		chromedp.Click(chromedp.CSS(row + `[data-testid="import-pilot"] summary`)),
		chromedp.SetUploadFiles(chromedp.CSS(row+`input[type=file]`), []string{smaller}),
		chromedp.SendKeys(chromedp.CSS(row+`input[type=password]`), testPassword),
	}, clickToLoad(row+`[data-testid="import-pilot"] button[type=submit]`, chromedp.WaitVisible(chromedp.CSS(`[data-testid="flash"]`)))...)...)
	if got := mustText(t, ctx, `[data-testid="flash"]`); !strings.Contains(got, "now holds 2 users") {
		t.Fatalf("import flash %q", got)
	}
	if d := app.srv.rollout.Check(rollout.User{ID: "pilot-999"}); d.Cohort == "pilot" {
		t.Fatal("a replaced member is still in the cohort")
	}
	mustDo(t, ctx, "advance", clickToLoad(`[data-testid="action-advance"]`, chromedp.WaitVisible(chromedp.CSS(`[data-testid="flash"]`)))...)
	if got := mustText(t, ctx, `[data-testid="rollout-percent"]`); got != "1 %" {
		t.Fatalf("after advance: %q (flash %q)", got, mustText(t, ctx, `[data-testid="flash"]`))
	}
	mustDo(t, ctx, "check a user",
		chromedp.SendKeys(chromedp.CSS(`#check-user`), "pilot-7"),
		chromedp.Click(chromedp.CSS(`[data-testid="check-submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="check-result"]`)),
	)
	if got := mustText(t, ctx, `[data-testid="check-result"]`); !strings.Contains(got, "production") || !strings.Contains(got, `"pilot"`) {
		t.Fatalf("check result %q", got)
	}
	mustDo(t, ctx, "kill without typing kill is refused",
		chromedp.Click(chromedp.CSS(`[data-testid="kill"]`)),
	)
	if app.srv.rollout.Snapshot().Rollout.State == rollout.Killed {
		t.Fatal("killed without the typed confirmation")
	}
	mustDo(t, ctx, "kill",
		chromedp.SendKeys(chromedp.CSS(`#kill-confirm`), "kill"),
		chromedp.Click(chromedp.CSS(`[data-testid="kill"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="rollout-killed"]`)),
	)
	if got := mustText(t, ctx, `[data-testid="flash"]`); !strings.Contains(got, "nobody is sent to production") {
		t.Fatalf("kill confirmation %q", got)
	}
	if got := mustText(t, ctx, `[data-testid="rollout-banner"]`); !strings.Contains(got, "killed") {
		t.Fatalf("banner %q", got)
	}
	if d := app.srv.rollout.Check(rollout.User{ID: "pilot-7"}); d.Env != rollout.Off || d.Reason != rollout.ReasonKilled {
		t.Fatalf("after kill: %+v", d)
	}
	mustDo(t, ctx, "leave killed",
		chromedp.SetValue(chromedp.CSS(`#revive-stage`), "1"),
		chromedp.SendKeys(chromedp.CSS(`#revive-password`), testPassword),
		chromedp.Click(chromedp.CSS(`[data-testid="revive"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="action-resume"]`)),
	)
	if got := mustText(t, ctx, `[data-testid="rollout-state"]`); got != "paused" {
		t.Fatalf("after leaving killed: %q", got)
	}
	if d := app.srv.rollout.Check(rollout.User{ID: "pilot-7"}); d.Env != rollout.Production {
		t.Fatalf("after leaving killed: %+v", d)
	}
	screenshot(t, ctx, "rollout")
}
