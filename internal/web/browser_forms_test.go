package web

// Every form of the signed-in UI, driven in Chromium as a person would (issue 11, "Every
// action's outcome (success or error) is visible in the viewport without scrolling, in a browser
// test that triggers a failure for each form"): open the page, fill the form (opening the
// <details> it sits in), submit it, and look where the outcome landed, at desktop and phone size.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
)

// pageForm is one submission of one form of the signed-in UI.
type pageForm struct {
	route string // the route the form posts to, "POST /pattern" as in routeAccess
	name  string // what the person does
	page  string // the page the form is on
	form  string // CSS selector of the form on that page
	// fields are typed in by name: a string, or []string for a group of checkboxes (those
	// checked); a file input gets a file holding the string.
	fields map[string]any
	// given runs before the page opens: what the page needs to show the form (a replay target,
	// a secret to retire).
	given func(t *testing.T, f *pageForm)
	// open reaches a form that no GET shows (the set-up code after the password); it replaces page.
	open func(t *testing.T, ctx context.Context)
	// before runs with the page open, just before the submit: someone else's change that makes
	// the form stale, or a value the page shows (the set-up key) that the fields need.
	before func(t *testing.T, ctx context.Context, f *pageForm)
	want   string   // the outcome says this
	ok     bool     // the action succeeds: its outcome is a status flash, or shownOnce
	shown  string   // a success shown on a page of its own instead of a flash (a secret shown once)
	writes []string // tables a failure writes anyway, and why it may ("audit_log: failed re-check")
}

// excludedForms are page POST routes without a case, each with the reason.
var excludedForms = map[string]string{
	"POST /login":            "signed out: the auth card is one short form; TestBrowserFirstRunLoginLogout fails a login",
	"POST /setup":            "signed out, once per install: TestBrowserFirstRunLoginLogout",
	"POST /login/two-factor": "signed out: TestBrowserTwoFactorEnrolAndLogin",
	"POST /logout":           "cannot fail, and ends the session the other cases need",
}

// pageFormRoutes are the routes a form of a page posts to: every POST outside the API and
// the public ingest.
func pageFormRoutes() []string {
	var out []string
	for route := range routeAccess {
		path, ok := strings.CutPrefix(route, "POST ")
		if !ok || strings.HasPrefix(path, "/api/") || strings.HasPrefix(path, "/hooks/") ||
			strings.HasPrefix(path, "/callbacks/") || strings.HasPrefix(path, "/ofrep/") {
			continue
		}
		out = append(out, route)
	}
	sort.Strings(out)
	return out
}

// formsApp is the dashboard with one of everything a form acts on, and the admin using it.
type formsApp struct {
	*testApp
	t        *testing.T
	clock    *totpClock
	admin    string // an admin token, for the changes "someone else" makes
	me       db.User
	target   db.User          // the last of many users: its row is far below the fold
	twoFA    db.User          // a user with two-factor on
	keyID    int64            // production's secret key
	secretID string           // production's webhook signing secret
	webhook  int64            // a webhook stored in production, signed with secretID
	sandboxW int64            // a webhook stored in sandbox, whose secret was since retired
	tokenID  int64            // a token to revoke
	listID   int64            // an allow-list cohort
	ruleID   int64            // a rule cohort
	mySecret string           // the signed-in admin's two-factor key, while it is on
	receiver *httptest.Server // answers 500 on /fail, 200 elsewhere
}

func newFormsApp(t *testing.T) *formsApp {
	app := newTestApp(t, func(c *Config) { c.AllowLoopbackURLs = true })
	f := &formsApp{testApp: app, t: t, clock: app.totpClock()}
	f.receiver = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/fail") {
			http.Error(w, "receiver is down", http.StatusInternalServerError)
		}
	}))
	t.Cleanup(f.receiver.Close)
	f.admin = app.addToken("forms-admin", auth.ScopeAdmin)
	// Sandbox's Tensfer is the receiver, down: verifying it fails.
	for env, base := range map[string]string{"sandbox": f.receiver.URL + "/fail", "production": "https://api.tensfer.example"} {
		if res := app.patchEnv(f.admin, env, map[string]any{"secret_key": "sk_" + env + "_REVEALME1234", "public_key": "pk_" + env + "_1234567890",
			"base_url": base}); res.StatusCode != 200 {
			t.Fatalf("seed %s: %d %s", env, res.StatusCode, res.body)
		}
	}
	f.keyID = app.activeKeyID(t, "production")
	sandbox := app.withSecret("sandbox")
	if res := app.sendWebhook("sandbox", sandbox, "msg_sandbox", `{"type":"payment.cancelled","request_id":"req_sandbox","data":{"user_id":"u_1"}}`); res.StatusCode != 200 {
		t.Fatalf("seed sandbox webhook: %d %s", res.StatusCode, res.body)
	}
	secrets, err := app.db.ListWebhookSecrets(context.Background(), "sandbox")
	if err != nil || len(secrets) != 1 {
		t.Fatalf("sandbox secrets: %v %v", secrets, err)
	}
	if res := app.api(http.MethodDelete, "/api/v1/environments/sandbox/webhook-secrets/"+secrets[0].ID, f.admin, nil); res.StatusCode >= 300 {
		t.Fatalf("retire the sandbox secret: %d %s", res.StatusCode, res.body)
	}
	production := app.withSecret("production")
	if res := app.sendWebhook("production", production, "msg_production", `{"type":"payment.cancelled","request_id":"req_production","data":{"user_id":"u_2"}}`); res.StatusCode != 200 {
		t.Fatalf("seed production webhook: %d %s", res.StatusCode, res.body)
	}
	secrets, _ = app.db.ListWebhookSecrets(context.Background(), "production")
	f.secretID = secrets[0].ID
	evs, _, err := app.db.ListEvents(context.Background(), db.EventFilter{Source: db.SourceWebhook})
	if err != nil || len(evs) != 2 {
		t.Fatalf("seed webhooks stored: %d %v", len(evs), err)
	}
	for _, e := range evs {
		if e.Env == "sandbox" {
			f.sandboxW = e.ID
		} else {
			f.webhook = e.ID
		}
	}
	// Enough users that the last row is well below the fold.
	for i := range 25 {
		f.target = app.addUser(fmt.Sprintf("user%02d@example.com", i), db.RoleViewer)
	}
	cl, u := app.login(db.RoleViewer)
	enrol(t, cl, f.clock)
	f.twoFA = u
	f.listID = mustAtoi(t, app.createCohort(t, f.admin, map[string]any{"name": "testers", "environment": "production", "user_ids": []string{"u1", "u2"}}).ID)
	f.ruleID = mustAtoi(t, app.createCohort(t, f.admin, map[string]any{"name": "nordics", "environment": "production",
		"rules": []map[string]any{{"attribute": "country", "op": "in", "values": []string{"SE", "NO"}}}}).ID)
	f.me = app.addUser("ada@example.com", db.RoleAdmin)
	return f
}

