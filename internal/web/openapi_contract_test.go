package web

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/dbtest"
	"github.com/tensfer-golive/dashboard/internal/diskguard"
	"github.com/tensfer-golive/dashboard/internal/events"
	"github.com/tensfer-golive/dashboard/internal/launch"
	"github.com/tensfer-golive/dashboard/internal/tensfer"
	"github.com/tensfer-golive/dashboard/internal/tensfer/tensfersim"
)

// The contract between docs/openapi.yaml and the server. TestOpenAPIDocumentsEveryAPIRoute checks
// that the document and the router list the same operations, with the same scopes;
// TestOpenAPIContract sends, for every documented operation and status, a real request over
// loopback that makes that status happen, checks the request against the document's schema
// (so that what the test sends is what the document allows, and what the server refuses the
// schema refuses too), and checks the answer against it: the status is documented, required
// headers are there, the body matches its schema, every member of it is documented, and an
// answer documented without a body has none.
//
// A newly documented operation fails TestOpenAPIContract until contractCases has a case for
// each of its statuses; the 401, 403 and 413 ones are derived from its success case.

const openAPIFile = "../../docs/openapi.yaml"

// docOp is one operation of the document.
type docOp struct {
	key      string // "POST /api/v1/api-calls": the method and the full path, as the router lists it
	docPath  string // the path's key in the document ("/api-calls")
	item     *openapi3.PathItem
	method   string
	op       *openapi3.Operation
	bearer   bool   // needs a bearer token
	scope    string // the scope its description names ("" for any token)
	statuses []int
}

var scopeInDescription = regexp.MustCompile("^Scope `([a-z_:-]+)`")

func loadOpenAPI(t *testing.T) (*openapi3.T, []docOp) {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromFile(openAPIFile)
	if err != nil {
		t.Fatalf("docs/openapi.yaml does not load: %v", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("docs/openapi.yaml is not a valid OpenAPI document: %v", err)
	}
	var ops []docOp
	for _, p := range doc.Paths.InMatchingOrder() {
		item := doc.Paths.Value(p)
		server := doc.Servers[0].URL
		if len(item.Servers) > 0 {
			server = item.Servers[0].URL
		}
		for method, op := range item.Operations() {
			o := docOp{key: method + " " + strings.TrimSuffix(server, "/") + p, docPath: p, item: item, method: method, op: op}
			sec := doc.Security
			if op.Security != nil {
				sec = *op.Security
			}
			o.bearer = len(sec) > 0
			if m := scopeInDescription.FindStringSubmatch(op.Description); m != nil {
				o.scope = m[1]
			}
			for code := range op.Responses.Map() {
				n, err := strconv.Atoi(code)
				if err != nil {
					t.Errorf("%s documents response %q: give each status its number", o.key, code)
					continue
				}
				o.statuses = append(o.statuses, n)
			}
			sort.Ints(o.statuses)
			ops = append(ops, o)
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].key < ops[j].key })
	return doc, ops
}

// TestOpenAPIDocumentsEveryAPIRoute keeps docs/openapi.yaml and the router in step: every
// /api/v1, /hooks, /callbacks and /ofrep route is a documented operation (method and path), every
// documented operation is a route, and the scope a description names is the one the router
// requires (routeAccess).
func TestOpenAPIDocumentsEveryAPIRoute(t *testing.T) {
	_, ops := loadOpenAPI(t)
	app := newTestApp(t)
	documented := map[string]docOp{}
	for _, o := range ops {
		documented[o.key] = o
	}
	routed := map[string]bool{}
	for _, r := range registeredRoutes(t, app.srv) {
		routed[r] = true
		if _, path, _ := strings.Cut(r, " "); !documentedSurface(path) {
			continue
		}
		if _, ok := documented[r]; !ok {
			t.Errorf("route %s is not in docs/openapi.yaml: document it (path, method, every status it answers)", r)
		}
	}
	for _, o := range ops {
		if !routed[o.key] {
			t.Errorf("docs/openapi.yaml documents %s, which the router does not serve", o.key)
			continue
		}
		rule := routeAccess[o.key]
		switch {
		case !o.bearer && rule != "ingest":
			t.Errorf("%s is documented without a token (security: []) but routeAccess says %q", o.key, rule)
		case o.bearer && o.scope == "" && rule != "token":
			t.Errorf("%s: its description must begin with \"Scope `...`\" naming the scope the router requires (%s)", o.key, rule)
		case o.bearer && o.scope != "" && rule != "scope:"+o.scope:
			t.Errorf("%s: the description says Scope `%s` but the router requires %s", o.key, o.scope, rule)
		}
	}
}

// TestOpenAPIExamplesFitTheirSchemas: every example in docs/openapi.yaml (a schema's examples,
// which the OpenAPI library does not check itself) is valid against its schema, so that what a
// reader copies works.
func TestOpenAPIExamplesFitTheirSchemas(t *testing.T) {
	doc, ops := loadOpenAPI(t)
	seen := map[*openapi3.Schema]bool{}
	var walk func(where string, ref *openapi3.SchemaRef)
	walk = func(where string, ref *openapi3.SchemaRef) {
		if ref == nil || ref.Value == nil || seen[ref.Value] {
			return
		}
		s := ref.Value
		seen[s] = true
		for i, ex := range s.Examples {
			if err := s.VisitJSON(ex, openapi3.EnableJSONSchema2020()); err != nil {
				t.Errorf("%s: example %d does not fit its schema: %v", where, i+1, err)
			}
		}
		for name, p := range s.Properties {
			walk(where+"."+name, p)
		}
		walk(where+"[]", s.Items)
		walk(where+".*", s.AdditionalProperties.Schema)
		for _, group := range []openapi3.SchemaRefs{s.AllOf, s.AnyOf, s.OneOf} {
			for _, r := range group {
				walk(where, r)
			}
		}
	}
	for name, ref := range doc.Components.Schemas {
		walk("components.schemas."+name, ref)
	}
	for _, o := range ops {
		for _, p := range append(append(openapi3.Parameters{}, o.item.Parameters...), o.op.Parameters...) {
			walk(o.key+" parameter "+p.Value.Name, p.Value.Schema)
		}
		if o.op.RequestBody != nil {
			for mime, mt := range o.op.RequestBody.Value.Content {
				walk(o.key+" request "+mime, mt.Schema)
			}
		}
		for code, r := range o.op.Responses.Map() {
			for mime, mt := range r.Value.Content {
				walk(o.key+" "+code+" "+mime, mt.Schema)
			}
			for name, h := range r.Value.Headers {
				walk(o.key+" "+code+" header "+name, h.Value.Schema)
			}
		}
	}
	if len(seen) < 50 {
		t.Fatalf("only %d schemas walked: the walk misses most of the document", len(seen))
	}
}

