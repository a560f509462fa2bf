package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/events"
	"github.com/tensfer-golive/dashboard/internal/validation"
)

// goInternals are words of Go's own decoding errors: none may reach an API client.
var goInternals = []string{"Go struct", "Go value", "unmarshal", "interface {}", "map[", "2006-01-02", "json:", "apiCall", "events.", "*int", "int64 "}

// TestJSONBodyMistakesNameTheField sends bodies whose members are of the wrong kind or name to
// the API: each answer is 422 validation_failed with the member's path in fields and a sentence
// saying what it must be, never Go's own words, and nothing is stored. Bodies that are not one
// JSON object at all stay 400 with a message.
func TestJSONBodyMistakesNameTheField(t *testing.T) {
	app := newTestApp(t)
	tok := app.addToken("all", auth.ScopeAdmin)
	const call = `"env":"sandbox","method":"GET","path":"/v1/payments"`
	for _, c := range []struct {
		name, method, path, body string
		status                   int
		field, says              string // the fields key (422) and what its message (or the 400 message) says
	}{
		{"a status as a string", "POST", "/api/v1/api-calls", `{` + call + `,"status":"200"}`, 422, "status", `status must be a whole number (got the string "200")`},
		{"a status with a fraction", "POST", "/api/v1/api-calls", `{` + call + `,"status":200.5}`, 422, "status", "status must be a whole number (got 200.5)"},
		{"a duration past int64", "POST", "/api/v1/api-calls", `{` + call + `,"status":200,"duration_ms":99999999999999999999}`, 422, "duration_ms", "duration_ms must be a whole number from -9223372036854775808 to 9223372036854775807"},
		{"a time that is a word", "POST", "/api/v1/api-calls", `{` + call + `,"status":200,"occurred_at":"yesterday"}`, 422, "occurred_at", `occurred_at must be an RFC 3339 time such as 2026-11-30T12:00:00Z (got the string "yesterday")`},
		{"a time without a zone", "POST", "/api/v1/api-calls", `{` + call + `,"status":200,"occurred_at":"2026-11-30 12:00"}`, 422, "occurred_at", "RFC 3339 time"},
		{"a boolean as a string", "POST", "/api/v1/api-calls", `{` + call + `,"status":null,"timeout":"yes"}`, 422, "timeout", `timeout must be true or false (got the string "yes")`},
		{"an unknown field", "POST", "/api/v1/api-calls", `{` + call + `,"status":200,"statuscode":200}`, 422, "statuscode", "statuscode is not a field of this request; its fields are duration_ms, env, error_code"},
		{"a nested member of the wrong kind", "POST", "/api/v1/rollout/decide", `{"users":[{"id":"u1"},{"id":"u2","attributes":{"age":41}}]}`, 422, "users[1].attributes.age", "users[1].attributes.age must be a string (got 41)"},
		{"a nested unknown field", "PUT", "/api/v1/rollout", `{"stages":[{"percent":5,"soak":"1h"}]}`, 422, "stages[0].soak", "soak is not a field of stages[0]; its fields are min_soak, percent"},
		{"a list that is a string", "PATCH", "/api/v1/environments/sandbox", `{"allowed_origins":"https://a.example"}`, 422, "allowed_origins", "allowed_origins must be an array of strings (got the string"},
		{"a list holding a number", "POST", "/api/v1/rollout/cohorts", `{"name":"n","environment":"production","user_ids":["u1",2]}`, 422, "user_ids[1]", "user_ids[1] must be a string (got 2)"},
		{"a percent that is text", "PUT", "/api/v1/rollout", `{"stages":[{"percent":"five"}]}`, 422, "stages[0].percent", "must be a number"},
		{"a field name in capitals (encoding/json matches it)", "PUT", "/api/v1/rollout", `{"STAGES":"all"}`, 422, "STAGES", "STAGES must be an array of objects"},

		{"not JSON", "POST", "/api/v1/api-calls", `env=sandbox`, 400, "", "request body is not valid JSON: invalid character 'e' looking for beginning of value (at byte 1)"},
		{"cut short", "POST", "/api/v1/api-calls", `{"env":"sandbox"`, 400, "", "request body is not valid JSON"},
		{"an array", "POST", "/api/v1/api-calls", `[{"env":"sandbox"}]`, 400, "", "request body must be a JSON object"},
		{"a string", "POST", "/api/v1/api-calls", `"sandbox"`, 400, "", "request body must be a JSON object"},
		{"two objects", "POST", "/api/v1/api-calls", `{` + call + `,"status":200}{}`, 400, "", "data after the JSON object"},
		{"empty", "POST", "/api/v1/api-calls", ` `, 400, "", "request body is empty"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := app.eventCount()
			res := app.api(c.method, c.path, tok, strings.NewReader(c.body))
			if res.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, c.status, res.body)
			}
			var e fieldsError
			if err := json.Unmarshal([]byte(res.body), &e); err != nil {
				t.Fatalf("answer is not the error JSON: %s", res.body)
			}
			msg := e.Error.Message
			if c.status == http.StatusUnprocessableEntity {
				if e.Error.Code != "validation_failed" || e.Error.Fields[c.field] == "" {
					t.Fatalf("want validation_failed naming %s: %s", c.field, res.body)
				}
				msg = e.Error.Fields[c.field]
			}
			if !strings.Contains(msg, c.says) {
				t.Errorf("message %q does not say %q", msg, c.says)
			}
			for _, w := range goInternals {
				if strings.Contains(res.body, w) {
					t.Errorf("answer shows Go's own words %q: %s", w, res.body)
				}
			}
			if app.eventCount() != before {
				t.Error("a refused body stored an event")
			}
		})
	}
}

