package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/tensfer-golive/dashboard/internal/rollout"
)

// attr is one attribute as a decision case sends it: a value, null, or (omitted from the
// case's list) missing. num sends it to OFREP as a JSON number rather than a string.
type attr struct {
	name, value string
	null, num   bool
}

func a(name, value string) attr   { return attr{name: name, value: value} }
func num(name, value string) attr { return attr{name: name, value: value, num: true} }
func null(name string) attr       { return attr{name: name, null: true} }

// decideCase is one row of the decision table: a user as sent, and the decision all three APIs
// must give. id is the canonical id the answer carries and the bucket is computed from.
type decideCase struct {
	name         string
	send, id     string
	attrs        []attr
	env, reason  string
	cohort       string
	byPercentage bool // env and reason follow the bucket: production under 50 %, else off
}

// decideTableCohorts are the table's cohorts: block-lists (one created last, so that evaluation
// order, not creation order, puts it first), allow-lists and one rule cohort per operator, each
// on its own attribute so that the cases do not interfere.
var decideTableCohorts = []map[string]any{
	{"name": "pilot", "environment": "production", "user_ids": []string{"pilot-1", " spaced ", "qa+1@x.com", "Zoë", "e\u0301clair", "both-lists", "Case"}},
	{"name": "testers", "environment": "sandbox", "user_ids": []string{"tester-1"}},
	{"name": "eq", "environment": "production", "rules": []rollout.Rule{{Attribute: "c_eq", Op: "eq", Values: []string{" SE "}}}},
	{"name": "neq", "environment": "production", "rules": []rollout.Rule{{Attribute: "c_neq", Op: "neq", Values: []string{"US"}}}},
	{"name": "in", "environment": "production", "rules": []rollout.Rule{{Attribute: "c_in", Op: "in", Values: []string{"SE", "NO", "\u00e9"}}}},
	{"name": "not_in", "environment": "production", "rules": []rollout.Rule{{Attribute: "c_nin", Op: "not_in", Values: []string{"US", "CA"}}}},
	{"name": "not_in_long", "environment": "production", "rules": []rollout.Rule{{Attribute: "c_ninl", Op: "not_in", Values: strings.Split("a,b,c,d,e,f,g,h,i,j", ",")}}},
	{"name": "prefix", "environment": "production", "rules": []rollout.Rule{{Attribute: "c_pre", Op: "prefix", Values: []string{"6."}}}},
	{"name": "gt", "environment": "production", "rules": []rollout.Rule{{Attribute: "n_gt", Op: "gt", Values: []string{"10"}}}},
	{"name": "gte", "environment": "production", "rules": []rollout.Rule{{Attribute: "n_gte", Op: "gte", Values: []string{"1e1"}}}},
	{"name": "lt", "environment": "production", "rules": []rollout.Rule{{Attribute: "n_lt", Op: "lt", Values: []string{"-2.5"}}}},
	{"name": "lte", "environment": "production", "rules": []rollout.Rule{{Attribute: "n_lte", Op: "lte", Values: []string{"0.5E1"}}}},
	{"name": "qa", "environment": "sandbox", "rules": []rollout.Rule{{Attribute: "team", Op: "eq", Values: []string{"qa"}}}},
	{"name": "blocked", "environment": "off", "user_ids": []string{"blocked-1", "both-lists"}},
	{"name": "blocked-rule", "environment": "off", "rules": []rollout.Rule{{Attribute: "fraud", Op: "eq", Values: []string{"yes"}}}},
}

