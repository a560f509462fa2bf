package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/PuerkitoBio/goquery"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/rollout"
)

// rolloutTokens are the API tokens the rollout tests act with.
type rolloutTokens struct {
	admin        string // admin
	write        string // rollout:write (on-call)
	decide       string // rollout:decide (an app)
	decideConfig string // rollout:decide and config:read
}

func newRolloutApp(t testing.TB) (*testApp, rolloutTokens) {
	t.Helper()
	app := newTestApp(t)
	return app, rolloutTokens{
		admin:        app.addToken("admin", auth.ScopeAdmin),
		write:        app.addToken("on-call", auth.ScopeRolloutWrite),
		decide:       app.addToken("app", auth.ScopeRolloutDecide),
		decideConfig: app.addToken("app-config", auth.ScopeRolloutDecide, auth.ScopeConfigRead),
	}
}

// decodeAs checks an answer's status and decodes its JSON body.
func decodeAs[T any](t testing.TB, res response, status int) T {
	t.Helper()
	var v T
	if res.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", res.StatusCode, status, res.body)
	}
	if err := json.Unmarshal([]byte(res.body), &v); err != nil {
		t.Fatalf("the answer is not the JSON expected: %v: %s", err, res.body)
	}
	return v
}

// rolloutStore is what a change to the rollout or its cohorts leaves in the database.
type rolloutStore struct {
	version                  int64
	cohorts, members, audits int
}

func (a *testApp) rolloutStore() rolloutStore {
	a.t.Helper()
	var s rolloutStore
	err := a.db.R.QueryRow(`SELECT (SELECT version FROM rollout), (SELECT count(*) FROM cohorts),
		(SELECT count(*) FROM cohort_members), (SELECT count(*) FROM audit_log)`).Scan(&s.version, &s.cohorts, &s.members, &s.audits)
	if err != nil {
		a.t.Fatal(err)
	}
	return s
}

func (a *testApp) showRollout(t testing.TB, token string) rolloutJSON {
	t.Helper()
	return decodeAs[rolloutJSON](t, a.api(http.MethodGet, "/api/v1/rollout", token, nil), http.StatusOK)
}

// actOnRollout posts an action (body may be empty) and returns the new state.
func (a *testApp) actOnRollout(t testing.TB, token, action, body string) rolloutJSON {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	return decodeAs[rolloutJSON](t, a.api(http.MethodPost, "/api/v1/rollout/"+action, token, r), http.StatusOK)
}

func (a *testApp) planRollout(t testing.TB, token, body string) rolloutJSON {
	t.Helper()
	return decodeAs[rolloutJSON](t, a.api(http.MethodPut, "/api/v1/rollout", token, strings.NewReader(body)), http.StatusOK)
}

func (a *testApp) createCohort(t testing.TB, token string, body map[string]any) cohortJSON {
	t.Helper()
	return decodeAs[cohortJSON](t, a.api(http.MethodPost, "/api/v1/rollout/cohorts", token, jsonBody(body)), http.StatusCreated)
}

// decideFor asks where a user goes; attrs are name, value pairs.
func (a *testApp) decideFor(t testing.TB, token, userID string, attrs ...string) decisionJSON {
	t.Helper()
	q := url.Values{"user_id": {userID}}
	for i := 0; i+1 < len(attrs); i += 2 {
		q.Set("attr."+attrs[i], attrs[i+1])
	}
	// A space is sent as %20: the decide endpoint refuses a + (a space or a plus?).
	return decodeAs[decisionJSON](t, a.api(http.MethodGet, "/api/v1/rollout/decide?"+strings.ReplaceAll(q.Encode(), "+", "%20"), token, nil), http.StatusOK)
}

// lastAudit is the newest audit row of action, with its before and after decoded.
func (a *testApp) lastAudit(t testing.TB, admin, action string) (auditJSON, map[string]any, map[string]any) {
	t.Helper()
	out := decodeAs[struct{ Entries []auditJSON }](t, a.api(http.MethodGet, "/api/v1/audit?limit=1&action="+action, admin, nil), http.StatusOK)
	if len(out.Entries) == 0 {
		t.Fatalf("no audit row %s", action)
	}
	e := out.Entries[0]
	var before, after map[string]any
	json.Unmarshal(e.Before, &before)
	json.Unmarshal(e.After, &after)
	return e, before, after
}

// appendIDs appends n distinct user ids, prefix0 to prefix(n-1), each between open and close:
// a JSON array's items (`"`, `",`) or a file's lines ("", "\n").
func appendIDs(b []byte, prefix string, n int, open, close string) []byte {
	for i := range n {
		b = append(b, open...)
		b = append(b, prefix...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, close...)
	}
	return b
}

// allowListBody is a cohort's JSON with n user ids, built without a []string of them.
func allowListBody(name string, n int) string {
	b := make([]byte, 0, 64+n*12)
	b = append(b, `{"name":"`+name+`","environment":"production","user_ids":[`...)
	b = appendIDs(b, "u", n, `"`, `",`)
	return string(append(b[:len(b)-1], "]}"...))
}

func TestRolloutFreshInstall(t *testing.T) {
	app, tok := newRolloutApp(t)
	res := app.api(http.MethodGet, "/api/v1/rollout", tok.decide, nil)
	raw := decodeAs[map[string]any](t, res, http.StatusOK)
	for _, k := range []string{"key", "state", "stage", "percent", "stages", "version"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("the answer lacks %q: %s", k, res.body)
		}
	}
	rl := decodeAs[rolloutJSON](t, res, http.StatusOK)
	if rl.Key != "tensfer-production" || rl.State != "active" || rl.Stage != 0 || rl.Percent != 0 || rl.Version < 1 {
		t.Fatalf("fresh rollout: %s", res.body)
	}
	var percents []float64
	for i, s := range rl.Stages {
		percents = append(percents, s.Percent)
		soak, err := rollout.ParseDuration(s.MinSoak)
		if want := 24 * time.Hour; i == len(rl.Stages)-1 && (err != nil || soak != 0) || i < len(rl.Stages)-1 && (err != nil || soak != want) {
			t.Errorf("stage %d: min_soak %q", i+1, s.MinSoak)
		}
	}
	if !slices.Equal(percents, []float64{1, 5, 25, 50, 100}) {
		t.Errorf("default stages: %v", percents)
	}
	if got, want := res.Header.Get("ETag"), `"`+itoa(rl.Version)+`"`; got != want {
		t.Errorf("ETag %s, want %s", got, want)
	}
}