// bumpRollout is another operator pausing and resuming the rollout: the page's version is stale.
func (f *formsApp) bumpRollout(t *testing.T, _ context.Context, _ *pageForm) {
	f.actOnRollout(t, f.admin, "pause", "")
	f.actOnRollout(t, f.admin, "resume", "")
}

// reorderCohorts is another admin reversing the cohorts' order while the page is open.
func (f *formsApp) reorderCohorts(t *testing.T, _ context.Context, _ *pageForm) {
	cs, err := f.srv.rollout.Cohorts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for i := len(cs) - 1; i >= 0; i-- {
		ids = append(ids, fmt.Sprint(cs[i].ID))
	}
	if res := f.api(http.MethodPut, "/api/v1/rollout/cohorts/order", f.admin, jsonBody(map[string]any{"ids": ids})); res.StatusCode != 200 {
		t.Fatalf("reorder: %d %s", res.StatusCode, res.body)
	}
}

// editRuleCohort is another admin editing the rule cohort while the page is open.
func (f *formsApp) editRuleCohort(t *testing.T, _ context.Context, _ *pageForm) {
	if res := f.api(http.MethodPatch, "/api/v1/rollout/cohorts/"+fmt.Sprint(f.ruleID), f.admin, jsonBody(map[string]any{"environment": "production"})); res.StatusCode != 200 {
		t.Fatalf("edit: %d %s", res.StatusCode, res.body)
	}
}

// deleteCohort makes a cohort named name and deletes it, so the history offers its undo.
func (f *formsApp) deleteCohort(name string) func(*testing.T, *pageForm) {
	return func(t *testing.T, _ *pageForm) {
		c := f.createCohort(t, f.admin, map[string]any{"name": name, "environment": "sandbox", "user_ids": []string{"u9"}})
		if res := f.api(http.MethodDelete, "/api/v1/rollout/cohorts/"+c.ID, f.admin, nil); res.StatusCode != http.StatusNoContent {
			t.Fatalf("delete: %d %s", res.StatusCode, res.body)
		}
	}
}

// takeName is another admin creating a cohort with name while the page is open.
func (f *formsApp) takeName(name string) func(*testing.T, context.Context, *pageForm) {
	return func(t *testing.T, _ context.Context, _ *pageForm) {
		f.createCohort(t, f.admin, map[string]any{"name": name, "environment": "off", "user_ids": []string{"u8"}})
	}
}

// clearReplayTarget is another admin removing the replay target while the page is open.
func (f *formsApp) clearReplayTarget(env string) func(*testing.T, context.Context, *pageForm) {
	return func(t *testing.T, _ context.Context, _ *pageForm) {
		if res := f.patchEnv(f.admin, env, map[string]any{"replay_url": ""}); res.StatusCode != 200 {
			t.Fatalf("clear the replay target: %d %s", res.StatusCode, res.body)
		}
	}
}

// setReplayTarget gives env a replay target (the receiver) before the page is opened.
func (f *formsApp) setReplayTarget(env string) func(*testing.T, *pageForm) {
	return func(t *testing.T, _ *pageForm) {
		if res := f.patchEnv(f.admin, env, map[string]any{"replay_url": f.receiver.URL + "/hook"}); res.StatusCode != 200 {
			t.Fatalf("set the replay target: %d %s", res.StatusCode, res.body)
		}
	}
}

// setupCode opens the two-factor set-up: the password, then the page with the key and the code box.
func (f *formsApp) setupCode(t *testing.T, ctx context.Context) {
	mustDo(t, ctx, "open the two-factor set-up",
		chromedp.Navigate(f.url+"/settings/account/two-factor"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="two-factor-setup-form"]`)),
		chromedp.SendKeys(chromedp.CSS(`#setup-password`), testPassword),
		chromedp.Click(chromedp.CSS(`[data-testid="two-factor-begin"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="enrol-form"]`)),
	)
}

// codeFromPage types the current code of the set-up key the page shows.
func (f *formsApp) codeFromPage(t *testing.T, ctx context.Context, pf *pageForm) {
	secret := strings.ReplaceAll(mustText(t, ctx, `[data-testid="totp-secret"]`), " ", "")
	f.mySecret = secret
	pf.fields = map[string]any{"code": totpCode(t, secret, f.clock.now())}
}

