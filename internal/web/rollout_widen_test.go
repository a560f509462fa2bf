package web

import (
	"bytes"
	"context"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/launch"
	"github.com/tensfer-golive/dashboard/internal/rollout"
)

// TestRolloutNarrowingFromAStaleView: through the API, a pause with an old version pauses and a
// second pause answers the state (no second audit row); a rollback with the stage seen works
// whatever the version, and is 409 stage_changed, naming both stages, once the stage moved.
func TestRolloutNarrowingFromAStaleView(t *testing.T) {
	app, tok := newRolloutApp(t)
	app.actOnRollout(t, tok.write, "advance", "")
	seen := app.actOnRollout(t, tok.write, "advance", "")
	app.createCohort(t, tok.admin, map[string]any{"name": "blocked", "environment": "off", "user_ids": []string{"u1"}})
	stale := fmt.Sprintf(`{"version":%d}`, seen.Version)
	for range 2 {
		if rl := app.actOnRollout(t, tok.write, "pause", stale); rl.State != "paused" {
			t.Fatalf("pause with an old version: %s", rl.State)
		}
	}
	if n := app.countAudit("rollout.pause"); n != 1 {
		t.Fatalf("%d pause audit rows, want 1", n)
	}
	withStage := fmt.Sprintf(`{"version":%d,"stage":2}`, seen.Version)
	if rl := app.actOnRollout(t, tok.write, "rollback", withStage); rl.Stage != 1 {
		t.Fatalf("rollback from the stage seen: stage %d", rl.Stage)
	}
	before := app.rolloutStore()
	e := decodeAs[apiError](t, app.api(http.MethodPost, "/api/v1/rollout/rollback", tok.write, strings.NewReader(withStage)), http.StatusConflict)
	if e.Error.Code != "stage_changed" || !strings.Contains(e.Error.Message, "at stage 1 (1 %) now, not at stage 2") {
		t.Fatalf("rollback from a stage left: %+v", e.Error)
	}
	if app.rolloutStore() != before {
		t.Fatal("a refused rollback changed the store")
	}
	decodeAs[apiError](t, app.api(http.MethodPost, "/api/v1/rollout/rollback", tok.write, strings.NewReader(`{"stage":0}`)), http.StatusUnprocessableEntity)
}

// TestRolloutCohortWideningNeedsTheOverride: through the API, each cohort change that can send
// more users to production is 409 guardrails_breached while a guardrail is breached, and goes
// through with the override (body field, or query where there is no body), audited as one.
func TestRolloutCohortWideningNeedsTheOverride(t *testing.T) {
	app, tok := newRolloutApp(t)
	list := app.createCohort(t, tok.admin, map[string]any{"name": "pilot", "environment": "production", "user_ids": []string{"u1"}})
	block := app.createCohort(t, tok.admin, map[string]any{"name": "blocked", "environment": "off", "user_ids": []string{"u2"}})
	app.breachVerification(t)
	tests := []struct {
		action, method, path, body, override string
		status                               int
	}{
		{"cohort.create", http.MethodPost, "/api/v1/rollout/cohorts", `{"name":"more","environment":"production","user_ids":["u3"]}`, "body", http.StatusCreated},
		{"cohort.update", http.MethodPatch, "/api/v1/rollout/cohorts/" + list.ID, `{"user_ids":["u1","u4"]}`, "body", http.StatusOK},
		{"cohort.import", http.MethodPut, "/api/v1/rollout/cohorts/" + list.ID + "/members", "u1\nu5\n", "query", http.StatusOK},
		{"cohort.delete", http.MethodDelete, "/api/v1/rollout/cohorts/" + block.ID, "", "query", http.StatusNoContent},
	}
	for _, tt := range tests {
		before := app.rolloutStore()
		e := decodeAs[apiError](t, app.api(tt.method, tt.path, tok.admin, strings.NewReader(tt.body)), http.StatusConflict)
		if e.Error.Code != "guardrails_breached" || !strings.Contains(e.Error.Message, "Key verification failures") {
			t.Fatalf("%s while breached: %+v", tt.action, e.Error)
		}
		if app.rolloutStore() != before {
			t.Fatalf("a refused %s changed the store", tt.action)
		}
		path, body := tt.path, tt.body
		if tt.override == "query" {
			path += "?override_guardrails=true"
		} else {
			body = strings.Replace(body, "{", `{"override_guardrails":true,`, 1)
		}
		if res := app.api(tt.method, path, tok.admin, strings.NewReader(body)); res.StatusCode != tt.status {
			t.Fatalf("%s with the override: %d %s", tt.action, res.StatusCode, res.body)
		}
		_, _, after := app.lastAudit(t, tok.admin, tt.action)
		if after["override_guardrails"] != true || fmt.Sprint(after["breached"]) != "[verify_failures]" {
			t.Fatalf("%s with the override is not audited as one: %v", tt.action, after)
		}
	}
	// Renaming a production cohort sends nobody new there: never held.
	if res := app.api(http.MethodPatch, "/api/v1/rollout/cohorts/"+list.ID, tok.admin, strings.NewReader(`{"name":"pilot-2"}`)); res.StatusCode != http.StatusOK {
		t.Fatalf("a rename while breached: %d %s", res.StatusCode, res.body)
	}
	decodeAs[apiError](t, app.api(http.MethodDelete, "/api/v1/rollout/cohorts/"+list.ID+"?override_guardrails=yes", tok.admin, nil), http.StatusBadRequest)
}