func TestRolloutPlanChangeKeepsWhatItDoesNotName(t *testing.T) {
	app, tok := newRolloutApp(t)
	before := app.showRollout(t, tok.admin)
	res := app.api(http.MethodPut, "/api/v1/rollout", tok.admin, strings.NewReader(`{"stages":[{"percent":0.07,"min_soak":"30m"},{"percent":2.3,"min_soak":"12h"},{"percent":100}]}`))
	after := decodeAs[rolloutJSON](t, res, http.StatusOK)
	want := []rollout.StageInput{{Percent: 0.07, MinSoak: "30m"}, {Percent: 2.3, MinSoak: "12h"}, {Percent: 100, MinSoak: "0s"}}
	if !reflect.DeepEqual(after.Stages, want) {
		t.Fatalf("stages: %+v", after.Stages)
	}
	if !reflect.DeepEqual(after.Guardrails, before.Guardrails) || after.AutoAdvance != before.AutoAdvance || after.OnBreach != before.OnBreach ||
		after.State != before.State || after.Stage != before.Stage {
		t.Fatalf("a plan change changed what it did not name:\nbefore %+v\nafter  %+v", before, after)
	}
	if after.Version != before.Version+1 || res.Header.Get("ETag") != `"`+itoa(after.Version)+`"` {
		t.Fatalf("version %d -> %d, ETag %s", before.Version, after.Version, res.Header.Get("ETag"))
	}
	if _, b, a := app.lastAudit(t, tok.admin, "rollout.configure"); !slices.Equal(slices.Sorted(maps.Keys(b)), []string{"stages"}) || !slices.Equal(slices.Sorted(maps.Keys(a)), []string{"stages"}) {
		t.Fatalf("audit of the plan change: %v -> %v", b, a)
	}

	// A change made against an old version is refused and changes nothing.
	stale := `"` + itoa(before.Version) + `"`
	for name, res := range map[string]func() response{
		"If-Match": func() response {
			return app.api(http.MethodPut, "/api/v1/rollout", tok.admin, strings.NewReader(`{"auto_advance":true}`), "If-Match", stale)
		},
		"version field": func() response {
			return app.api(http.MethodPut, "/api/v1/rollout", tok.admin, strings.NewReader(`{"auto_advance":true,"version":`+itoa(before.Version)+`}`))
		},
		"weak If-Match": func() response {
			return app.api(http.MethodPost, "/api/v1/rollout/advance", tok.write, nil, "If-Match", "W/"+stale)
		},
	} {
		store := app.rolloutStore()
		if e := decodeAs[apiError](t, res(), http.StatusConflict); e.Error.Code != "version_conflict" {
			t.Errorf("%s: code %q", name, e.Error.Code)
		}
		if got := app.rolloutStore(); got != store {
			t.Errorf("%s: a stale change was stored: %+v -> %+v", name, store, got)
		}
	}
	current := `"` + itoa(after.Version) + `"`
	res = app.api(http.MethodPut, "/api/v1/rollout", tok.admin, strings.NewReader(`{"auto_advance":true,"version":1}`), "If-Match", current)
	if e := decodeAs[apiError](t, res, http.StatusBadRequest); !strings.Contains(e.Error.Message, "disagree") {
		t.Errorf("If-Match and version disagreeing: %s", res.body)
	}
	// The current version, by header or field, goes through.
	res = app.api(http.MethodPut, "/api/v1/rollout", tok.admin, strings.NewReader(`{"auto_advance":true}`), "If-Match", current)
	if rl := decodeAs[rolloutJSON](t, res, http.StatusOK); !rl.AutoAdvance || !reflect.DeepEqual(rl.Stages, want) || rl.Version != after.Version+1 {
		t.Fatalf("matching If-Match: %s", res.body)
	}
	rl := app.planRollout(t, tok.admin, `{"on_breach":"rollback","version":`+itoa(after.Version+1)+`}`)
	if rl.OnBreach != "rollback" || !rl.AutoAdvance {
		t.Fatalf("matching version field: %+v", rl)
	}
}

// refusal is a request the API must refuse without storing anything.
type refusal struct {
	name         string
	method, path string
	token        string // admin when empty
	body         string
	header       []string
	status       int
	// field is what the answer names: a key of the 422's fields, an OFREP errorCode, or else a
	// word of the message. text is part of that field's message.
	field, text string
}

// refuses sends c and checks the answer, and that the rollout, its cohorts, their members and
// the audit log are as they were.
func (a *testApp) refuses(t *testing.T, admin string, c refusal) {
	t.Helper()
	token := c.token
	if token == "" {
		token = admin
	}
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	before := a.rolloutStore()
	res := a.api(c.method, c.path, token, body, c.header...)
	if res.StatusCode != c.status {
		t.Fatalf("status %d, want %d: %.300s", res.StatusCode, c.status, res.body)
	}
	var msg string
	switch {
	case c.status == http.StatusUnprocessableEntity:
		var e fieldsError
		json.Unmarshal([]byte(res.body), &e)
		if msg = e.Error.Fields[c.field]; msg == "" {
			t.Fatalf("no message on %s: %s", c.field, res.body)
		}
	case strings.HasPrefix(c.path, "/ofrep/"):
		var e ofrepFailure
		json.Unmarshal([]byte(res.body), &e)
		if e.ErrorCode != c.field {
			t.Fatalf("errorCode %q, want %s: %s", e.ErrorCode, c.field, res.body)
		}
		msg = e.ErrorDetails
	default:
		var e apiError
		json.Unmarshal([]byte(res.body), &e)
		if msg = e.Error.Message; !strings.Contains(msg, c.field) || e.Error.RequestID == "" {
			t.Fatalf("the message does not name %s: %s", c.field, res.body)
		}
	}
	if !strings.Contains(msg, c.text) {
		t.Fatalf("message %q, want it to say %q", msg, c.text)
	}
	if after := a.rolloutStore(); after != before {
		t.Fatalf("a refused request changed the store: %+v -> %+v", before, after)
	}
}