// myCode adds the signed-in admin's current two-factor code to the fields.
func (f *formsApp) myCode(t *testing.T, _ context.Context, pf *pageForm) {
	pf.fields["code"] = totpCode(t, f.mySecret, f.clock.now())
}

func (f *formsApp) myWrongCode(t *testing.T, _ context.Context, pf *pageForm) {
	pf.fields["code"] = wrongTOTP(t, f.mySecret, f.clock.now())
}

// formCases are the submissions of one round, in order: a round leaves things as it found them
// (two-factor off, the rollout active), but for what it adds, which is named after the round.
func (f *formsApp) formCases(round int) []pageForm {
	id := func(n int64) string { return fmt.Sprint(n) }
	n := fmt.Sprint(round)
	reauthFailed := []string{"audit_log: a failed password re-check is audited"}
	wrongCode := append(reauthFailed, "second_factor_limits: a wrong code counts against the account's limit")
	// A channel whose receiver is down, for this round to test, edit and lose.
	channel := f.createChannel(f.admin, map[string]any{"name": "#oncall-" + auth.RandomID(4), "kind": "slack", "url": f.receiver.URL + "/fail",
		"events": []string{"rollout.killed"}, "environments": []string{"production"}}).ID
	users := "/settings/users"
	target := "/settings/users/" + id(f.target.ID)
	return []pageForm{
		// Environments.
		{route: "POST /environments/{env}", name: "a production base URL over plain http", page: "/environments",
			form: `form[action="/environments/production"]`, fields: map[string]any{"base_url": "http://api.tensfer.example"}, want: "https"},
		{route: "POST /environments/{env}", name: "save the URLs", page: "/environments", ok: true,
			form: `form[action="/environments/production"]`, fields: map[string]any{"base_url": "https://api.tensfer.example/v" + n}, want: "Saved the production URLs"},
		{route: "POST /environments/{env}/keys", name: "a secret key pasted with a space", page: "/environments",
			form: `form[action="/environments/production/keys"]:has(input[value="secret_key"])`, fields: map[string]any{"value": "sk_live 1234567890abcdef"}, want: "space"},
		{route: "POST /environments/{env}/keys", name: "roll the public key", page: "/environments", ok: true,
			form: `form[action="/environments/production/keys"]:has(input[value="public_key"])`, fields: map[string]any{"value": "pk_production_roll" + n + "567890"}, want: "Saved the production"},
		{route: "POST /environments/{env}/keys/{id}/reveal", name: "reveal with a wrong password", page: "/environments",
			form: `form[action="/environments/production/keys/` + id(f.keyID) + `/reveal"]`, fields: map[string]any{"password": "not my password", "reason": "checking"},
			want: "Not revealed", writes: reauthFailed},
		{route: "POST /environments/{env}/webhook-secrets", name: "paste a secret that is not whsec_", page: "/environments",
			form: `form.form[action="/environments/production/webhook-secrets"]`, fields: map[string]any{"secret": "not-a-secret"}, want: "whsec_"},
		{route: "POST /environments/{env}/webhook-secrets", name: "generate a secret", page: "/environments", ok: true,
			form: `form.inline[action="/environments/production/webhook-secrets"]`, want: "New signing secret"},
		{route: "POST /environments/{env}/beacon-key/rotate", name: "rotate the beacon key", page: "/environments", ok: true,
			form: `form[action="/environments/production/beacon-key/rotate"]`, want: "New beacon key"},
		{route: "POST /environments/{env}/webhook-secrets/{id}/retire", name: "retire a secret another admin retired", page: "/environments",
			given: func(t *testing.T, c *pageForm) {
				sec, _, err := f.srv.envs.AddWebhookSecret(context.Background(), "production", "", 0, db.Audit{Action: "environment.webhook_secret_add", Actor: "cli"})
				if err != nil {
					t.Fatal(err)
				}
				c.form = `form[action="/environments/production/webhook-secrets/` + sec.ID + `/retire"]`
				f.secretID = sec.ID
			},
			before: func(t *testing.T, _ context.Context, _ *pageForm) {
				if res := f.api(http.MethodDelete, "/api/v1/environments/production/webhook-secrets/"+f.secretID, f.admin, nil); res.StatusCode >= 300 {
					t.Fatalf("retire: %d %s", res.StatusCode, res.body)
				}
			}, want: "does not exist"},
		{route: "POST /environments/{env}/verify", name: "verify against a Tensfer that does not answer", page: "/environments",
			form: `form[action="/environments/sandbox/verify"]`, want: "Verify sandbox", writes: []string{"environments: the outcome is recorded", "audit_log: so is who asked",
				"events: the call to Tensfer is logged as an API call", "event_counts: and counted"}},

		// Events.
		{route: "POST /environments/{env}/test-event", name: "a test event to sandbox, which has no signing secret", page: "/events",
			form: `form[action="/environments/sandbox/test-event"]`, want: "signing secret"},
		{route: "POST /environments/{env}/test-event", name: "a test event to production", page: "/events", ok: true,
			form: `form[action="/environments/production/test-event"]`, want: "Sent a signed test webhook"},
		{route: "POST /events/{id}/reverify", name: "reverify a webhook whose secret was retired", page: "/events/" + id(f.sandboxW),
			form: `form[action="/events/` + id(f.sandboxW) + `/reverify"]`, want: "does not verify"},
		{route: "POST /events/{id}/replay", name: "replay after the target was removed", page: "/events/" + id(f.webhook),
			form: `form[action="/events/` + id(f.webhook) + `/replay"]`, given: f.setReplayTarget("production"), before: f.clearReplayTarget("production"), want: "replay target"},
		{route: "POST /events/replay", name: "replay all after the target was removed", page: "/events/replay?env=production",
			form: `form[action^="/events/replay?"]`, given: f.setReplayTarget("production"), before: f.clearReplayTarget("production"), want: "replay target"},

		// Rollout.
		{route: "POST /rollout/actions/{action}", name: "advance a rollout that changed meanwhile", page: "/rollout",
			form: `form[action="/rollout/actions/advance"]`, before: f.bumpRollout, want: "rollout changed"},
		{route: "POST /rollout/actions/{action}", name: "pause", page: "/rollout", ok: true,
			form: `form[action="/rollout/actions/pause"]`, want: "paused"},
		{route: "POST /rollout/actions/{action}", name: "resume", page: "/rollout", ok: true,
			form: `form[action="/rollout/actions/resume"]`, want: "active"},
		{route: "POST /rollout/actions/{action}", name: "kill a rollout that changed meanwhile: never refused for being late", page: "/rollout", ok: true,
			form: `form[action="/rollout/actions/kill"]`, fields: map[string]any{"confirm": "kill"}, before: f.bumpRollout, want: "Killed"},
		{route: "POST /rollout/actions/{action}", name: "leave killed with a wrong password", page: "/rollout",
			form: `form[action="/rollout/actions/revive"]`, fields: map[string]any{"password": "not my password", "stage": "0"}, want: "incorrect", writes: reauthFailed},
		{route: "POST /rollout/actions/{action}", name: "leave killed", page: "/rollout", ok: true,
			form: `form[action="/rollout/actions/revive"]`, fields: map[string]any{"password": testPassword, "stage": "0"}, want: "paused"},
		{route: "POST /rollout/actions/{action}", name: "resume after the kill", page: "/rollout", ok: true,
			form: `form[action="/rollout/actions/resume"]`, want: "active"},
		{route: "POST /rollout/plan", name: "save the plan with a wrong password", page: "/rollout",
			form: `form[action="/rollout/plan"]`, fields: map[string]any{"password": "not my password"}, want: "incorrect", writes: reauthFailed},
		{route: "POST /rollout/plan", name: "stages that are not numbers", page: "/rollout",
			form: `form[action="/rollout/plan"]`, fields: map[string]any{"password": testPassword, "stages": "five percent"}, want: "percent"},
		{route: "POST /rollout/plan", name: "a guardrail rate that is not a number", page: "/rollout",
			form: `form[action="/rollout/plan"]`, fields: map[string]any{"password": testPassword, "max_rate": "-5"}, want: "rate"},
		{route: "POST /rollout/plan", name: "save the plan", page: "/rollout", ok: true,
			form: `form[action="/rollout/plan"]`, fields: map[string]any{"password": testPassword}, want: "Saved the plan"},
		{route: "POST /rollout/cohorts", name: "add a cohort with a wrong password", page: "/rollout",
			form: `form[action="/rollout/cohorts"]`, fields: map[string]any{"password": "not my password", "name": "pilot" + n, "rules": "country eq SE"}, want: "incorrect", writes: reauthFailed},
		{route: "POST /rollout/cohorts", name: "add a cohort with an unknown operator", page: "/rollout",
			form: `form[action="/rollout/cohorts"]`, fields: map[string]any{"password": testPassword, "name": "pilot" + n, "rules": "country like SE"}, want: "like"},
		{route: "POST /rollout/cohorts", name: "add a cohort", page: "/rollout", ok: true,
			form: `form[action="/rollout/cohorts"]`, fields: map[string]any{"password": testPassword, "name": "pilot" + n, "rules": "country eq SE"}, want: "Added the cohort"},
		{route: "POST /rollout/cohorts/{id}/edit", name: "edit a cohort with a wrong password", page: "/rollout",
			form: `form[action="/rollout/cohorts/` + id(f.ruleID) + `/edit"]`, fields: map[string]any{"password": "not my password"}, want: "Not saved", writes: reauthFailed},
		{route: "POST /rollout/cohorts/{id}/edit", name: "edit a cohort's rules", page: "/rollout", ok: true,
			form: `form[action="/rollout/cohorts/` + id(f.ruleID) + `/edit"]`, fields: map[string]any{"password": testPassword, "rules": "country in SE,NO,DK"}, want: "Saved the cohort"},
		{route: "POST /rollout/cohorts/{id}/import", name: "import with a wrong password", page: "/rollout",
			form: `form[action="/rollout/cohorts/` + id(f.listID) + `/import"]`, fields: map[string]any{"password": "not my password", "file": "u1\nu2\nu3\n"}, want: "Not imported", writes: reauthFailed},
		{route: "POST /rollout/cohorts/{id}/import", name: "import members", page: "/rollout", ok: true,
			form: `form[action="/rollout/cohorts/` + id(f.listID) + `/import"]`, fields: map[string]any{"password": testPassword, "file": "u1\nu2\nu3\n"}, want: "Imported"},
		{route: "POST /rollout/cohorts/{id}/move", name: "move a cohort with a wrong password", page: "/rollout",
			form: `form[action="/rollout/cohorts/` + id(f.listID) + `/move"]`, fields: map[string]any{"password": "not my password"}, want: "incorrect", writes: reauthFailed},
		{route: "POST /rollout/cohorts/{id}/move", name: "move a cohort whose order changed meanwhile", page: "/rollout",
			form: `form[action="/rollout/cohorts/` + id(f.listID) + `/move"]`, fields: map[string]any{"password": testPassword}, before: f.reorderCohorts, want: "changed while"},
		{route: "POST /rollout/cohorts/{id}/move", name: "move a cohort", page: "/rollout", ok: true,
			form: `form[action="/rollout/cohorts/` + id(f.listID) + `/move"]`, fields: map[string]any{"password": testPassword}, want: "Moved"},
		{route: "POST /rollout/cohorts/{id}/delete", name: "delete a cohort another admin edited meanwhile", page: "/rollout",
			form: `form[action="/rollout/cohorts/` + id(f.ruleID) + `/delete"]`, fields: map[string]any{"password": testPassword}, before: f.editRuleCohort, want: "changed while"},
		{route: "POST /rollout/cohorts/deleted/{id}/restore", name: "undo a deletion with a wrong password", page: "/rollout",
			given: f.deleteCohort("gone" + n), form: `form[action$="/restore"]`, fields: map[string]any{"password": "not my password"}, want: "incorrect", writes: reauthFailed},
		{route: "POST /rollout/cohorts/deleted/{id}/restore", name: "undo a deletion whose name was taken meanwhile", page: "/rollout",
			form: `form[action$="/restore"]`, fields: map[string]any{"password": testPassword}, before: f.takeName("gone" + n), want: "exists now"},

		// Settings: the account.
		{route: "POST /settings/account/password", name: "change the password with a wrong current one", page: "/settings/account",
			form: `[data-testid="password-form"]`, fields: map[string]any{"current": "not my password", "password": "a new long passphrase", "confirm": "a new long passphrase"},
			want: "incorrect", writes: reauthFailed},
		{route: "POST /settings/account/password", name: "a confirmation that differs", page: "/settings/account",
			form: `[data-testid="password-form"]`, fields: map[string]any{"current": testPassword, "password": "a new long passphrase", "confirm": "a new long passphrase!"},
			want: "does not match"},
		{route: "POST /settings/account/password", name: "a new password that is too short", page: "/settings/account",
			form: `[data-testid="password-form"]`, fields: map[string]any{"current": testPassword, "password": "short", "confirm": "short"}, want: "characters"},
		{route: "POST /settings/account/two-factor/setup", name: "set up two-factor with a wrong password", page: "/settings/account/two-factor",
			form: `[data-testid="two-factor-setup-form"]`, fields: map[string]any{"password": "not my password"}, want: "incorrect", writes: reauthFailed},
		{route: "POST /settings/account/two-factor/confirm", name: "a wrong first code", open: f.setupCode,
			form: `[data-testid="enrol-form"]`, fields: map[string]any{"code": "000000"},
			before: func(t *testing.T, ctx context.Context, pf *pageForm) {
				f.codeFromPage(t, ctx, pf)
				pf.fields["code"] = wrongTOTP(t, f.mySecret, f.clock.now())
			}, want: "code", writes: []string{"audit_log: a wrong code is audited"}},
		{route: "POST /settings/account/two-factor/confirm", name: "turn two-factor on", open: f.setupCode, ok: true,
			form: `[data-testid="enrol-form"]`, before: f.codeFromPage, shown: `[data-testid="recovery-code-list"]`, want: ""},
		{route: "POST /settings/account/two-factor/recovery-codes", name: "new recovery codes with a wrong code", page: "/settings/account/two-factor",
			form: `[data-testid="recovery-codes-form"]`, fields: map[string]any{"password": testPassword}, before: f.myWrongCode, want: "code", writes: wrongCode},
		{route: "POST /settings/account/two-factor/recovery-codes", name: "new recovery codes", page: "/settings/account/two-factor", ok: true,
			form: `[data-testid="recovery-codes-form"]`, fields: map[string]any{"password": testPassword}, before: f.myCode, shown: `[data-testid="recovery-code-list"]`, want: ""},
		{route: "POST /settings/account/two-factor/disable", name: "turn two-factor off with a wrong code", page: "/settings/account/two-factor",
			form: `[data-testid="two-factor-disable-form"]`, fields: map[string]any{"password": testPassword}, before: f.myWrongCode, want: "code", writes: wrongCode},
		{route: "POST /settings/account/two-factor/disable", name: "turn two-factor off", page: "/settings/account/two-factor", ok: true,
			form: `[data-testid="two-factor-disable-form"]`, fields: map[string]any{"password": testPassword}, before: f.myCode, want: "Two-factor authentication is off"},

		// Settings: users.
		{route: "POST /settings/users", name: "add a user with a weak password", page: users,
			form: `[data-testid="add-user-form"]`, fields: map[string]any{"email": "new" + n + "@example.com", "role": "viewer", "new_password": "short", "password": testPassword}, want: "characters"},
		{route: "POST /settings/users", name: "add a user with a wrong password of one's own", page: users,
			form: `[data-testid="add-user-form"]`, fields: map[string]any{"email": "new" + n + "@example.com", "role": "admin", "new_password": "a long enough passphrase", "password": "not my password"}, want: "incorrect", writes: reauthFailed},
		{route: "POST /settings/users", name: "add a user whose email is taken", page: users,
			form: `[data-testid="add-user-form"]`, fields: map[string]any{"email": f.target.Email, "role": "viewer", "new_password": "a long enough passphrase", "password": testPassword}, want: "already"},
		{route: "POST /settings/users", name: "add a user", page: users, ok: true,
			form: `[data-testid="add-user-form"]`, fields: map[string]any{"email": "new" + n + "@example.com", "role": "viewer", "new_password": "a long enough passphrase", "password": testPassword}, want: "Added"},
		{route: "POST /settings/users/{id}/role", name: "change a role with a wrong password", page: users,
			form: `form[action="` + target + `/role"]`, fields: map[string]any{"role": "operator", "password": "not my password"}, want: "Role not changed", writes: reauthFailed},
		{route: "POST /settings/users/{id}/role", name: "change a role", page: users, ok: true,
			form: `form[action="` + target + `/role"]`, fields: map[string]any{"role": []string{"operator", "viewer"}[round%2], "password": testPassword}, want: "is now"},
		{route: "POST /settings/users/{id}/password", name: "reset a password with a wrong password", page: users,
			form: `form[action="` + target + `/password"]`, fields: map[string]any{"password": "not my password", "new_password": "another long password", "confirm_password": "another long password"},
			want: "Password not changed", writes: reauthFailed},
		{route: "POST /settings/users/{id}/password", name: "reset a password with a confirmation that differs", page: users,
			form: `form[action="` + target + `/password"]`, fields: map[string]any{"password": testPassword, "new_password": "another long password", "confirm_password": "another long passwort"},
			want: "differ"},
		{route: "POST /settings/users/{id}/password", name: "reset a password", page: users, ok: true,
			form: `form[action="` + target + `/password"]`, fields: map[string]any{"password": testPassword, "new_password": "another long password", "confirm_password": "another long password"},
			want: "Set a new password"},
		{route: "POST /settings/users/{id}/two-factor/reset", name: "reset a user's two-factor with a wrong password", page: users,
			form: `form[action="/settings/users/` + id(f.twoFA.ID) + `/two-factor/reset"]`, fields: map[string]any{"password": "not my password"}, want: "Two-factor not reset", writes: reauthFailed},
		{route: "POST /settings/users/two-factor", name: "require two-factor with a wrong password", page: users,
			form: `[data-testid="two-factor-policy-form"]`, fields: map[string]any{"required": "1", "password": "not my password"}, want: "incorrect", writes: reauthFailed},
		{route: "POST /settings/users/{id}/disable", name: "disable a user", page: users, ok: true,
			form: `form[action="` + target + `/disable"]`, want: "Disabled"},
		{route: "POST /settings/users/{id}/enable", name: "enable a user", page: users, ok: true,
			form: `form[action="` + target + `/enable"]`, want: "Enabled"},
		{route: "POST /settings/users/{id}/sign-out", name: "sign a user out everywhere", page: users, ok: true,
			form: `form[action="` + target + `/sign-out"]`, want: "Ended"},

		// Settings: tokens.
		{route: "POST /settings/tokens", name: "create a token with no scope", page: "/settings/tokens",
			form: `[data-testid="create-token-form"]`, fields: map[string]any{"name": "deploy" + n, "scopes": []string{}}, want: "scope"},
		{route: "POST /settings/tokens", name: "create a token with a blank name", page: "/settings/tokens",
			form: `[data-testid="create-token-form"]`, fields: map[string]any{"name": "   ", "scopes": []string{"events:read"}}, want: "name"},
		{route: "POST /settings/tokens", name: "create an admin token without the password", page: "/settings/tokens",
			form: `[data-testid="create-token-form"]`, fields: map[string]any{"name": "admin" + n, "scopes": []string{"admin"}}, want: "password was incorrect", writes: reauthFailed},
		{route: "POST /settings/tokens", name: "create an admin token with the password", page: "/settings/tokens", ok: true,
			form: `[data-testid="create-token-form"]`, fields: map[string]any{"name": "admin" + n, "scopes": []string{"admin"}, "password": testPassword}, shown: `[data-testid="token-once"]`, want: ""},
		{route: "POST /settings/tokens", name: "create a token", page: "/settings/tokens", ok: true,
			form: `[data-testid="create-token-form"]`, fields: map[string]any{"name": "deploy" + n, "scopes": []string{"events:read"}}, shown: `[data-testid="token-once"]`, want: ""},
		{route: "POST /settings/tokens/{id}/revoke", name: "revoke a token another admin revoked", page: "/settings/tokens",
			given: func(t *testing.T, c *pageForm) {
				f.addToken("checkout-service-"+n, auth.ScopeEventsRead)
				tokens, _ := f.db.ListTokens(context.Background())
				f.tokenID = tokens[0].ID // newest first
				c.form = `form[action="/settings/tokens/` + id(f.tokenID) + `/revoke"]`
			},
			before: func(t *testing.T, _ context.Context, _ *pageForm) {
				if _, err := f.db.RevokeToken(context.Background(), f.tokenID, db.Audit{Action: "token.revoke", Actor: "cli"}); err != nil {
					t.Fatalf("revoke: %v", err)
				}
			}, want: "does not exist"},

		// Settings: alert channels.
		{route: "POST /settings/alerts", name: "add a channel with a URL holding a password", page: "/settings/alerts",
			form: `[data-testid="alert-create-form"]`, fields: map[string]any{"name": "#payments" + n, "url": "https://u:p@hooks.example.com/x", "events": []string{"rollout.killed"}}, want: "URL"},
		{route: "POST /settings/alerts", name: "add a channel with no event", page: "/settings/alerts",
			form: `[data-testid="alert-create-form"]`, fields: map[string]any{"name": "#payments" + n, "url": f.receiver.URL + "/ok", "events": []string{}}, want: "event"},
		{route: "POST /settings/alerts", name: "add a channel", page: "/settings/alerts", ok: true,
			form: `[data-testid="alert-create-form"]`, fields: map[string]any{"name": "#payments" + n, "url": f.receiver.URL + "/ok", "events": []string{"rollout.killed"}}, want: "Added"},
		{route: "POST /settings/alerts/{id}/test", name: "send a test to a receiver that is down", page: "/settings/alerts",
			form: `form[action="/settings/alerts/` + channel + `/test"]`, want: "failed", writes: []string{"alert_attempts: the attempt is kept", "alert_deliveries: with its delivery", "audit_log: and audited"}},
		{route: "POST /settings/alerts/{id}", name: "save a channel with no event", page: "/settings/alerts/" + channel,
			form: `[data-testid="alert-edit-form"]`, fields: map[string]any{"events": []string{}}, want: "event"},
		{route: "POST /settings/alerts/{id}", name: "save a channel someone changed meanwhile", page: "/settings/alerts/" + channel,
			form: `[data-testid="alert-edit-form"]`,
			before: func(t *testing.T, _ context.Context, _ *pageForm) {
				res := f.api(http.MethodPatch, "/api/v1/alert-channels/"+channel, f.admin, strings.NewReader(`{"name":"#oncall-`+n+`"}`))
				if res.StatusCode != 200 {
					t.Fatalf("rename: %d %s", res.StatusCode, res.body)
				}
			}, want: "changed this channel"},
		{route: "POST /settings/alerts/{id}/delete", name: "delete a channel another admin deleted", page: "/settings/alerts/" + channel,
			form: `form[action="/settings/alerts/` + channel + `/delete"]`,
			before: func(t *testing.T, _ context.Context, _ *pageForm) {
				if res := f.api(http.MethodDelete, "/api/v1/alert-channels/"+channel, f.admin, nil); res.StatusCode >= 300 {
					t.Fatalf("delete: %d %s", res.StatusCode, res.body)
				}
			}, want: "no alert channel"},
	}
}