// documentedSurface is the part of the router docs/openapi.yaml describes.
func documentedSurface(path string) bool {
	for _, p := range []string{"/api/v1/", "/hooks/", "/callbacks/", "/ofrep/"} {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// appKind chooses the server a case runs against: most share one; some need a server in a
// state no other case should see.
type appKind int

const (
	sharedApp   appKind = iota
	lowDiskApp          // free space below the hard watermark: ingest answers 503
	throttleApp         // one callback per client an hour
	busyApp             // every large-answer slot taken: lookups answer 503
	breachedApp         // a guardrail is breached: changes that widen production answer 409
)

// contractCase makes one documented status of one operation happen.
type contractCase struct {
	op     string // the documented operation, as docOp.key
	status int
	why    string // what makes the status happen
	path   string // URL path and query; "" for op's path when it has no parameters
	token  string // the scope of the fixture token sent ("" sends none)
	body   string
	ctype  string   // Content-Type; application/json when there is a body and none is given
	header []string // name, value pairs
	sign   bool     // sign as Tensfer with the sandbox webhook secret (and a fresh webhook-id)
	breaks bool     // the request breaks the schema on purpose: the schema must refuse it too
	// skipRequestCheck says why the request is not checked against the schema ("" checks it).
	skipRequestCheck string
	app              appKind
	setup            func(t *testing.T, f *contractFixture) // before sending; may set f.vars, used as {{name}}
}

// contractUnproducible lists the documented statuses no test can make happen, each with why.
// Keep it short: a status listed here is a promise nothing checks.
var contractUnproducible = map[string]string{}

const (
	okBeacon  = `{"event":"screen_loaded","screen":"home","request_id":"req_contract"}`
	okHook    = `{"id":"evt_contract","type":"payment.cancelled","created_at":"2026-11-30T12:00:00Z","request_id":"req_contract","data":{"payment_id":"pay_1"}}`
	okCall    = `{"env":"sandbox","method":"POST","path":"/v1/payments","status":502,"duration_ms":1840,"request_id":"req_contract","error_code":"upstream_error"}`
	okFlag    = `{"context":{"targetingKey":"user-1","country":"SE"}}`
	okChannel = `{"name":"pager","kind":"webhook","url":"https://alerts.example.com/in","events":["rollout.killed"],"environments":["production"]}`
	okCohort  = `{"name":"Beta testers","environment":"production","user_ids":["user-1","user-2"]}`
)

func contractCases() []contractCase {
	stale := []string{"If-Match", `"1"`} // a version every fixture has moved past
	return []contractCase{
		{op: "GET /api/v1/whoami", status: 200, why: "any token", token: auth.ScopeEventsRead},

		{op: "GET /api/v1/audit", status: 200, why: "an admin token", token: auth.ScopeAdmin, path: "/api/v1/audit?action=environment.&limit=5"},
		{op: "GET /api/v1/audit", status: 400, why: "limit 0", token: auth.ScopeAdmin, path: "/api/v1/audit?limit=0", breaks: true},

		{op: "GET /api/v1/environments", status: 200, why: "both environments", token: auth.ScopeConfigRead},
		{op: "GET /api/v1/environments/{env}", status: 200, why: "sandbox", token: auth.ScopeConfigRead, path: "/api/v1/environments/sandbox"},
		{op: "GET /api/v1/environments/{env}", status: 404, why: "an unknown environment", token: auth.ScopeConfigRead, path: "/api/v1/environments/staging", breaks: true},
		{op: "PATCH /api/v1/environments/{env}", status: 200, why: "a replay URL", token: auth.ScopeAdmin, path: "/api/v1/environments/sandbox",
			body: `{"replay_url":"https://hooks.example.com/tensfer","allowed_origins":["https://app.example.com"]}`},
		{op: "PATCH /api/v1/environments/{env}", status: 400, why: "nothing to change", token: auth.ScopeAdmin, path: "/api/v1/environments/sandbox", body: `{}`},
		{op: "PATCH /api/v1/environments/{env}", status: 404, why: "an unknown environment", token: auth.ScopeAdmin, path: "/api/v1/environments/staging", body: `{"app_url":"https://a.example"}`, breaks: true},
		{op: "PATCH /api/v1/environments/{env}", status: 422, why: "http in production", token: auth.ScopeAdmin, path: "/api/v1/environments/production", body: `{"base_url":"http://api.tensfer.example"}`},
		{op: "GET /api/v1/environments/{env}/config", status: 200, why: "sandbox, with the secret key", token: auth.ScopeSecretsRead, path: "/api/v1/environments/sandbox/config"},
		{op: "GET /api/v1/environments/{env}/config", status: 304, why: "If-None-Match with the ETag just served", token: auth.ScopeConfigRead, path: "/api/v1/environments/sandbox/config",
			header: []string{"If-None-Match", "{{etag}}"}, setup: func(t *testing.T, f *contractFixture) {
				f.vars["etag"] = f.send(t, "GET", "/api/v1/environments/sandbox/config", auth.ScopeConfigRead, "", 200).Header.Get("ETag")
			}},
		{op: "GET /api/v1/environments/{env}/config", status: 404, why: "an unknown environment", token: auth.ScopeConfigRead, path: "/api/v1/environments/staging/config", breaks: true},
		{op: "POST /api/v1/environments/{env}/verify", status: 200, why: "sandbox's keys against the simulator", token: auth.ScopeAdmin, path: "/api/v1/environments/sandbox/verify"},
		{op: "POST /api/v1/environments/{env}/verify", status: 404, why: "an unknown environment", token: auth.ScopeAdmin, path: "/api/v1/environments/staging/verify", breaks: true},
		{op: "POST /api/v1/environments/{env}/verify", status: 409, why: "production has no base URL", token: auth.ScopeAdmin, path: "/api/v1/environments/production/verify"},
		{op: "POST /api/v1/environments/{env}/webhook-secrets", status: 201, why: "an empty secret generates one", token: auth.ScopeAdmin, path: "/api/v1/environments/sandbox/webhook-secrets", body: `{"expires_in":"168h"}`},
		{op: "POST /api/v1/environments/{env}/webhook-secrets", status: 400, why: "not JSON", token: auth.ScopeAdmin, path: "/api/v1/environments/sandbox/webhook-secrets", body: `secret=whsec_x`, breaks: true},
		{op: "POST /api/v1/environments/{env}/webhook-secrets", status: 404, why: "an unknown environment", token: auth.ScopeAdmin, path: "/api/v1/environments/staging/webhook-secrets", body: `{}`, breaks: true},
		{op: "POST /api/v1/environments/{env}/webhook-secrets", status: 422, why: "a secret that is not whsec_", token: auth.ScopeAdmin, path: "/api/v1/environments/sandbox/webhook-secrets", body: `{"secret":"nope"}`},
		{op: "DELETE /api/v1/environments/{env}/webhook-secrets/{id}", status: 204, why: "a secret just added", token: auth.ScopeAdmin, path: "/api/v1/environments/sandbox/webhook-secrets/{{secret}}",
			setup: func(t *testing.T, f *contractFixture) { f.vars["secret"], _ = f.addWebhookSecret(t, "sandbox") }},
		{op: "DELETE /api/v1/environments/{env}/webhook-secrets/{id}", status: 404, why: "an unknown secret", token: auth.ScopeAdmin, path: "/api/v1/environments/sandbox/webhook-secrets/whs_nope"},

		{op: "GET /api/v1/alert-channels", status: 200, why: "the channels, one made", token: auth.ScopeAdmin,
			setup: func(t *testing.T, f *contractFixture) { f.addAlertChannel(t) }},
		{op: "POST /api/v1/alert-channels", status: 201, why: "a signed webhook channel", token: auth.ScopeAdmin, body: okChannel},
		{op: "POST /api/v1/alert-channels", status: 400, why: "not JSON", token: auth.ScopeAdmin, body: `name=x`, breaks: true},
		{op: "POST /api/v1/alert-channels", status: 422, why: "a URL with a password in it", token: auth.ScopeAdmin,
			body: `{"name":"x","kind":"slack","url":"https://u:p@hooks.example.com/x","events":["rollout.killed"],"environments":["production"]}`},
		{op: "GET /api/v1/alert-channels/{id}", status: 200, why: "a channel just made", token: auth.ScopeAdmin, path: "/api/v1/alert-channels/{{channel}}",
			setup: func(t *testing.T, f *contractFixture) { f.vars["channel"] = f.addAlertChannel(t) }},
		{op: "GET /api/v1/alert-channels/{id}", status: 404, why: "an unknown channel", token: auth.ScopeAdmin, path: "/api/v1/alert-channels/987654"},
		{op: "PATCH /api/v1/alert-channels/{id}", status: 200, why: "a new name", token: auth.ScopeAdmin, path: "/api/v1/alert-channels/{{channel}}", body: `{"name":"renamed"}`,
			setup: func(t *testing.T, f *contractFixture) { f.vars["channel"] = f.addAlertChannel(t) }},
		{op: "PATCH /api/v1/alert-channels/{id}", status: 400, why: "not JSON", token: auth.ScopeAdmin, path: "/api/v1/alert-channels/{{channel}}", body: `name=x`, breaks: true,
			setup: func(t *testing.T, f *contractFixture) { f.vars["channel"] = f.addAlertChannel(t) }},
		{op: "PATCH /api/v1/alert-channels/{id}", status: 404, why: "an unknown channel", token: auth.ScopeAdmin, path: "/api/v1/alert-channels/987654", body: `{"name":"x"}`},
		{op: "PATCH /api/v1/alert-channels/{id}", status: 409, why: "a version the channel has moved past", token: auth.ScopeAdmin, path: "/api/v1/alert-channels/{{channel}}",
			body: `{"name":"late","version":1}`,
			setup: func(t *testing.T, f *contractFixture) {
				f.vars["channel"] = f.addAlertChannel(t)
				f.send(t, "PATCH", "/api/v1/alert-channels/"+f.vars["channel"], auth.ScopeAdmin, `{"name":"first"}`, 200)
			}},
		{op: "PATCH /api/v1/alert-channels/{id}", status: 422, why: "an event nobody sends", token: auth.ScopeAdmin, path: "/api/v1/alert-channels/{{channel}}",
			body: `{"events":["everything"]}`, setup: func(t *testing.T, f *contractFixture) { f.vars["channel"] = f.addAlertChannel(t) }},
		{op: "DELETE /api/v1/alert-channels/{id}", status: 204, why: "a channel just made", token: auth.ScopeAdmin, path: "/api/v1/alert-channels/{{channel}}",
			setup: func(t *testing.T, f *contractFixture) { f.vars["channel"] = f.addAlertChannel(t) }},
		{op: "DELETE /api/v1/alert-channels/{id}", status: 404, why: "an unknown channel", token: auth.ScopeAdmin, path: "/api/v1/alert-channels/987654"},
		{op: "POST /api/v1/alert-channels/{id}/test", status: 200, why: "a test alert to a receiver on loopback", token: auth.ScopeAdmin, path: "/api/v1/alert-channels/{{channel}}/test",
			setup: func(t *testing.T, f *contractFixture) { f.vars["channel"] = f.addAlertChannel(t) }},
		{op: "POST /api/v1/alert-channels/{id}/test", status: 404, why: "an unknown channel", token: auth.ScopeAdmin, path: "/api/v1/alert-channels/987654/test"},
		{op: "GET /metrics", status: 200, why: "a token with metrics:read", token: auth.ScopeMetricsRead},

		{op: "GET /api/v1/events", status: 200, why: "sandbox webhooks", token: auth.ScopeEventsRead, path: "/api/v1/events?env=sandbox&source=webhook&limit=5"},
		{op: "GET /api/v1/events", status: 400, why: "an unknown environment", token: auth.ScopeEventsRead, path: "/api/v1/events?env=mars", breaks: true},
		{op: "GET /api/v1/events/{id}", status: 200, why: "the seeded webhook", token: auth.ScopeEventsRead, path: "/api/v1/events/{{event}}"},
		{op: "GET /api/v1/events/{id}", status: 404, why: "an id nobody has", token: auth.ScopeEventsRead, path: "/api/v1/events/987654321"},
		{op: "GET /api/v1/lookup/{request_id}", status: 200, why: "the seeded request id", token: auth.ScopeEventsRead, path: "/api/v1/lookup/req_contract?limit=10"},
		{op: "GET /api/v1/lookup/{request_id}", status: 400, why: "limit 0", token: auth.ScopeEventsRead, path: "/api/v1/lookup/req_contract?limit=0", breaks: true},
		{op: "GET /api/v1/lookup/{request_id}", status: 503, why: "every large-answer slot is taken", token: auth.ScopeEventsRead, path: "/api/v1/lookup/req_contract", app: busyApp},
		{op: "POST /api/v1/api-calls", status: 201, why: "a 502 reported", token: auth.ScopeEventsWrite, body: okCall},
		{op: "POST /api/v1/api-calls", status: 400, why: "not JSON", token: auth.ScopeEventsWrite, body: `{"env":`, breaks: true},
		{op: "POST /api/v1/api-calls", status: 422, why: "no status, and no timeout or error_code to say why", token: auth.ScopeEventsWrite, body: `{"env":"sandbox","method":"GET","path":"/v1"}`, breaks: true},
		{op: "POST /api/v1/api-calls", status: 422, why: "status as a string", token: auth.ScopeEventsWrite, body: `{"env":"sandbox","method":"GET","path":"/v1","status":"200"}`, breaks: true},
		{op: "POST /api/v1/api-calls", status: 503, why: "the disk is below its hard watermark", token: auth.ScopeEventsWrite, body: okCall, app: lowDiskApp},

		{op: "GET /api/v1/rollout", status: 200, why: "the rollout", token: auth.ScopeRolloutDecide},
		{op: "PUT /api/v1/rollout", status: 200, why: "a new plan", token: auth.ScopeAdmin,
			body: `{"stages":[{"percent":1,"min_soak":"1h"},{"percent":5,"min_soak":"24h"},{"percent":25},{"percent":100}],"on_breach":"pause"}`},
		{op: "PUT /api/v1/rollout", status: 400, why: "not JSON", token: auth.ScopeAdmin, body: `stages=1,5`, breaks: true},
		{op: "PUT /api/v1/rollout", status: 409, why: "a stale If-Match", token: auth.ScopeAdmin, body: `{"auto_advance":false}`, header: stale, setup: resetRollout},
		{op: "PUT /api/v1/rollout", status: 422, why: "percentages that fall", token: auth.ScopeAdmin, body: `{"stages":[{"percent":50},{"percent":10}]}`},
		{op: "POST /api/v1/rollout/{action}", status: 200, why: "advance from not started", token: auth.ScopeRolloutWrite, path: "/api/v1/rollout/advance", setup: resetRollout},
		{op: "POST /api/v1/rollout/{action}", status: 400, why: "roll back before the first stage", token: auth.ScopeRolloutWrite, path: "/api/v1/rollout/rollback", setup: resetRollout},
		{op: "POST /api/v1/rollout/{action}", status: 404, why: "an unknown action", token: auth.ScopeRolloutWrite, path: "/api/v1/rollout/launch", breaks: true},
		{op: "POST /api/v1/rollout/{action}", status: 409, why: "a stale version", token: auth.ScopeRolloutWrite, path: "/api/v1/rollout/advance", body: `{"version":1}`, setup: resetRollout},
		{op: "POST /api/v1/rollout/{action}", status: 422, why: "a version that is text", token: auth.ScopeRolloutWrite, path: "/api/v1/rollout/pause", body: `{"version":"latest"}`, breaks: true},
		{op: "POST /api/v1/rollout/revive", status: 200, why: "out of killed to stage 1", token: auth.ScopeAdmin, body: `{"stage":1}`, setup: killRollout},
		{op: "POST /api/v1/rollout/revive", status: 400, why: "a rollout that is not killed", token: auth.ScopeAdmin, body: `{"stage":0}`, setup: resetRollout},
		{op: "POST /api/v1/rollout/revive", status: 409, why: "a stale If-Match", token: auth.ScopeAdmin, body: `{"stage":0}`, header: stale, setup: killRollout},
		{op: "POST /api/v1/rollout/revive", status: 422, why: "no stage", token: auth.ScopeAdmin, body: `{}`, breaks: true, setup: killRollout},
		{op: "GET /api/v1/rollout/decide", status: 200, why: "one user", token: auth.ScopeRolloutDecide, path: "/api/v1/rollout/decide?user_id=user-1&attr.country=SE"},
		{op: "GET /api/v1/rollout/decide", status: 400, why: "no user_id", token: auth.ScopeRolloutDecide, path: "/api/v1/rollout/decide?attr.country=SE", breaks: true},
		{op: "GET /api/v1/rollout/decide", status: 400, why: "a literal plus", token: auth.ScopeRolloutDecide, path: "/api/v1/rollout/decide?user_id=qa+1@x.com"},
		{op: "POST /api/v1/rollout/decide", status: 200, why: "two users", token: auth.ScopeRolloutDecide, body: `{"users":[{"id":"user-1","attributes":{"country":"SE"}},{"id":"user-2"}]}`},
		{op: "POST /api/v1/rollout/decide", status: 400, why: "not JSON", token: auth.ScopeRolloutDecide, body: `users=user-1`, breaks: true},
		{op: "POST /api/v1/rollout/decide", status: 200, why: "a null attribute is unknown", token: auth.ScopeRolloutDecide, body: `{"users":[{"id":"user-1","attributes":{"country":null}}]}`},
		{op: "POST /api/v1/rollout/decide", status: 400, why: "a lone surrogate", token: auth.ScopeRolloutDecide, body: `{"users":[{"id":"u\udc00"}]}`},
		{op: "POST /api/v1/rollout/decide", status: 422, why: "no users", token: auth.ScopeRolloutDecide, body: `{"users":[]}`, breaks: true},
		{op: "GET /api/v1/rollout/cohorts", status: 200, why: "the cohorts", token: auth.ScopeRolloutDecide, setup: newCohort},
		{op: "POST /api/v1/rollout/cohorts", status: 201, why: "an allow-list", token: auth.ScopeAdmin, body: okCohort},
		{op: "POST /api/v1/rollout/cohorts", status: 400, why: "not JSON", token: auth.ScopeAdmin, body: `name=beta`, breaks: true},
		{op: "POST /api/v1/rollout/cohorts", status: 409, why: "a production cohort while a guardrail is breached", token: auth.ScopeAdmin, body: okCohort, app: breachedApp},
		{op: "POST /api/v1/rollout/cohorts/deleted/{id}/restore", status: 409, why: "a production cohort back while a guardrail is breached", token: auth.ScopeAdmin,
			path: "/api/v1/rollout/cohorts/deleted/{{deletion}}/restore", setup: deletedCohort, app: breachedApp},
		{op: "POST /api/v1/rollout/cohorts/deleted/{id}/restore", status: 400, why: "an override that is not true or false", token: auth.ScopeAdmin,
			path: "/api/v1/rollout/cohorts/deleted/987654/restore?override_guardrails=yes", breaks: true},
		{op: "POST /api/v1/rollout/cohorts", status: 422, why: "an unknown environment", token: auth.ScopeAdmin, body: `{"name":"Staging","environment":"staging","user_ids":["u"]}`, breaks: true},
		{op: "PUT /api/v1/rollout/cohorts/order", status: 200, why: "every cohort once", token: auth.ScopeAdmin, body: `{"ids":{{ids}}}`, setup: newCohort},
		{op: "PUT /api/v1/rollout/cohorts/order", status: 400, why: "a cohort left out", token: auth.ScopeAdmin, body: `{"ids":[]}`, setup: newCohort},
		{op: "PUT /api/v1/rollout/cohorts/order", status: 409, why: "a stale version", token: auth.ScopeAdmin, body: `{"ids":{{ids}},"version":1}`, setup: newCohort},
		{op: "PUT /api/v1/rollout/cohorts/order", status: 422, why: "an id that is a word", token: auth.ScopeAdmin, body: `{"ids":["first"]}`},
		{op: "PATCH /api/v1/rollout/cohorts/{id}", status: 200, why: "a new name", token: auth.ScopeAdmin, path: "/api/v1/rollout/cohorts/{{cohort}}", body: `{"name":"Renamed {{cohort}}"}`, setup: newCohort},
		{op: "PATCH /api/v1/rollout/cohorts/{id}", status: 400, why: "not JSON", token: auth.ScopeAdmin, path: "/api/v1/rollout/cohorts/{{cohort}}", body: `name=x`, breaks: true, setup: newCohort},
		{op: "PATCH /api/v1/rollout/cohorts/{id}", status: 404, why: "an unknown cohort", token: auth.ScopeAdmin, path: "/api/v1/rollout/cohorts/987654", body: `{"name":"x"}`},
		{op: "PATCH /api/v1/rollout/cohorts/{id}", status: 409, why: "a stale If-Match", token: auth.ScopeAdmin, path: "/api/v1/rollout/cohorts/{{cohort}}", body: `{"name":"Stale {{cohort}}"}`, header: stale, setup: newCohort},
		{op: "PATCH /api/v1/rollout/cohorts/{id}", status: 422, why: "an unknown environment", token: auth.ScopeAdmin, path: "/api/v1/rollout/cohorts/{{cohort}}", body: `{"environment":"staging"}`, breaks: true, setup: newCohort},
		{op: "GET /api/v1/rollout/cohorts/deleted", status: 200, why: "a deletion to undo", token: auth.ScopeAdmin, setup: deletedCohort},
		{op: "POST /api/v1/rollout/cohorts/deleted/{id}/restore", status: 201, why: "undo a deletion", token: auth.ScopeAdmin, path: "/api/v1/rollout/cohorts/deleted/{{deletion}}/restore", setup: deletedCohort},
		{op: "POST /api/v1/rollout/cohorts/deleted/{id}/restore", status: 404, why: "a deletion nobody made", token: auth.ScopeAdmin, path: "/api/v1/rollout/cohorts/deleted/987654/restore"},
		{op: "POST /api/v1/rollout/cohorts/deleted/{id}/restore", status: 422, why: "its name taken meanwhile", token: auth.ScopeAdmin, path: "/api/v1/rollout/cohorts/deleted/{{deletion}}/restore", setup: deletedCohortNameTaken},
		{op: "DELETE /api/v1/rollout/cohorts/{id}", status: 204, why: "a cohort just made", token: auth.ScopeAdmin, path: "/api/v1/rollout/cohorts/{{cohort}}", setup: newCohort},
		{op: "DELETE /api/v1/rollout/cohorts/{id}", status: 400, why: "an If-Match that is not a version", token: auth.ScopeAdmin, path: "/api/v1/rollout/cohorts/{{cohort}}", header: []string{"If-Match", "yesterday"}, setup: newCohort},
		{op: "DELETE /api/v1/rollout/cohorts/{id}", status: 404, why: "an unknown cohort", token: auth.ScopeAdmin, path: "/api/v1/rollout/cohorts/987654"},
		{op: "DELETE /api/v1/rollout/cohorts/{id}", status: 409, why: "a stale If-Match", token: auth.ScopeAdmin, path: "/api/v1/rollout/cohorts/{{cohort}}", header: stale, setup: newCohort},
		{op: "GET /api/v1/rollout/cohorts/{id}/members", status: 200, why: "an allow-list", token: auth.ScopeAdmin, path: "/api/v1/rollout/cohorts/{{cohort}}/members", setup: newCohort},
		{op: "GET /api/v1/rollout/cohorts/{id}/members", status: 404, why: "an unknown cohort", token: auth.ScopeAdmin, path: "/api/v1/rollout/cohorts/987654/members"},
		{op: "PUT /api/v1/rollout/cohorts/{id}/members", status: 200, why: "two ids", token: auth.ScopeAdmin, path: "/api/v1/rollout/cohorts/{{cohort}}/members", body: "user-1\nuser-2\n", ctype: "text/plain", setup: newCohort},
		{op: "PUT /api/v1/rollout/cohorts/{id}/members", status: 400, why: "CSV that does not parse", token: auth.ScopeAdmin, path: "/api/v1/rollout/cohorts/{{cohort}}/members", body: "user_id,plan\n\"u1,pro\n", ctype: "text/csv", breaks: true, setup: newCohort},
		{op: "PUT /api/v1/rollout/cohorts/{id}/members", status: 404, why: "an unknown cohort", token: auth.ScopeAdmin, path: "/api/v1/rollout/cohorts/987654/members", body: "u1\n", ctype: "text/plain"},
		{op: "PUT /api/v1/rollout/cohorts/{id}/members", status: 409, why: "a stale If-Match", token: auth.ScopeAdmin, path: "/api/v1/rollout/cohorts/{{cohort}}/members", body: "u1\n", ctype: "text/plain", header: stale, setup: newCohort},
		{op: "PUT /api/v1/rollout/cohorts/{id}/members", status: 422, why: "an id of 257 bytes", token: auth.ScopeAdmin, path: "/api/v1/rollout/cohorts/{{cohort}}/members", body: "u1\n" + strings.Repeat("u", 257) + "\n", ctype: "text/plain", setup: newCohort},

		{op: "POST /ofrep/v1/evaluate/flags/{key}", status: 200, why: "the rollout's flag", token: auth.ScopeRolloutDecide, path: "/ofrep/v1/evaluate/flags/tensfer-production", body: okFlag},
		{op: "POST /ofrep/v1/evaluate/flags/{key}", status: 400, why: "no context", token: auth.ScopeRolloutDecide, path: "/ofrep/v1/evaluate/flags/tensfer-production", body: `{}`, breaks: true},
		{op: "POST /ofrep/v1/evaluate/flags/{key}", status: 404, why: "another flag", token: auth.ScopeRolloutDecide, path: "/ofrep/v1/evaluate/flags/dark-mode", body: okFlag},
		{op: "POST /ofrep/v1/evaluate/flags", status: 200, why: "every flag", token: auth.ScopeRolloutDecide, body: okFlag},
		{op: "POST /ofrep/v1/evaluate/flags", status: 304, why: "If-None-Match with the ETag just served", token: auth.ScopeRolloutDecide, body: okFlag, header: []string{"If-None-Match", "{{etag}}"},
			setup: func(t *testing.T, f *contractFixture) {
				f.vars["etag"] = f.send(t, "POST", "/ofrep/v1/evaluate/flags", auth.ScopeRolloutDecide, okFlag, 200).Header.Get("ETag")
			}},
		{op: "POST /ofrep/v1/evaluate/flags", status: 400, why: "no targetingKey", token: auth.ScopeRolloutDecide, body: `{"context":{"country":"SE"}}`, breaks: true},

		{op: "POST /hooks/{env}", status: 200, why: "a signed webhook", path: "/hooks/sandbox", body: okHook, sign: true},
		{op: "POST /hooks/{env}", status: 400, why: "signed, but not JSON", path: "/hooks/sandbox", body: `{"type":`, sign: true, breaks: true},
		{op: "POST /hooks/{env}", status: 401, why: "no signature", path: "/hooks/sandbox", body: okHook, breaks: true},
		{op: "POST /hooks/{env}", status: 404, why: "an unknown environment", path: "/hooks/staging", body: okHook, sign: true, breaks: true},
		{op: "POST /hooks/{env}", status: 503, why: "the disk is below its hard watermark", path: "/hooks/sandbox", body: okHook, sign: true, app: lowDiskApp},

		{op: "POST /callbacks/{env}", status: 202, why: "a beacon", path: "/callbacks/sandbox", body: okBeacon, header: []string{"Origin", "https://app.example.com"}},
		{op: "POST /callbacks/{env}", status: 200, why: "an event_id sent before", path: "/callbacks/sandbox", body: `{"event":"screen_loaded","event_id":"cb_twice"}`, ctype: "text/plain",
			setup: func(t *testing.T, f *contractFixture) {
				f.send(t, "POST", "/callbacks/sandbox", "", `{"event":"screen_loaded","event_id":"cb_twice"}`, 202)
			}},
		{op: "POST /callbacks/{env}", status: 400, why: "event is a number", path: "/callbacks/sandbox", body: `{"event":5}`, breaks: true},
		{op: "POST /callbacks/{env}", status: 403, why: "an origin not allowed", path: "/callbacks/sandbox", body: okBeacon, header: []string{"Origin", "https://evil.example"}},
		{op: "POST /callbacks/{env}", status: 404, why: "an unknown environment", path: "/callbacks/staging", body: okBeacon, breaks: true},
		{op: "POST /callbacks/{env}", status: 429, why: "a second beacon within the rate limit's hour", path: "/callbacks/sandbox", body: okBeacon, app: throttleApp,
			setup: func(t *testing.T, f *contractFixture) { f.send(t, "POST", "/callbacks/sandbox", "", okBeacon, 202) }},
		{op: "POST /callbacks/{env}", status: 503, why: "the disk is below its watermarks", path: "/callbacks/sandbox", body: okBeacon, app: lowDiskApp},
		{op: "OPTIONS /callbacks/{env}", status: 204, why: "an allowed origin", path: "/callbacks/sandbox", header: []string{"Origin", "https://app.example.com", "Access-Control-Request-Method", "POST"}},
		{op: "OPTIONS /callbacks/{env}", status: 403, why: "an origin not allowed", path: "/callbacks/sandbox", header: []string{"Origin", "https://evil.example"}},
		{op: "OPTIONS /callbacks/{env}", status: 404, why: "an unknown environment", path: "/callbacks/staging", header: []string{"Origin", "https://app.example.com"}, breaks: true},
		{op: "GET /callbacks/{env}/return", status: 303, why: "sandbox has an app URL", path: "/callbacks/sandbox/return?event=accounts_connected&user_id=user-1"},
		{op: "GET /callbacks/{env}/return", status: 200, why: "production has none", path: "/callbacks/production/return?event=accounts_connected"},
		{op: "GET /callbacks/{env}/return", status: 404, why: "an unknown environment", path: "/callbacks/staging/return", breaks: true},
	}
}

// derivedCases adds, for each bearer operation that documents them, the 401 (no token), the 403
// (a token without its scope) and the 413 (a body one byte over its limit), made from the
// operation's first success case, unless contractCases has its own.
func derivedCases(ops []docOp, cases []contractCase) []contractCase {
	have := map[string]bool{}
	success := map[string]contractCase{}
	for _, c := range cases {
		have[fmt.Sprint(c.op, " ", c.status)] = true
		if _, ok := success[c.op]; !ok && c.status >= 200 && c.status < 300 {
			success[c.op] = c
		}
	}
	var out []contractCase
	for _, o := range ops {
		base, ok := success[o.key]
		if !ok {
			continue // the coverage check names what is missing
		}
		for _, status := range o.statuses {
			if have[fmt.Sprint(o.key, " ", status)] {
				continue
			}
			c := base
			c.status = status
			switch status {
			case http.StatusUnauthorized:
				if !o.bearer {
					continue
				}
				c.why, c.token = "no token", ""
			case http.StatusForbidden:
				if !o.bearer || o.scope == "" {
					continue
				}
				c.why, c.token = "a token without "+o.scope, tokenWithout(o.scope)
			case http.StatusRequestEntityTooLarge:
				limit := bodyLimit(o.key)
				c.why = fmt.Sprintf("a body of %d bytes", limit+1)
				c.body = `"` + strings.Repeat("a", int(limit)-1) + `"`
				c.skipRequestCheck = "an oversized body is refused for its size before anything reads it"
			default:
				continue
			}
			out = append(out, c)
		}
	}
	return out
}

// tokenWithout is a fixture scope that does not grant scope.
func tokenWithout(scope string) string {
	for _, s := range []string{auth.ScopeEventsWrite, auth.ScopeRolloutDecide, auth.ScopeConfigRead} {
		if !auth.HasScope([]string{s}, scope) {
			return s
		}
	}
	panic("every fixture token grants " + scope)
}

// contractUploadLimit stands for the 64 MiB upload limit, which takes seconds to send under -race.
const contractUploadLimit = 2 << 20

// bodyLimit is the most bytes the operation reads of a body.
func bodyLimit(op string) int64 {
	switch op {
	case "POST /api/v1/rollout/cohorts", "PATCH /api/v1/rollout/cohorts/{id}", "PUT /api/v1/rollout/cohorts/{id}/members":
		return contractUploadLimit
	case "POST /callbacks/{env}":
		return events.MaxCallbackBytes
	case "POST /hooks/{env}":
		return events.MaxWebhookBytes
	case "POST /ofrep/v1/evaluate/flags", "POST /ofrep/v1/evaluate/flags/{key}":
		return maxOFREPBody
	}
	return 1 << 20 // Config.MaxBodyBytes' default
}

var registerHTMLDecoder sync.Once

func TestOpenAPIContract(t *testing.T) {
	registerHTMLDecoder.Do(func() { openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder) })
	doc, ops := loadOpenAPI(t)
	byKey := map[string]docOp{}
	for _, o := range ops {
		byKey[o.key] = o
	}
	cases := contractCases()
	cases = append(cases, derivedCases(ops, cases)...)

	// Coverage: every case drives a documented status; every documented status has a case.
	covered := map[string]bool{}
	for _, c := range cases {
		o, ok := byKey[c.op]
		switch {
		case !ok:
			t.Errorf("a contract case drives %s, which docs/openapi.yaml does not document", c.op)
		case !slices.Contains(o.statuses, c.status):
			t.Errorf("a contract case makes %s answer %d (%s), which docs/openapi.yaml does not document for it", c.op, c.status, c.why)
		}
		covered[fmt.Sprint(c.op, " ", c.status)] = true
	}
	for _, o := range ops {
		for _, status := range o.statuses {
			key := fmt.Sprint(o.key, " ", status)
			if !covered[key] && contractUnproducible[key] == "" {
				t.Errorf("docs/openapi.yaml documents %s but no contract case makes it happen: add one to contractCases "+
					"(its 401, 403 and 413 come from its first 2xx case), or list it in contractUnproducible with the reason", key)
			}
		}
	}
	for key := range contractUnproducible {
		if covered[key] {
			t.Errorf("contractUnproducible lists %s, which a case produces: remove it from the list", key)
		}
	}

	fixtures := map[appKind]*contractFixture{}
	for _, c := range cases {
		o, ok := byKey[c.op]
		if !ok {
			continue
		}
		f := fixtures[c.app]
		if f == nil {
			f = newContractFixture(t, c.app)
			fixtures[c.app] = f
		}
		t.Run(fmt.Sprintf("%s %d %s", c.op, c.status, c.why), func(t *testing.T) {
			if c.app == lowDiskApp && dbtest.Postgres() {
				t.Skip("on PostgreSQL the local disk's watermarks are off: the data is on PostgreSQL's disk")
			}
			runContractCase(t, doc, o, f, c)
		})
	}
}

// contractFixture is a server with what the cases need: a token per scope, a configured
// sandbox (keys against a simulator, an allowed origin, an app URL, a webhook secret) and an
// event, and production left bare.
type contractFixture struct {
	app    *testApp
	tokens map[string]string
	whsec  string
	vars   map[string]string
	hookID atomic.Int64
}

func newContractFixture(t *testing.T, kind appKind) *contractFixture {
	t.Helper()
	opts := []func(*Config){loopbackOK}
	switch kind {
	case lowDiskApp:
		opts = append(opts, func(c *Config) {
			c.Disk.Space = func(string) (diskguard.Space, error) { return diskguard.Space{Free: 1 << 20, Total: 100 << 30}, nil }
		})
	case throttleApp:
		opts = append(opts, func(c *Config) { c.CallbackRate = RateLimit{Burst: 1, Every: time.Hour} })
	}
	opts = append(opts, func(c *Config) { c.MaxUploadBytes = contractUploadLimit })
	f := &contractFixture{app: newTestApp(t, opts...), tokens: map[string]string{}, vars: map[string]string{}}
	_, root := newSimulator(t, tensfersim.Config{})
	keys := tensfersim.DefaultKeys()[tensfer.Sandbox]
	f.send(t, "PATCH", "/api/v1/environments/sandbox", auth.ScopeAdmin, mustString(map[string]any{
		"base_url": tensfersim.BaseURL(root, tensfer.Sandbox), "app_url": "https://app.example.com/done", "allowed_origins": []string{"https://app.example.com"},
		"secret_key": keys.SecretKey, "public_key": keys.PublicKey, "client_token": keys.ClientToken}), 200)
	_, f.whsec = f.addWebhookSecret(t, "sandbox")
	if kind == sharedApp {
		res := f.app.sendWebhook("sandbox", f.whsec, "msg_contract_seed", okHook)
		var ans ingestAnswer
		if err := json.Unmarshal([]byte(res.body), &ans); err != nil || res.StatusCode != 200 {
			t.Fatalf("seed webhook: %d %s", res.StatusCode, res.body)
		}
		f.vars["event"] = ans.ID
	}
	if kind == breachedApp {
		f.app.breachVerification(t)
	}
	if kind == busyApp {
		for range maxAnswers {
			f.app.srv.answerSlots <- struct{}{}
		}
	}
	return f
}

func mustString(v any) string { return string(mustJSON(v)) }

// send makes a request with the fixture token of scope (none for ""), wanting status.
func (f *contractFixture) send(t *testing.T, method, path, scope, body string, want int) response {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	res := f.app.api(method, path, f.token(scope), r)
	if res.StatusCode != want {
		t.Fatalf("fixture %s %s: %d, want %d: %.300s", method, path, res.StatusCode, want, res.body)
	}
	return res
}

// token is a token carrying just scope, made the first time it is asked for ("" for none).
func (f *contractFixture) token(scope string) string {
	if scope == "" {
		return ""
	}
	if f.tokens[scope] == "" {
		f.tokens[scope] = f.app.addToken("contract "+scope, scope)
	}
	return f.tokens[scope]
}

// addAlertChannel makes a signed webhook channel that delivers to a receiver on loopback, which
// answers 204, and returns its id.
func (f *contractFixture) addAlertChannel(t *testing.T) string {
	t.Helper()
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	t.Cleanup(receiver.Close)
	res := f.send(t, "POST", "/api/v1/alert-channels", auth.ScopeAdmin, mustString(map[string]any{"name": "receiver " + auth.RandomID(6), "kind": "webhook",
		"url": receiver.URL + "/in", "events": []string{"rollout.killed"}, "environments": []string{"production"}}), 201)
	var ch struct{ ID string }
	if err := json.Unmarshal([]byte(res.body), &ch); err != nil || ch.ID == "" {
		t.Fatalf("alert channel: %s", res.body)
	}
	return ch.ID
}

// addWebhookSecret generates a webhook signing secret for env and returns its id and value.
func (f *contractFixture) addWebhookSecret(t *testing.T, env string) (id, secret string) {
	t.Helper()
	res := f.send(t, "POST", "/api/v1/environments/"+env+"/webhook-secrets", auth.ScopeAdmin, "", 201)
	var out struct{ ID, Secret string }
	if err := json.Unmarshal([]byte(res.body), &out); err != nil || out.Secret == "" {
		t.Fatalf("webhook secret: %s", res.body)
	}
	return out.ID, out.Secret
}

var cohortSeq atomic.Int64

// newCohort makes an allow-list; {{cohort}} is its id, {{ids}} every cohort's id in order.
func newCohort(t *testing.T, f *contractFixture) {
	t.Helper()
	res := f.send(t, "POST", "/api/v1/rollout/cohorts", auth.ScopeAdmin,
		fmt.Sprintf(`{"name":"Fixture %d","environment":"production","user_ids":["user-1"],"override_guardrails":true}`, cohortSeq.Add(1)), 201)
	var c cohortJSON
	json.Unmarshal([]byte(res.body), &c)
	f.vars["cohort"] = c.ID
	cs, err := f.app.srv.rollout.Cohorts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, c := range cs {
		ids = append(ids, itoa(c.ID))
	}
	f.vars["ids"] = mustString(ids)
}

// deletedCohort makes an allow-list and deletes it; {{deletion}} is the deletion's id.
func deletedCohort(t *testing.T, f *contractFixture) {
	t.Helper()
	newCohort(t, f)
	f.send(t, "DELETE", "/api/v1/rollout/cohorts/"+f.vars["cohort"], auth.ScopeAdmin, "", 204)
	dels, err := f.app.srv.rollout.DeletedCohorts(context.Background())
	if err != nil || len(dels) == 0 {
		t.Fatalf("deleted cohorts: %v %v", dels, err)
	}
	f.vars["deletion"] = itoa(dels[0].ID)
}

// deletedCohortNameTaken is deletedCohort with a new cohort holding the deleted one's name.
func deletedCohortNameTaken(t *testing.T, f *contractFixture) {
	t.Helper()
	deletedCohort(t, f)
	dels, _ := f.app.srv.rollout.DeletedCohorts(context.Background())
	f.send(t, "POST", "/api/v1/rollout/cohorts", auth.ScopeAdmin, fmt.Sprintf(`{"name":%q,"environment":"sandbox","user_ids":["x"]}`, dels[0].Name), 201)
}

// resetRollout brings the rollout to active at stage 0 (not started), moving its version on.
func resetRollout(t *testing.T, f *contractFixture) {
	t.Helper()
	killRollout(t, f)
	for _, a := range []launch.Action{launch.Revive, launch.Resume} {
		if _, err := f.app.srv.rollout.Act(context.Background(), a, 0, 0, false, db.Audit{Actor: "test", Action: "rollout." + string(a)}); err != nil {
			t.Fatalf("%s: %v", a, err)
		}
	}
}

// killRollout kills the rollout unless it is killed.
func killRollout(t *testing.T, f *contractFixture) {
	t.Helper()
	if f.app.srv.rollout.Snapshot().Rollout.State == "killed" {
		return
	}
	if _, err := f.app.srv.rollout.Act(context.Background(), launch.Kill, 0, 0, false, db.Audit{Actor: "test", Action: "rollout.kill"}); err != nil {
		t.Fatal(err)
	}
}

var placeholder = regexp.MustCompile(`\{\{([a-z_]+)\}\}`)

// expand fills {{name}} from the fixture's vars.
func (f *contractFixture) expand(t *testing.T, s string) string {
	t.Helper()
	return placeholder.ReplaceAllStringFunc(s, func(m string) string {
		v, ok := f.vars[m[2:len(m)-2]]
		if !ok {
			t.Fatalf("%s is not set: the case's setup must set it", m)
		}
		return v
	})
}

func runContractCase(t *testing.T, doc *openapi3.T, o docOp, f *contractFixture, c contractCase) {
	if c.setup != nil {
		c.setup(t, f)
	}
	path := c.path
	if path == "" {
		path = o.key[len(o.method)+1:]
	}
	path, body := f.expand(t, path), f.expand(t, c.body)
	newRequest := func() *http.Request {
		var r io.Reader = http.NoBody
		if body != "" {
			r = strings.NewReader(body)
		}
		req, err := http.NewRequest(o.method, f.app.url+path, r)
		if err != nil {
			t.Fatal(err)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
			if c.ctype != "" {
				req.Header.Set("Content-Type", c.ctype)
			}
		}
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+f.token(c.token))
		}
		for i := 0; i+1 < len(c.header); i += 2 {
			req.Header.Set(c.header[i], f.expand(t, c.header[i+1]))
		}
		return req
	}
	req := newRequest()
	if c.sign {
		key, err := tensfer.ParseSecret(f.whsec)
		if err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprintf("msg_contract_%d", f.hookID.Add(1))
		tensfer.SignRequest(req, id, time.Now(), []byte(body), key)
	}

	// The request, against the schema.
	params, ok := matchPath(o.key[len(o.method)+1:], req.URL.EscapedPath())
	if !ok {
		t.Fatalf("the case's path %s is not a path of %s", path, o.key)
	}
	route := &routers.Route{Spec: doc, Path: o.docPath, PathItem: o.item, Method: o.method, Operation: o.op}
	reqInput := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true}}
	if c.skipRequestCheck == "" {
		checked := req.Clone(context.Background())
		checked.Body = io.NopCloser(strings.NewReader(body))
		reqInput.Request = checked
		err := openapi3filter.ValidateRequest(context.Background(), reqInput)
		switch {
		case c.breaks && err == nil:
			t.Errorf("the schema accepts this request, which the server should refuse with %d (%s): make the schema say why", c.status, c.why)
		case !c.breaks && err != nil:
			t.Errorf("the request the test sends breaks docs/openapi.yaml: %v", err)
		}
		reqInput.Request = req
	}

	// The answer.
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	got, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != c.status {
		t.Fatalf("%s answered %d, want %d (%s): %.400s", o.key, res.StatusCode, c.status, c.why, got)
	}
	err = openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: reqInput, Status: res.StatusCode, Header: res.Header, Body: io.NopCloser(bytes.NewReader(got)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	})
	if err != nil {
		t.Errorf("the answer does not match docs/openapi.yaml: %v\nbody: %.600s", err, got)
	}
	resp := o.op.Responses.Status(c.status).Value
	for name, h := range resp.Headers {
		// ValidateResponse checks headers, except on a 304.
		if c.status == http.StatusNotModified && h.Value.Required && res.Header.Get(name) == "" {
			t.Errorf("the answer lacks the %s header docs/openapi.yaml requires", name)
		}
	}
	if len(resp.Content) == 0 {
		if len(got) > 0 {
			t.Errorf("docs/openapi.yaml documents %d without a body, but the answer has one (%s): document it: %.300s", c.status, res.Header.Get("Content-Type"), got)
		}
		return
	}
	if mt := resp.Content.Get(res.Header.Get("Content-Type")); mt != nil && mt.Schema != nil && strings.Contains(res.Header.Get("Content-Type"), "json") {
		var v any
		if err := json.Unmarshal(got, &v); err != nil {
			t.Fatalf("the answer is not JSON: %v: %.300s", err, got)
		}
		var extra []string
		undocumentedMembers(mt.Schema.Value, v, "", &extra)
		if len(extra) > 0 {
			t.Errorf("the answer has members docs/openapi.yaml does not document: %s", strings.Join(extra, ", "))
		}
	}
}