func TestRolloutRefusesBadInput(t *testing.T) {
	app, tok := newRolloutApp(t)
	testers := app.createCohort(t, tok.admin, map[string]any{"name": "testers", "environment": "production", "user_ids": []string{"t1"}})
	beta := app.createCohort(t, tok.admin, map[string]any{"name": "beta", "environment": "sandbox", "rules": []rollout.Rule{{Attribute: "plan", Op: "eq", Values: []string{"beta"}}}})
	var stages21 []string
	for i := range 21 {
		stages21 = append(stages21, fmt.Sprintf(`{"percent":%d}`, i+1))
	}
	long := strings.Repeat("x", rollout.MaxIDBytes+1)
	manyUsers := `{"users":[` + strings.Repeat(`{"id":"u"},`, MaxDecideBatch) + `{"id":"u"}]}`
	guard := func(signal, maxRate, window string) string {
		return `{"guardrails":[{"signal":"` + signal + `","max_rate":` + maxRate + `,"min_volume":5,"window":"` + window + `"}]}`
	}
	rule := func(op string, values ...string) string {
		v, _ := json.Marshal(values)
		return `{"name":"r","environment":"production","rules":[{"attribute":"age","op":"` + op + `","values":` + string(v) + `}]}`
	}
	const (
		plan    = "/api/v1/rollout"
		cohorts = "/api/v1/rollout/cohorts"
		decide  = "/api/v1/rollout/decide"
		flag    = "/ofrep/v1/evaluate/flags/tensfer-production"
		put     = http.MethodPut
		post    = http.MethodPost
		get     = http.MethodGet
		patch   = http.MethodPatch
	)
	members := cohorts + "/" + testers.ID + "/members"
	fresh := []refusal{
		// The plan.
		{"percent 0", put, plan, "", `{"stages":[{"percent":0}]}`, nil, 422, "stages[0].percent", "above 0"},
		{"percent below 0", put, plan, "", `{"stages":[{"percent":-5}]}`, nil, 422, "stages[0].percent", "above 0"},
		{"percent above 100", put, plan, "", `{"stages":[{"percent":1},{"percent":100.5}]}`, nil, 422, "stages[1].percent", "at most 100"},
		{"percent repeated", put, plan, "", `{"stages":[{"percent":5},{"percent":5}]}`, nil, 422, "stages[1].percent", "increase"},
		{"percent falling", put, plan, "", `{"stages":[{"percent":50},{"percent":25}]}`, nil, 422, "stages[1].percent", "increase"},
		{"percent of three decimals", put, plan, "", `{"stages":[{"percent":1.234}]}`, nil, 422, "stages[0].percent", "two decimals"},
		{"21 stages", put, plan, "", `{"stages":[` + strings.Join(stages21, ",") + `]}`, nil, 422, "stages", "at most 20"},
		{"no stages", put, plan, "", `{"stages":[]}`, nil, 422, "stages", "at least one"},
		{"soak soon", put, plan, "", `{"stages":[{"percent":5,"min_soak":"soon"}]}`, nil, 422, "stages[0].min_soak", `"soon"`},
		{"soak negative", put, plan, "", `{"stages":[{"percent":5,"min_soak":"-1h"}]}`, nil, 422, "stages[0].min_soak", `"-1h"`},
		{"soak over 90 days", put, plan, "", `{"stages":[{"percent":5,"min_soak":"91d"}]}`, nil, 422, "stages[0].min_soak", "at most 90d"},
		{"soak of days that overflow", put, plan, "", `{"stages":[{"percent":5,"min_soak":"73025633904072d"}]}`, nil, 422, "stages[0].min_soak", "duration"},
		{"unknown signal", put, plan, "", guard("cpu", "0.1", "15m"), nil, 422, "guardrails[0].signal", `unknown signal "cpu"`},
		{"max_rate 1", put, plan, "", guard("api_errors", "1", "15m"), nil, 422, "guardrails[0].max_rate", "below 1"},
		{"max_rate above 1", put, plan, "", guard("api_errors", "5", "15m"), nil, 422, "guardrails[0].max_rate", "below 1"},
		{"max_rate negative", put, plan, "", guard("api_errors", "-0.1", "15m"), nil, 422, "guardrails[0].max_rate", "fraction"},
		{"window x", put, plan, "", guard("api_errors", "0.1", "x"), nil, 422, "guardrails[0].window", "duration"},
		{"window of days that overflow", put, plan, "", guard("api_errors", "0.1", "73025633904072d"), nil, 422, "guardrails[0].window", "duration"},
		{"window of a second", put, plan, "", guard("api_errors", "0.1", "1s"), nil, 422, "guardrails[0].window", "from 1m to 24h"},
		{"two guardrails on a signal", put, plan, "", `{"guardrails":[{"signal":"api_errors","max_rate":0.1,"min_volume":5,"window":"15m"},{"signal":"api_errors","max_rate":0.2,"min_volume":5,"window":"15m"}]}`, nil, 422, "guardrails[1].signal", "two guardrails"},
		{"min_volume 0", put, plan, "", `{"guardrails":[{"signal":"api_errors","max_rate":0.1,"min_volume":0,"window":"15m"}]}`, nil, 422, "guardrails[0].min_volume", "from 1"},
		{"on_breach", put, plan, "", `{"on_breach":"explode"}`, nil, 422, "on_breach", "pause or rollback"},
		{"unknown field", put, plan, "", `{"stagez":[{"percent":5}]}`, nil, 422, "stagez", "not a field of this request"},
		{"unknown field in a stage", put, plan, "", `{"stages":[{"percent":5,"soak":"1h"}]}`, nil, 422, "stages[0].soak", "not a field of stages[0]; its fields are min_soak, percent"},
		{"unknown field in a guardrail", put, plan, "", `{"guardrails":[{"signal":"api_errors","rate":0.1}]}`, nil, 422, "guardrails[0].rate", "its fields are max_rate"},
		{"stages not a list", put, plan, "", `{"stages":"all"}`, nil, 422, "stages", "must be an array of objects"},
		{"nothing to change", put, plan, "", `{}`, nil, 400, "stages", "nothing to change"},
		{"not JSON", put, plan, "", `stages=1`, nil, 400, "JSON", "not valid JSON"},
		{"If-Match not a version", put, plan, "", `{"auto_advance":true}`, []string{"If-Match", `"abc"`}, 400, "If-Match", "version"},

		// Actions the state does not allow, and unknown ones.
		{"rollback from stage 0", post, plan + "/rollback", tok.write, "", nil, 400, "roll back", "has not started"},
		{"resume when active", post, plan + "/resume", tok.write, "", nil, 400, "paused", "is not paused"},
		{"revive when not killed", post, plan + "/revive", "", `{"stage":1}`, nil, 400, "killed", "is not killed"},
		{"unknown action", post, plan + "/explode", tok.write, "", nil, 404, "action", `"explode"`},
		{"action with an unknown field", post, plan + "/advance", tok.write, `{"stage":1,"force":true}`, nil, 422, "force", "not a field"},

		// Cohorts.
		{"unknown operator", post, cohorts, "", rule("like", "1"), nil, 422, "rules[0].op", `unknown operator "like"`},
		{"gt with a word", post, cohorts, "", rule("gt", "old"), nil, 422, "rules[0].values", "not a number"},
		{"lte with a number and a word", post, cohorts, "", rule("lte", "1x"), nil, 422, "rules[0].values", "not a number"},
		{"eq with two values", post, cohorts, "", rule("eq", "1", "2"), nil, 422, "rules[0].values", "exactly one"},
		{"in with no value", post, cohorts, "", rule("in"), nil, 422, "rules[0].values", "give 1 to"},
		{"no rules", post, cohorts, "", `{"name":"r","environment":"production","rules":[]}`, nil, 422, "rules", "1 to 50 rules"},
		{"no attribute", post, cohorts, "", `{"name":"r","environment":"production","rules":[{"attribute":" ","op":"eq","values":["1"]}]}`, nil, 422, "rules[0].attribute", "attribute"},
		{"match most", post, cohorts, "", `{"name":"r","environment":"production","match":"most","rules":[{"attribute":"a","op":"eq","values":["1"]}]}`, nil, 422, "match", "all or any"},
		{"duplicate name", post, cohorts, "", `{"name":"testers","environment":"sandbox","user_ids":["x"]}`, nil, 422, "name", `"testers" exists`},
		{"duplicate name once trimmed", post, cohorts, "", `{"name":"  beta ","environment":"off","user_ids":["x"]}`, nil, 422, "name", `"beta" exists`},
		{"no name", post, cohorts, "", `{"name":" ","environment":"production","user_ids":["x"]}`, nil, 422, "name", "required"},
		{"long name", post, cohorts, "", `{"name":"` + strings.Repeat("n", 81) + `","environment":"production","user_ids":["x"]}`, nil, 422, "name", "at most 80"},
		{"unknown environment", post, cohorts, "", `{"name":"c","environment":"staging","user_ids":["x"]}`, nil, 422, "environment", "production, sandbox or off"},
		{"ids and rules", post, cohorts, "", `{"name":"c","environment":"production","user_ids":["x"],"rules":[{"attribute":"a","op":"eq","values":["1"]}]}`, nil, 422, "user_ids", "not both"},
		{"user id of 257 bytes", post, cohorts, "", `{"name":"c","environment":"production","user_ids":["ok","` + long + `"]}`, nil, 422, "user_ids", "257 bytes"},
		{"1,000,001 user ids", post, cohorts, "", allowListBody("huge", rollout.MaxAllowList+1), nil, 422, "user_ids", "at most 1000000"},
		{"unknown cohort field", post, cohorts, "", `{"name":"c","environment":"production","users":["x"]}`, nil, 422, "users", "not a field"},
		{"rename onto another name", patch, cohorts + "/" + beta.ID, "", `{"name":"testers"}`, nil, 422, "name", `"testers" exists`},
		{"change to an unknown environment", patch, cohorts + "/" + testers.ID, "", `{"environment":"staging"}`, nil, 422, "environment", "production, sandbox or off"},
		{"change an unknown cohort", patch, cohorts + "/999", "", `{"name":"x"}`, nil, 404, "999", "no cohort"},
		{"delete an unknown cohort", http.MethodDelete, cohorts + "/999", "", "", nil, 404, "999", "no cohort"},
		{"order missing a cohort", put, cohorts + "/order", "", `{"ids":["` + testers.ID + `"]}`, nil, 400, "order", "exactly once"},
		{"order naming a cohort twice", put, cohorts + "/order", "", `{"ids":["` + testers.ID + `","` + testers.ID + `"]}`, nil, 400, "order", "exactly once"},
		{"order naming an unknown cohort", put, cohorts + "/order", "", `{"ids":["` + testers.ID + `","999"]}`, nil, 400, "order", "exactly once"},
		{"order with a word", put, cohorts + "/order", "", `{"ids":["first"]}`, nil, 422, "ids", `"first"`},
		{"import into a rule cohort", put, cohorts + "/" + beta.ID + "/members", "", "u1\n", []string{"Content-Type", "text/plain"}, 400, "rules", "allow-lists"},
		{"import an id of 257 bytes", put, members, "", "u1\n" + long + "\n", []string{"Content-Type", "text/plain"}, 422, "user_ids", "257 bytes"},
		{"import 1,000,001 ids", put, members, "", string(appendIDs(nil, "u", rollout.MaxAllowList+1, "", "\n")), []string{"Content-Type", "text/plain"}, 422, "user_ids", "more than 1000000"},
		{"import bad CSV", put, members, "", "user_id,plan\n\"u1,pro\n", []string{"Content-Type", "text/csv"}, 400, "CSV", "not valid CSV"},
		{"import into an unknown cohort", put, cohorts + "/999/members", "", "u1\n", []string{"Content-Type", "text/plain"}, 404, "999", "no cohort"},

		// Changes made against an old version (1, before the cohorts above).
		{"stale cohort change", patch, cohorts + "/" + beta.ID, "", `{"name":"gamma","version":1}`, nil, 409, "version", "changed since"},
		{"stale cohort delete", http.MethodDelete, cohorts + "/" + beta.ID, "", "", []string{"If-Match", `"1"`}, 409, "version", "changed since"},
		{"stale reorder", put, cohorts + "/order", "", `{"ids":["` + beta.ID + `","` + testers.ID + `"],"version":1}`, nil, 409, "version", "changed since"},
		{"stale import", put, members, "", "u9\n", []string{"Content-Type", "text/plain", "If-Match", `"1"`}, 409, "version", "changed since"},
		{"stale action", post, plan + "/advance", tok.write, `{"version":1}`, nil, 409, "version", "changed since"},

		// Decisions.
		{"decide without user_id", get, decide, tok.decide, "", nil, 400, "user_id", "required"},
		{"decide a user id of 257 bytes", get, decide + "?user_id=" + long, tok.decide, "", nil, 400, "user_id", "at most 256 bytes"},
		{"decide include=bogus", get, decide + "?user_id=u1&include=bogus", tok.decide, "", nil, 400, "include", "config or absent"},
		{"decide include=config without config:read", get, decide + "?user_id=u1&include=config", tok.decide, "", nil, 403, "config:read", "include=config"},
		{"decide 1,001 users", post, decide, tok.decide, manyUsers, nil, 422, "users", "at most 1000"},
		{"decide no users", post, decide, tok.decide, `{"users":[]}`, nil, 422, "users", "at least one"},
		{"decide a user without id", post, decide, tok.decide, `{"users":[{"id":"u1"},{"attributes":{"country":"SE"}}]}`, nil, 422, "users[1].id", "required"},
		{"decide a user with an id of 257 bytes", post, decide, tok.decide, `{"users":[{"id":"` + long + `"}]}`, nil, 422, "users[0].id", "at most 256"},
		{"decide with an unknown field", post, decide, tok.decide, `{"users":[{"id":"u1","attrs":{}}]}`, nil, 422, "users[0].attrs", "not a field of users[0]"},
		{"decide many include=bogus", post, decide + "?include=bogus", tok.decide, `{"users":[{"id":"u1"}]}`, nil, 400, "include", "config or absent"},
		{"decide many include=config without config:read", post, decide + "?include=config", tok.decide, `{"users":[{"id":"u1"}]}`, nil, 403, "config:read", "include=config"},

		// OFREP.
		{"OFREP without context", post, flag, tok.decide, `{}`, nil, 400, "INVALID_CONTEXT", "context"},
		{"OFREP with a null context", post, flag, tok.decide, `{"context":null}`, nil, 400, "INVALID_CONTEXT", "context"},
		{"OFREP without targetingKey", post, flag, tok.decide, `{"context":{"country":"SE"}}`, nil, 400, "TARGETING_KEY_MISSING", "targetingKey"},
		{"OFREP with an empty targetingKey", post, flag, tok.decide, `{"context":{"targetingKey":""}}`, nil, 400, "TARGETING_KEY_MISSING", "targetingKey"},
		{"OFREP with a number as targetingKey", post, flag, tok.decide, `{"context":{"targetingKey":7}}`, nil, 400, "TARGETING_KEY_MISSING", "targetingKey"},
		{"OFREP targetingKey of 257 bytes", post, flag, tok.decide, `{"context":{"targetingKey":"` + long + `"}}`, nil, 400, "INVALID_CONTEXT", "at most 256"},
		{"OFREP not JSON", post, flag, tok.decide, `context`, nil, 400, "PARSE_ERROR", "not valid JSON"},
		{"OFREP unknown flag", post, "/ofrep/v1/evaluate/flags/dark-mode", tok.decide, `{"context":{"targetingKey":"u1"}}`, nil, 404, "FLAG_NOT_FOUND", `"dark-mode"`},
		{"OFREP bulk without context", post, "/ofrep/v1/evaluate/flags", tok.decide, `{}`, nil, 400, "INVALID_CONTEXT", "context"},
		{"OFREP bulk without targetingKey", post, "/ofrep/v1/evaluate/flags", tok.decide, `{"context":{}}`, nil, 400, "TARGETING_KEY_MISSING", "targetingKey"},
	}
	for _, c := range fresh {
		t.Run(c.name, func(t *testing.T) { app.refuses(t, tok.admin, c) })
	}

	app.actOnRollout(t, tok.write, "pause", "")
	for _, c := range []refusal{
		{"advance while paused", post, plan + "/advance", tok.write, "", nil, 400, "paused", "resume it before advancing"},
	} {
		t.Run(c.name, func(t *testing.T) { app.refuses(t, tok.admin, c) })
	}

	app.actOnRollout(t, tok.write, "kill", "")
	for _, c := range []refusal{
		{"advance while killed", post, plan + "/advance", tok.write, "", nil, 400, "killed", "admin must bring it back"},
		{"revive without stage", post, plan + "/revive", "", `{}`, nil, 422, "stage", "name the stage"},
		{"revive without a body", post, plan + "/revive", "", "", nil, 422, "stage", "name the stage"},
		{"revive past the last stage", post, plan + "/revive", "", `{"stage":6}`, nil, 400, "stage", "from 0 (not started) to 5"},
		{"revive before stage 0", post, plan + "/revive", "", `{"stage":-1}`, nil, 400, "stage", "from 0 (not started) to 5"},
		{"revive with a word", post, plan + "/revive", "", `{"stage":"one"}`, nil, 422, "stage", "must be a whole number"},
	} {
		t.Run(c.name, func(t *testing.T) { app.refuses(t, tok.admin, c) })
	}
}

