package web

// The hostile-input table (issue 10, "Proof"): hundreds of malformed, oversized, mistyped,
// forged and tricky requests across every public, page and API route, sent over real HTTP to the
// real router on a real SQLite file. Each must get a clear 4xx with a message a person can act
// on, and leave every stored row as it was; a row of the table that the contract answers
// otherwise (a replayed webhook id is 200, a refused delivery is kept for admins, text that is
// merely odd is stored as data) says so, and says exactly what it may change.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/dbtest"
	"github.com/tensfer-golive/dashboard/internal/tensfer"
)

// who sends a hostile request.
type who int

const (
	anon       who = iota
	viewer         // signed-in pages, as a viewer
	operator       // as an operator
	admin          // as an admin
	freshAdmin     // as an admin who signs in just for this request (its password re-check budget is full)
	tokAdmin       // bearer token with the admin scope
	tokEvents      // events:read and events:write
	tokDecide      // rollout:decide
	tokConfig      // config:read only
)

// hostile is one request of the table and what it must get.
type hostile struct {
	name   string
	method string // default GET
	path   string // the request target exactly as sent: %-escapes, dot segments and all
	as     who
	ctype  string   // Content-Type; "" sends none
	header []string // name, value pairs; a name given twice is sent twice
	body   string
	raw    string // when set, these bytes are written to the socket as the whole request

	want int    // the status; 0 means any 4xx
	says string // the answer's message must contain this (case-insensitive)
	// flash: the answer is the form's redirect (303) carrying an error flash message, which is
	// how the dashboard's buttons report a problem.
	flash bool

	// accepted says why the contract answers this with 2xx or 3xx (want says which).
	accepted string
	// never is text the answer must not contain (where an accepted answer could echo the attack).
	never string
	// refusal: the contract keeps a record of this refused webhook delivery, with this reason: at
	// most one row in rejected_deliveries (none once the per-sender limits say no).
	refusal string
	// changes are the tables the contract lets this request change, with the rows each gains
	// (anyRows: any number, including none); every other table must stay exactly as it was.
	changes map[string]int
}

const anyRows = -1

// Variations of a row, so that the table reads as one line a request.

func (c hostile) at(path string) hostile     { c.path = path; return c }
func (c hostile) typed(ctype string) hostile { c.ctype = ctype; return c }
func (c hostile) by(as who) hostile          { c.as = as; return c }
func (c hostile) answering(want int) hostile { c.want = want; return c }
func (c hostile) because(why string) hostile { c.accepted = why; return c }
func (c hostile) flashed() hostile           { c.flash = true; return c }
func (c hostile) changing(m map[string]int) hostile {
	c.changes = m
	return c
}

// with adds headers, as name, value pairs.
func (c hostile) with(header ...string) hostile {
	c.header = append(slices.Clip(c.header), header...)
	return c
}

// hostileApp is the dashboard with a few of everything stored, and the people and tokens to
// send requests as.
type hostileApp struct {
	*testApp
	watch   *sql.Conn  // a connection of its own, to ask whether anything was committed
	seen    int64      // its data_version when snap was taken
	snap    dbSnapshot // what was stored then
	clients map[who]*client
	tokens  map[who]string
	key     []byte // production's webhook signing key
	eventID int64  // a stored webhook
	listID  int64  // an allow-list cohort
	ruleID  int64  // a rule cohort
	userID  int64  // a viewer to act on
	keyID   int64  // production's active secret key
	version int64  // the rollout's version
}

func newHostileApp(t *testing.T) *hostileApp {
	t.Helper()
	app := newTestApp(t, func(c *Config) {
		// Every request of the table comes from 127.0.0.1; the per-address limits have tests of
		// their own and would otherwise turn later rows into 429s.
		c.LoginRate = RateLimit{Burst: 1 << 20, Every: time.Millisecond}
		c.CallbackRate = RateLimit{Burst: 1 << 20, Every: time.Millisecond}
	})
	h := &hostileApp{testApp: app, clients: map[who]*client{}, tokens: map[who]string{}}
	for w, role := range map[who]db.Role{viewer: db.RoleViewer, operator: db.RoleOperator, admin: db.RoleAdmin} {
		h.clients[w], _ = app.login(role)
	}
	h.tokens[tokAdmin] = app.addToken("hostile-admin", auth.ScopeAdmin)
	h.tokens[tokEvents] = app.addToken("hostile-events", auth.ScopeEventsRead, auth.ScopeEventsWrite)
	h.tokens[tokDecide] = app.addToken("hostile-decide", auth.ScopeRolloutDecide)
	h.tokens[tokConfig] = app.addToken("hostile-config", auth.ScopeConfigRead)
	secret := app.withSecret("production")
	key, err := tensfer.ParseSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	h.key = key
	if res := app.sendWebhook("production", secret, "msg_seen", `{"type":"payment.cancelled","request_id":"req_seen","data":{"user_id":"u_1"}}`); res.StatusCode != 200 {
		t.Fatalf("seed webhook: %d %s", res.StatusCode, res.body)
	}
	evs, _, err := app.db.ListEvents(context.Background(), db.EventFilter{Source: db.SourceWebhook})
	if err != nil || len(evs) != 1 {
		t.Fatalf("seed webhook stored: %d %v", len(evs), err)
	}
	h.eventID = evs[0].ID
	req, _ := http.NewRequest("POST", app.url+"/callbacks/production", strings.NewReader(`{"event":"screen_loaded","event_id":"cb_seen","screen":"home"}`))
	if res := app.client().do(req); res.StatusCode != http.StatusAccepted {
		t.Fatalf("seed callback: %d %s", res.StatusCode, res.body)
	}
	if res := app.patchEnv(h.tokens[tokAdmin], "production", map[string]any{"allowed_origins": []string{"https://app.example"},
		"base_url": "https://api.tensfer.example", "secret_key": "sk_live_" + strings.Repeat("a", 32)}); res.StatusCode != 200 {
		t.Fatalf("seed environment: %d %s", res.StatusCode, res.body)
	}
	st, err := app.srv.envs.Load(context.Background(), "production")
	if err != nil {
		t.Fatal(err)
	}
	k, ok := st.Active(db.KeySecret)
	if !ok {
		t.Fatal("seed: no secret key")
	}
	h.keyID = k.ID
	h.listID = mustAtoi(t, app.createCohort(t, h.tokens[tokAdmin], map[string]any{"name": "hostile-list", "environment": "production", "user_ids": []string{"u1", "u2"}}).ID)
	h.ruleID = mustAtoi(t, app.createCohort(t, h.tokens[tokAdmin], map[string]any{"name": "hostile-rules", "environment": "sandbox",
		"rules": []map[string]any{{"attribute": "country", "op": "eq", "values": []string{"SE"}}}}).ID)
	h.version = app.showRollout(t, h.tokens[tokAdmin]).Version
	h.userID = app.addUser("victim@example.com", db.RoleViewer).ID
	return h
}

func mustAtoi(t *testing.T, s string) int64 {
	t.Helper()
	var n int64
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatalf("not a number: %q", s)
	}
	return n
}

// signed returns the Standard Webhooks headers of body sent as id at ts, signed with key.
func signed(key []byte, id string, ts time.Time, body string) []string {
	return []string{tensfer.HeaderWebhookID, id, tensfer.HeaderWebhookTimestamp, fmt.Sprint(ts.Unix()),
		tensfer.HeaderWebhookSignature, tensfer.Sign(key, id, ts, []byte(body))}
}

// nested is n levels of JSON arrays, closed when closed is set.
func nested(n int, closed bool) string {
	s := strings.Repeat("[", n)
	if closed {
		s += strings.Repeat("]", n)
	}
	return s
}

