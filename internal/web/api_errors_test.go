package web

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
)

// TestAPIRefusalsCarryTheirChallenge: every 401 of the API and OFREP says how to authenticate
// (WWW-Authenticate: Bearer, with RFC 6750's error code when a token was sent but is no good),
// and a 403 for a missing scope names the scope in the same header.
func TestAPIRefusalsCarryTheirChallenge(t *testing.T) {
	app := newTestApp(t)
	events := app.addToken("events", auth.ScopeEventsRead)
	secret, prefix := auth.NewToken()
	if _, err := app.db.InsertToken(context.Background(), secret, db.Token{Name: "old", Prefix: prefix, Scopes: []string{auth.ScopeAdmin},
		CreatedBy: "test", ExpiresAt: time.Now().Add(-time.Minute)}, db.Audit{Actor: "test", Action: "token.create"}); err != nil {
		t.Fatal(err)
	}
	const realm = `Bearer realm="tensfer-dashboard"`
	for _, c := range []struct {
		name, method, path, auth string
		status                   int
		challenge                string
	}{
		{"no Authorization", "GET", "/api/v1/whoami", "", 401, realm},
		{"Basic credentials", "GET", "/api/v1/whoami", "Basic YWRtaW46YWRtaW4=", 401, realm},
		{"Bearer and nothing", "GET", "/api/v1/whoami", "Bearer ", 401, realm + `, error="invalid_request"`},
		{"an unknown token", "GET", "/api/v1/whoami", "Bearer tfd_wrong", 401, realm + `, error="invalid_token"`},
		{"an expired token", "GET", "/api/v1/whoami", "Bearer " + secret, 401, realm + `, error="invalid_token"`},
		{"OFREP without a token", "POST", "/ofrep/v1/evaluate/flags", "", 401, realm},
		{"a 405 needs a token first", "DELETE", "/api/v1/whoami", "", 401, realm},
		{"a token without the scope", "GET", "/api/v1/audit", "Bearer " + events, 403, realm + `, error="insufficient_scope", scope="admin"`},
		{"include=config without config:read", "GET", "/api/v1/rollout/decide?user_id=u1&include=config", "Bearer " + app.addToken("decide", auth.ScopeRolloutDecide), 403,
			realm + `, error="insufficient_scope", scope="config:read"`},
		{"a good token", "GET", "/api/v1/whoami", "Bearer " + events, 200, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := app.api(c.method, c.path, "", nil, "Authorization", c.auth)
			if res.StatusCode != c.status || res.Header.Get("WWW-Authenticate") != c.challenge {
				t.Fatalf("%d WWW-Authenticate %q, want %d %q: %s", res.StatusCode, res.Header.Get("WWW-Authenticate"), c.status, c.challenge, res.body)
			}
		})
	}
}

// TestMethodNotAllowedListsAllow: a 405, from the API, public ingest or a page, lists in Allow
// the methods the router serves at that path, and says them in the message.
func TestMethodNotAllowedListsAllow(t *testing.T) {
	app := newTestApp(t)
	tok := app.addToken("admin", auth.ScopeAdmin)
	for _, c := range []struct{ method, path, allow string }{
		{"DELETE", "/api/v1/whoami", "GET"},
		{"PUT", "/api/v1/rollout/decide", "GET, POST"},
		{"PUT", "/api/v1/environments/sandbox", "GET, PATCH"},
		{"GET", "/api/v1/rollout/cohorts/order", "PUT, PATCH, DELETE"}, // "order" is also a cohort {id} to the router
		{"POST", "/api/v1/rollout/cohorts/7/members", "GET, PUT"},
		{"GET", "/ofrep/v1/evaluate/flags/tensfer-production", "POST"},
		{"GET", "/hooks/sandbox", "POST"},
		{"PUT", "/callbacks/production", "POST, OPTIONS"},
		{"DELETE", "/login", "GET, POST"},
	} {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			res := app.api(c.method, c.path, tok, nil)
			if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != c.allow {
				t.Fatalf("%d Allow %q, want 405 %q: %.300s", res.StatusCode, res.Header.Get("Allow"), c.allow, res.body)
			}
			if want := "use " + strings.ReplaceAll(c.allow, ", ", " or "); !strings.Contains(res.body, want) {
				t.Errorf("answer does not say %q: %.300s", want, res.body)
			}
		})
	}
}