func TestRolloutActionsChangeStateAndAreAudited(t *testing.T) {
	app, tok := newRolloutApp(t)
	app.createCohort(t, tok.admin, map[string]any{"name": "pilot", "environment": "production", "user_ids": []string{"u_pilot"}})
	steps := []struct {
		action, token, body string
		state               string
		stage               int
		percent             float64
		changed             []string // the fields the audit row's before and after name
	}{
		{"advance", tok.write, "", "active", 1, 1, []string{"percent", "stage"}},
		{"pause", tok.write, "", "paused", 1, 1, []string{"state"}},
		{"resume", tok.write, "", "active", 1, 1, []string{"state"}},
		{"advance", tok.write, "", "active", 2, 5, []string{"percent", "stage"}},
		{"rollback", tok.write, "", "paused", 1, 1, []string{"percent", "stage", "state"}},
		{"kill", tok.write, "", "killed", 1, 0, []string{"percent", "state"}},
		{"revive", tok.admin, `{"stage":2}`, "paused", 2, 5, []string{"percent", "stage", "state"}},
		{"resume", tok.admin, "", "active", 2, 5, []string{"state"}},
	}
	version := app.showRollout(t, tok.decide).Version
	for _, s := range steps {
		if s.action == "revive" {
			// Only an admin leaves killed.
			if res := app.api(http.MethodPost, "/api/v1/rollout/revive", tok.write, strings.NewReader(s.body)); res.StatusCode != http.StatusForbidden {
				t.Fatalf("revive by rollout:write: %d %s", res.StatusCode, res.body)
			}
		}
		rl := app.actOnRollout(t, s.token, s.action, s.body)
		if rl.State != s.state || rl.Stage != s.stage || rl.Percent != s.percent || rl.Version != version+1 {
			t.Fatalf("%s: state %s, stage %d, percent %v, version %d; want %s, %d, %v, %d", s.action, rl.State, rl.Stage, rl.Percent, rl.Version, s.state, s.stage, s.percent, version+1)
		}
		version = rl.Version
		if got := app.showRollout(t, tok.decide); got.State != s.state || got.Stage != s.stage || got.Version != version {
			t.Fatalf("%s: the answer is not what GET shows: %+v", s.action, got)
		}
		e, before, after := app.lastAudit(t, tok.admin, "rollout."+s.action)
		if !slices.Equal(slices.Sorted(maps.Keys(before)), s.changed) || !slices.Equal(slices.Sorted(maps.Keys(after)), s.changed) {
			t.Errorf("%s: audit names %v -> %v, want %v", s.action, before, after, s.changed)
		}
		if _, ok := after["state"]; ok && after["state"] != s.state {
			t.Errorf("%s: audit after %v", s.action, after)
		}
		if !strings.Contains(e.Actor, "token:") || e.Target != "rollout:tensfer-production" || e.RequestID == "" {
			t.Errorf("%s: audit row %+v", s.action, e)
		}
		if s.action == "kill" {
			for _, u := range []string{"u_pilot", "someone"} {
				if d := app.decideFor(t, tok.decide, u); d.Environment != "off" || d.Reason != "killed" {
					t.Errorf("after kill, %s: %+v", u, d)
				}
			}
		}
	}
	if d := app.decideFor(t, tok.decide, "u_pilot"); d.Environment != "production" || d.Reason != "cohort" || d.Cohort != "pilot" {
		t.Errorf("after revive and resume, the pilot: %+v", d)
	}
	store := app.rolloutStore()
	if e := decodeAs[apiError](t, app.api(http.MethodPost, "/api/v1/rollout/advance", tok.write, strings.NewReader(`{"version":1}`)), http.StatusConflict); e.Error.Code != "version_conflict" {
		t.Errorf("a stale action: %+v", e)
	}
	if got := app.rolloutStore(); got != store {
		t.Errorf("a stale action was stored: %+v -> %+v", store, got)
	}
}