// TestBrowserEveryFormShowsItsOutcome submits every form of the signed-in UI, most of them made
// to fail as a person makes them fail (a wrong password or code, bad input, a page gone stale),
// at 1440 x 900 and at 390 x 844, and checks that the outcome (an alert flash, or the field error
// that aria-describedby ties to its control) is inside the viewport, below the top bar, without
// scrolling, and that a failure changed nothing stored.
func TestBrowserEveryFormShowsItsOutcome(t *testing.T) {
	f := newFormsApp(t)
	// Every page-form route has a failing case, or a reason for having none.
	failing, succeeding := map[string]bool{}, map[string]bool{}
	for _, c := range f.formCases(0) {
		if _, ok := routeAccess[c.route]; !ok {
			t.Errorf("case %q: %s is not a route (see routeAccess)", c.name, c.route)
		}
		if c.ok {
			succeeding[c.route] = true
		} else {
			failing[c.route] = true
		}
	}
	for _, route := range pageFormRoutes() {
		_, excluded := excludedForms[route]
		switch {
		case excluded || failing[route]:
		case successOnlyForms[route] != "" && succeeding[route]:
		default:
			t.Errorf("no case fails the form that posts to %s: add one to formCases, or a reason to excludedForms", route)
		}
	}
	if t.Failed() {
		return
	}
	tab := newBrowserTab(t)
	ctx, cancel := context.WithTimeout(tab, 30*time.Second)
	mustDo(t, ctx, "log in", signIn(f.url+"/login", f.me.Email, `#content`)...)
	cancel()
	sizes := []struct{ w, h int64 }{{1440, 900}, {390, 844}}
	for round, sz := range sizes {
		mustDo(t, tab, "resize", chromedp.EmulateViewport(sz.w, sz.h))
		for _, c := range f.formCases(round) {
			f.clock.advance(time.Minute) // one more password re-check in the budget; a fresh two-factor step
			ctx, cancel := context.WithTimeout(tab, 30*time.Second)
			f.submit(t, ctx, c, fmt.Sprintf("%s (%s) at %dx%d", c.name, c.route, sz.w, sz.h))
			cancel()
		}
	}
}