// hostileCases is the table, grouped by route ("METHOD /pattern", as in routeAccess).
func (h *hostileApp) hostileCases() map[string][]hostile {
	now := time.Now()
	good := `{"type":"payment.cancelled","request_id":"req_h","data":{"amount":1}}`
	hook := func(name, body string, header []string, want int, refusal string) hostile {
		return hostile{name: name, method: "POST", path: "/hooks/production", ctype: "application/json", body: body, header: header, want: want, refusal: refusal}
	}
	sig := func(id, body string) []string { return signed(h.key, id, now, body) }
	hookSigned := func(name, id, body string) hostile {
		return hook(name, body, sig(id, body), http.StatusBadRequest, db.RejectMalformedJSON)
	}
	accepted := func(c hostile, why string, changes map[string]int) hostile {
		c.want, c.accepted, c.changes, c.refusal = http.StatusOK, why, changes, ""
		return c
	}
	storesWebhook := map[string]int{"events": 1}
	const keptAsSigned = "a signed webhook is kept as received: unknown shapes are data, not errors"

	cb := func(name, body string, want int) hostile {
		return hostile{name: name, method: "POST", path: "/callbacks/production", ctype: "application/json", body: body, want: want}
	}
	storesCallback := map[string]int{"events": 1}

	// api and form take, last and optional, text the answer's message must contain.
	api := func(name, method, path string, as who, body string, want int, says ...string) hostile {
		c := hostile{name: name, method: method, path: path, as: as, body: body, want: want, says: strings.Join(says, "")}
		if body != "" {
			c.ctype = "application/json"
		}
		return c
	}
	form := func(name, path string, as who, v url.Values, want int, says ...string) hostile {
		return hostile{name: name, method: "POST", path: path, as: as, ctype: "application/x-www-form-urlencoded", body: v.Encode(), want: want, says: strings.Join(says, "")}
	}
	reauthFailed := map[string]int{"audit_log": 1}
	id := func(n int64) string { return fmt.Sprint(n) }
	list, rules, ev, user := id(h.listID), id(h.ruleID), id(h.eventID), id(h.userID)
	huge := strings.Repeat("9", 400)
	sqlText := `'; DROP TABLE events; --`
	markup := `<script>alert(1)</script><img src=x onerror=alert(1)>`

	groups := map[string][]hostile{}
	add := func(route string, cs ...hostile) { groups[route] = append(groups[route], cs...) }

	// Public: webhooks. Refusals are kept for admins (one row each); nothing else is stored.
	add("POST /hooks/{env}",
		hookSigned("signed, not JSON", "h1", `{"type":`),
		hookSigned("signed, 10,000 unclosed [", "h2", nested(10000, false)),
		hookSigned("signed, 10,001 nested arrays", "h3", nested(10001, true)),
		hookSigned("signed, a JSON array", "h4", `[]`),
		hookSigned("signed, a JSON string", "h5", `"payment.cancelled"`),
		hookSigned("signed, null", "h6", `null`),
		hookSigned("signed, empty body", "h7", ``),
		hookSigned("signed, type is a number", "h8", `{"type":5}`),
		hookSigned("signed, type is an object", "h9", `{"type":{"a":1}}`),
		hookSigned("signed, type is an array", "h10", `{"type":["a"]}`),
		hookSigned("signed, type is true", "h11", `{"type":true}`),
		hookSigned("signed, type missing", "h12", `{"id":"evt_1"}`),
		hookSigned("signed, id is a number", "h13", `{"type":"a","id":5}`),
		hookSigned("signed, request_id is an object", "h14", `{"type":"a","request_id":{}}`),
		hookSigned("signed, request_id of 2,000 characters", "h15", `{"type":"a","request_id":"`+strings.Repeat("r", 2000)+`"}`),
		hookSigned("signed, a raw NUL inside a string", "h16", "{\"type\":\"a\x00b\"}"),
		hookSigned("signed, a raw CR inside a string", "h17", "{\"type\":\"a\rb\"}"),
		hookSigned("signed, invalid UTF-8", "h18", "{\"type\":\"payment.\xff\xfe\"}"),
		hookSigned("signed, trailing garbage", "h19", good+`}}`),
		hookSigned("signed, two JSON objects", "h20", good+good),
		hook("no webhook-id", good, []string{tensfer.HeaderWebhookTimestamp, fmt.Sprint(now.Unix()), tensfer.HeaderWebhookSignature, tensfer.Sign(h.key, "x", now, []byte(good))}, http.StatusUnauthorized, db.RejectMissingHeader),
		hook("no webhook-timestamp", good, []string{tensfer.HeaderWebhookID, "h21", tensfer.HeaderWebhookSignature, tensfer.Sign(h.key, "h21", now, []byte(good))}, http.StatusUnauthorized, db.RejectMissingHeader),
		hook("no webhook-signature", good, []string{tensfer.HeaderWebhookID, "h22", tensfer.HeaderWebhookTimestamp, fmt.Sprint(now.Unix())}, http.StatusUnauthorized, db.RejectMissingHeader),
		hook("no headers at all", good, nil, http.StatusUnauthorized, db.RejectMissingHeader),
		hook("signed with another secret", good, signed([]byte("another-secret-key-of-32-bytes!!"), "h23", now, good), http.StatusUnauthorized, db.RejectNoMatchingSignature),
		hook("signature over other bytes", good, sig("h24", good+" "), http.StatusUnauthorized, db.RejectNoMatchingSignature),
		hook("signature not base64", good, []string{tensfer.HeaderWebhookID, "h25", tensfer.HeaderWebhookTimestamp, fmt.Sprint(now.Unix()), tensfer.HeaderWebhookSignature, "v1,!!!not-base64!!!"}, http.StatusUnauthorized, ""),
		hook("signature scheme v2", good, []string{tensfer.HeaderWebhookID, "h26", tensfer.HeaderWebhookTimestamp, fmt.Sprint(now.Unix()), tensfer.HeaderWebhookSignature, "v2," + strings.TrimPrefix(tensfer.Sign(h.key, "h26", now, []byte(good)), "v1,")}, http.StatusUnauthorized, ""),
		hook("10,000 signatures, none right", good, []string{tensfer.HeaderWebhookID, "h27", tensfer.HeaderWebhookTimestamp, fmt.Sprint(now.Unix()), tensfer.HeaderWebhookSignature, strings.Repeat("v1,AAAA ", 6000)}, http.StatusUnauthorized, ""),
		hook("timestamp 10 minutes old", good, signed(h.key, "h28", now.Add(-10*time.Minute), good), http.StatusUnauthorized, db.RejectTimestampSkew),
		hook("timestamp 10 minutes ahead", good, signed(h.key, "h29", now.Add(10*time.Minute), good), http.StatusUnauthorized, db.RejectTimestampSkew),
		hook("timestamp in 1970", good, signed(h.key, "h30", time.Unix(1, 0), good), http.StatusUnauthorized, db.RejectTimestampSkew),
		hook("timestamp not a number", good, []string{tensfer.HeaderWebhookID, "h31", tensfer.HeaderWebhookTimestamp, "yesterday", tensfer.HeaderWebhookSignature, tensfer.Sign(h.key, "h31", now, []byte(good))}, http.StatusUnauthorized, ""),
		hook("timestamp of 30 digits", good, []string{tensfer.HeaderWebhookID, "h32", tensfer.HeaderWebhookTimestamp, strings.Repeat("9", 30), tensfer.HeaderWebhookSignature, tensfer.Sign(h.key, "h32", now, []byte(good))}, http.StatusUnauthorized, ""),
		hook("timestamp negative", good, []string{tensfer.HeaderWebhookID, "h33", tensfer.HeaderWebhookTimestamp, "-1", tensfer.HeaderWebhookSignature, tensfer.Sign(h.key, "h33", now, []byte(good))}, http.StatusUnauthorized, ""),
		hook("signed under the second of two webhook-ids", good, append([]string{tensfer.HeaderWebhookID, "h34a"}, sig("h34b", good)...), http.StatusUnauthorized, ""),
		hook("the right signature in a second webhook-signature header", good, append(append([]string{}, sig("h35", good)[:4]...), tensfer.HeaderWebhookSignature, "v1,AAAA", tensfer.HeaderWebhookSignature, tensfer.Sign(h.key, "h35", now, []byte(good))), http.StatusUnauthorized, ""),
		accepted(hook("webhook-id of 60 KiB", good, sig(strings.Repeat("i", 60<<10), good), 0, ""),
			keptAsSigned+" (the id is clipped, and deduplicated by its hash)", storesWebhook),
		hook("unsigned, SQL in every field", `{"type":"`+sqlText+`","request_id":"' OR 1=1 --","id":"x\"; DELETE FROM events; --"}`, nil, http.StatusUnauthorized, db.RejectMissingHeader),
		hook("unsigned, markup in every field", `{"type":"`+strings.ReplaceAll(markup, `"`, `'`)+`","request_id":"<b>r</b>"}`, sig("h36", "other"), http.StatusUnauthorized, db.RejectNoMatchingSignature),
		hook("unsigned, invalid UTF-8", "{\"type\":\"\xff\"}", nil, http.StatusUnauthorized, db.RejectMissingHeader),
		hook("over 1 MiB", `{"type":"a","pad":"`+strings.Repeat("x", 1<<20)+`"}`, nil, http.StatusRequestEntityTooLarge, db.RejectBodyTooLarge),
		hook("unknown environment", good, sig("h37", good), http.StatusNotFound, db.RejectUnknownEnvironment).at("/hooks/staging"),
		hook("environment in capitals", good, sig("h38", good), http.StatusNotFound, db.RejectUnknownEnvironment).at("/hooks/PRODUCTION"),
		hook("environment of 5,000 characters", good, sig("h39", good), http.StatusNotFound, db.RejectUnknownEnvironment).at("/hooks/"+strings.Repeat("p", 5000)),
		hook("environment with an encoded NUL", good, sig("h40", good), http.StatusNotFound, db.RejectUnknownEnvironment).at("/hooks/production%00"),
		hook("environment with markup", good, sig("h41", good), http.StatusNotFound, db.RejectUnknownEnvironment).at("/hooks/%3Cscript%3Ealert(1)%3C%2Fscript%3E"),
		hook("encoded slash in the environment", good, sig("h42", good), http.StatusNotFound, db.RejectUnknownEnvironment).at("/hooks/production%2f..%2fsandbox"),
		hook("dot segments", good, sig("h43", good), http.StatusNotFound, "").at("/hooks/../hooks/production"),
		hook("encoded dot segments", good, sig("h44", good), http.StatusNotFound, "").at("/hooks/%2e%2e/production"),
		hook("double slash", good, sig("h45", good), http.StatusNotFound, "").at("/hooks//production"),
		hook("trailing slash", good, sig("h46", good), http.StatusNotFound, "").at("/hooks/production/"),
		hostile{name: "GET", path: "/hooks/production", want: http.StatusMethodNotAllowed},
		hostile{name: "PUT", method: "PUT", path: "/hooks/production", ctype: "application/json", body: good, want: http.StatusMethodNotAllowed},
		accepted(hook("a replayed webhook-id", `{"type":"payment.cancelled","request_id":"req_seen","data":{"user_id":"u_1"}}`,
			sig("msg_seen", `{"type":"payment.cancelled","request_id":"req_seen","data":{"user_id":"u_1"}}`), 0, ""),
			"a repeated webhook-id is acknowledged as a duplicate and stores nothing (its insert only uses up an id)", map[string]int{"sqlite_sequence:events": 0}),
		accepted(hook("signed, SQL in every field", `{"type":"`+sqlText+`","id":"' OR 1=1 --","request_id":"req'); DELETE FROM events; --","data":{"user_id":"u' OR '1'='1"}}`,
			sig("h47", `{"type":"`+sqlText+`","id":"' OR 1=1 --","request_id":"req'); DELETE FROM events; --","data":{"user_id":"u' OR '1'='1"}}`), 0, ""), keptAsSigned, storesWebhook),
		accepted(hook("signed, markup in every field", `{"type":"<b>t</b>","id":"<i>","request_id":"<script>r</script>","data":{"note":"<img src=x onerror=alert(1)>"}}`,
			sig("h48", `{"type":"<b>t</b>","id":"<i>","request_id":"<script>r</script>","data":{"note":"<img src=x onerror=alert(1)>"}}`), 0, ""), keptAsSigned, storesWebhook),
		accepted(hook("signed, escaped control characters in request_id", `{"type":"a","request_id":"r\u0000\r\nid: 9"}`,
			sig("h49", `{"type":"a","request_id":"r\u0000\r\nid: 9"}`), 0, ""), keptAsSigned+" (the feed and stream encode them)", storesWebhook),
		accepted(hook("signed, sent as text/plain", good, sig("h50", good), 0, "").typed("text/plain"),
			"the signature covers the bytes, whatever the Content-Type says", storesWebhook),
		accepted(hook("signed, created_at is a number", `{"type":"a","created_at":5}`, sig("h51", `{"type":"a","created_at":5}`), 0, ""),
			keptAsSigned+" (created_at is advisory)", storesWebhook),
	)

	// Public: callback beacons. Nothing is stored for a refused beacon.
	add("POST /callbacks/{env}",
		cb("not JSON", `{"event":`, http.StatusBadRequest),
		cb("10,000 unclosed [", nested(10000, false), http.StatusBadRequest),
		cb("10,001 nested arrays", nested(10001, true), http.StatusBadRequest),
		cb("nested objects in a field, 10,001 deep", `{"event":"x","screen":`+strings.Repeat(`{"a":`, 10001)+`1`+strings.Repeat("}", 10001)+`}`, http.StatusBadRequest),
		cb("a JSON array", `[{"event":"screen_loaded"}]`, http.StatusBadRequest),
		cb("null", `null`, http.StatusBadRequest),
		cb("empty body", ``, http.StatusBadRequest),
		cb("no event", `{"screen":"home"}`, http.StatusBadRequest),
		cb("event is a number", `{"event":5}`, http.StatusBadRequest),
		cb("event is an object", `{"event":{}}`, http.StatusBadRequest),
		cb("event with markup", `{"event":"<script>"}`, http.StatusBadRequest),
		cb("event with SQL", `{"event":"`+sqlText+`"}`, http.StatusBadRequest),
		cb("event_id is a number", `{"event":"screen_loaded","event_id":5}`, http.StatusBadRequest),
		cb("session_id is an object", `{"event":"screen_loaded","session_id":{}}`, http.StatusBadRequest),
		cb("user_id is an array", `{"event":"screen_loaded","user_id":["u"]}`, http.StatusBadRequest),
		cb("request_id is true", `{"event":"screen_loaded","request_id":true}`, http.StatusBadRequest),
		cb("screen is a number", `{"event":"screen_loaded","screen":5}`, http.StatusBadRequest),
		cb("error is a number", `{"event":"initialization_error","error":5}`, http.StatusBadRequest),
		cb("error.code is an array", `{"event":"initialization_error","error":{"code":[]}}`, http.StatusBadRequest),
		cb("occurred_at is a number", `{"event":"screen_loaded","occurred_at":5}`, http.StatusBadRequest),
		cb("occurred_at is not a time", `{"event":"screen_loaded","occurred_at":"yesterday"}`, http.StatusBadRequest),
		cb("a raw NUL in a string", "{\"event\":\"screen_loaded\",\"screen\":\"a\x00\"}", http.StatusBadRequest),
		cb("invalid UTF-8", "{\"event\":\"screen_loaded\",\"screen\":\"\xff\xfe\"}", http.StatusBadRequest),
		cb("trailing garbage", `{"event":"screen_loaded"}]`, http.StatusBadRequest),
		cb("user_id of 5,000 characters", `{"event":"screen_loaded","user_id":"`+strings.Repeat("u", 5000)+`"}`, http.StatusBadRequest),
		cb("over 64 KiB", `{"event":"screen_loaded","pad":"`+strings.Repeat("x", 64<<10)+`"}`, http.StatusRequestEntityTooLarge),
		cb("form-encoded body", "event=screen_loaded&screen=home", http.StatusBadRequest).typed("application/x-www-form-urlencoded"),
		cb("XML body", `<callback event="screen_loaded"/>`, http.StatusBadRequest).typed("application/xml"),
		cb("origin not allowed", `{"event":"screen_loaded"}`, http.StatusForbidden).with("Origin", "https://evil.example"),
		cb("origin null", `{"event":"screen_loaded"}`, http.StatusForbidden).with("Origin", "null"),
		cb("origin with a path and markup", `{"event":"screen_loaded"}`, http.StatusForbidden).with("Origin", "https://app.example/<script>"),
		cb("unknown environment", `{"event":"screen_loaded"}`, http.StatusNotFound).at("/callbacks/staging"),
		cb("encoded dot segments", `{"event":"screen_loaded"}`, http.StatusNotFound).at("/callbacks/%2e%2e%2fproduction"),
		hostile{name: "DELETE", method: "DELETE", path: "/callbacks/production", want: http.StatusMethodNotAllowed},
		accepted(cb("a replayed event_id", `{"event":"screen_loaded","event_id":"cb_seen","screen":"home"}`, 0),
			"a repeated event_id is acknowledged as a duplicate and stores nothing (its insert only uses up an id)", map[string]int{"sqlite_sequence:events": 0}),
		accepted(cb("SQL in every text field", `{"event":"screen_loaded","event_id":"c1","session_id":"`+sqlText+`","user_id":"' OR 1=1 --","request_id":"r'); DROP TABLE users; --","screen":"`+sqlText+`"}`, 0),
			"a beacon's text is data: stored as sent, rendered escaped", storesCallback).answering(http.StatusAccepted),
		accepted(cb("markup in every text field", `{"event":"screen_loaded","event_id":"c2","user_id":"<b>u</b>","request_id":"<script>x</script>","screen":"<img src=x onerror=alert(1)>","error":{"code":"<i>","message":"</td></tr>"}}`, 0),
			"a beacon's text is data: stored as sent, rendered escaped", storesCallback).answering(http.StatusAccepted),
		accepted(cb("sent by sendBeacon as text/plain", `{"event":"screen_loaded","event_id":"c3"}`, 0).typed("text/plain;charset=UTF-8"),
			"navigator.sendBeacon can only send text/plain; the body decides", storesCallback).answering(http.StatusAccepted),
	)
	add("OPTIONS /callbacks/{env}",
		hostile{name: "preflight from an origin not allowed", method: "OPTIONS", path: "/callbacks/production", header: []string{"Origin", "https://evil.example", "Access-Control-Request-Method", "POST"}, want: http.StatusForbidden},
		hostile{name: "preflight to an unknown environment", method: "OPTIONS", path: "/callbacks/mars", header: []string{"Origin", "https://app.example"}, want: http.StatusNotFound},
	)
	// The return URL always sends the person back to the app; what it records is best effort.
	recordsReturn := map[string]int{"events": anyRows}
	add("GET /callbacks/{env}/return",
		hostile{name: "unknown environment", path: "/callbacks/mars/return?event=x", want: http.StatusNotFound},
		hostile{name: "environment of 5,000 characters", path: "/callbacks/" + strings.Repeat("e", 5000) + "/return", want: http.StatusNotFound},
		hostile{name: "dot segments in the environment", path: "/callbacks/%2e%2e/return", want: http.StatusNotFound},
		hostile{name: "a stream-injection query", path: "/callbacks/production/return?screen=%0Devent:%20reload%0Did:%2099999999", want: http.StatusOK,
			accepted: "the return URL records the visit and always lets the person through", changes: recordsReturn},
		hostile{name: "invalid UTF-8 and NUL in the query", path: "/callbacks/production/return?event=%ff%fe&screen=a%00b", want: http.StatusOK,
			accepted: "the return URL records the visit and always lets the person through", changes: recordsReturn},
		hostile{name: "a 60 KiB query", path: "/callbacks/production/return?q=" + strings.Repeat("x", 60<<10), want: http.StatusOK,
			accepted: "the return URL records the visit (clipped) and always lets the person through", changes: recordsReturn},
	)

	// Public: OpenFeature remote evaluation, bearer token with rollout:decide.
	ofrep := func(name, path, body string, want int) hostile {
		return hostile{name: name, method: "POST", path: path, as: tokDecide, ctype: "application/json", body: body, want: want}
	}
	flag := "/ofrep/v1/evaluate/flags/" + h.rollout().Key
	add("POST /ofrep/v1/evaluate/flags/{key}",
		hostile{name: "no token", method: "POST", path: flag, ctype: "application/json", body: `{"context":{"targetingKey":"u"}}`, want: http.StatusUnauthorized},
		hostile{name: "a token without rollout:decide", method: "POST", path: flag, as: tokConfig, ctype: "application/json", body: `{"context":{"targetingKey":"u"}}`, want: http.StatusForbidden},
		ofrep("not JSON", flag, `{"context":`, http.StatusBadRequest),
		ofrep("10,000 unclosed [", flag, nested(10000, false), http.StatusBadRequest),
		ofrep("10,001 nested objects in the context", flag, `{"context":{"targetingKey":"u","a":`+strings.Repeat(`{"a":`, 10001)+`1`+strings.Repeat("}", 10001)+`}}`, http.StatusBadRequest),
		ofrep("a JSON array", flag, `[]`, http.StatusBadRequest),
		ofrep("context is a string", flag, `{"context":"u"}`, http.StatusBadRequest),
		ofrep("no context", flag, `{}`, http.StatusBadRequest),
		ofrep("targetingKey is a number", flag, `{"context":{"targetingKey":5}}`, http.StatusBadRequest),
		ofrep("targetingKey is empty", flag, `{"context":{"targetingKey":""}}`, http.StatusBadRequest),
		ofrep("targetingKey of 1,000 bytes", flag, `{"context":{"targetingKey":"`+strings.Repeat("k", 1000)+`"}}`, http.StatusBadRequest),
		ofrep("trailing garbage", flag, `{"context":{"targetingKey":"u"}}garbage`, http.StatusBadRequest),
		ofrep("invalid UTF-8", flag, "{\"context\":{\"targetingKey\":\"u\xff\"}}", http.StatusBadRequest),
		ofrep("over 1 MiB", flag, `{"context":{"targetingKey":"u","pad":"`+strings.Repeat("x", 1<<20)+`"}}`, http.StatusRequestEntityTooLarge),
		ofrep("unknown flag", "/ofrep/v1/evaluate/flags/other-flag", `{"context":{"targetingKey":"u"}}`, http.StatusNotFound),
		ofrep("flag key of 5,000 characters", "/ofrep/v1/evaluate/flags/"+strings.Repeat("f", 5000), `{"context":{"targetingKey":"u"}}`, http.StatusNotFound),
		ofrep("flag key with markup", "/ofrep/v1/evaluate/flags/%3Cscript%3E", `{"context":{"targetingKey":"u"}}`, http.StatusNotFound),
		ofrep("sent as text/plain", flag, `{"context":{"targetingKey":"u"}}`, http.StatusBadRequest).typed("text/plain"),
		hostile{name: "GET", path: flag, as: tokDecide, want: http.StatusMethodNotAllowed},
	)
	add("POST /ofrep/v1/evaluate/flags",
		ofrep("not JSON", "/ofrep/v1/evaluate/flags", `{`, http.StatusBadRequest),
		ofrep("context is an array", "/ofrep/v1/evaluate/flags", `{"context":[]}`, http.StatusBadRequest),
		ofrep("targetingKey is null", "/ofrep/v1/evaluate/flags", `{"context":{"targetingKey":null}}`, http.StatusBadRequest),
		ofrep("two JSON objects", "/ofrep/v1/evaluate/flags", `{"context":{"targetingKey":"u"}}{"context":{"targetingKey":"v"}}`, http.StatusBadRequest),
		ofrep("a bearer token of 60 KiB", "/ofrep/v1/evaluate/flags", `{"context":{"targetingKey":"u"}}`, http.StatusUnauthorized).by(anon).with("Authorization", "Bearer "+strings.Repeat("t", 60<<10)),
	)

	// Public: operability.
	add("GET /healthz",
		hostile{name: "POST", method: "POST", path: "/healthz", want: http.StatusMethodNotAllowed},
		hostile{name: "trailing slash", path: "/healthz/", want: http.StatusNotFound},
		hostile{name: "capitals", path: "/HEALTHZ", want: http.StatusNotFound},
		hostile{name: "an encoded NUL", path: "/healthz%00", want: http.StatusNotFound},
		hostile{name: "a 2 MiB header", path: "/healthz", header: []string{"X-Junk", strings.Repeat("j", 2<<20)}, want: http.StatusRequestHeaderFieldsTooLarge},
		hostile{name: "a malformed request line", raw: "GET /healthz\r\nHost: x\r\n\r\n", want: http.StatusBadRequest},
		hostile{name: "two Host headers", raw: "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", want: http.StatusBadRequest},
		hostile{name: "two different Content-Lengths", raw: "GET /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}", want: http.StatusBadRequest},
		hostile{name: "a NUL in a header value", raw: "GET /healthz HTTP/1.1\r\nHost: a\r\nX-A: a\x00b\r\n\r\n", want: http.StatusBadRequest},
		hostile{name: "a header line without a colon", raw: "GET /healthz HTTP/1.1\r\nHost: a\r\nnonsense\r\n\r\n", want: http.StatusBadRequest},
	)
	add("GET /readyz",
		hostile{name: "DELETE", method: "DELETE", path: "/readyz", want: http.StatusMethodNotAllowed},
		hostile{name: "dot segments", path: "/readyz/../healthz", want: http.StatusNotFound},
	)

	// Public: sign-in and the setup link. A refused login is audited (who tried, from where).
	login := func(name string, v url.Values) hostile {
		return hostile{name: name, method: "POST", path: "/login", ctype: "application/x-www-form-urlencoded", body: v.Encode(), want: 0,
			changes: map[string]int{"audit_log": anyRows}}
	}
	add("POST /login",
		login("SQL in the email", url.Values{"email": {"' OR 1=1 --"}, "password": {"x"}}),
		login("SQL in the password", url.Values{"email": {"victim@example.com"}, "password": {"' OR '1'='1"}}),
		login("markup in the email", url.Values{"email": {markup}, "password": {"x"}}),
		login("an email of 10,000 characters", url.Values{"email": {strings.Repeat("e", 10000) + "@example.com"}, "password": {"x"}}),
		login("invalid UTF-8 and NUL in the email", url.Values{"email": {"v\xff\x00@example.com"}, "password": {"x"}}),
		login("the email twice", url.Values{"email": {"x@example.com", "victim@example.com"}, "password": {testPassword}}),
		login("no fields", url.Values{}),
		hostile{name: "a JSON body", method: "POST", path: "/login", ctype: "application/json", body: `{"email":"victim@example.com","password":"` + testPassword + `"}`, changes: map[string]int{"audit_log": anyRows}},
		hostile{name: "a 2 MiB password", method: "POST", path: "/login", ctype: "application/x-www-form-urlencoded", body: "email=a%40b.c&password=" + strings.Repeat("p", 2<<20), want: http.StatusRequestEntityTooLarge},
		hostile{name: "a malformed form body", method: "POST", path: "/login", ctype: "application/x-www-form-urlencoded", body: "email=%zz&password=%", want: http.StatusBadRequest},
		hostile{name: "from another site", method: "POST", path: "/login", ctype: "application/x-www-form-urlencoded", body: "email=victim%40example.com&password=x", header: []string{"Sec-Fetch-Site", "cross-site"}, want: http.StatusForbidden},
	)
	add("GET /login",
		hostile{name: "next is another site", path: "/login?next=%2F%2Fevil.example", want: http.StatusOK,
			accepted: "the login page renders, with next replaced by /", never: "evil.example"},
		hostile{name: "PUT", method: "PUT", path: "/login", want: http.StatusMethodNotAllowed},
	)
	add("GET /setup",
		hostile{name: "no token", path: "/setup", want: http.StatusNotFound},
		hostile{name: "a wrong token", path: "/setup?token=" + strings.Repeat("a", 43), want: http.StatusNotFound},
		hostile{name: "a token of 10,000 characters", path: "/setup?token=" + strings.Repeat("t", 10000), want: http.StatusNotFound},
		hostile{name: "SQL as the token", path: "/setup?token=" + url.QueryEscape("' OR 1=1 --"), want: http.StatusNotFound},
	)
	add("POST /setup",
		hostile{name: "a wrong token", method: "POST", path: "/setup", ctype: "application/x-www-form-urlencoded",
			body: url.Values{"token": {"nope"}, "email": {"new@example.com"}, "password": {"a long enough passphrase 123"}, "confirm": {"a long enough passphrase 123"}}.Encode()},
		hostile{name: "markup and SQL in every field", method: "POST", path: "/setup", ctype: "application/x-www-form-urlencoded",
			body: url.Values{"token": {sqlText}, "email": {markup}, "name": {sqlText}, "password": {"x"}, "confirm": {"y"}}.Encode(), want: http.StatusUnprocessableEntity},
		hostile{name: "a JSON body", method: "POST", path: "/setup", ctype: "application/json", body: `{"token":"x"}`, want: http.StatusUnprocessableEntity},
	)
	// The login's second step: without a pending first step there is nothing to answer.
	add("GET /login/two-factor",
		hostile{name: "no pending sign-in", path: "/login/two-factor", want: http.StatusOK, accepted: "the sign-in page renders, to start again"},
		hostile{name: "a forged step cookie", path: "/login/two-factor", header: []string{"Cookie", "tfd_login_step=" + strings.Repeat("a", 43)}, want: http.StatusOK,
			accepted: "the sign-in page renders, to start again"},
	)
	add("POST /login/two-factor",
		hostile{name: "no pending sign-in", method: "POST", path: "/login/two-factor", ctype: "application/x-www-form-urlencoded", body: "code=123456", want: 0},
		hostile{name: "a forged step cookie and SQL as the code", method: "POST", path: "/login/two-factor", ctype: "application/x-www-form-urlencoded",
			header: []string{"Cookie", "tfd_login_step=' OR 1=1 --"}, body: url.Values{"code": {sqlText}}.Encode(), want: 0},
		hostile{name: "a 2 MiB code", method: "POST", path: "/login/two-factor", ctype: "application/x-www-form-urlencoded", body: "code=" + strings.Repeat("1", 2<<20), want: http.StatusRequestEntityTooLarge},
		hostile{name: "from another site", method: "POST", path: "/login/two-factor", ctype: "application/x-www-form-urlencoded", body: "code=123456", header: []string{"Sec-Fetch-Site", "cross-site"}, want: http.StatusForbidden},
	)
	add("POST /logout",
		hostile{name: "from another site", method: "POST", path: "/logout", as: viewer, header: []string{"Origin", "https://evil.example"}, want: http.StatusForbidden},
	)

	// Pages, read: bad filters, cursors and ids.
	add("GET /events",
		hostile{name: "unknown environment", path: "/events?env=mars", as: viewer, want: http.StatusBadRequest, says: "env"},
		hostile{name: "unknown source", path: "/events?source=%3Cscript%3E", as: viewer, want: http.StatusBadRequest, says: "source"},
		hostile{name: "unknown status", path: "/events?status=1%27%20OR%201%3D1", as: viewer, want: http.StatusBadRequest, says: "status"},
		hostile{name: "since is not a time", path: "/events?since=yesterday", as: viewer, want: http.StatusBadRequest, says: "since"},
		hostile{name: "until before since", path: "/events?since=2026-01-02&until=2026-01-01", as: viewer, want: http.StatusBadRequest, says: "until"},
		hostile{name: "cursor is text", path: "/events?cursor=abc", as: viewer, want: http.StatusBadRequest, says: "cursor"},
		hostile{name: "cursor is negative", path: "/events?cursor=-5", as: viewer, want: http.StatusBadRequest, says: "cursor"},
		hostile{name: "cursor overflows int64", path: "/events?cursor=" + huge, as: viewer, want: http.StatusBadRequest, says: "cursor"},
		hostile{name: "limit of a million", path: "/events?limit=1000000", as: viewer, want: http.StatusBadRequest, says: "limit"},
		hostile{name: "a type of 5,000 characters", path: "/events?type=" + strings.Repeat("t", 5000), as: viewer, want: http.StatusBadRequest, says: "type"},
	)
	add("GET /events/{id}",
		hostile{name: "id 0", path: "/events/0", as: viewer, want: http.StatusNotFound},
		hostile{name: "negative id", path: "/events/-1", as: viewer, want: http.StatusNotFound},
		hostile{name: "id is text", path: "/events/abc", as: viewer, want: http.StatusNotFound},
		hostile{name: "id overflows int64", path: "/events/" + huge, as: viewer, want: http.StatusNotFound},
		hostile{name: "an id nobody has", path: "/events/987654321", as: viewer, want: http.StatusNotFound, says: "987654321"},
		hostile{name: "id with an encoded NUL", path: "/events/" + ev + "%00", as: viewer, want: http.StatusNotFound},
		hostile{name: "id with SQL", path: "/events/1%20OR%201=1", as: viewer, want: http.StatusNotFound},
		hostile{name: "encoded dot segments", path: "/events/%2e%2e%2fsettings", as: viewer, want: http.StatusNotFound},
		hostile{name: "double slash", path: "/events//" + ev, as: viewer, want: http.StatusNotFound},
	)
	add("GET /events/stream",
		hostile{name: "Last-Event-ID is text", path: "/events/stream", as: viewer, header: []string{"Last-Event-ID", "abc"}, want: http.StatusBadRequest, says: "Last-Event-ID"},
		hostile{name: "Last-Event-ID is negative", path: "/events/stream", as: viewer, header: []string{"Last-Event-ID", "-5"}, want: http.StatusBadRequest},
		hostile{name: "last_id overflows int64", path: "/events/stream?last_id=" + huge, as: viewer, want: http.StatusBadRequest},
		hostile{name: "unknown environment", path: "/events/stream?env=mars", as: viewer, want: http.StatusBadRequest},
	)
	add("GET /events/export",
		hostile{name: "unknown format", path: "/events/export?format=xlsx", as: viewer, want: http.StatusBadRequest, says: "format"},
		hostile{name: "no format", path: "/events/export", as: viewer, want: http.StatusBadRequest, says: "format"},
		hostile{name: "unknown environment", path: "/events/export?format=csv&env=%27%3B--", as: viewer, want: http.StatusBadRequest},
	)
	add("GET /lookup",
		hostile{name: "lookup text of 300 characters", path: "/lookup?q=" + strings.Repeat("q", 300), as: viewer, want: http.StatusBadRequest, says: "256"},
	)
	add("GET /lookup/bundle",
		hostile{name: "no q", path: "/lookup/bundle", as: viewer, want: http.StatusBadRequest, says: "?q="},
		hostile{name: "q of 300 characters", path: "/lookup/bundle?q=" + strings.Repeat("q", 300), as: viewer, want: http.StatusBadRequest},
		hostile{name: "q of spaces", path: "/lookup/bundle?q=%20%20", as: viewer, want: http.StatusBadRequest},
	)
	add("GET /audit",
		hostile{name: "cursor is text", path: "/audit?cursor=abc", as: operator, want: http.StatusBadRequest},
		hostile{name: "limit 0", path: "/audit?limit=0", as: operator, want: http.StatusBadRequest},
		hostile{name: "as a viewer", path: "/audit", as: viewer, want: http.StatusForbidden},
	)
	add("GET /events/rejected",
		hostile{name: "cursor overflows int64", path: "/events/rejected?cursor=" + huge, as: admin, want: http.StatusBadRequest},
		hostile{name: "as an operator", path: "/events/rejected", as: operator, want: http.StatusForbidden},
	)
	add("GET /events/replay",
		hostile{name: "unknown environment", path: "/events/replay?env=mars", as: operator, want: http.StatusBadRequest},
		hostile{name: "max_id is text", path: "/events/replay?env=production&max_id=abc", as: operator, want: http.StatusBadRequest, says: "max_id"},
	)
	add("GET /rollout/cohorts/{id}/members",
		hostile{name: "an id nobody has", path: "/rollout/cohorts/987654/members", as: admin, want: http.StatusNotFound},
		hostile{name: "id is text", path: "/rollout/cohorts/abc/members", as: admin, want: http.StatusNotFound},
		hostile{name: "id 0", path: "/rollout/cohorts/0/members", as: admin, want: http.StatusNotFound},
	)
	add("GET /", hostile{name: "a query of markup", path: "/?%3Cscript%3E=1", as: viewer, want: http.StatusOK, accepted: "the overview takes no parameters and ignores any"})
	add("GET /environments", hostile{name: "PATCH", method: "PATCH", path: "/environments", as: viewer, want: http.StatusMethodNotAllowed})
	add("GET /go-live", hostile{name: "DELETE", method: "DELETE", path: "/go-live", as: viewer, want: http.StatusMethodNotAllowed})
	add("GET /rollout", hostile{name: "PUT", method: "PUT", path: "/rollout", as: viewer, want: http.StatusMethodNotAllowed})
	add("GET /settings", hostile{name: "DELETE", method: "DELETE", path: "/settings", as: viewer, want: http.StatusMethodNotAllowed})
	add("GET /settings/account", hostile{name: "not signed in, as a POST", method: "POST", path: "/settings/account", want: http.StatusMethodNotAllowed})
	add("GET /settings/users", hostile{name: "as an operator", path: "/settings/users", as: operator, want: http.StatusForbidden})
	add("GET /settings/tokens", hostile{name: "as a viewer", path: "/settings/tokens", as: viewer, want: http.StatusForbidden})

	// Pages, forms (same-origin requests, so the cross-origin check lets them through).
	add("POST /environments/{env}",
		form("unknown environment", "/environments/mars", admin, url.Values{"base_url": {"https://a.example"}}, http.StatusNotFound),
		form("base_url with markup", "/environments/production", admin, url.Values{"base_url": {"https://a.example/" + markup}}, http.StatusUnprocessableEntity),
		form("base_url is javascript:", "/environments/production", admin, url.Values{"base_url": {"javascript:alert(1)"}}, http.StatusUnprocessableEntity),
		form("base_url with SQL", "/environments/production", admin, url.Values{"base_url": {sqlText}}, http.StatusUnprocessableEntity),
		form("base_url of 10,000 characters", "/environments/production", admin, url.Values{"base_url": {"https://" + strings.Repeat("a", 10000) + ".example"}}, http.StatusUnprocessableEntity),
		form("base_url with a NUL", "/environments/production", admin, url.Values{"base_url": {"https://a.example/\x00"}}, http.StatusUnprocessableEntity),
		form("an origin with markup", "/environments/production", admin, url.Values{"allowed_origins": {"<script>alert(1)</script>"}}, http.StatusUnprocessableEntity),
		form("an origin with a path", "/environments/production", admin, url.Values{"allowed_origins": {"https://app.example/x"}}, http.StatusUnprocessableEntity),
		form("no fields", "/environments/production", admin, url.Values{}, http.StatusBadRequest),
		hostile{name: "a JSON body", method: "POST", path: "/environments/production", as: admin, ctype: "application/json", body: `{"base_url":"https://evil.example"}`, want: http.StatusBadRequest},
		form("as an operator", "/environments/production", operator, url.Values{"base_url": {"https://a.example"}}, http.StatusForbidden),
		form("from another site", "/environments/production", admin, url.Values{"base_url": {"https://evil.example"}}, http.StatusForbidden).with("Sec-Fetch-Site", "cross-site"),
		hostile{name: "a 2 MiB form", method: "POST", path: "/environments/production", as: admin, ctype: "application/x-www-form-urlencoded", body: "base_url=" + strings.Repeat("a", 2<<20), want: http.StatusRequestEntityTooLarge},
	)
	add("POST /environments/{env}/keys",
		form("unknown kind", "/environments/production/keys", admin, url.Values{"kind": {"master_key"}, "value": {"x"}}, http.StatusBadRequest, "kind"),
		form("no value", "/environments/production/keys", admin, url.Values{"kind": {"secret_key"}}, http.StatusUnprocessableEntity),
		form("a value with markup", "/environments/production/keys", admin, url.Values{"kind": {"secret_key"}, "value": {markup}}, http.StatusUnprocessableEntity),
		form("keep_previous is not a duration", "/environments/production/keys", admin, url.Values{"kind": {"secret_key"}, "value": {"sk_live_" + strings.Repeat("b", 32)}, "keep_previous": {"forever"}}, http.StatusBadRequest, "keep_previous"),
		form("unknown environment", "/environments/%2e%2e/keys", admin, url.Values{"kind": {"secret_key"}, "value": {"x"}}, http.StatusNotFound),
	)
	add("POST /environments/{env}/keys/{id}/reveal",
		form("a wrong password", "/environments/production/keys/"+id(h.keyID)+"/reveal", freshAdmin, url.Values{"password": {"wrong"}, "reason": {"x"}}, 0).flashed().changing(reauthFailed),
		form("a key nobody has", "/environments/production/keys/987654/reveal", freshAdmin, url.Values{"password": {testPassword}, "reason": {"support ticket"}}, http.StatusNotFound),
		form("key id is text", "/environments/production/keys/abc/reveal", admin, url.Values{"password": {testPassword}}, http.StatusNotFound),
		form("key id is negative", "/environments/production/keys/-1/reveal", admin, url.Values{"password": {testPassword}}, http.StatusNotFound),
	)
	add("POST /environments/{env}/webhook-secrets",
		form("a secret that is not whsec_", "/environments/production/webhook-secrets", admin, url.Values{"secret": {"not-a-secret"}}, http.StatusUnprocessableEntity),
		form("a secret with markup", "/environments/production/webhook-secrets", admin, url.Values{"secret": {"whsec_" + markup}}, http.StatusUnprocessableEntity),
		form("expires_in is negative", "/environments/production/webhook-secrets", admin, url.Values{"expires_in": {"-1h"}}, http.StatusBadRequest, "expires_in"),
		form("expires_in is text", "/environments/production/webhook-secrets", admin, url.Values{"expires_in": {"soon"}}, http.StatusBadRequest),
	)
	add("POST /environments/{env}/webhook-secrets/{id}/retire",
		form("a secret nobody has", "/environments/production/webhook-secrets/whs_nope/retire", admin, nil, 0).flashed(),
		form("an id with encoded dot segments", "/environments/production/webhook-secrets/%2e%2e%2f%2e%2e/retire", admin, nil, 0).flashed(),
		form("unknown environment", "/environments/mars/webhook-secrets/whs_x/retire", admin, nil, http.StatusNotFound),
	)
	add("POST /environments/{env}/beacon-key/rotate",
		form("unknown environment", "/environments/mars/beacon-key/rotate", admin, nil, http.StatusNotFound),
		form("environment with markup", "/environments/%3Cb%3E/beacon-key/rotate", admin, nil, http.StatusNotFound),
		form("as an operator", "/environments/production/beacon-key/rotate", operator, nil, http.StatusForbidden),
	)
	add("POST /environments/{env}/verify",
		form("unknown environment", "/environments/mars/verify", operator, nil, http.StatusNotFound),
		form("as a viewer", "/environments/production/verify", viewer, nil, http.StatusForbidden),
	)
	add("POST /environments/{env}/test-event",
		form("unknown environment", "/environments/%3Cb%3E/test-event", operator, nil, http.StatusNotFound),
		form("environment of 5,000 characters", "/environments/"+strings.Repeat("x", 5000)+"/test-event", operator, nil, http.StatusNotFound),
	)
	for _, route := range []string{"reverify", "replay"} {
		add("POST /events/{id}/"+route,
			form("an event nobody has", "/events/987654321/"+route, operator, nil, http.StatusNotFound, "987654321"),
			form("id is text", "/events/abc/"+route, operator, nil, http.StatusNotFound),
			form("id 0", "/events/0/"+route, operator, nil, http.StatusNotFound),
			form("id overflows int64", "/events/"+huge+"/"+route, operator, nil, http.StatusNotFound),
			form("as a viewer", "/events/"+ev+"/"+route, viewer, nil, http.StatusForbidden),
		)
	}
	add("POST /events/replay",
		form("no environment", "/events/replay", operator, nil, http.StatusBadRequest, "environment"),
		form("unknown environment", "/events/replay?env=mars", operator, nil, http.StatusBadRequest),
		form("max_id is negative", "/events/replay?env=production&max_id=-1", operator, nil, http.StatusBadRequest, "max_id"),
	)
	add("POST /rollout/actions/{action}",
		form("unknown action", "/rollout/actions/explode", operator, nil, http.StatusNotFound, "explode"),
		form("action with markup", "/rollout/actions/%3Cscript%3E", operator, nil, http.StatusNotFound),
		form("kill without typing kill", "/rollout/actions/kill", operator, url.Values{"confirm": {"yes"}}, http.StatusUnprocessableEntity, "type kill"),
		form("revive as an operator", "/rollout/actions/revive", operator, url.Values{"stage": {"0"}}, http.StatusForbidden),
		form("revive with a wrong password", "/rollout/actions/revive", freshAdmin, url.Values{"password": {"wrong"}, "stage": {"0"}}, http.StatusUnprocessableEntity).changing(reauthFailed),
		form("revive to a stage that is text", "/rollout/actions/revive", freshAdmin, url.Values{"password": {testPassword}, "stage": {"two"}}, http.StatusBadRequest, "stage"),
		form("a stale version", "/rollout/actions/advance", operator, url.Values{"version": {"1"}}, 0).flashed(),
	)
	add("POST /rollout/plan",
		form("a wrong password", "/rollout/plan", freshAdmin, url.Values{"password": {"wrong"}, "stages": {"5 24h"}}, http.StatusUnprocessableEntity).changing(reauthFailed),
		form("stages that are not numbers", "/rollout/plan", freshAdmin, url.Values{"password": {testPassword}, "stages": {"five percent"}}, http.StatusUnprocessableEntity),
		form("a stage of 500 %", "/rollout/plan", freshAdmin, url.Values{"password": {testPassword}, "stages": {"500 24h"}}, http.StatusUnprocessableEntity),
		form("a soak that is not a duration", "/rollout/plan", freshAdmin, url.Values{"password": {testPassword}, "stages": {"5 forever"}}, http.StatusUnprocessableEntity),
		form("guardrail rows incomplete", "/rollout/plan", freshAdmin, url.Values{"password": {testPassword}, "stages": {"5"}, "signal": {"init_errors", "api_errors"}, "max_rate": {"1"}}, http.StatusBadRequest, "guardrail"),
		form("on_breach unknown", "/rollout/plan", freshAdmin, url.Values{"password": {testPassword}, "stages": {"5"}, "on_breach": {"explode"}}, http.StatusUnprocessableEntity),
	)
	multipartBody := func(fields map[string]string, file string) (string, string) {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		for k, v := range fields {
			mw.WriteField(k, v)
		}
		if file != "" {
			fw, _ := mw.CreateFormFile("file", "ids.txt")
			fw.Write([]byte(file))
		}
		mw.Close()
		return buf.String(), mw.FormDataContentType()
	}
	upload := func(name, path string, fields map[string]string, file string, want int) hostile {
		body, ct := multipartBody(fields, file)
		return hostile{name: name, method: "POST", path: path, as: freshAdmin, ctype: ct, body: body, want: want}
	}
	add("POST /rollout/cohorts",
		hostile{name: "not multipart", method: "POST", path: "/rollout/cohorts", as: admin, ctype: "application/x-www-form-urlencoded", body: "name=x", want: http.StatusBadRequest},
		hostile{name: "multipart without a boundary", method: "POST", path: "/rollout/cohorts", as: admin, ctype: "multipart/form-data", body: "--x--", want: http.StatusBadRequest},
		upload("a wrong password", "/rollout/cohorts", map[string]string{"password": "wrong", "name": "c", "environment": "production", "rules": "country eq SE"}, "", http.StatusUnprocessableEntity).changing(reauthFailed),
		upload("an unknown rule operator", "/rollout/cohorts", map[string]string{"password": testPassword, "name": "c", "environment": "production", "rules": "country like SE"}, "", http.StatusUnprocessableEntity),
		upload("a rule line of two words", "/rollout/cohorts", map[string]string{"password": testPassword, "name": "c", "environment": "production", "rules": "country SE"}, "", http.StatusUnprocessableEntity),
		upload("both a file and rules", "/rollout/cohorts", map[string]string{"password": testPassword, "name": "c", "environment": "production", "rules": "country eq SE"}, "u1\n", http.StatusUnprocessableEntity),
		upload("an unknown environment", "/rollout/cohorts", map[string]string{"password": testPassword, "name": "c", "environment": "mars", "rules": "country eq SE"}, "", http.StatusUnprocessableEntity),
		upload("a name taken already", "/rollout/cohorts", map[string]string{"password": testPassword, "name": "hostile-list", "environment": "production", "rules": "country eq SE"}, "", http.StatusUnprocessableEntity),
		upload("an empty name", "/rollout/cohorts", map[string]string{"password": testPassword, "name": "", "environment": "production", "rules": "country eq SE"}, "", http.StatusUnprocessableEntity),
	)
	add("POST /rollout/cohorts/{id}/import",
		hostile{name: "not multipart", method: "POST", path: "/rollout/cohorts/" + list + "/import", as: admin, ctype: "application/x-www-form-urlencoded", body: "file=x", want: http.StatusBadRequest},
		upload("id is text", "/rollout/cohorts/abc/import", map[string]string{"password": testPassword}, "u1\n", http.StatusNotFound),
		upload("no file", "/rollout/cohorts/"+list+"/import", map[string]string{"password": testPassword}, "", http.StatusUnprocessableEntity),
		upload("a cohort nobody has", "/rollout/cohorts/987654/import", map[string]string{"password": testPassword}, "u1\n", 0).flashed(),
	)
	add("POST /rollout/cohorts/{id}/edit",
		form("a cohort nobody has", "/rollout/cohorts/987654/edit", admin, url.Values{"name": {"x"}}, http.StatusNotFound),
		form("a wrong password", "/rollout/cohorts/"+rules+"/edit", freshAdmin, url.Values{"password": {"wrong"}, "name": {"x"}}, http.StatusUnprocessableEntity).changing(reauthFailed),
		form("an unknown rule operator", "/rollout/cohorts/"+rules+"/edit", freshAdmin, url.Values{"password": {testPassword}, "name": {"hostile-rules"}, "environment": {"sandbox"}, "rules": {"country like SE"}}, http.StatusUnprocessableEntity, "like"),
	)
	add("POST /rollout/cohorts/{id}/delete",
		form("a cohort nobody has", "/rollout/cohorts/987654/delete", admin, nil, http.StatusNotFound),
		form("id is text", "/rollout/cohorts/one/delete", admin, nil, http.StatusNotFound),
		form("no password", "/rollout/cohorts/"+list+"/delete", freshAdmin, url.Values{"version": {"1"}}, http.StatusUnprocessableEntity, "password").changing(reauthFailed),
		form("a stale version", "/rollout/cohorts/"+list+"/delete", freshAdmin, url.Values{"version": {"1"}, "password": {testPassword}}, 0).flashed(),
	)
	add("POST /rollout/cohorts/{id}/move",
		form("no password", "/rollout/cohorts/"+list+"/move", freshAdmin, url.Values{"dir": {"up"}}, http.StatusUnprocessableEntity, "password").changing(reauthFailed),
		form("the first cohort up", "/rollout/cohorts/"+list+"/move", freshAdmin, url.Values{"dir": {"up"}, "password": {testPassword}}, 0).flashed(),
		form("a cohort nobody has", "/rollout/cohorts/987654/move", freshAdmin, url.Values{"dir": {"down"}, "password": {testPassword}}, 0).flashed(),
	)
	add("POST /rollout/cohorts/deleted/{id}/restore",
		form("id is text", "/rollout/cohorts/deleted/one/restore", admin, nil, http.StatusNotFound),
		form("no password", "/rollout/cohorts/deleted/987654/restore", freshAdmin, nil, http.StatusUnprocessableEntity, "password").changing(reauthFailed),
		form("a deletion nobody made", "/rollout/cohorts/deleted/987654/restore", freshAdmin, url.Values{"password": {testPassword}}, 0).flashed(),
	)
	add("POST /settings/users",
		form("SQL as the email", "/settings/users", freshAdmin, url.Values{"email": {"' OR 1=1 --"}, "role": {"viewer"}, "new_password": {"a long enough passphrase 123"}, "password": {testPassword}}, http.StatusUnprocessableEntity),
		form("markup as the email", "/settings/users", freshAdmin, url.Values{"email": {markup}, "role": {"viewer"}, "new_password": {"a long enough passphrase 123"}, "password": {testPassword}}, http.StatusUnprocessableEntity),
		form("an unknown role", "/settings/users", freshAdmin, url.Values{"email": {"n@example.com"}, "role": {"superuser"}, "new_password": {"a long enough passphrase 123"}, "password": {testPassword}}, http.StatusUnprocessableEntity),
		form("an email taken already", "/settings/users", freshAdmin, url.Values{"email": {"VICTIM@example.com"}, "role": {"viewer"}, "new_password": {"a long enough passphrase 123"}, "password": {testPassword}}, http.StatusUnprocessableEntity),
		form("a short password", "/settings/users", freshAdmin, url.Values{"email": {"n@example.com"}, "role": {"viewer"}, "new_password": {"x"}, "password": {testPassword}}, http.StatusUnprocessableEntity),
		form("invalid UTF-8 in the email", "/settings/users", freshAdmin, url.Values{"email": {"n\xff@example.com"}, "role": {"viewer"}, "new_password": {"a long enough passphrase 123"}, "password": {testPassword}}, http.StatusUnprocessableEntity),
		hostile{name: "a JSON body", method: "POST", path: "/settings/users", as: freshAdmin, ctype: "application/json", body: `{"email":"n@example.com","role":"admin"}`, want: http.StatusUnprocessableEntity}.changing(reauthFailed),
		form("as an operator", "/settings/users", operator, url.Values{"email": {"n@example.com"}, "role": {"admin"}}, http.StatusForbidden),
		form("without the admin's own password", "/settings/users", freshAdmin, url.Values{"email": {"n@example.com"}, "role": {"admin"}, "new_password": {"a long enough passphrase 123"}}, http.StatusUnprocessableEntity, "password").changing(reauthFailed),
		form("with a wrong admin password", "/settings/users", freshAdmin, url.Values{"email": {"n@example.com"}, "role": {"admin"}, "new_password": {"a long enough passphrase 123"}, "password": {"not my password"}}, http.StatusUnprocessableEntity, "password").changing(reauthFailed),
	)
	add("POST /settings/users/{id}/role",
		form("an unknown role", "/settings/users/"+user+"/role", admin, url.Values{"role": {"root"}, "password": {testPassword}}, http.StatusBadRequest, "role"),
		form("a user nobody is", "/settings/users/987654/role", freshAdmin, url.Values{"role": {"viewer"}, "password": {testPassword}}, http.StatusNotFound),
		form("id is text", "/settings/users/me/role", admin, url.Values{"role": {"admin"}}, http.StatusNotFound),
		form("id overflows int64", "/settings/users/"+huge+"/role", admin, url.Values{"role": {"admin"}}, http.StatusNotFound),
		form("a wrong password", "/settings/users/"+user+"/role", freshAdmin, url.Values{"role": {"admin"}, "password": {"wrong"}}, 0).flashed().changing(reauthFailed),
	)
	add("POST /settings/users/{id}/disable",
		form("a user nobody is", "/settings/users/987654/disable", admin, nil, http.StatusNotFound),
		form("negative id", "/settings/users/-3/disable", admin, nil, http.StatusNotFound),
	)
	add("POST /settings/users/{id}/enable",
		form("a user nobody is", "/settings/users/987654/enable", admin, nil, http.StatusNotFound),
	)
	add("POST /settings/users/{id}/password",
		form("a user nobody is", "/settings/users/987654/password", freshAdmin, url.Values{"new_password": {"a long enough passphrase 123"}, "confirm_password": {"a long enough passphrase 123"}, "password": {testPassword}}, http.StatusNotFound),
		form("a wrong password of the admin's", "/settings/users/"+user+"/password", freshAdmin, url.Values{"new_password": {"a long enough passphrase 123"}, "confirm_password": {"a long enough passphrase 123"}, "password": {"wrong"}}, 0).flashed().changing(reauthFailed),
		form("a short password", "/settings/users/"+user+"/password", freshAdmin, url.Values{"new_password": {"x"}, "confirm_password": {"x"}, "password": {testPassword}}, 0).flashed(),
	)
	add("POST /settings/users/{id}/sign-out",
		form("a user nobody is", "/settings/users/987654/sign-out", admin, nil, http.StatusNotFound),
		form("id with SQL", "/settings/users/1%20OR%201=1/sign-out", admin, nil, http.StatusNotFound),
	)
	// Alert channels (admin): bad kinds, URLs that must not be called, unknown channels.
	add("GET /settings/alerts", hostile{name: "as an operator", path: "/settings/alerts", as: operator, want: http.StatusForbidden})
	add("GET /settings/alerts/{id}",
		hostile{name: "a channel nobody made", path: "/settings/alerts/987654", as: admin, want: http.StatusNotFound},
		hostile{name: "id is markup", path: "/settings/alerts/%3Cscript%3E", as: admin, want: http.StatusNotFound},
	)
	add("POST /settings/alerts",
		form("an unknown kind", "/settings/alerts", admin, url.Values{"name": {"x"}, "kind": {"pager"}, "url": {"https://hooks.example.com/x"}, "events": {"rollout.killed"}}, http.StatusUnprocessableEntity),
		form("a URL to the metadata address", "/settings/alerts", admin, url.Values{"name": {"x"}, "kind": {"webhook"}, "url": {"https://169.254.169.254/latest"}, "events": {"rollout.killed"}}, http.StatusUnprocessableEntity),
		form("a URL with a password", "/settings/alerts", admin, url.Values{"name": {"x"}, "kind": {"slack"}, "url": {"https://u:p@hooks.example.com/x"}, "events": {"rollout.killed"}}, http.StatusUnprocessableEntity),
		form("plain http", "/settings/alerts", admin, url.Values{"name": {"x"}, "kind": {"slack"}, "url": {"http://hooks.example.com/x"}, "events": {"rollout.killed"}}, http.StatusUnprocessableEntity),
		form("markup as the name and an unknown event", "/settings/alerts", admin, url.Values{"name": {markup}, "kind": {"slack"}, "url": {"https://hooks.example.com/x"}, "events": {"everything"}}, http.StatusUnprocessableEntity),
		form("an unknown environment", "/settings/alerts", admin, url.Values{"name": {"x"}, "kind": {"slack"}, "url": {"https://hooks.example.com/x"}, "events": {"rollout.killed"}, "environments": {"staging"}}, http.StatusUnprocessableEntity),
		form("as an operator", "/settings/alerts", operator, url.Values{"name": {"x"}, "kind": {"slack"}, "url": {"https://hooks.example.com/x"}}, http.StatusForbidden),
	)
	add("POST /settings/alerts/{id}", form("a channel nobody made", "/settings/alerts/987654", admin, url.Values{"name": {"x"}, "kind": {"slack"}}, http.StatusNotFound))
	add("POST /settings/alerts/{id}/test", form("a channel nobody made", "/settings/alerts/987654/test", admin, nil, http.StatusNotFound))
	add("POST /settings/alerts/{id}/delete",
		form("a channel nobody made", "/settings/alerts/987654/delete", admin, nil, http.StatusNotFound),
		form("id overflows int64", "/settings/alerts/"+huge+"/delete", admin, nil, http.StatusNotFound),
	)
	add("GET /metrics",
		api("no token", "GET", "/metrics", anon, "", http.StatusUnauthorized),
		api("a token without metrics:read", "GET", "/metrics", tokEvents, "", http.StatusForbidden),
		api("a session cookie instead of a token", "GET", "/metrics", admin, "", http.StatusUnauthorized),
		api("POST", "POST", "/metrics", tokAdmin, "{}", http.StatusMethodNotAllowed),
	)
	add("GET /api/v1/alert-channels", api("with an events token", "GET", "/api/v1/alert-channels", tokEvents, "", http.StatusForbidden))
	add("POST /api/v1/alert-channels",
		api("not JSON", "POST", "/api/v1/alert-channels", tokAdmin, "name=x", http.StatusBadRequest),
		api("an unknown kind", "POST", "/api/v1/alert-channels", tokAdmin, `{"name":"x","kind":"pager","url":"https://hooks.example.com/x","events":["rollout.killed"]}`, http.StatusUnprocessableEntity),
		api("a loopback URL", "POST", "/api/v1/alert-channels", tokAdmin, `{"name":"x","kind":"webhook","url":"https://127.0.0.1:9/x","events":["rollout.killed"]}`, http.StatusUnprocessableEntity),
		api("events is a string", "POST", "/api/v1/alert-channels", tokAdmin, `{"name":"x","kind":"slack","url":"https://hooks.example.com/x","events":"rollout.killed"}`, 0),
		api("deeply nested", "POST", "/api/v1/alert-channels", tokAdmin, strings.Repeat("[", 10000), http.StatusBadRequest),
		api("SQL as the name, no URL", "POST", "/api/v1/alert-channels", tokAdmin, `{"name":"`+sqlText+`","kind":"slack","events":["rollout.killed"]}`, http.StatusUnprocessableEntity),
	)
	add("GET /api/v1/alert-channels/{id}", api("a channel nobody made", "GET", "/api/v1/alert-channels/987654", tokAdmin, "", http.StatusNotFound))
	add("PATCH /api/v1/alert-channels/{id}", api("a channel nobody made", "PATCH", "/api/v1/alert-channels/987654", tokAdmin, `{"name":"x"}`, http.StatusNotFound))
	add("DELETE /api/v1/alert-channels/{id}", api("id is text", "DELETE", "/api/v1/alert-channels/abc", tokAdmin, "", http.StatusNotFound))
	add("POST /api/v1/alert-channels/{id}/test", api("a channel nobody made", "POST", "/api/v1/alert-channels/987654/test", tokAdmin, "", http.StatusNotFound))
	add("POST /settings/tokens",
		form("an unknown scope", "/settings/tokens", admin, url.Values{"name": {"t"}, "scopes": {"root"}}, http.StatusUnprocessableEntity),
		form("no name", "/settings/tokens", admin, url.Values{"scopes": {"events:read"}}, http.StatusUnprocessableEntity),
		form("no scopes", "/settings/tokens", admin, url.Values{"name": {"t"}}, http.StatusUnprocessableEntity),
		form("expires_in is text", "/settings/tokens", admin, url.Values{"name": {"t"}, "scopes": {"events:read"}, "expires_in": {"never"}}, http.StatusUnprocessableEntity),
		form("expires_in is negative", "/settings/tokens", admin, url.Values{"name": {"t"}, "scopes": {"events:read"}, "expires_in": {"-30d"}}, http.StatusUnprocessableEntity),
		form("secrets:read with the session alone", "/settings/tokens", freshAdmin, url.Values{"name": {"t"}, "scopes": {"secrets:read"}}, http.StatusUnprocessableEntity).changing(reauthFailed),
		form("admin with a wrong password", "/settings/tokens", freshAdmin, url.Values{"name": {"t"}, "scopes": {"admin"}, "password": {"wrong"}}, http.StatusUnprocessableEntity).changing(reauthFailed),
	)
	add("POST /settings/tokens/{id}/revoke",
		form("a token nobody has", "/settings/tokens/987654/revoke", admin, nil, 0).flashed(),
		form("id is text", "/settings/tokens/all/revoke", admin, nil, http.StatusNotFound),
	)
	add("GET /settings/account/two-factor", hostile{name: "not signed in", path: "/settings/account/two-factor", want: http.StatusSeeOther,
		accepted: "the sign-in page, coming back here afterwards"})
	add("POST /settings/account/two-factor/setup",
		form("a wrong password", "/settings/account/two-factor/setup", freshAdmin, url.Values{"password": {"wrong"}}, 0).changing(reauthFailed),
		form("no password", "/settings/account/two-factor/setup", freshAdmin, nil, 0).changing(reauthFailed),
		form("from another site", "/settings/account/two-factor/setup", viewer, url.Values{"password": {testPassword}}, http.StatusForbidden).with("Origin", "https://evil.example"),
	)
	add("POST /settings/account/two-factor/confirm",
		form("nothing being set up", "/settings/account/two-factor/confirm", viewer, url.Values{"code": {"123456"}}, 0).flashed(),
		form("markup as the code", "/settings/account/two-factor/confirm", viewer, url.Values{"code": {markup}}, 0).flashed(),
	)
	add("POST /settings/account/two-factor/recovery-codes",
		form("two-factor is off", "/settings/account/two-factor/recovery-codes", freshAdmin, url.Values{"password": {testPassword}, "code": {"123456"}}, 0).flashed(),
	)
	add("POST /settings/account/two-factor/disable",
		form("two-factor is off", "/settings/account/two-factor/disable", freshAdmin, url.Values{"password": {testPassword}, "code": {"123456"}}, 0).flashed(),
	)
	add("POST /settings/users/{id}/two-factor/reset",
		form("a user nobody is", "/settings/users/987654/two-factor/reset", freshAdmin, url.Values{"password": {testPassword}}, 0),
		form("id with SQL", "/settings/users/1%20OR%201=1/two-factor/reset", admin, url.Values{"password": {testPassword}}, http.StatusNotFound),
		form("as an operator", "/settings/users/"+user+"/two-factor/reset", operator, url.Values{"password": {testPassword}}, http.StatusForbidden),
	)
	add("POST /settings/users/two-factor",
		form("a wrong password", "/settings/users/two-factor", freshAdmin, url.Values{"password": {"wrong"}, "required": {"on"}}, 0).changing(reauthFailed),
		form("as an operator", "/settings/users/two-factor", operator, url.Values{"password": {testPassword}, "required": {"on"}}, http.StatusForbidden),
	)
	add("POST /settings/account/password",
		form("a wrong current password", "/settings/account/password", freshAdmin, url.Values{"current": {"wrong"}, "password": {"a long enough passphrase 123"}, "confirm": {"a long enough passphrase 123"}}, 0).changing(reauthFailed),
		form("a new password too short", "/settings/account/password", freshAdmin, url.Values{"current": {testPassword}, "password": {"x"}, "confirm": {"x"}}, http.StatusUnprocessableEntity),
		form("from another site", "/settings/account/password", viewer, url.Values{"current": {testPassword}, "password": {"a long enough passphrase 123"}, "confirm": {"a long enough passphrase 123"}}, http.StatusForbidden).with("Origin", "https://evil.example"),
	)

	// The JSON API, with bearer tokens.
	add("GET /api/v1/whoami",
		api("no Authorization", "GET", "/api/v1/whoami", anon, "", http.StatusUnauthorized),
		api("Basic credentials", "GET", "/api/v1/whoami", anon, "", http.StatusUnauthorized).with("Authorization", "Basic YWRtaW46YWRtaW4="),
		api("Bearer and nothing", "GET", "/api/v1/whoami", anon, "", http.StatusUnauthorized).with("Authorization", "Bearer "),
		api("a token with SQL", "GET", "/api/v1/whoami", anon, "", http.StatusUnauthorized).with("Authorization", "Bearer ' OR 1=1 --"),
		api("a 60 KiB token", "GET", "/api/v1/whoami", anon, "", http.StatusUnauthorized).with("Authorization", "Bearer "+strings.Repeat("t", 60<<10)),
		api("a bad token first, a good one second", "GET", "/api/v1/whoami", anon, "", http.StatusUnauthorized).with("Authorization", "Bearer tfd_wrong", "Authorization", "Bearer "+h.tokens[tokAdmin]),
		api("a session cookie instead of a token", "GET", "/api/v1/whoami", anon, "", http.StatusUnauthorized).with("Cookie", h.sessionCookie(admin)),
		api("unknown endpoint", "GET", "/api/v1/whoami/../audit", tokAdmin, "", http.StatusNotFound),
		api("DELETE", "DELETE", "/api/v1/whoami", tokAdmin, "", http.StatusMethodNotAllowed),
	)
	add("GET /api/v1/events",
		api("unknown environment", "GET", "/api/v1/events?env=mars", tokEvents, "", http.StatusBadRequest),
		api("limit -1", "GET", "/api/v1/events?limit=-1", tokEvents, "", http.StatusBadRequest),
		api("limit of a billion", "GET", "/api/v1/events?limit=1000000000", tokEvents, "", http.StatusBadRequest),
		api("cursor is SQL", "GET", "/api/v1/events?cursor=1%20OR%201%3D1", tokEvents, "", http.StatusBadRequest),
		api("since is not a time", "GET", "/api/v1/events?since=%3Cscript%3E", tokEvents, "", http.StatusBadRequest),
		api("source twice, the first unknown", "GET", "/api/v1/events?source=sms&source=webhook", tokEvents, "", http.StatusBadRequest),
		api("a token without events:read", "GET", "/api/v1/events", tokConfig, "", http.StatusForbidden),
	)
	add("GET /api/v1/events/{id}",
		api("id 0", "GET", "/api/v1/events/0", tokEvents, "", http.StatusNotFound),
		api("negative id", "GET", "/api/v1/events/-7", tokEvents, "", http.StatusNotFound),
		api("id is text", "GET", "/api/v1/events/latest", tokEvents, "", http.StatusNotFound),
		api("id overflows int64", "GET", "/api/v1/events/"+huge, tokEvents, "", http.StatusNotFound),
		api("an id nobody has", "GET", "/api/v1/events/987654321", tokEvents, "", http.StatusNotFound),
		api("encoded slash in the id", "GET", "/api/v1/events/1%2f2", tokEvents, "", http.StatusNotFound),
	)
	add("GET /api/v1/lookup/{request_id}",
		api("request_id of 300 characters", "GET", "/api/v1/lookup/"+strings.Repeat("r", 300), tokEvents, "", http.StatusBadRequest, "256"),
		api("request_id of spaces", "GET", "/api/v1/lookup/%20%20%20", tokEvents, "", http.StatusBadRequest),
		api("request_id of SQL and markup", "GET", "/api/v1/lookup/%27%20OR%201%3D1%20--%3Cscript%3E", tokEvents, "", http.StatusOK).because("a lookup is a search: text that matches nothing finds nothing"),
	)
	apiCall := func(name, body string, want int) hostile {
		return api(name, "POST", "/api/v1/api-calls", tokEvents, body, want)
	}
	add("POST /api/v1/api-calls",
		apiCall("not JSON", `{"env":`, http.StatusBadRequest),
		apiCall("10,000 unclosed [", nested(10000, false), http.StatusBadRequest),
		apiCall("a JSON array", `[]`, http.StatusBadRequest),
		apiCall("null", `null`, http.StatusUnprocessableEntity),
		apiCall("an empty object", `{}`, http.StatusUnprocessableEntity),
		apiCall("env is a number", `{"env":1,"method":"GET","path":"/v1","status":200}`, http.StatusUnprocessableEntity),
		apiCall("method is an array", `{"env":"sandbox","method":["GET"],"path":"/v1","status":200}`, http.StatusUnprocessableEntity),
		apiCall("path is an object", `{"env":"sandbox","method":"GET","path":{},"status":200}`, http.StatusUnprocessableEntity),
		apiCall("status is a string", `{"env":"sandbox","method":"GET","path":"/v1","status":"200"}`, http.StatusUnprocessableEntity),
		apiCall("status is a fraction", `{"env":"sandbox","method":"GET","path":"/v1","status":200.5}`, http.StatusUnprocessableEntity),
		apiCall("status 99999", `{"env":"sandbox","method":"GET","path":"/v1","status":99999}`, http.StatusUnprocessableEntity),
		apiCall("duration_ms is a string", `{"env":"sandbox","method":"GET","path":"/v1","status":200,"duration_ms":"10"}`, http.StatusUnprocessableEntity),
		apiCall("duration_ms is negative", `{"env":"sandbox","method":"GET","path":"/v1","status":200,"duration_ms":-1}`, http.StatusUnprocessableEntity),
		apiCall("duration_ms overflows int64", `{"env":"sandbox","method":"GET","path":"/v1","status":200,"duration_ms":`+huge+`}`, http.StatusUnprocessableEntity),
		apiCall("request_id is a number", `{"env":"sandbox","method":"GET","path":"/v1","status":200,"request_id":5}`, http.StatusUnprocessableEntity),
		apiCall("error_code is an object", `{"env":"sandbox","method":"GET","path":"/v1","status":500,"error_code":{}}`, http.StatusUnprocessableEntity),
		apiCall("error_message is an array", `{"env":"sandbox","method":"GET","path":"/v1","status":500,"error_message":[]}`, http.StatusUnprocessableEntity),
		apiCall("user_id is true", `{"env":"sandbox","method":"GET","path":"/v1","status":200,"user_id":true}`, http.StatusUnprocessableEntity),
		apiCall("occurred_at is not a time", `{"env":"sandbox","method":"GET","path":"/v1","status":200,"occurred_at":"yesterday"}`, http.StatusUnprocessableEntity),
		apiCall("timeout is a string", `{"env":"sandbox","method":"GET","path":"/v1","status":null,"timeout":"yes"}`, http.StatusUnprocessableEntity),
		apiCall("an unknown field", `{"env":"sandbox","method":"GET","path":"/v1","status":200,"admin":true}`, http.StatusUnprocessableEntity),
		apiCall("trailing data", `{"env":"sandbox","method":"GET","path":"/v1","status":200} {}`, http.StatusBadRequest),
		apiCall("SQL as the environment", `{"env":"sandbox'; DROP TABLE events; --","method":"GET","path":"/v1","status":200}`, http.StatusUnprocessableEntity),
		apiCall("markup as the method", `{"env":"sandbox","method":"<script>","path":"/v1","status":200}`, http.StatusUnprocessableEntity),
		apiCall("a path without a leading slash", `{"env":"sandbox","method":"GET","path":"v1/../../etc","status":200}`, http.StatusUnprocessableEntity),
		apiCall("request_id of 300 characters", `{"env":"sandbox","method":"GET","path":"/v1","status":200,"request_id":"`+strings.Repeat("r", 300)+`"}`, http.StatusUnprocessableEntity),
		apiCall("invalid UTF-8", "{\"env\":\"sandbox\",\"method\":\"GET\",\"path\":\"/v1\xff\",\"status\":200}", http.StatusBadRequest),
		apiCall("over 1 MiB", `{"env":"sandbox","method":"GET","path":"/v1","status":200,"error_message":"`+strings.Repeat("m", 1<<20)+`"}`, http.StatusRequestEntityTooLarge),
		apiCall("sent as text/xml", `{"env":"sandbox","method":"GET","path":"/v1","status":200}`, http.StatusBadRequest).typed("text/xml"),
		api("a token without events:write", "POST", "/api/v1/api-calls", tokConfig, `{"env":"sandbox","method":"GET","path":"/v1","status":200}`, http.StatusForbidden),
		apiCall("SQL and markup in every text field", `{"env":"sandbox","method":"GET","path":"/v1/'; DROP TABLE events; --","status":500,"request_id":"<script>r</script>","error_code":"' OR 1=1 --","error_message":"<img src=x onerror=alert(1)>","user_id":"u'); DELETE FROM users; --"}`, http.StatusCreated).because("reported text is data: stored as sent (bound, never spliced into SQL), rendered escaped").changing(map[string]int{"events": 1, "event_counts": anyRows}),
	)
	add("GET /api/v1/environments",
		api("a token without config:read", "GET", "/api/v1/environments", tokDecide, "", http.StatusForbidden),
		api("POST", "POST", "/api/v1/environments", tokAdmin, `{}`, http.StatusMethodNotAllowed),
	)
	add("GET /api/v1/environments/{env}",
		api("unknown environment", "GET", "/api/v1/environments/mars", tokConfig, "", http.StatusNotFound),
		api("encoded dot segments", "GET", "/api/v1/environments/%2e%2e", tokConfig, "", http.StatusNotFound),
		api("environment with an encoded NUL", "GET", "/api/v1/environments/sandbox%00", tokConfig, "", http.StatusNotFound),
		api("environment of 5,000 characters", "GET", "/api/v1/environments/"+strings.Repeat("s", 5000), tokConfig, "", http.StatusNotFound),
	)
	add("GET /api/v1/environments/{env}/config",
		api("unknown environment", "GET", "/api/v1/environments/PRODUCTION/config", tokConfig, "", http.StatusNotFound),
	)
	patch := func(name, body string, want int) hostile {
		return api(name, "PATCH", "/api/v1/environments/production", tokAdmin, body, want)
	}
	add("PATCH /api/v1/environments/{env}",
		patch("not JSON", `{"base_url":`, http.StatusBadRequest),
		patch("10,001 nested arrays", nested(10001, true), http.StatusBadRequest),
		patch("a JSON array", `[{"base_url":"https://a.example"}]`, http.StatusBadRequest),
		patch("null", `null`, http.StatusBadRequest),
		patch("an empty object", `{}`, http.StatusBadRequest),
		patch("base_url is a number", `{"base_url":5}`, http.StatusUnprocessableEntity),
		patch("callback_url is an object", `{"callback_url":{}}`, http.StatusUnprocessableEntity),
		patch("app_url is an array", `{"app_url":["https://a.example"]}`, http.StatusUnprocessableEntity),
		patch("replay_url is true", `{"replay_url":true}`, http.StatusUnprocessableEntity),
		patch("allowed_origins is a string", `{"allowed_origins":"https://a.example"}`, http.StatusUnprocessableEntity),
		patch("allowed_origins holds a number", `{"allowed_origins":[5]}`, http.StatusUnprocessableEntity),
		patch("client_token is a number", `{"client_token":5}`, http.StatusUnprocessableEntity),
		patch("public_key is an object", `{"public_key":{}}`, http.StatusUnprocessableEntity),
		patch("secret_key is an array", `{"secret_key":[]}`, http.StatusUnprocessableEntity),
		patch("keep_previous is a number", `{"secret_key":"sk_live_`+strings.Repeat("c", 32)+`","keep_previous":24}`, http.StatusUnprocessableEntity),
		patch("keep_previous is not a duration", `{"secret_key":"sk_live_`+strings.Repeat("c", 32)+`","keep_previous":"a day"}`, http.StatusUnprocessableEntity),
		patch("an unknown field", `{"base_url":"https://a.example","admin":true}`, http.StatusUnprocessableEntity),
		patch("a field twice, the second bad", `{"base_url":"https://a.example","base_url":"javascript:alert(1)"}`, http.StatusUnprocessableEntity),
		patch("base_url with markup", `{"base_url":"https://a.example/`+markup+`"}`, http.StatusUnprocessableEntity),
		patch("base_url is javascript:", `{"base_url":"javascript:alert(1)"}`, http.StatusUnprocessableEntity),
		patch("base_url with SQL", `{"base_url":"`+sqlText+`"}`, http.StatusUnprocessableEntity),
		patch("base_url over http in production", `{"base_url":"http://api.tensfer.example"}`, http.StatusUnprocessableEntity),
		patch("base_url pointing inside", `{"base_url":"https://169.254.169.254/latest"}`, http.StatusUnprocessableEntity),
		patch("an origin with markup", `{"allowed_origins":["<script>"]}`, http.StatusUnprocessableEntity),
		patch("a key cleared", `{"secret_key":""}`, http.StatusUnprocessableEntity),
		patch("a key with control characters", `{"secret_key":"sk_live_\u0000\r\n"}`, http.StatusUnprocessableEntity),
		patch("a key of 10,000 characters", `{"secret_key":"sk_live_`+strings.Repeat("k", 10000)+`"}`, http.StatusUnprocessableEntity),
		patch("invalid UTF-8", "{\"base_url\":\"https://a.example/\xff\"}", http.StatusBadRequest),
		patch("sent as form data", "base_url=https://a.example", http.StatusBadRequest).typed("application/x-www-form-urlencoded"),
		api("unknown environment", "PATCH", "/api/v1/environments/staging", tokAdmin, `{"base_url":"https://a.example"}`, http.StatusNotFound),
		api("a token without admin", "PATCH", "/api/v1/environments/production", tokConfig, `{"base_url":"https://a.example"}`, http.StatusForbidden),
		api("over 1 MiB", "PATCH", "/api/v1/environments/production", tokAdmin, `{"base_url":"https://a.example/`+strings.Repeat("a", 1<<20)+`"}`, http.StatusRequestEntityTooLarge),
	)
	add("POST /api/v1/environments/{env}/verify",
		api("unknown environment", "POST", "/api/v1/environments/mars/verify", tokAdmin, "", http.StatusNotFound),
		api("environment with markup", "POST", "/api/v1/environments/%3Cscript%3E/verify", tokAdmin, "", http.StatusNotFound),
	)
	add("POST /api/v1/environments/{env}/webhook-secrets",
		api("a secret that is not whsec_", "POST", "/api/v1/environments/production/webhook-secrets", tokAdmin, `{"secret":"hunter2"}`, http.StatusUnprocessableEntity),
		api("a secret that is a number", "POST", "/api/v1/environments/production/webhook-secrets", tokAdmin, `{"secret":5}`, http.StatusUnprocessableEntity),
		api("a secret with markup", "POST", "/api/v1/environments/production/webhook-secrets", tokAdmin, `{"secret":"whsec_<script>"}`, http.StatusUnprocessableEntity),
		api("expires_in is negative", "POST", "/api/v1/environments/production/webhook-secrets", tokAdmin, `{"expires_in":"-5m"}`, http.StatusUnprocessableEntity),
		api("expires_in is a number", "POST", "/api/v1/environments/production/webhook-secrets", tokAdmin, `{"expires_in":300}`, http.StatusUnprocessableEntity),
		api("not JSON", "POST", "/api/v1/environments/production/webhook-secrets", tokAdmin, `{"secret"`, http.StatusBadRequest),
		api("an unknown field", "POST", "/api/v1/environments/production/webhook-secrets", tokAdmin, `{"secret_key":"whsec_x"}`, http.StatusUnprocessableEntity),
		api("unknown environment", "POST", "/api/v1/environments/mars/webhook-secrets", tokAdmin, `{}`, http.StatusNotFound),
	)
	add("DELETE /api/v1/environments/{env}/webhook-secrets/{id}",
		api("a secret nobody has", "DELETE", "/api/v1/environments/production/webhook-secrets/whs_nope", tokAdmin, "", http.StatusNotFound),
		api("an id with SQL", "DELETE", "/api/v1/environments/production/webhook-secrets/%27%20OR%201%3D1%20--", tokAdmin, "", http.StatusNotFound),
		api("an id of 5,000 characters", "DELETE", "/api/v1/environments/production/webhook-secrets/"+strings.Repeat("w", 5000), tokAdmin, "", http.StatusNotFound),
		api("unknown environment", "DELETE", "/api/v1/environments/mars/webhook-secrets/whs_x", tokAdmin, "", http.StatusNotFound),
	)
	add("GET /api/v1/audit",
		api("limit 0", "GET", "/api/v1/audit?limit=0", tokAdmin, "", http.StatusBadRequest, "limit"),
		api("cursor is text", "GET", "/api/v1/audit?cursor=newest", tokAdmin, "", http.StatusBadRequest),
		api("a token without admin", "GET", "/api/v1/audit", tokEvents, "", http.StatusForbidden),
	)
	add("GET /api/v1/rollout",
		api("a token without rollout:decide", "GET", "/api/v1/rollout", tokConfig, "", http.StatusForbidden),
	)
	put := func(name, body string, want int) hostile {
		return api(name, "PUT", "/api/v1/rollout", tokAdmin, body, want)
	}
	add("PUT /api/v1/rollout",
		put("not JSON", `{"stages":`, http.StatusBadRequest),
		put("10,000 unclosed [", nested(10000, false), http.StatusBadRequest),
		put("stages is a string", `{"stages":"1,5,25"}`, http.StatusUnprocessableEntity),
		put("a percent as a string", `{"stages":[{"percent":"5"}]}`, http.StatusUnprocessableEntity),
		put("a percent of 500", `{"stages":[{"percent":500}]}`, http.StatusUnprocessableEntity),
		put("a negative percent", `{"stages":[{"percent":-5}]}`, http.StatusUnprocessableEntity),
		put("percents that go down", `{"stages":[{"percent":50},{"percent":5}]}`, http.StatusUnprocessableEntity),
		put("a soak that is not a duration", `{"stages":[{"percent":5,"min_soak":"a while"}]}`, http.StatusUnprocessableEntity),
		put("auto_advance is a string", `{"auto_advance":"yes"}`, http.StatusUnprocessableEntity),
		put("on_breach unknown", `{"on_breach":"explode"}`, http.StatusUnprocessableEntity),
		put("a guardrail signal that is a number", `{"guardrails":[{"signal":5}]}`, http.StatusUnprocessableEntity),
		put("an unknown guardrail signal", `{"guardrails":[{"signal":"'; DROP TABLE rollout; --","max_rate":0.1,"min_volume":10,"window":"1h"}]}`, http.StatusUnprocessableEntity),
		put("version is negative", `{"version":-1,"auto_advance":false}`, http.StatusBadRequest),
		put("a stale version", `{"version":1,"auto_advance":false}`, http.StatusConflict),
		put("an unknown field", `{"stage":5}`, http.StatusUnprocessableEntity),
		put("If-Match is not a version", `{"auto_advance":false}`, http.StatusBadRequest).with("If-Match", `"<script>"`),
		put("If-Match and version disagree", fmt.Sprintf(`{"version":%d,"auto_advance":false}`, h.version), http.StatusBadRequest).with("If-Match", `"1"`),
		api("a token without admin", "PUT", "/api/v1/rollout", tokDecide, `{"auto_advance":false}`, http.StatusForbidden),
	)
	add("POST /api/v1/rollout/{action}",
		api("unknown action", "POST", "/api/v1/rollout/explode", tokAdmin, "", http.StatusNotFound, "explode"),
		api("action of 5,000 characters", "POST", "/api/v1/rollout/"+strings.Repeat("a", 5000), tokAdmin, "", http.StatusNotFound),
		api("not JSON", "POST", "/api/v1/rollout/pause", tokAdmin, `{"version"`, http.StatusBadRequest),
		api("version is a string", "POST", "/api/v1/rollout/pause", tokAdmin, `{"version":"7"}`, http.StatusUnprocessableEntity),
		api("a stale version", "POST", "/api/v1/rollout/advance", tokAdmin, `{"version":1}`, http.StatusConflict),
		api("a stale If-Match", "POST", "/api/v1/rollout/advance", tokAdmin, "", http.StatusConflict).with("If-Match", `W/"1"`),
		api("an unknown field", "POST", "/api/v1/rollout/pause", tokAdmin, `{"force":true}`, http.StatusUnprocessableEntity),
		api("a token without rollout:write", "POST", "/api/v1/rollout/kill", tokDecide, "", http.StatusForbidden),
	)
	add("POST /api/v1/rollout/revive",
		api("no stage", "POST", "/api/v1/rollout/revive", tokAdmin, `{}`, http.StatusUnprocessableEntity, "stage"),
		api("stage is a string", "POST", "/api/v1/rollout/revive", tokAdmin, `{"stage":"1"}`, http.StatusUnprocessableEntity),
		api("a negative stage", "POST", "/api/v1/rollout/revive", tokAdmin, `{"stage":-1}`, 0),
		api("stage overflows int", "POST", "/api/v1/rollout/revive", tokAdmin, `{"stage":`+huge+`}`, http.StatusUnprocessableEntity),
	)
	add("GET /api/v1/rollout/decide",
		api("no user_id", "GET", "/api/v1/rollout/decide", tokDecide, "", http.StatusBadRequest, "user_id"),
		api("user_id of 1,000 bytes", "GET", "/api/v1/rollout/decide?user_id="+strings.Repeat("u", 1000), tokDecide, "", http.StatusBadRequest),
		api("include unknown", "GET", "/api/v1/rollout/decide?user_id=u&include=secrets", tokDecide, "", http.StatusBadRequest, "include"),
		api("user_id empty, then set", "GET", "/api/v1/rollout/decide?user_id=&user_id=u", tokDecide, "", http.StatusBadRequest),
		api("control characters in user_id", "GET", "/api/v1/rollout/decide?user_id=a%00%0D%0A", tokDecide, "", http.StatusOK).because("a decision is a read, and its answer is encoded (see TestRolloutDecide)"),
		api("invalid UTF-8 in user_id", "GET", "/api/v1/rollout/decide?user_id=a%ff", tokDecide, "", http.StatusBadRequest, "UTF-8").because("another implementation would hash other bytes: it cannot be decided faithfully"),
	)
	decide := func(name, body string, want int) hostile {
		return api(name, "POST", "/api/v1/rollout/decide", tokDecide, body, want)
	}
	add("POST /api/v1/rollout/decide",
		decide("not JSON", `{"users":[`, http.StatusBadRequest),
		decide("users is a string", `{"users":"u1"}`, http.StatusUnprocessableEntity),
		decide("no users", `{"users":[]}`, http.StatusUnprocessableEntity),
		decide("1,001 users", `{"users":[`+strings.TrimSuffix(strings.Repeat(`{"id":"u"},`, 1001), ",")+`]}`, http.StatusUnprocessableEntity),
		decide("an id that is a number", `{"users":[{"id":5}]}`, http.StatusUnprocessableEntity),
		decide("an empty id", `{"users":[{"id":""}]}`, http.StatusUnprocessableEntity),
		decide("an attribute that is a number", `{"users":[{"id":"u","attributes":{"age":5}}]}`, http.StatusUnprocessableEntity),
		decide("attributes nested 10,001 deep", `{"users":[{"id":"u","attributes":`+strings.Repeat(`{"a":`, 10001)+`"x"`+strings.Repeat("}", 10001)+`}]}`, http.StatusBadRequest),
		decide("an unknown field", `{"users":[{"id":"u"}],"all":true}`, http.StatusUnprocessableEntity),
		decide("invalid UTF-8", "{\"users\":[{\"id\":\"u\xff\"}]}", http.StatusBadRequest),
		api("include unknown", "POST", "/api/v1/rollout/decide?include=everything", tokDecide, `{"users":[{"id":"u"}]}`, http.StatusBadRequest),
	)
	add("GET /api/v1/rollout/cohorts",
		api("a token without rollout:decide", "GET", "/api/v1/rollout/cohorts", tokEvents, "", http.StatusForbidden),
	)
	add("GET /api/v1/rollout/cohorts/deleted",
		api("a token without admin", "GET", "/api/v1/rollout/cohorts/deleted", tokEvents, "", http.StatusForbidden),
	)
	add("POST /api/v1/rollout/cohorts/deleted/{id}/restore",
		api("a deletion nobody made", "POST", "/api/v1/rollout/cohorts/deleted/987654/restore", tokAdmin, "", http.StatusNotFound),
		api("id is text", "POST", "/api/v1/rollout/cohorts/deleted/abc/restore", tokAdmin, "", http.StatusNotFound),
	)
	cohort := func(name, body string, want int) hostile {
		return api(name, "POST", "/api/v1/rollout/cohorts", tokAdmin, body, want)
	}
	add("POST /api/v1/rollout/cohorts",
		cohort("not JSON", `{"name":`, http.StatusBadRequest),
		cohort("name is a number", `{"name":5,"environment":"production","user_ids":["u"]}`, http.StatusUnprocessableEntity),
		cohort("environment is an array", `{"name":"c","environment":["production"],"user_ids":["u"]}`, http.StatusUnprocessableEntity),
		cohort("user_ids is a string", `{"name":"c","environment":"production","user_ids":"u1,u2"}`, http.StatusUnprocessableEntity),
		cohort("user_ids holds a number", `{"name":"c","environment":"production","user_ids":[5]}`, http.StatusUnprocessableEntity),
		cohort("rules is an object", `{"name":"c","environment":"production","rules":{}}`, http.StatusUnprocessableEntity),
		cohort("a rule's values is a string", `{"name":"c","environment":"production","rules":[{"attribute":"a","op":"in","values":"x"}]}`, http.StatusUnprocessableEntity),
		cohort("an unknown environment", `{"name":"c","environment":"staging","user_ids":["u"]}`, http.StatusUnprocessableEntity),
		cohort("an unknown op", `{"name":"c","environment":"production","rules":[{"attribute":"a","op":"like","values":["x"]}]}`, http.StatusUnprocessableEntity),
		cohort("both user_ids and rules", `{"name":"c","environment":"production","user_ids":["u"],"rules":[{"attribute":"a","op":"eq","values":["x"]}]}`, http.StatusUnprocessableEntity),
		cohort("no name", `{"environment":"production","user_ids":["u"]}`, http.StatusUnprocessableEntity),
		cohort("a name taken already", `{"name":"hostile-list","environment":"production","user_ids":["u"]}`, http.StatusUnprocessableEntity),
		cohort("invalid UTF-8 in the name", "{\"name\":\"c\xff\",\"environment\":\"production\",\"user_ids\":[\"u\"]}", http.StatusBadRequest),
	)
	add("PUT /api/v1/rollout/cohorts/order",
		api("ids that are text", "PUT", "/api/v1/rollout/cohorts/order", tokAdmin, `{"ids":["first"]}`, http.StatusUnprocessableEntity),
		api("ids that are numbers", "PUT", "/api/v1/rollout/cohorts/order", tokAdmin, `{"ids":[1,2]}`, http.StatusUnprocessableEntity),
		api("ids nobody has", "PUT", "/api/v1/rollout/cohorts/order", tokAdmin, `{"ids":["987654","987655"]}`, 0),
		api("the same id twice", "PUT", "/api/v1/rollout/cohorts/order", tokAdmin, `{"ids":["`+list+`","`+list+`"]}`, 0),
		api("ids is null", "PUT", "/api/v1/rollout/cohorts/order", tokAdmin, `{"ids":null}`, 0),
	)
	add("PATCH /api/v1/rollout/cohorts/{id}",
		api("id 0", "PATCH", "/api/v1/rollout/cohorts/0", tokAdmin, `{"name":"x"}`, http.StatusNotFound),
		api("id is text", "PATCH", "/api/v1/rollout/cohorts/first", tokAdmin, `{"name":"x"}`, http.StatusNotFound),
		api("a cohort nobody has", "PATCH", "/api/v1/rollout/cohorts/987654", tokAdmin, `{"name":"x"}`, http.StatusNotFound),
		api("name is a number", "PATCH", "/api/v1/rollout/cohorts/"+list, tokAdmin, `{"name":5}`, http.StatusUnprocessableEntity),
		api("an unknown environment", "PATCH", "/api/v1/rollout/cohorts/"+list, tokAdmin, `{"environment":"mars"}`, http.StatusUnprocessableEntity),
		api("a name taken already", "PATCH", "/api/v1/rollout/cohorts/"+list, tokAdmin, `{"name":"hostile-rules"}`, http.StatusUnprocessableEntity),
	)
	add("DELETE /api/v1/rollout/cohorts/{id}",
		api("a cohort nobody has", "DELETE", "/api/v1/rollout/cohorts/987654", tokAdmin, "", http.StatusNotFound),
		api("negative id", "DELETE", "/api/v1/rollout/cohorts/-1", tokAdmin, "", http.StatusNotFound),
		api("id overflows int64", "DELETE", "/api/v1/rollout/cohorts/"+huge, tokAdmin, "", http.StatusNotFound),
		api("a stale If-Match", "DELETE", "/api/v1/rollout/cohorts/"+list, tokAdmin, "", http.StatusConflict).with("If-Match", `"1"`),
	)
	add("GET /api/v1/rollout/cohorts/{id}/members",
		api("a cohort nobody has", "GET", "/api/v1/rollout/cohorts/987654/members", tokAdmin, "", http.StatusNotFound),
		api("id with encoded dot segments", "GET", "/api/v1/rollout/cohorts/%2e%2e/members", tokAdmin, "", http.StatusNotFound),
	)
	members := func(name, path, body string, want int, says ...string) hostile {
		c := api(name, "PUT", path, tokAdmin, body, want, says...)
		c.ctype = "text/plain"
		return c
	}
	add("PUT /api/v1/rollout/cohorts/{id}/members",
		members("a cohort nobody has", "/api/v1/rollout/cohorts/987654/members", "u1\n", http.StatusNotFound),
		members("a rule cohort", "/api/v1/rollout/cohorts/"+rules+"/members", "u1\n", 0),
		members("invalid UTF-8 ids", "/api/v1/rollout/cohorts/"+list+"/members", "u1\n\xff\xfe\n", 0),
		members("an id of 1,000 bytes", "/api/v1/rollout/cohorts/"+list+"/members", strings.Repeat("i", 1000)+"\n", 0),
		members("a line of 70 KiB", "/api/v1/rollout/cohorts/"+list+"/members", "u1\n"+strings.Repeat("i", 70<<10)+"\n", http.StatusBadRequest, "longer than 64 KiB"),
		members("a stale If-Match", "/api/v1/rollout/cohorts/"+list+"/members", "u1\n", http.StatusConflict).with("If-Match", `"1"`),
	)
	return groups
}