// ruleCases are, per rule cohort, attribute values and whether they match: every operator, with
// numbers in every notation, and unknown values (null, empty, blank, missing) that match none.
func ruleCases() []decideCase {
	type v struct {
		a     attr
		match bool
	}
	table := map[string][]v{
		"eq": {{a("c_eq", "SE"), true}, {a("c_eq", " SE\t"), true}, {a("c_eq", "se"), false}, {a("c_eq", "NO"), false},
			{a("c_eq", ""), false}, {null("c_eq"), false}},
		"neq": {{a("c_neq", "SE"), true}, {a("c_neq", "US"), false}, {a("c_neq", " US "), false}, {a("c_neq", ""), false},
			{a("c_neq", "   "), false}, {null("c_neq"), false}},
		"in": {{a("c_in", "NO"), true}, {a("c_in", "DK"), false}, {a("c_in", "e\u0301"), true}, {a("c_in", "\u00e9"), true},
			{null("c_in"), false}, {a("c_in", ""), false}},
		"not_in": {{a("c_nin", "SE"), true}, {a("c_nin", "US"), false}, {a("c_nin", "ca"), true}, {a("c_nin", ""), false},
			{null("c_nin"), false}},
		"not_in_long": {{a("c_ninl", "z"), true}, {a("c_ninl", "a"), false}, {a("c_ninl", " j "), false}, {null("c_ninl"), false},
			{a("c_ninl", ""), false}},
		"prefix": {{a("c_pre", "6.1.0"), true}, {a("c_pre", "7.0"), false}, {a("c_pre", " 6.2"), true}, {a("c_pre", ""), false},
			{null("c_pre"), false}},
		"gt": {{a("n_gt", "11"), true}, {num("n_gt", "11"), true}, {a("n_gt", "10"), false}, {num("n_gt", "10.5"), true},
			{num("n_gt", "1.1e1"), true}, {num("n_gt", "1E2"), true}, {num("n_gt", "1e+2"), true}, {num("n_gt", "-11"), false},
			{a("n_gt", " 12 "), true}, {a("n_gt", "0x10"), false}, {a("n_gt", "0x1p4"), false}, {a("n_gt", "1_000"), false},
			{a("n_gt", "Inf"), false}, {a("n_gt", "+Inf"), false}, {a("n_gt", "infinity"), false}, {a("n_gt", "NaN"), false},
			{a("n_gt", "1e400"), false}, {a("n_gt", "011"), false}, {a("n_gt", "+11"), false}, {a("n_gt", ".5e2"), false},
			{a("n_gt", "eleven"), false}, {a("n_gt", ""), false}, {null("n_gt"), false}},
		"gte": {{num("n_gte", "10"), true}, {a("n_gte", "10.0"), true}, {num("n_gte", "9.99"), false}, {num("n_gte", "1e1"), true},
			{num("n_gte", "100e-1"), true}, {a("n_gte", "1e1 0"), false}, {null("n_gte"), false}},
		"lt": {{num("n_lt", "-3"), true}, {num("n_lt", "-2.5"), false}, {num("n_lt", "-1e1"), true}, {a("n_lt", "-Inf"), false},
			{a("n_lt", "-1e400"), false}, {num("n_lt", "-0"), false}, {a("n_lt", ""), false}},
		"lte": {{num("n_lte", "5"), true}, {a("n_lte", "5.0"), true}, {num("n_lte", "-0"), true}, {num("n_lte", "5.01"), false},
			{num("n_lte", "0.5e1"), true}, {num("n_lte", "1e-400"), true}, {a("n_lte", "NaN"), false}, {null("n_lte"), false}},
	}
	var out []decideCase
	for cohort, vs := range table {
		for i, v := range vs {
			c := decideCase{name: fmt.Sprintf("%s %d %q", cohort, i, v.a.value), send: "user-" + cohort, id: "user-" + cohort, attrs: []attr{v.a},
				env: "off", reason: "not_started"}
			if v.a.null {
				c.name = fmt.Sprintf("%s %d null", cohort, i)
			}
			if v.match {
				c.env, c.reason, c.cohort = "production", "cohort", cohort
			}
			out = append(out, c)
		}
		// And missing altogether.
		out = append(out, decideCase{name: cohort + " missing", send: "user-" + cohort, id: "user-" + cohort, env: "off", reason: "not_started"})
	}
	return out
}