// successOnlyForms are forms that cannot fail from the page (but by a server error, or a user
// gone, which the error page shows): their case is the success.
var successOnlyForms = map[string]string{
	"POST /environments/{env}/beacon-key/rotate": "takes no input: rotating always succeeds, the old key verifying for the overlap",
	"POST /settings/users/{id}/disable":          "the page offers no Disable on the admin's own row",
	"POST /settings/users/{id}/enable":           "enabling breaks no rule",
	"POST /settings/users/{id}/sign-out":         "ending sessions breaks no rule",
}

// formOutcome is where the outcome of a submission landed.
type formOutcome struct {
	Kind    string  // flash, field (a field error), page (an error page) or shown
	Text    string  // what it says
	Role    string  // its role (a flash: alert or status)
	Tied    bool    // a field error: a control names it in aria-describedby
	Top     float64 // its box in the viewport
	Bottom  float64
	Height  float64 // the viewport's height
	BarEnd  float64 // where the top bar ends (0 when it is scrolled away or absent)
	ScrollY float64
}

// outcomeJS finds the outcome on the page: the element a success shows (%q, or none), else the
// flash, else the first field error, else an error page.
const outcomeJS = `(() => {
	const shown = %q;
	let el = null, kind = '';
	if (shown && (el = document.querySelector(shown))) kind = 'shown';
	else if ((el = document.querySelector('[data-testid="flash"]'))) kind = 'flash';
	else if ((el = document.querySelector('.field-error'))) kind = 'field';
	else if ((el = document.querySelector('[data-testid="error-page"]'))) kind = 'page';
	if (!el) return null;
	const r = el.getBoundingClientRect();
	const bar = document.querySelector('.topbar');
	return {
		Kind: kind, Text: el.textContent.trim().replace(/\s+/g, ' '), Role: el.getAttribute('role') || '',
		Tied: kind === 'field' && !!el.id && !!document.querySelector('[aria-describedby~="' + el.id + '"]'),
		Top: r.top, Bottom: r.bottom, Height: window.innerHeight, ScrollY: window.scrollY,
		BarEnd: bar ? Math.max(0, bar.getBoundingClientRect().bottom) : 0,
	};
})()`