// sessionCookie is the Cookie header of a signed-in client.
func (h *hostileApp) sessionCookie(w who) string {
	u, _ := url.Parse(h.url)
	var out []string
	for _, ck := range h.clients[w].hc.Jar.Cookies(u) {
		out = append(out, ck.String())
	}
	return strings.Join(out, "; ")
}

// rollout is the rollout as the API shows it.
func (h *hostileApp) rollout() rolloutJSON {
	return h.showRollout(h.t, h.tokens[tokAdmin])
}

func TestHostileInputs(t *testing.T) {
	h := newHostileApp(t)
	groups := h.hostileCases()
	total := 0
	for route, cases := range groups {
		if _, ok := routeAccess[route]; !ok {
			t.Errorf("group %q is not a route of the router (see routeAccess)", route)
		}
		total += len(cases)
	}
	for route := range routeAccess {
		if _, ok := groups[route]; !ok && route != "GET /static/*" {
			t.Errorf("no hostile request for %s", route)
		}
	}
	if total < 200 {
		t.Errorf("the table has %d requests; the issue asks for at least 200", total)
	}
	t.Logf("%d hostile requests across %d routes", total, len(groups))
	routes := make([]string, 0, len(groups))
	for route := range groups {
		routes = append(routes, route)
	}
	sort.Strings(routes)
	for _, route := range routes {
		t.Run(route, func(t *testing.T) {
			for _, c := range groups[route] {
				t.Run(c.name, func(t *testing.T) { h.check(t, c) })
			}
		})
	}
}