// TestRolloutKillIsNeverRefusedForBeingLate: a kill sent with an old version, a version that is
// not one, or to a killed rollout is a 200 with the killed state; the second changes nothing.
func TestRolloutKillIsNeverRefusedForBeingLate(t *testing.T) {
	app, tok := newRolloutApp(t)
	seen := app.showRollout(t, tok.decide).Version
	app.actOnRollout(t, tok.write, "advance", "")
	app.actOnRollout(t, tok.write, "pause", "") // a guardrail paused it between reload and tap
	tests := []struct {
		name, body string
		header     []string
	}{
		{"the version seen before the pause", fmt.Sprintf(`{"version":%d}`, seen), nil},
		{"killed already, an old If-Match", "", []string{"If-Match", strconv.Quote(strconv.FormatInt(seen, 10))}},
		{"killed already, an If-Match that is not a version", "", []string{"If-Match", "yesterday"}},
		{"killed already, a body that is not JSON", "kill=1", nil},
	}
	var version int64
	for i, tt := range tests {
		var body io.Reader
		if tt.body != "" {
			body = strings.NewReader(tt.body)
		}
		rl := decodeAs[rolloutJSON](t, app.api(http.MethodPost, "/api/v1/rollout/kill", tok.write, body, tt.header...), http.StatusOK)
		if rl.State != "killed" || rl.Percent != 0 {
			t.Fatalf("%s: %s at %v %%", tt.name, rl.State, rl.Percent)
		}
		if i == 0 {
			version = rl.Version
		} else if rl.Version != version {
			t.Fatalf("%s: a kill of a killed rollout changed its version %d -> %d", tt.name, version, rl.Version)
		}
	}
	var kills int
	if err := app.db.R.QueryRow(`SELECT count(*) FROM audit_log WHERE action = 'rollout.kill'`).Scan(&kills); err != nil || kills != 1 {
		t.Fatalf("%d kill audit rows (%v), want 1", kills, err)
	}
}

// breachVerification records a rejected production key (a key failure, not a configuration one): the
// verify_failures guardrail (any failure, from 1) breaches.
func (a *testApp) breachVerification(t *testing.T) {
	t.Helper()
	err := a.db.InsertAudit(context.Background(), db.Audit{Actor: "test", Action: "environment.verify", Target: "environment:production", After: map[string]any{"outcome": "wrong_key"}})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRolloutWideningWhileBreachedNeedsTheOverride: advance and resume while a guardrail is
// breached are 409 guardrails_breached, naming it, and store nothing; with
// "override_guardrails": true they go through, audited as overrides.
func TestRolloutWideningWhileBreachedNeedsTheOverride(t *testing.T) {
	app, tok := newRolloutApp(t)
	app.actOnRollout(t, tok.write, "advance", "")
	app.breachVerification(t)
	for _, action := range []string{"advance", "resume"} {
		if action == "resume" {
			app.actOnRollout(t, tok.write, "pause", "") // pausing is never held
		}
		before := app.rolloutStore()
		e := decodeAs[apiError](t, app.api(http.MethodPost, "/api/v1/rollout/"+action, tok.write, strings.NewReader(`{"override_guardrails":false}`)), http.StatusConflict)
		if e.Error.Code != "guardrails_breached" || !strings.Contains(e.Error.Message, "guardrails are breached: Key verification failures") || !strings.Contains(e.Error.Message, `"override_guardrails": true`) {
			t.Fatalf("%s while breached: %+v", action, e.Error)
		}
		if after := app.rolloutStore(); after != before {
			t.Fatalf("a refused %s changed the store: %+v -> %+v", action, before, after)
		}
		rl := app.actOnRollout(t, tok.write, action, `{"override_guardrails":true}`)
		if rl.State != "active" {
			t.Fatalf("%s with the override: %s", action, rl.State)
		}
		_, _, after := app.lastAudit(t, tok.admin, "rollout."+action)
		if after["override_guardrails"] != true || fmt.Sprint(after["breached"]) != "[verify_failures]" {
			t.Fatalf("%s with the override is not audited as one: %v", action, after)
		}
	}
}

// TestRolloutAutoAdvanceThenAVersionlessAdvance: the API shows how the stage was entered; a
// versionless advance within the soak of an auto-advanced stage is 409 auto_advanced, one with
// the version seen goes through; a plan that changes the current stage restarts its soak.
func TestRolloutAutoAdvanceThenAVersionlessAdvance(t *testing.T) {
	app, tok := newRolloutApp(t)
	clock := newFakeClock()
	app.srv.SetClock(clock.now)
	plan := `{"auto_advance":true,"advance_without_volume":true,"stages":[{"percent":1,"min_soak":"1h"},{"percent":5,"min_soak":"1h"},{"percent":25,"min_soak":"1h"},{"percent":100}]}`
	if rl := app.planRollout(t, tok.admin, plan); !rl.AdvanceWithoutVolume || rl.StageEnteredBy != "" {
		t.Fatalf("after the plan: %+v", rl)
	}
	if rl := app.actOnRollout(t, tok.write, "advance", ""); rl.StageEnteredBy != "hand" {
		t.Fatalf("advanced by hand, entered by %q", rl.StageEnteredBy)
	}
	clock.advance(time.Hour)
	if err := app.srv.rollout.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	rl := app.showRollout(t, tok.decide)
	if rl.Stage != 2 || rl.StageEnteredBy != "auto_advance" {
		t.Fatalf("after the soak: stage %d entered by %q", rl.Stage, rl.StageEnteredBy)
	}
	clock.advance(time.Minute)
	before := app.rolloutStore()
	e := decodeAs[apiError](t, app.api(http.MethodPost, "/api/v1/rollout/advance", tok.write, nil), http.StatusConflict)
	if e.Error.Code != "auto_advanced" || !strings.Contains(e.Error.Message, "auto-advanced to 5 %") || !strings.Contains(e.Error.Message, "send the version you saw") {
		t.Fatalf("a versionless advance a minute after an auto-advance: %+v", e.Error)
	}
	if after := app.rolloutStore(); after != before {
		t.Fatalf("the refused advance changed the store: %+v -> %+v", before, after)
	}
	if got := app.actOnRollout(t, tok.write, "advance", fmt.Sprintf(`{"version":%d}`, rl.Version)); got.Stage != 3 || got.StageEnteredBy != "hand" {
		t.Fatalf("an advance with the version seen: stage %d entered by %q", got.Stage, got.StageEnteredBy)
	}
	started := app.showRollout(t, tok.decide).StageStartedAt
	clock.advance(40 * time.Second)
	rl = app.planRollout(t, tok.admin, `{"stages":[{"percent":1,"min_soak":"1h"},{"percent":5,"min_soak":"1h"},{"percent":20,"min_soak":"30s"},{"percent":100}]}`)
	if rl.Stage != 3 || rl.Percent != 20 || rl.StageStartedAt == nil || *rl.StageStartedAt == *started || rl.StageEnteredBy != "hand" {
		t.Fatalf("a plan that changes the current stage: stage %d at %v since %v (was %v)", rl.Stage, rl.Percent, *rl.StageStartedAt, *started)
	}
}

// TestRolloutPlanFormSetsAdvanceWithoutVolume: the plan form has the setting, and saving it with
// the box ticked stores it (and unticked clears it), as PUT /api/v1/rollout does.
func TestRolloutPlanFormSetsAdvanceWithoutVolume(t *testing.T) {
	app, tok := newRolloutApp(t)
	admin, _ := app.login(db.RoleAdmin)
	for _, tick := range []bool{true, false} {
		doc := admin.get("/rollout").doc(t)
		form := doc.Find(`form[action="/rollout/plan"]`)
		box := form.Find(`input[type="checkbox"][name="advance_without_volume"]`)
		if box.Length() != 1 {
			t.Fatal("the plan form has no advance_without_volume checkbox")
		}
		if _, checked := box.Attr("checked"); checked == tick {
			t.Fatalf("the checkbox shows %v before saving %v", checked, tick)
		}
		v := url.Values{"password": {testPassword}}
		form.Find("input[name], textarea[name], select[name]").Each(func(_ int, s *goquery.Selection) {
			name, _ := s.Attr("name")
			typ, _ := s.Attr("type")
			switch {
			case name == "password" || typ == "checkbox" || typ == "submit":
			case goquery.NodeName(s) == "textarea":
				v.Add(name, s.Text())
			case goquery.NodeName(s) == "select":
				val, _ := s.Find("option[selected]").Attr("value")
				v.Add(name, val)
			default:
				val, _ := s.Attr("value")
				v.Add(name, val)
			}
		})
		if tick {
			v.Set("advance_without_volume", "1")
		}
		if res := admin.postForm("/rollout/plan", v); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("save the plan: %d %.300s", res.StatusCode, res.body)
		}
		if rl := app.showRollout(t, tok.decide); rl.AdvanceWithoutVolume != tick || len(rl.Guardrails) != 4 {
			t.Fatalf("after saving the form with the box %v: %v, %d guardrails", tick, rl.AdvanceWithoutVolume, len(rl.Guardrails))
		}
	}
}