// TestJSONBodyProblemsAreBounded: an allow-list of a million members of the wrong kind names
// the first few, not every one.
func TestJSONBodyProblemsAreBounded(t *testing.T) {
	app := newTestApp(t)
	tok := app.addToken("admin", auth.ScopeAdmin)
	body := `{"name":"n","environment":"production","user_ids":[` + strings.TrimSuffix(strings.Repeat("1,", 100000), ",") + `]}`
	res := app.api("POST", "/api/v1/rollout/cohorts", tok, strings.NewReader(body))
	var e fieldsError
	if err := json.Unmarshal([]byte(res.body), &e); err != nil || res.StatusCode != 422 {
		t.Fatalf("%d %.300s", res.StatusCode, res.body)
	}
	if n := len(e.Error.Fields); n != maxMemberProblems || e.Error.Fields["user_ids[0]"] == "" {
		t.Fatalf("%d fields named, want the first %d: %.300s", n, maxMemberProblems, res.body)
	}
}

// TestOFREPTypeErrorsKeepOFREPShape: a context of the wrong kind is OFREP's INVALID_CONTEXT with
// a sentence, and a body that is not JSON its PARSE_ERROR; neither shows Go's words.
func TestOFREPTypeErrorsKeepOFREPShape(t *testing.T) {
	app := newTestApp(t)
	tok := app.addToken("decide", auth.ScopeRolloutDecide)
	for body, want := range map[string][2]string{
		`{"context":"u1"}`:                 {"INVALID_CONTEXT", `context must be an object (got the string "u1")`},
		`{"context":["u1"]}`:               {"INVALID_CONTEXT", "context must be an object (got an array)"},
		`{"context":{"targetingKey":"u1"}`: {"PARSE_ERROR", "not valid JSON"},
		`[]`:                               {"PARSE_ERROR", "must be a JSON object"},
	} {
		for _, path := range []string{"/ofrep/v1/evaluate/flags/tensfer-production", "/ofrep/v1/evaluate/flags"} {
			res := app.api("POST", path, tok, strings.NewReader(body))
			var f ofrepFailure
			if err := json.Unmarshal([]byte(res.body), &f); err != nil || res.StatusCode != 400 || f.ErrorCode != want[0] || !strings.Contains(f.ErrorDetails, want[1]) {
				t.Errorf("%s %s: %d %s, want 400 %s saying %q", path, body, res.StatusCode, res.body, want[0], want[1])
			}
			for _, w := range goInternals {
				if strings.Contains(res.body, w) {
					t.Errorf("%s %s: answer shows Go's own words %q: %s", path, body, w, res.body)
				}
			}
		}
	}
}

// FuzzParseJSONBody: whatever the body, parseJSONBody agrees with encoding/json on whether it
// fits (nil exactly when a strict decode of one object succeeds), never panics, and every
// refusal is a 400 sentence or fields naming members, in words without Go's.
func FuzzParseJSONBody(f *testing.F) {
	for _, s := range []string{`{"env":"sandbox","method":"GET","path":"/v1","status":200}`, `{"status":"200"}`,
		`{"occurred_at":"yesterday","timeout":1}`, `{"x":1}`, `[]`, `{`, `null`, `{"duration_ms":1e400}`, `{"STATUS":[1]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var in events.APICall
		err := parseJSONBody(body, &in, true)
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		var strict events.APICall
		derr := dec.Decode(&strict)
		fits := derr == nil && utf8.Valid(body) && len(bytes.TrimSpace(body[dec.InputOffset():])) == 0
		if (err == nil) != fits {
			t.Fatalf("parseJSONBody says %v, encoding/json %v: %q", err, derr, body)
		}
		var fields validation.Errors
		var he *httpError
		switch {
		case err == nil:
		case errors.As(err, &fields):
			if len(fields) == 0 || len(fields) > maxMemberProblems {
				t.Fatalf("%d fields: %q", len(fields), body)
			}
		case errors.As(err, &he):
			if he.status != http.StatusBadRequest || len(he.msg) < 10 {
				t.Fatalf("%d %q for %q", he.status, he.msg, body)
			}
		default:
			t.Fatalf("an error of another kind: %v", err)
		}
		if err != nil {
			for _, w := range goInternals {
				if strings.Contains(err.Error(), w) && !strings.Contains(string(body), w) {
					t.Fatalf("Go's own words %q in %q", w, err.Error())
				}
			}
		}
	})
}