// check sends one hostile request and checks its answer and what it left stored.
func (h *hostileApp) check(t *testing.T, c hostile) {
	cl := h.client()
	if c.as == freshAdmin {
		cl, _ = h.login(db.RoleAdmin)
	} else if signedIn, ok := h.clients[c.as]; ok {
		cl = signedIn
	}
	before := h.stored(t)
	var rejectedBefore int64
	h.db.R.QueryRow("SELECT coalesce(max(id), 0) FROM rejected_deliveries").Scan(&rejectedBefore)

	res := h.send(t, cl, c)

	// The answer.
	switch {
	case c.accepted != "":
		if res.StatusCode != c.want {
			t.Fatalf("status %d, want %d (%s): %.300s", res.StatusCode, c.want, c.accepted, res.body)
		}
	case c.flash:
		if res.StatusCode != http.StatusSeeOther {
			t.Fatalf("status %d, want 303 with an error flash: %.300s", res.StatusCode, res.body)
		}
		kind, msg := flashOf(res.Response)
		if kind != "err" || len(msg) < 10 {
			t.Fatalf("redirect flash %q %q, want an error message", kind, msg)
		}
		if c.says != "" && !strings.Contains(strings.ToLower(msg), strings.ToLower(c.says)) {
			t.Errorf("flash %q does not say %q", msg, c.says)
		}
	default:
		if c.want != 0 && res.StatusCode != c.want || res.StatusCode < 400 || res.StatusCode > 499 {
			t.Fatalf("status %d, want %s: %.400s", res.StatusCode, wantText(c.want), res.body)
		}
		msg := problemMessage(t, res, c.raw != "")
		if len(msg) < 8 {
			t.Fatalf("status %d with no message a person can act on: %.400s", res.StatusCode, res.body)
		}
		if c.says != "" && !strings.Contains(strings.ToLower(msg), strings.ToLower(c.says)) {
			t.Errorf("message %q does not say %q", msg, c.says)
		}
	}
	if c.raw == "" && res.Header.Get("X-Request-Id") == "" && res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Error("no X-Request-Id on the answer")
	}
	if c.never != "" && strings.Contains(res.body, c.never) {
		t.Errorf("the answer contains %q: %.300s", c.never, res.body)
	}

	// What is stored.
	after := h.stored(t)
	allowed := map[string]int{}
	for k, v := range c.changes {
		allowed[k] = v
	}
	refusable := c.accepted == "" && (c.refusal != "" || strings.HasPrefix(c.path, "/hooks/"))
	if refusable {
		allowed["rejected_deliveries"] = anyRows
	}
	for table := range union(before, after) {
		b, a := before[table], after[table]
		_, ok := allowed[table]
		if _, seq := allowed[strings.TrimPrefix(table, "sqlite_sequence:")]; b != a && !ok && !seq {
			t.Errorf("%s changed: %d rows -> %d rows (nothing may change)", table, b.rows, a.rows)
		}
	}
	for table, delta := range allowed {
		if delta != anyRows && after[table].rows-before[table].rows != delta {
			t.Errorf("%s: %d rows -> %d, want %+d", table, before[table].rows, after[table].rows, delta)
		}
	}
	// A refused webhook leaves at most one record, with the reason that was answered.
	var kept []string
	rows, err := h.db.R.Query("SELECT reason FROM rejected_deliveries WHERE id > ?", rejectedBefore)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var reason string
		rows.Scan(&reason)
		kept = append(kept, reason)
	}
	rows.Close()
	switch {
	case len(kept) > 1:
		t.Errorf("%d refused-delivery records for one request: %v", len(kept), kept)
	case len(kept) == 1 && !refusable:
		t.Errorf("a refused-delivery record (%s) for a request that is not a refused webhook", kept[0])
	case len(kept) == 1 && c.refusal != "" && kept[0] != c.refusal:
		t.Errorf("refused delivery kept as %q, want %q", kept[0], c.refusal)
	}
}