// submitJS fills the form and submits it as the browser would: the <details> it sits in open,
// the confirm() question answered yes, the browser's own validation run. It answers what went
// wrong, or "".
const submitJS = `(() => {
	const form = document.querySelector(%q);
	if (!form) return 'no such form on the page';
	for (let d = form.closest('details'); d; d = d.parentElement.closest('details')) d.open = true;
	window.confirm = () => true;
	for (const [k, v] of Object.entries(%s)) {
		let el = form.elements[k];
		if (!el) return 'the form has no field ' + k;
		if (el instanceof RadioNodeList && !Array.isArray(v)) el = el[0]; // a row of a table of fields: the first
		if (Array.isArray(v)) {
			for (const box of form.querySelectorAll('input[type=checkbox][name="' + k + '"]')) box.checked = v.includes(box.value);
		} else if (el.type === 'file') {
			const dt = new DataTransfer();
			dt.items.add(new File([v], 'ids.txt', {type: 'text/plain'}));
			el.files = dt.files;
		} else if (el.type === 'checkbox') {
			el.checked = v !== '';
		} else {
			el.value = v;
		}
	}
	if (!form.checkValidity()) {
		const bad = form.querySelector(':invalid');
		return 'the browser refuses to send it: ' + (bad ? bad.name + ': ' + bad.validationMessage : '?');
	}
	form.requestSubmit();
	return '';
})()`