// idCases are id forms before the start: white space around, NFD against an NFC member, case,
// a plus, and block-list positions.
var idCases = []decideCase{
	{name: "member", send: "pilot-1", id: "pilot-1", env: "production", reason: "cohort", cohort: "pilot"},
	{name: "member with spaces", send: "  pilot-1 ", id: "pilot-1", env: "production", reason: "cohort", cohort: "pilot"},
	{name: "member with tab and newline", send: "\tpilot-1\n", id: "pilot-1", env: "production", reason: "cohort", cohort: "pilot"},
	{name: "saved with spaces", send: "spaced", id: "spaced", env: "production", reason: "cohort", cohort: "pilot"},
	{name: "case is kept", send: "PILOT-1", id: "PILOT-1", env: "off", reason: "not_started"},
	{name: "case is kept 2", send: "case", id: "case", env: "off", reason: "not_started"},
	{name: "case is kept 3", send: "Case", id: "Case", env: "production", reason: "cohort", cohort: "pilot"},
	{name: "a plus", send: "qa+1@x.com", id: "qa+1@x.com", env: "production", reason: "cohort", cohort: "pilot"},
	{name: "a space is not a plus", send: "qa 1@x.com", id: "qa 1@x.com", env: "off", reason: "not_started"},
	{name: "NFC as saved", send: "Zo\u00eb", id: "Zo\u00eb", env: "production", reason: "cohort", cohort: "pilot"},
	{name: "NFD of an NFC member", send: "Zoe\u0308", id: "Zo\u00eb", env: "production", reason: "cohort", cohort: "pilot"},
	{name: "NFC of an NFD member", send: "\u00e9clair", id: "\u00e9clair", env: "production", reason: "cohort", cohort: "pilot"},
	{name: "sandbox list", send: "tester-1", id: "tester-1", env: "sandbox", reason: "cohort", cohort: "testers"},
	{name: "block-list", send: "blocked-1", id: "blocked-1", env: "off", reason: "blocked", cohort: "blocked"},
	{name: "block-list, spaced", send: " blocked-1", id: "blocked-1", env: "off", reason: "blocked", cohort: "blocked"},
	{name: "block-list before an allow-list created first", send: "both-lists", id: "both-lists", env: "off", reason: "blocked", cohort: "blocked"},
	{name: "block rule before an allow-list", send: "pilot-1", id: "pilot-1", attrs: []attr{a("fraud", "yes")}, env: "off", reason: "blocked", cohort: "blocked-rule"},
	{name: "block rule before a rule", send: "u-9", id: "u-9", attrs: []attr{a("fraud", "yes"), a("c_eq", "SE")}, env: "off", reason: "blocked", cohort: "blocked-rule"},
	{name: "block rule, null", send: "u-9", id: "u-9", attrs: []attr{null("fraud"), a("c_eq", "SE")}, env: "production", reason: "cohort", cohort: "eq"},
	{name: "sandbox rule", send: "u-10", id: "u-10", attrs: []attr{a("team", "qa")}, env: "sandbox", reason: "cohort", cohort: "qa"},
	{name: "nobody", send: "u-11", id: "u-11", env: "off", reason: "not_started"},
	{name: "ctl inside", send: "a\x00b", id: "a\x00b", env: "off", reason: "not_started"},
	{name: "ümlaut id", send: " ünï ✓ ", id: "ünï ✓", env: "off", reason: "not_started"},
}