func TestRolloutDecide(t *testing.T) {
	app, tok := newRolloutApp(t)
	app.createCohort(t, tok.admin, map[string]any{"name": "swedish-adults", "environment": "production",
		"rules": []rollout.Rule{{Attribute: "country", Op: "eq", Values: []string{"SE"}}, {Attribute: "age", Op: "gte", Values: []string{"18"}}}})
	app.createCohort(t, tok.admin, map[string]any{"name": "qa", "environment": "sandbox", "match": "any",
		"rules": []rollout.Rule{{Attribute: "email", Op: "prefix", Values: []string{"qa+"}}}})
	app.createCohort(t, tok.admin, map[string]any{"name": "blocked", "environment": "off", "user_ids": []string{"u_blocked"}})

	for _, c := range []struct {
		user, country, age  string
		env, reason, cohort string
	}{
		{"u1", "SE", "30", "production", "cohort", "swedish-adults"},
		{"u1", "SE", "17", "off", "not_started", ""},
		{"u1", "NO", "30", "off", "not_started", ""},
		{"u_blocked", "SE", "30", "off", "blocked", "blocked"}, // block-lists first, though created last
	} {
		d := app.decideFor(t, tok.decide, c.user, "country", c.country, "age", c.age)
		if d.UserID != c.user || d.Environment != c.env || d.Reason != c.reason || d.Cohort != c.cohort || d.Version < 1 {
			t.Errorf("%s %s %s: %+v", c.user, c.country, c.age, d)
		}
	}

	// Many users, in the order asked.
	many := `{"users":[{"id":"u_se","attributes":{"country":"SE","age":"40"}},{"id":"u_blocked","attributes":{"country":"SE","age":"40"}},
		{"id":"u_qa","attributes":{"email":"qa+1@example.com"}},{"id":"u_none"}]}`
	out := decodeAs[struct{ Decisions []decisionJSON }](t, app.api(http.MethodPost, "/api/v1/rollout/decide", tok.decide, strings.NewReader(many)), http.StatusOK)
	var got []string
	for _, d := range out.Decisions {
		got = append(got, d.UserID+":"+d.Environment+":"+d.Reason)
	}
	if want := []string{"u_se:production:cohort", "u_blocked:off:blocked", "u_qa:sandbox:cohort", "u_none:off:not_started"}; !slices.Equal(got, want) {
		t.Fatalf("decisions %v, want %v", got, want)
	}

	// include=config: the decided environment's app config, never its secret key.
	if res := app.patchEnv(tok.admin, "production", map[string]any{"base_url": "https://api.tensfer.example", "public_key": "pk_live_BBBB2222", "secret_key": "sk_live_CCCC3333"}); res.StatusCode != http.StatusOK {
		t.Fatalf("production: %d %s", res.StatusCode, res.body)
	}
	if res := app.patchEnv(tok.admin, "sandbox", map[string]any{"base_url": "https://sandbox.tensfer.example", "secret_key": "sk_sandbox_DDDD4444"}); res.StatusCode != http.StatusOK {
		t.Fatalf("sandbox: %d %s", res.StatusCode, res.body)
	}
	res := app.api(http.MethodGet, "/api/v1/rollout/decide?user_id=u1&attr.country=SE&attr.age=30&include=config", tok.decideConfig, nil)
	if d := decodeAs[decisionJSON](t, res, http.StatusOK); d.Environment != "production" || d.Config == nil || d.Config.BaseURL != "https://api.tensfer.example" ||
		d.Config.PublicKey == nil || *d.Config.PublicKey != "pk_live_BBBB2222" {
		t.Fatalf("include=config: %s", res.body)
	}
	if strings.Contains(res.body, "secret_key") || strings.Contains(res.body, "sk_live") {
		t.Fatalf("include=config shows the secret key: %s", res.body)
	}
	res = app.api(http.MethodGet, "/api/v1/rollout/decide?user_id=u1&include=config", tok.decideConfig, nil)
	if raw := decodeAs[map[string]any](t, res, http.StatusOK); raw["environment"] != "off" || raw["config"] != nil {
		t.Fatalf("include=config for off: %s", res.body)
	}
	res = app.api(http.MethodPost, "/api/v1/rollout/decide?include=config", tok.decideConfig, strings.NewReader(many))
	out = decodeAs[struct{ Decisions []decisionJSON }](t, res, http.StatusOK)
	if c := out.Decisions[0].Config; c == nil || c.BaseURL != "https://api.tensfer.example" {
		t.Errorf("POST include=config, production: %+v", c)
	}
	if c := out.Decisions[2].Config; c == nil || c.BaseURL != "https://sandbox.tensfer.example" {
		t.Errorf("POST include=config, sandbox: %+v", c)
	}
	if out.Decisions[1].Config != nil || out.Decisions[3].Config != nil || strings.Contains(res.body, "secret_key") || strings.Contains(res.body, "sk_") {
		t.Errorf("POST include=config: %s", res.body)
	}

	// The plain answer is written by hand; it stays valid JSON whatever the user id holds.
	for _, id := range []string{`quo"te`, `back\slash`, "ctl\x00\x01\x1f\x7f", "tab\tnew\nline", "sep\u2028\u2029end", "<b>&amp;</b>", "ünïcode ✓"} {
		res := app.api(http.MethodGet, "/api/v1/rollout/decide?user_id="+strings.ReplaceAll(url.QueryEscape(id), "+", "%20"), tok.decide, nil)
		if !json.Valid([]byte(res.body)) || res.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%q: not JSON: %s", id, res.body)
			continue
		}
		var want string
		b, _ := json.Marshal(id)
		json.Unmarshal(b, &want)
		if d := decodeAs[decisionJSON](t, res, http.StatusOK); d.UserID != want {
			t.Errorf("%q: user_id %q, want %q", id, d.UserID, want)
		}
	}
}