// submit drives one case and checks its outcome.
func (f *formsApp) submit(t *testing.T, ctx context.Context, c pageForm, what string) {
	t.Helper()
	if c.given != nil {
		c.given(t, &c)
	}
	if c.open != nil {
		c.open(t, ctx)
	} else {
		mustDo(t, ctx, "open "+what, chromedp.Navigate(f.url+c.page), chromedp.WaitVisible(chromedp.CSS(`#content`)))
	}
	if c.fields == nil {
		c.fields = map[string]any{}
	}
	if c.before != nil {
		c.before(t, ctx, &c)
	}
	before := snapshotDB(t, f.db)
	fields, _ := json.Marshal(c.fields)
	mustDo(t, ctx, "mark "+what, chromedp.SetAttributeValue(chromedp.CSS("body"), "data-old-page", "1"))
	problem, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(submitJS, c.form, fields)))
	if err != nil || problem != "" {
		screenshot(t, ctx, "form-"+slug(what))
		t.Errorf("%s: %s (%v)", what, problem, err)
		return
	}
	mustDo(t, ctx, "submit "+what,
		chromedp.WaitReady(chromedp.CSS("body:not([data-old-page])")),
		chromedp.Poll[chromedp.Void](`document.readyState === "complete"`),
	)
	got, err := chromedp.Run(ctx, chromedp.Evaluate[*formOutcome](fmt.Sprintf(outcomeJS, c.shown)))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if got == nil {
		screenshot(t, ctx, "form-"+slug(what))
		t.Errorf("%s: the page shows no outcome at all (no flash, field error or error page)", what)
		return
	}
	switch {
	case !strings.Contains(strings.ToLower(got.Text), strings.ToLower(c.want)):
		t.Errorf("%s: the %s says %q, want %q", what, got.Kind, got.Text, c.want)
	case c.ok && got.Kind == "flash" && got.Role != "status":
		t.Errorf("%s: a success flash with role %q: %q", what, got.Role, got.Text)
	case c.ok && got.Kind != "flash" && got.Kind != "shown":
		t.Errorf("%s: a success shows a %s: %q", what, got.Kind, got.Text)
	case !c.ok && got.Kind == "flash" && got.Role != "alert":
		t.Errorf("%s: a failure's flash has role %q, want alert: %q", what, got.Role, got.Text)
	case !c.ok && got.Kind == "field" && !got.Tied:
		t.Errorf("%s: the field error %q is tied to no control by aria-describedby", what, got.Text)
	case !c.ok && got.Kind == "shown":
		t.Errorf("%s: a failure shows the success %s", what, c.shown)
	}
	if got.Top < got.BarEnd || got.Bottom > got.Height || got.Bottom <= got.Top {
		screenshot(t, ctx, "outcome-hidden-"+slug(what))
		t.Errorf("%s: the %s %q is at %.0f..%.0f, outside the viewport's %.0f..%.0f below the top bar (scrolled %.0f)",
			what, got.Kind, clip(got.Text, 80), got.Top, got.Bottom, got.BarEnd, got.Height, got.ScrollY)
	}
	if c.ok {
		return
	}
	after := snapshotDB(t, f.db)
	for table := range union(before, after) {
		if before[table] == after[table] || writesTo(c.writes, table) {
			continue
		}
		t.Errorf("%s: failed, yet changed %s (%d rows, then %d)", what, table, before[table].rows, after[table].rows)
	}
}

// writesTo reports whether the case's writes name table.
func writesTo(writes []string, table string) bool {
	name, _, _ := strings.Cut(table, ":") // sqlite_sequence:audit_log counts as audit_log
	if name == "sqlite_sequence" {
		name = strings.TrimPrefix(table, "sqlite_sequence:")
	}
	for _, w := range writes {
		if strings.HasPrefix(w, name+":") {
			return true
		}
	}
	return false
}

func slug(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, strings.ToLower(s))
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