// stateCases are decided in a later state of the rollout: started at 50 %, paused, killed.
func stateCases(state string) []decideCase {
	killed := state == "killed"
	prod := func(c decideCase) decideCase {
		if killed {
			c.env, c.reason = "off", "killed"
		}
		return c
	}
	out := []decideCase{
		prod(decideCase{name: state + ": member", send: " pilot-1", id: "pilot-1", env: "production", reason: "cohort", cohort: "pilot"}),
		prod(decideCase{name: state + ": rule", send: "u-1", id: "u-1", attrs: []attr{num("n_gte", "1e1")}, env: "production", reason: "cohort", cohort: "gte"}),
		{name: state + ": sandbox list", send: "tester-1", id: "tester-1", env: "sandbox", reason: "cohort", cohort: "testers"},
		{name: state + ": block-list", send: "both-lists", id: "both-lists", env: "off", reason: "blocked", cohort: "blocked"},
		{name: state + ": block rule", send: "pilot-1", id: "pilot-1", attrs: []attr{a("fraud", " yes ")}, env: "off", reason: "blocked", cohort: "blocked-rule"},
	}
	for i := range 8 {
		id := fmt.Sprintf("user-%d", i)
		c := decideCase{name: fmt.Sprintf("%s: %s by percentage", state, id), send: id, id: id, attrs: []attr{null("c_neq"), a("c_nin", "")}, byPercentage: !killed}
		if killed {
			c.env, c.reason = "off", "killed"
		}
		if i%2 == 0 {
			c.send = " " + id + "\t" // the bucket is the canonical id's
		}
		out = append(out, c)
	}
	return out
}

// TestDecisionTable runs every case through GET, POST and OFREP against the real router; the
// three must give the decision expected, with the bucket of the canonical id.
func TestDecisionTable(t *testing.T) {
	app, tok := newRolloutApp(t)
	for i := len(decideTableCohorts) - 1; i >= 0; i-- { // block-lists last: order is the rule
		app.createCohort(t, tok.admin, decideTableCohorts[i])
	}
	salt := app.srv.rollout.Snapshot().Rollout.Salt
	total := 0
	run := func(cases []decideCase) {
		for _, c := range cases {
			total++
			t.Run(c.name, func(t *testing.T) {
				want := decisionJSON{UserID: c.id, Environment: c.env, Reason: c.reason, Cohort: c.cohort, Bucket: rollout.Bucket(salt, c.id)}
				if c.byPercentage {
					want.Environment, want.Reason = "off", "default"
					if want.Bucket < 5000 {
						want.Environment, want.Reason = "production", "percentage"
					}
				}
				for api, got := range map[string]decisionJSON{"GET": decideGET(t, app, tok.decide, c), "POST": decidePOST(t, app, tok.decide, c), "OFREP": decideOFREP(t, app, tok.decide, c)} {
					got.Version = 0
					if got != want {
						t.Errorf("%s: %+v, want %+v", api, got, want)
					}
				}
			})
		}
	}
	run(ruleCases())
	run(idCases)
	app.planRollout(t, tok.admin, `{"stages":[{"percent":50},{"percent":100}]}`)
	app.actOnRollout(t, tok.write, "advance", "")
	run(stateCases("active"))
	app.actOnRollout(t, tok.write, "pause", "")
	run(stateCases("paused"))
	app.actOnRollout(t, tok.write, "kill", "")
	run(stateCases("killed"))
	if total < 100 {
		t.Fatalf("only %d cases", total)
	}
}

// decideGET sends a case as GET, each part percent-encoded (a space as %20, a plus as %2B), an
// unknown attribute as attr.x= (empty).
func decideGET(t *testing.T, app *testApp, token string, c decideCase) decisionJSON {
	t.Helper()
	esc := func(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }
	q := "user_id=" + esc(c.send)
	for _, at := range c.attrs {
		q += "&attr." + esc(at.name) + "=" + esc(at.value)
	}
	return decodeAs[decisionJSON](t, app.api(http.MethodGet, "/api/v1/rollout/decide?"+q, token, nil), http.StatusOK)
}

func decidePOST(t *testing.T, app *testApp, token string, c decideCase) decisionJSON {
	t.Helper()
	attrs := map[string]any{}
	for _, at := range c.attrs {
		attrs[at.name] = at.value
		if at.null {
			attrs[at.name] = nil
		}
	}
	body := jsonBody(map[string]any{"users": []any{map[string]any{"id": c.send, "attributes": attrs}}})
	out := decodeAs[struct{ Decisions []decisionJSON }](t, app.api(http.MethodPost, "/api/v1/rollout/decide", token, body), http.StatusOK)
	if len(out.Decisions) != 1 {
		t.Fatalf("POST: %d decisions", len(out.Decisions))
	}
	return out.Decisions[0]
}