// A refused decision request counts nobody into the stage's reach.
func TestRolloutRefusedDecideCountsNobody(t *testing.T) {
	app, tok := newRolloutApp(t)
	app.planRollout(t, tok.admin, `{"stages":[{"percent":100}]}`)
	app.actOnRollout(t, tok.write, "advance", "")
	reach := func() int64 {
		rl := app.showRollout(t, tok.decide)
		if len(rl.Reach) != 1 {
			t.Fatalf("reach: %+v", rl.Reach)
		}
		return rl.Reach[0].Users
	}
	for _, q := range []string{"user_id=u1&include=bogus", "user_id=u1&include=config"} {
		if res := app.api(http.MethodGet, "/api/v1/rollout/decide?"+q, tok.decide, nil); res.StatusCode < 400 {
			t.Fatalf("%s: %d", q, res.StatusCode)
		}
	}
	if n := reach(); n != 0 {
		t.Fatalf("refused requests counted %d users", n)
	}
	if d := app.decideFor(t, tok.decide, "u1"); d.Environment != "production" || d.Reason != "percentage" {
		t.Fatalf("at 100 %%: %+v", d)
	}
	if n := reach(); n != 1 {
		t.Fatalf("reach after one decision: %d", n)
	}
}

func TestRolloutCohorts(t *testing.T) {
	app, tok := newRolloutApp(t)
	early := app.createCohort(t, tok.admin, map[string]any{"name": "early", "environment": "production", "user_ids": []string{" a ", "b", "a", ""}})
	if early.Kind != "list" || early.Size == nil || *early.Size != 2 || early.Environment != "production" {
		t.Fatalf("allow-list: %+v", early)
	}
	sweden := app.createCohort(t, tok.admin, map[string]any{"name": "sweden", "environment": "production", "rules": []rollout.Rule{{Attribute: "country", Op: "in", Values: []string{"SE"}}}})
	if sweden.Kind != "rules" || sweden.Match != "all" || len(sweden.Rules) != 1 || sweden.Size != nil {
		t.Fatalf("rule cohort: %+v", sweden)
	}
	blocked := app.createCohort(t, tok.admin, map[string]any{"name": "blocked", "environment": "off", "user_ids": []string{"x"}})
	names := func() []string {
		t.Helper()
		out := decodeAs[struct {
			Cohorts []cohortJSON
			Version int64
		}](t, app.api(http.MethodGet, "/api/v1/rollout/cohorts", tok.decide, nil), http.StatusOK)
		if out.Version != app.rolloutStore().version {
			t.Errorf("list version %d", out.Version)
		}
		var ns []string
		for _, c := range out.Cohorts {
			ns = append(ns, c.Name)
		}
		return ns
	}
	if got := names(); !slices.Equal(got, []string{"blocked", "early", "sweden"}) {
		t.Fatalf("evaluation order: %v", got)
	}
	export := func(id string) []string {
		t.Helper()
		res := app.api(http.MethodGet, "/api/v1/rollout/cohorts/"+id+"/members", tok.admin, nil)
		if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
			t.Fatalf("export: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
		}
		return strings.Split(strings.TrimSuffix(res.body, "\n"), "\n")
	}

	// PATCH keeps what it does not name: a renamed allow-list keeps its members, a rule cohort
	// moved to sandbox keeps its rules.
	renamed := decodeAs[cohortJSON](t, app.api(http.MethodPatch, "/api/v1/rollout/cohorts/"+early.ID, tok.admin, strings.NewReader(`{"name":"early-access"}`)), http.StatusOK)
	if renamed.Name != "early-access" || renamed.Size == nil || *renamed.Size != 2 || renamed.Environment != "production" {
		t.Fatalf("rename: %+v", renamed)
	}
	if got := export(early.ID); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("members after a rename: %v", got)
	}
	if d := app.decideFor(t, tok.decide, "a"); d.Cohort != "early-access" || d.Environment != "production" {
		t.Fatalf("a member after a rename: %+v", d)
	}
	moved := decodeAs[cohortJSON](t, app.api(http.MethodPatch, "/api/v1/rollout/cohorts/"+sweden.ID, tok.admin, strings.NewReader(`{"environment":"sandbox"}`)), http.StatusOK)
	if moved.Environment != "sandbox" || moved.Name != "sweden" || moved.Match != "all" || !reflect.DeepEqual(moved.Rules, sweden.Rules) {
		t.Fatalf("environment change: %+v", moved)
	}

	// Reorder: block-lists stay first whatever their place.
	res := app.api(http.MethodPut, "/api/v1/rollout/cohorts/order", tok.admin, jsonBody(map[string]any{"ids": []string{sweden.ID, blocked.ID, early.ID}}))
	if res.StatusCode != http.StatusOK {
		t.Fatalf("reorder: %d %s", res.StatusCode, res.body)
	}
	if got := names(); !slices.Equal(got, []string{"blocked", "sweden", "early-access"}) {
		t.Fatalf("order after reorder: %v", got)
	}

	// Import 100k ids as text, decided on at once; the export round-trips.
	file := appendIDs(nil, "m", 100_000, "", "\n")
	res = app.api(http.MethodPut, "/api/v1/rollout/cohorts/"+early.ID+"/members", tok.admin, bytes.NewReader(file), "Content-Type", "text/plain")
	if out := decodeAs[struct{ Size int }](t, res, http.StatusOK); out.Size != 100_000 {
		t.Fatalf("import: %s", res.body)
	}
	if d := app.decideFor(t, tok.decide, "m99999"); d.Cohort != "early-access" || d.Environment != "production" || d.Reason != "cohort" {
		t.Fatalf("an imported id right after the import: %+v", d)
	}
	if d := app.decideFor(t, tok.decide, "a"); d.Cohort != "" {
		t.Fatalf("a replaced member: %+v", d)
	}
	want := strings.Split(strings.TrimSuffix(string(file), "\n"), "\n")
	slices.Sort(want)
	exported := export(early.ID)
	if !slices.Equal(exported, want) {
		t.Fatalf("export: %d ids, want %d", len(exported), len(want))
	}
	before := app.rolloutStore()
	res = app.api(http.MethodPut, "/api/v1/rollout/cohorts/"+early.ID+"/members", tok.admin, strings.NewReader(strings.Join(exported, "\n")+"\n"), "Content-Type", "text/plain")
	if out := decodeAs[struct{ Size int }](t, res, http.StatusOK); out.Size != 100_000 || !slices.Equal(export(early.ID), want) || app.rolloutStore().members != before.members {
		t.Fatalf("re-import of the export: %s", res.body)
	}

	// CSV: the user_id column, in a file of several columns or one.
	for body, wantIDs := range map[string][]string{
		"email,user_id\nc1@x.example,c1\n\"c2@x.example\",c2\n": {"c1", "c2"},
		"user_id\nd1\nd2\n": {"d1", "d2"},
	} {
		res = app.api(http.MethodPut, "/api/v1/rollout/cohorts/"+early.ID+"/members", tok.admin, strings.NewReader(body), "Content-Type", "text/csv")
		if out := decodeAs[struct{ Size int }](t, res, http.StatusOK); out.Size != len(wantIDs) || !slices.Equal(export(early.ID), wantIDs) {
			t.Fatalf("CSV %q: %s, members %v", body, res.body, export(early.ID))
		}
		if d := app.decideFor(t, tok.decide, wantIDs[1]); d.Cohort != "early-access" {
			t.Fatalf("CSV %q: %+v", body, d)
		}
	}
	_, b, a := app.lastAudit(t, tok.admin, "cohort.import")
	if b["members"] != 2.0 || a["members"] != 2.0 {
		t.Errorf("audit of the import: %v -> %v", b, a)
	}

	// Delete: 204, then the cohort is gone everywhere.
	res = app.api(http.MethodDelete, "/api/v1/rollout/cohorts/"+early.ID, tok.admin, nil)
	if res.StatusCode != http.StatusNoContent || res.body != "" {
		t.Fatalf("delete: %d %s", res.StatusCode, res.body)
	}
	for _, r := range []struct{ method, path string }{
		{http.MethodDelete, "/api/v1/rollout/cohorts/" + early.ID},
		{http.MethodGet, "/api/v1/rollout/cohorts/" + early.ID + "/members"},
		{http.MethodPatch, "/api/v1/rollout/cohorts/" + early.ID},
	} {
		var body io.Reader
		if r.method == http.MethodPatch {
			body = strings.NewReader(`{"name":"back"}`)
		}
		if res := app.api(r.method, r.path, tok.admin, body); res.StatusCode != http.StatusNotFound {
			t.Errorf("%s %s after delete: %d %s", r.method, r.path, res.StatusCode, res.body)
		}
	}
	if d := app.decideFor(t, tok.decide, "d1"); d.Cohort != "" {
		t.Fatalf("a member of a deleted cohort: %+v", d)
	}
	if got := names(); !slices.Equal(got, []string{"blocked", "sweden"}) {
		t.Fatalf("after delete: %v", got)
	}
}