func wantText(want int) string {
	if want == 0 {
		return "a 4xx"
	}
	return fmt.Sprint(want)
}

func union(a, b dbSnapshot) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// send makes the request of c over loopback, with the target exactly as written.
func (h *hostileApp) send(t *testing.T, cl *client, c hostile) response {
	t.Helper()
	if c.raw != "" {
		conn, err := net.Dial("tcp", strings.TrimPrefix(h.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(conn, c.raw); err != nil {
			t.Fatal(err)
		}
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("no HTTP answer to a raw request: %v", err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return response{Response: res, body: string(b)}
	}
	method := c.method
	if method == "" {
		method = http.MethodGet
	}
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	req, err := http.NewRequest(method, h.url+"/", body)
	if err != nil {
		t.Fatal(err)
	}
	target, query, _ := strings.Cut(c.path, "?")
	if strings.HasPrefix(target, "//") {
		req.URL.Path, req.URL.RawPath = target, target
	} else {
		req.URL.Opaque = target
	}
	req.URL.RawQuery = query
	if c.ctype != "" {
		req.Header.Set("Content-Type", c.ctype)
	}
	if tok, ok := h.tokens[c.as]; ok {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for i := 0; i+1 < len(c.header); i += 2 {
		req.Header.Add(c.header[i], c.header[i+1])
	}
	return cl.do(req)
}

// flashOf reads the flash message an answer sets.
func flashOf(res *http.Response) (kind, msg string) {
	for _, ck := range res.Cookies() {
		if ck.Name == flashCookie {
			v, _ := url.QueryUnescape(ck.Value)
			kind, msg, _ = strings.Cut(v, "|")
		}
	}
	return kind, msg
}

// problemMessage finds the message of an error answer: the JSON error's message (or OFREP's
// errorDetails, or the fields of a 422), the error page's text, a form's field errors, or for
// net/http's own refusals its one line of text.
func problemMessage(t *testing.T, res response, plain bool) string {
	t.Helper()
	ct := res.Header.Get("Content-Type")
	switch {
	case strings.HasPrefix(ct, "application/json"):
		var out struct {
			Error *struct {
				Code      string            `json:"code"`
				Message   string            `json:"message"`
				RequestID string            `json:"request_id"`
				Fields    map[string]string `json:"fields"`
			} `json:"error"`
			ErrorCode    string `json:"errorCode"`
			ErrorDetails string `json:"errorDetails"`
		}
		if err := json.Unmarshal([]byte(res.body), &out); err != nil {
			t.Fatalf("the error is not JSON: %v: %.300s", err, res.body)
		}
		if out.Error != nil {
			if out.Error.RequestID != res.Header.Get("X-Request-Id") || out.Error.Code == "" {
				t.Errorf("error without its code or request id: %.300s", res.body)
			}
			return out.Error.Message
		}
		if out.ErrorCode == "" {
			t.Errorf("OFREP error without errorCode: %.300s", res.body)
		}
		return out.ErrorDetails
	case strings.HasPrefix(ct, "text/html"):
		doc, err := goquery.NewDocumentFromReader(strings.NewReader(res.body))
		if err != nil {
			t.Fatal(err)
		}
		for _, sel := range []string{`[data-testid="error-page"] h1 + p`, ".field-error", `[data-testid="login-error"]`, ".flash-err", ".notice-err", `[role="alert"]`} {
			if s := strings.TrimSpace(doc.Find(sel).First().Text()); s != "" {
				return s
			}
		}
		return ""
	case plain || strings.HasPrefix(ct, "text/plain"):
		return strings.TrimSpace(res.body)
	}
	t.Errorf("error answer of type %q", ct)
	return ""
}

// stored is what the database holds now. A snapshot reads and hashes every table, so it is
// taken again only when some other connection has committed since the last one: SQLite's
// data_version, asked on one connection, changes exactly then.
func (h *hostileApp) stored(t *testing.T) dbSnapshot {
	t.Helper()
	if h.watch == nil {
		conn, err := h.db.R.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		h.watch = conn
		h.t.Cleanup(func() { conn.Close() })
	}
	// On PostgreSQL the cluster's write-ahead log position moves with every commit (of any
	// database: a snapshot taken more often than needed, never less).
	watch := "PRAGMA data_version"
	if h.db.Postgres() {
		watch = "SELECT pg_current_wal_insert_lsn() - '0/0'"
	}
	var v int64
	if err := h.watch.QueryRowContext(context.Background(), watch).Scan(&v); err != nil {
		t.Fatal(err)
	}
	if h.snap == nil || v != h.seen {
		h.snap, h.seen = snapshotDB(t, h.db), v
	}
	return h.snap
}

// dbSnapshot is every table's row count and a checksum of its rows (in any order), so a test
// can tell that a request changed nothing stored. sqlite_sequence is split per table
// ("sqlite_sequence:events"), so an insert rolled back still shows where it happened.
type dbSnapshot map[string]tableState

type tableState struct {
	rows int
	sum  [32]byte
}

// touchColumns are refreshed by reads on purpose (when a session or token was last used, when
// a secret last matched) and say nothing about the data: they are left out of the checksums.
var touchColumns = map[string]bool{
	"sessions.last_seen_at":           true,
	"api_tokens.last_used_at":         true,
	"webhook_secrets.last_matched_at": true,
	"users.last_login_at":             true,
}

// attemptTables count attempts on purpose (the login lockout, re-check budgets): a refused
// request is meant to change them, so they are left out of snapshots.
var attemptTables = map[string]bool{"login_counters": true, "rate_buckets": true}

func snapshotDB(t *testing.T, d *db.DB) dbSnapshot {
	t.Helper()
	out := dbSnapshot{}
	for _, table := range dbtest.Tables(t, d) {
		if attemptTables[table] {
			continue
		}
		sums := map[string][][32]byte{}
		dbtest.EachRow(t, d, table, func(cols []string, vals []any) {
			key := table
			hsh := sha256.New()
			for i, col := range cols {
				if touchColumns[table+"."+col] {
					continue
				}
				if table == "sqlite_sequence" && col == "name" {
					key = "sqlite_sequence:" + fmt.Sprint(asText(vals[i]))
				}
				fmt.Fprintf(hsh, "%s=%T:%s\x00", col, vals[i], asText(vals[i]))
			}
			sums[key] = append(sums[key], [32]byte(hsh.Sum(nil)))
		})
		if _, ok := sums[table]; !ok && table != "sqlite_sequence" {
			sums[table] = nil
		}
		for key, rs := range sums {
			slices.SortFunc(rs, func(a, b [32]byte) int { return bytes.Compare(a[:], b[:]) })
			all := sha256.New()
			for _, r := range rs {
				all.Write(r[:])
			}
			out[key] = tableState{rows: len(rs), sum: [32]byte(all.Sum(nil))}
		}
	}
	return out
}

func asText(v any) string {
	if b, ok := v.([]byte); ok {
		return string(b)
	}
	return fmt.Sprint(v)
}