// decideOFREP sends a case as an OFREP context, numbers marked num as JSON numbers, and reads the
// decision back from the value and the metadata.
func decideOFREP(t *testing.T, app *testApp, token string, c decideCase) decisionJSON {
	t.Helper()
	ctx := map[string]any{"targetingKey": c.send}
	for _, at := range c.attrs {
		switch {
		case at.null:
			ctx[at.name] = nil
		case at.num:
			ctx[at.name] = json.RawMessage(at.value)
		default:
			ctx[at.name] = at.value
		}
	}
	res := app.api(http.MethodPost, "/ofrep/v1/evaluate/flags/tensfer-production", token, jsonBody(map[string]any{"context": ctx}))
	o := decodeAs[struct {
		Value    string
		Metadata struct {
			Reason string
			Bucket int
			Cohort string
		}
	}](t, res, http.StatusOK)
	// OFREP does not echo the id: the bucket says which one was hashed.
	return decisionJSON{UserID: c.id, Environment: o.Value, Reason: o.Metadata.Reason, Cohort: o.Metadata.Cohort, Bucket: o.Metadata.Bucket}
}

// TestDecideRefusesWhatItCannotDecideFaithfully: each is a 400 naming the problem, in every API
// that can carry it, and nobody is counted into the reach.
func TestDecideRefusesWhatItCannotDecideFaithfully(t *testing.T) {
	app, tok := newRolloutApp(t)
	get := func(q string) response {
		return app.api(http.MethodGet, "/api/v1/rollout/decide?"+q, tok.decide, nil)
	}
	post := func(body string) response {
		return app.api(http.MethodPost, "/api/v1/rollout/decide", tok.decide, strings.NewReader(body))
	}
	ofrep := func(body string) response {
		return app.api(http.MethodPost, "/ofrep/v1/evaluate/flags/tensfer-production", tok.decide, strings.NewReader(body))
	}
	for _, c := range []struct {
		name   string
		res    response
		status int
		says   string
	}{
		{"GET a literal plus", get("user_id=qa+1@x.com"), 400, "%2B"},
		{"GET a plus in an attribute", get("user_id=u&attr.city=New+York"), 400, "%20"},
		{"GET a semicolon", get("user_id=u;attr.country=SE"), 400, "%3B"},
		{"GET a semicolon in an attribute", get("user_id=u&attr.c=a;b"), 400, "%3B"},
		{"GET a bad escape", get("user_id=100%"), 400, "%25"},
		{"GET a bad escape in a name", get("user_id=u&attr.%zz=1"), 400, "percent-encoded"},
		{"GET invalid UTF-8", get("user_id=%ff%fe"), 400, "UTF-8"},
		{"GET invalid UTF-8 in an attribute", get("user_id=u&attr.c=%c3"), 400, "UTF-8"},
		{"GET overlong UTF-8", get("user_id=%c0%af"), 400, "UTF-8"},
		{"GET an encoded surrogate", get("user_id=%ed%a0%80"), 400, "UTF-8"},
		{"GET user_id twice", get("user_id=a&user_id=b"), 400, "twice"},
		{"GET an attribute twice", get("user_id=a&attr.c=SE&attr.c=US"), 400, "twice"},
		{"GET an attribute twice once canonical", get("user_id=a&attr.c=SE&attr.%20c=US"), 400, "twice"},
		{"GET an attribute without a name", get("user_id=a&attr.=SE"), 400, "name"},
		{"GET a misspelt prefix", get("user_id=a&attrs.country=SE"), 400, "unknown query parameter"},
		{"GET a blank id", get("user_id=%20%09"), 400, "required"},
		{"POST invalid UTF-8", post("{\"users\":[{\"id\":\"a\xff\"}]}"), 400, "UTF-8"},
		{"POST a lone surrogate", post(`{"users":[{"id":"a\udc00"}]}`), 400, "surrogate"},
		{"POST a high surrogate alone", post(`{"users":[{"id":"u","attributes":{"c":"\ud800x"}}]}`), 400, "surrogate"},
		{"POST a blank id", post(`{"users":[{"id":" "}]}`), 422, "users[0].id is required"},
		{"POST an attribute twice", post(`{"users":[{"id":"u","attributes":{"c":"SE","c":"US"}}]}`), 422, "twice"},
		{"POST a number attribute", post(`{"users":[{"id":"u","attributes":{"age":30}}]}`), 422, `send numbers as text`},
		{"POST every problem", post(`{"users":[{"id":""},{"id":"ok"},{"id":"u","attributes":{"age":true}}]}`), 422, "users[2].attributes.age"},
		{"OFREP invalid UTF-8", ofrep("{\"context\":{\"targetingKey\":\"a\xff\"}}"), 400, "UTF-8"},
		{"OFREP a lone surrogate", ofrep(`{"context":{"targetingKey":"\udfff"}}`), 400, "surrogate"},
		{"OFREP an attribute twice", ofrep(`{"context":{"targetingKey":"u","c":"SE","c":"US"}}`), 400, "twice"},
		{"OFREP targetingKey twice", ofrep(`{"context":{"targetingKey":"u","targetingKey":"v"}}`), 400, "twice"},
		{"OFREP a blank targetingKey", ofrep(`{"context":{"targetingKey":"  "}}`), 400, "TARGETING_KEY_MISSING"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.res.StatusCode != c.status || !strings.Contains(c.res.body, c.says) {
				t.Fatalf("%d %s, want %d saying %q", c.res.StatusCode, c.res.body, c.status, c.says)
			}
		})
	}
	// A valid surrogate pair is a character like any other.
	res := post(`{"users":[{"id":"\ud83d\ude00"}]}`)
	if d := decodeAs[struct{ Decisions []decisionJSON }](t, res, http.StatusOK); d.Decisions[0].UserID != "😀" {
		t.Fatalf("a surrogate pair: %s", res.body)
	}
	if rl := app.showRollout(t, tok.decide); len(rl.Reach) > 0 && rl.Reach[0].Users > 1 {
		t.Fatalf("refused requests were counted: %+v", rl.Reach)
	}
}