func TestRolloutOFREP(t *testing.T) {
	app, tok := newRolloutApp(t)
	app.createCohort(t, tok.admin, map[string]any{"name": "beta", "environment": "production", "user_ids": []string{"member"}})
	evaluate := func(user string) ofrepSuccess {
		t.Helper()
		body := jsonBody(map[string]any{"context": map[string]any{"targetingKey": user, "country": "SE", "age": 30, "beta": true}})
		return decodeAs[ofrepSuccess](t, app.api(http.MethodPost, "/ofrep/v1/evaluate/flags/tensfer-production", tok.decide, body), http.StatusOK)
	}
	check := func(what string, o ofrepSuccess, value, reason string) {
		t.Helper()
		if o.Key != "tensfer-production" || o.Value != value || o.Variant != value || o.Reason != reason {
			t.Errorf("%s: %+v, want %s %s", what, o, value, reason)
		}
	}
	check("before start", evaluate("someone"), "off", "DEFAULT")
	check("a cohort member", evaluate("member"), "production", "TARGETING_MATCH")

	app.planRollout(t, tok.admin, `{"stages":[{"percent":50},{"percent":100}]}`)
	app.actOnRollout(t, tok.write, "advance", "")
	seen := map[string]bool{}
	for i := 0; len(seen) < 2 && i < 200; i++ {
		o := evaluate(fmt.Sprintf("user-%d", i))
		check("at 50 %", o, o.Value, "SPLIT")
		seen[o.Value] = true
	}
	if !seen["production"] || !seen["off"] {
		t.Fatalf("at 50 %% the split sent everyone one way: %v", seen)
	}

	// Bulk: an ETag of the rollout's version and the context; 304 until either changes.
	bulk := func(ctx string, header ...string) response {
		return app.api(http.MethodPost, "/ofrep/v1/evaluate/flags", tok.decide, strings.NewReader(ctx), header...)
	}
	ctx := `{"context":{"targetingKey":"member","country":"SE"}}`
	res := bulk(ctx)
	out := decodeAs[struct{ Flags []ofrepSuccess }](t, res, http.StatusOK)
	if len(out.Flags) != 1 {
		t.Fatalf("bulk: %s", res.body)
	}
	check("bulk", out.Flags[0], "production", "TARGETING_MATCH")
	etag := res.Header.Get("ETag")
	if etag == "" {
		t.Fatal("bulk answer without an ETag")
	}
	for _, c := range []string{ctx, `{"context":{"country":"SE","targetingKey":"member"}}`} {
		if res := bulk(c, "If-None-Match", etag); res.StatusCode != http.StatusNotModified || res.body != "" {
			t.Errorf("If-None-Match, same context %s: %d %s", c, res.StatusCode, res.body)
		}
	}
	if res := bulk(`{"context":{"targetingKey":"member","country":"NO"}}`, "If-None-Match", etag); res.StatusCode != http.StatusOK || res.Header.Get("ETag") == etag {
		t.Errorf("another context: %d, ETag %s", res.StatusCode, res.Header.Get("ETag"))
	}

	app.actOnRollout(t, tok.write, "kill", "")
	res = bulk(ctx, "If-None-Match", etag)
	out = decodeAs[struct{ Flags []ofrepSuccess }](t, res, http.StatusOK)
	if res.Header.Get("ETag") == etag || len(out.Flags) != 1 {
		t.Fatalf("after a change: ETag %s, %s", res.Header.Get("ETag"), res.body)
	}
	check("bulk after kill", out.Flags[0], "off", "DISABLED")
	check("a member after kill", evaluate("member"), "off", "DISABLED")
	check("anyone after kill", evaluate("someone"), "off", "DISABLED")
}

// FuzzRolloutDecideJSON sends arbitrary user ids and attributes to GET /api/v1/rollout/decide,
// whose answer is written by hand: it must be valid JSON that decodes to what encoding/json
// would write for the same decision. Rule cohorts with awkward names are matched by attr.k.
func FuzzRolloutDecideJSON(f *testing.F) {
	app, tok := newRolloutApp(f)
	envs := []string{"production", "sandbox", "off"}
	for i, name := range []string{`quo"te`, `back\slash`, "ctl\x01\x1f\x7f end", "line\u2028sep", "<b>&amp;</b>", "ünï ✓"} {
		app.createCohort(f, tok.admin, map[string]any{"name": name, "environment": envs[i%3],
			"rules": []rollout.Rule{{Attribute: "k", Op: "eq", Values: []string{strconv.Itoa(i)}}}})
	}
	f.Add("u1", "")
	f.Add(`quo"te`, "0")
	f.Add(`back\slash`, "1")
	f.Add("ctl\x00\x1f\x7f", "2")
	f.Add("bad\xff\xfe", "3")
	f.Add("\u2028<&>", "4")
	f.Add("ünï", "5")
	f.Add("", "")
	f.Add(strings.Repeat("x", rollout.MaxIDBytes+1), "")
	handler := app.srv.Handler()
	f.Fuzz(func(t *testing.T, id, k string) {
		esc := func(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }
		req := httptest.NewRequest(http.MethodGet, "/api/v1/rollout/decide?user_id="+esc(id)+"&attr.k="+esc(k), nil)
		req.Header.Set("Authorization", "Bearer "+tok.decide)
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		canon, err := rollout.Canonical(id)
		if canon == "" || len(canon) > rollout.MaxIDBytes || err != nil || !utf8.ValidString(k) {
			if rec.Code != http.StatusBadRequest {
				t.Fatalf("user id %q: %d", id, rec.Code)
			}
			return
		}
		if rec.Code != http.StatusOK || !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("status %d, not valid JSON: %q", rec.Code, rec.Body.String())
		}
		d := app.srv.rollout.Snapshot().Decide(rollout.User{ID: id, Attributes: map[string]string{"k": k}})
		std, _ := json.Marshal(toDecisionJSON(d))
		var got, want map[string]any
		json.Unmarshal(rec.Body.Bytes(), &got)
		json.Unmarshal(std, &want)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("by hand:       %q\nencoding/json: %q", rec.Body.String(), std)
		}
	})
}

// FuzzDecideQuery: what the one-pass query reader accepts, url.ParseQuery reads the same way
// (each name once, the id and values then made canonical); a literal + or ; is always refused.
func FuzzDecideQuery(f *testing.F) {
	for _, s := range []string{"user_id=u1&attr.country=SE", "user_id=a%20b&user_id=c&include=config", "attr.x=1&attr.x=2&&user_id=%E2%82%AC", "user_id=a+b&attr.k%3D=v%26",
		"user_id=qa%2B1%40x.com&attr.n=1e3", "user_id=%ff", "user_id=e%CC%81&attr.c=%20SE%20"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, include, problem := decideQuery(raw)
		if strings.ContainsAny(raw, "+;") && problem == "" {
			t.Fatalf("%q: accepted a literal + or ;", raw)
		}
		if problem != "" {
			return
		}
		q, err := url.ParseQuery(raw)
		if err != nil {
			t.Fatalf("%q: accepted what url.ParseQuery refuses: %v", raw, err)
		}
		id, _ := rollout.Canonical(q.Get("user_id"))
		if u.ID != id || id == "" || include != q.Get("include") || len(q["user_id"]) != 1 {
			t.Fatalf("%q: user %q include %q, want %q %q", raw, u.ID, include, id, q.Get("include"))
		}
		for k, vs := range q {
			name, ok := strings.CutPrefix(k, "attr.")
			if !ok {
				continue
			}
			name, _ = rollout.Canonical(name)
			v, _ := rollout.Canonical(vs[0])
			if len(vs) != 1 || u.Attributes[name] != v {
				t.Fatalf("%q: attribute %s = %q, want %q", raw, name, u.Attributes[name], v)
			}
		}
	})
}