// matchPath matches a URL path against a path template with {name} segments, and returns the
// segments' values.
func matchPath(template, path string) (map[string]string, bool) {
	ts, ps := strings.Split(template, "/"), strings.Split(path, "/")
	if len(ts) != len(ps) {
		return nil, false
	}
	params := map[string]string{}
	for i, seg := range ts {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			v, err := url.PathUnescape(ps[i])
			if err != nil || v == "" {
				return nil, false
			}
			params[seg[1:len(seg)-1]] = v
			continue
		}
		if seg != ps[i] {
			return nil, false
		}
	}
	return params, true
}

// undocumentedMembers lists the members of v that schema s does not name: an object schema
// that names its properties documents those only, unless it allows additional properties. A
// schema that names none (a free-form object, the payload received) documents anything.
func undocumentedMembers(s *openapi3.Schema, v any, path string, out *[]string) {
	if s == nil {
		return
	}
	schemas := []*openapi3.Schema{s}
	for _, group := range []openapi3.SchemaRefs{s.AllOf, s.AnyOf, s.OneOf} {
		for _, r := range group {
			schemas = append(schemas, r.Value)
		}
	}
	switch v := v.(type) {
	case map[string]any:
		props := map[string]*openapi3.Schema{}
		var extra *openapi3.Schema
		open := true
		for _, sc := range schemas {
			for name, p := range sc.Properties {
				props[name] = p.Value
				open = false
			}
			if ap := sc.AdditionalProperties; ap.Schema != nil {
				extra = ap.Schema.Value
			} else if ap.Has != nil && *ap.Has {
				open = true
			}
		}
		for name, val := range v {
			p := path + "." + name
			switch ps, ok := props[name]; {
			case ok:
				undocumentedMembers(ps, val, p, out)
			case extra != nil:
				undocumentedMembers(extra, val, p, out)
			case !open:
				*out = append(*out, strings.TrimPrefix(p, "."))
			}
		}
	case []any:
		for _, sc := range schemas {
			if sc.Items != nil {
				for i, item := range v {
					undocumentedMembers(sc.Items.Value, item, fmt.Sprintf("%s[%d]", path, i), out)
				}
			}
		}
	}
}