// FuzzDecideBodies sends arbitrary bodies to POST decide and OFREP: never a 5xx, and an id that
// is decided was sent: U+FFFD in an answer only where the body wrote one (a lone surrogate or a
// bad byte is refused, never read as U+FFFD).
func FuzzDecideBodies(f *testing.F) {
	app, tok := newRolloutApp(f)
	for _, s := range []string{`"u1"`, `"a\udc00"`, `"\ud83d\ude00"`, `"\ud800\u0041"`, `"x\\udc00"`, "\"\xff\"", `"\ufffd"`, `"\\"`, `" sp "`} {
		f.Add(s)
	}
	handler := app.srv.Handler()
	f.Fuzz(func(t *testing.T, id string) {
		wroteFFFD := strings.Contains(id, "\ufffd") || strings.Contains(strings.ToLower(id), `\ufffd`)
		for _, c := range []struct{ path, body string }{
			{"/api/v1/rollout/decide", `{"users":[{"id":` + id + `,"attributes":{"k":` + id + `}}]}`},
			{"/ofrep/v1/evaluate/flags/tensfer-production", `{"context":{"targetingKey":` + id + `,"k":` + id + `}}`},
		} {
			req := httptest.NewRequest(http.MethodPost, c.path, strings.NewReader(c.body))
			req.Header.Set("Authorization", "Bearer "+tok.decide)
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			handler.ServeHTTP(rec, req)
			if rec.Code >= 500 {
				t.Fatalf("%s %q: %d %s", c.path, c.body, rec.Code, rec.Body)
			}
			if rec.Code == http.StatusOK && !wroteFFFD && strings.Contains(rec.Body.String(), "\ufffd") {
				t.Fatalf("%s %q: decided as U+FFFD: %s", c.path, c.body, rec.Body)
			}
		}
	})
}