// TestRolloutPageFormsWhileBreachedAndStale: on the page, a stale pause and rollback work; a
// rollback from a stage left says so; a production cohort while breached re-renders the form
// with its input and the breached guardrail, and the second submit (override_guardrails=1)
// creates it; a plan form refused by a change to the plan keeps every input, and is not refused
// by an unrelated cohort change; a plan with NaN is a 422 naming the field.
func TestRolloutPageFormsWhileBreachedAndStale(t *testing.T) {
	app := newTestApp(t)
	ctx := context.Background()
	admin, _ := app.login(db.RoleAdmin)
	version := func() string { return itoa(app.srv.rollout.Snapshot().Version()) }
	for range 2 {
		if _, err := app.srv.rollout.Act(ctx, launch.Advance, 0, 0, false, db.Audit{Actor: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	seen := version()
	planTag := launch.PlanTag(app.srv.rollout.Snapshot().Rollout)
	if _, _, err := app.srv.rollout.CreateCohort(ctx, launch.CohortInput{Name: "blocked", Env: "off", UserIDs: []string{"u9"}}, 0, db.Audit{Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	if res := admin.postForm("/rollout/actions/pause", url.Values{"version": {seen}}); res.StatusCode != http.StatusSeeOther || app.srv.rollout.Snapshot().Rollout.State != rollout.Paused {
		t.Fatalf("a pause from a stale page: %d", res.StatusCode)
	}
	if res := admin.postForm("/rollout/actions/rollback", url.Values{"version": {seen}, "stage": {"2"}}); res.StatusCode != http.StatusSeeOther || app.srv.rollout.Snapshot().Rollout.Stage != 1 {
		t.Fatalf("a rollback from a stale page: %d, stage %d", res.StatusCode, app.srv.rollout.Snapshot().Rollout.Stage)
	}
	admin.postForm("/rollout/actions/rollback", url.Values{"version": {seen}, "stage": {"2"}})
	if page := admin.get("/rollout").body; !strings.Contains(page, "Not rolled back: the rollout is at stage 1 (1 %) now, not at stage 2") {
		t.Fatal("a rollback from a stage left does not say so")
	}

	// The plan form: an unrelated change since does not refuse it.
	planForm := func(stages, rate, tag string) url.Values {
		v := url.Values{"password": {testPassword}, "version": {seen}, "plan_tag": {tag}, "stages": {stages}, "auto_advance": {"1"}, "advance_without_volume": {"1"}, "on_breach": {"rollback"}}
		for _, g := range rollout.DefaultGuardrails() {
			r := strings.TrimSuffix(fmt.Sprint(g.MaxRate*100), ".0")
			if g.Signal == rollout.SignalAPIErrors {
				r = rate
			}
			v.Add("signal", string(g.Signal))
			v.Add("max_rate", r)
			v.Add("min_volume", fmt.Sprint(g.MinVolume))
			v.Add("window", rollout.FormatDuration(g.Window))
		}
		return v
	}
	tag := launch.PlanTag(app.srv.rollout.Snapshot().Rollout) // after the rollback: the page now
	if res := admin.postForm("/rollout/plan", planForm("1 1h\n5 24h\n100", "2", tag)); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("a plan after an unrelated change: %d %.300s", res.StatusCode, res.body)
	}
	res := admin.postForm("/rollout/plan", planForm("1 2h\n7 24h\n100", "3", planTag)) // saw the plan before two changes to it
	if res.StatusCode != http.StatusConflict || !strings.Contains(res.body, "changed while you were editing") {
		t.Fatalf("a plan from before a plan change: %d", res.StatusCode)
	}
	doc := res.doc(t)
	if got := doc.Find(`textarea[name="stages"]`).Text(); got != "1 2h\n7 24h\n100" {
		t.Fatalf("the refused plan's stages are not kept: %q", got)
	}
	if _, ok := doc.Find(`input[name="advance_without_volume"]`).Attr("checked"); !ok {
		t.Fatal("the refused plan un-ticked advance_without_volume")
	}
	if got, _ := doc.Find(`input[name="max_rate"]`).Eq(1).Attr("value"); got != "3" {
		t.Fatalf("the refused plan's max rate is %q", got)
	}
	for _, bad := range []string{"NaN", "Inf"} {
		res := admin.postForm("/rollout/plan", planForm("1 1h\n5 24h\n100", bad, tag))
		if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(res.body, "API 5xx and timeouts: max rate and min volume are finite numbers") {
			t.Fatalf("a max rate of %s: %d", bad, res.StatusCode)
		}
	}

	// A production cohort while breached: the form comes back with what was typed and the breach.
	app.breachVerification(t)
	admin, _ = app.login(db.RoleAdmin) // a fresh budget of password re-checks
	form := url.Values{"name": {"nordics"}, "environment": {"production"}, "rules": {`city in ["New York", "a,b"]`}, "match": {"all"}, "password": {testPassword}}
	res = admin.postMultipart("/rollout/cohorts", form, "", "")
	if res.StatusCode != http.StatusConflict {
		t.Fatalf("a production cohort while breached: %d %s", res.StatusCode, res.doc(t).Find(`[data-testid="flash"]`).Text())
	}
	doc = res.doc(t)
	if doc.Find(`[data-testid="breach-confirm"] [data-testid="breach-verify_failures"]`).Length() != 1 || doc.Find(`input[name="override_guardrails"][value="1"]`).Length() != 1 {
		t.Fatal("the refused form does not name the breach and carry the override")
	}
	if got := doc.Find(`#cohort-rules`).Text(); got != form.Get("rules") {
		t.Fatalf("the refused form's rules are %q", got)
	}
	form.Set("override_guardrails", "1")
	if res := admin.postMultipart("/rollout/cohorts", form, "", ""); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("the confirmed cohort: %d %.300s", res.StatusCode, res.body)
	}
	if d := app.srv.rollout.Check(rollout.User{ID: "x", Attributes: map[string]string{"city": "New York"}}); d.Cohort != "nordics" {
		t.Fatalf("the confirmed cohort does not decide: %+v", d)
	}
	if n := app.countAudit("cohort.create"); n < 1 {
		t.Fatal("no audit row")
	}
}

// TestRuleLinesRoundTrip: what the edit form shows for a rule reads back as the same rule, for
// values with commas, spaces, quotes, brackets, backslashes and non-ASCII text.
func TestRuleLinesRoundTrip(t *testing.T) {
	for _, values := range [][]string{
		{"SE", "NO"},
		{"a,b"},
		{"New York", "São Paulo"},
		{`say "hi"`, `back\slash`, "[x]"},
		{"東京", "Zürich", "<b>&"},
		{"18"},
	} {
		ru := rollout.Rule{Attribute: "city", Op: rollout.OpIn, Values: values}
		line := formatRuleLine(ru)
		errs := map[string]string{}
		got, _ := parseRuleLines(line, errs)
		if len(errs) != 0 || len(got) != 1 || fmt.Sprint(got[0].Values) != fmt.Sprint(values) || got[0].Attribute != "city" || got[0].Op != rollout.OpIn {
			t.Errorf("%q wrote %q, read back %+v %v", values, line, got, errs)
		}
	}
}

// postMultipart posts a multipart form, with file (named name) when name is not empty.
func (c *client) postMultipart(path string, v url.Values, name, file string) response {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, vs := range v {
		for _, x := range vs {
			_ = mw.WriteField(k, x)
		}
	}
	if name != "" {
		fw, _ := mw.CreateFormFile("file", name)
		_, _ = fw.Write([]byte(file))
	}
	_ = mw.Close()
	req, _ := http.NewRequest(http.MethodPost, c.app.url+path, &buf)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return c.do(req)
}

// TestRolloutUndoOutlivesTheHistoryRows: a deletion stays undoable from the page for its whole
// week, however many changes came after it.
func TestRolloutUndoOutlivesTheHistoryRows(t *testing.T) {
	app, tok := newRolloutApp(t)
	admin, _ := app.login(db.RoleAdmin)
	c := app.createCohort(t, tok.admin, map[string]any{"name": "early", "environment": "sandbox", "user_ids": []string{"u1"}})
	if res := app.api(http.MethodDelete, "/api/v1/rollout/cohorts/"+c.ID, tok.admin, nil); res.StatusCode != http.StatusNoContent {
		t.Fatalf("delete: %d", res.StatusCode)
	}
	for i := range 30 {
		app.createCohort(t, tok.admin, map[string]any{"name": fmt.Sprintf("later-%d", i), "environment": "sandbox", "user_ids": []string{"u2"}})
	}
	doc := admin.get("/rollout").doc(t)
	if doc.Find(`[data-testid="undo-early"]`).Length() != 1 {
		t.Fatal("a deletion 30 changes back cannot be undone from the page")
	}
}

// TestRolloutStaleCohortEditKeepsTheRules: an edit refused because the cohort changed meanwhile
// comes back (409) with the rules as typed, not a redirect that drops them.
func TestRolloutStaleCohortEditKeepsTheRules(t *testing.T) {
	app, tok := newRolloutApp(t)
	admin, _ := app.login(db.RoleAdmin)
	c := app.createCohort(t, tok.admin, map[string]any{"name": "nordics", "environment": "sandbox", "match": "all",
		"rules": []map[string]any{{"attribute": "country", "op": "in", "values": []string{"SE"}}}})
	if res := app.api(http.MethodPatch, "/api/v1/rollout/cohorts/"+c.ID, tok.admin, strings.NewReader(`{"name":"nordics-2"}`)); res.StatusCode != http.StatusOK {
		t.Fatalf("the colleague's edit: %d", res.StatusCode)
	}
	typed := `city in ["New York", "a,b"]`
	res := admin.postForm("/rollout/cohorts/"+c.ID+"/edit", url.Values{"name": {"nordics"}, "environment": {"sandbox"}, "match": {"all"}, "rules": {typed},
		"password": {testPassword}, "version": {fmt.Sprint(c.Version)}})
	if res.StatusCode != http.StatusConflict || !strings.Contains(res.body, "That cohort changed while you were editing it") {
		t.Fatalf("a stale edit: %d", res.StatusCode)
	}
	if got := res.doc(t).Find(`#edit-rules-` + c.ID).Text(); got != typed {
		t.Fatalf("the stale edit's rules are %q", got)
	}
}
