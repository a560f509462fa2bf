package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
	"github.com/go-chi/chi/v5"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
)

// routeAccess is who may call each route. It is written out by hand on purpose: a new route
// without a row here fails TestEveryRouteHasAnAccessRule, and a row whose rule the router does
// not enforce fails TestRouteAccessByRole.
var routeAccess = map[string]string{
	"GET /healthz":                      "public",
	"GET /readyz":                       "public",
	"GET /metrics":                      "scope:" + auth.ScopeMetricsRead,
	"GET /static/*":                     "public",
	"GET /login":                        "public",
	"POST /login":                       "public",
	"GET /setup":                        "public",
	"POST /setup":                       "public",
	"POST /logout":                      "public",
	"GET /":                             "viewer",
	"GET /environments":                 "viewer",
	"GET /go-live":                      "viewer",
	"GET /events":                       "viewer",
	"GET /lookup":                       "viewer",
	"GET /rollout":                      "viewer",
	"GET /settings":                     "viewer",
	"GET /settings/account":             "viewer",
	"POST /settings/account/password":   "viewer",
	"GET /audit":                        "operator",
	"POST /rollout/actions/{action}":    "operator",
	"POST /rollout/plan":                "admin",
	"POST /rollout/cohorts":             "admin",
	"POST /rollout/cohorts/{id}/delete": "admin",
	"POST /rollout/cohorts/{id}/import": "admin",
	"POST /rollout/cohorts/{id}/edit":   "admin",
	"POST /rollout/cohorts/{id}/move":   "admin",
	"POST /rollout/cohorts/deleted/{id}/restore":             "admin",
	"GET /rollout/cohorts/{id}/members":                      "admin",
	"POST /events/{id}/replay":                               "operator",
	"GET /events/replay":                                     "operator",
	"POST /events/replay":                                    "operator",
	"POST /environments/{env}/test-event":                    "operator",
	"POST /events/{id}/reverify":                             "operator",
	"GET /events/rejected":                                   "admin",
	"GET /events/stream":                                     "viewer",
	"GET /events/export":                                     "viewer",
	"GET /events/{id}":                                       "viewer",
	"GET /lookup/bundle":                                     "viewer",
	"POST /hooks/{env}":                                      "ingest",
	"POST /callbacks/{env}":                                  "ingest",
	"OPTIONS /callbacks/{env}":                               "ingest",
	"GET /callbacks/{env}/return":                            "ingest",
	"POST /environments/{env}/verify":                        "operator",
	"POST /environments/{env}":                               "admin",
	"POST /environments/{env}/keys":                          "admin",
	"POST /environments/{env}/keys/{id}/reveal":              "admin",
	"POST /environments/{env}/webhook-secrets":               "admin",
	"POST /environments/{env}/webhook-secrets/{id}/retire":   "admin",
	"POST /environments/{env}/beacon-key/rotate":             "admin",
	"GET /settings/users":                                    "admin",
	"POST /settings/users":                                   "admin",
	"POST /settings/users/{id}/role":                         "admin",
	"POST /settings/users/{id}/disable":                      "admin",
	"POST /settings/users/{id}/enable":                       "admin",
	"POST /settings/users/{id}/password":                     "admin",
	"POST /settings/users/{id}/sign-out":                     "admin",
	"GET /settings/tokens":                                   "admin",
	"POST /settings/tokens":                                  "admin",
	"POST /settings/tokens/{id}/revoke":                      "admin",
	"GET /settings/alerts":                                   "admin",
	"POST /settings/alerts":                                  "admin",
	"GET /settings/alerts/{id}":                              "admin",
	"POST /settings/alerts/{id}":                             "admin",
	"POST /settings/alerts/{id}/test":                        "admin",
	"POST /settings/alerts/{id}/delete":                      "admin",
	"GET /api/v1/alert-channels":                             "scope:" + auth.ScopeAdmin,
	"POST /api/v1/alert-channels":                            "scope:" + auth.ScopeAdmin,
	"GET /api/v1/alert-channels/{id}":                        "scope:" + auth.ScopeAdmin,
	"PATCH /api/v1/alert-channels/{id}":                      "scope:" + auth.ScopeAdmin,
	"DELETE /api/v1/alert-channels/{id}":                     "scope:" + auth.ScopeAdmin,
	"POST /api/v1/alert-channels/{id}/test":                  "scope:" + auth.ScopeAdmin,
	"GET /api/v1/whoami":                                     "token",
	"GET /api/v1/events":                                     "scope:" + auth.ScopeEventsRead,
	"GET /api/v1/events/{id}":                                "scope:" + auth.ScopeEventsRead,
	"GET /api/v1/lookup/{request_id}":                        "scope:" + auth.ScopeEventsRead,
	"POST /api/v1/api-calls":                                 "scope:" + auth.ScopeEventsWrite,
	"GET /api/v1/environments":                               "scope:" + auth.ScopeConfigRead,
	"GET /api/v1/environments/{env}":                         "scope:" + auth.ScopeConfigRead,
	"GET /api/v1/environments/{env}/config":                  "scope:" + auth.ScopeConfigRead,
	"PATCH /api/v1/environments/{env}":                       "scope:" + auth.ScopeAdmin,
	"POST /api/v1/environments/{env}/verify":                 "scope:" + auth.ScopeAdmin,
	"POST /api/v1/environments/{env}/webhook-secrets":        "scope:" + auth.ScopeAdmin,
	"DELETE /api/v1/environments/{env}/webhook-secrets/{id}": "scope:" + auth.ScopeAdmin,
	"GET /api/v1/audit":                                      "scope:" + auth.ScopeAdmin,
	"GET /api/v1/rollout":                                    "scope:" + auth.ScopeRolloutDecide,
	"PUT /api/v1/rollout":                                    "scope:" + auth.ScopeAdmin,
	"POST /api/v1/rollout/{action}":                          "scope:" + auth.ScopeRolloutWrite,
	"POST /api/v1/rollout/revive":                            "scope:" + auth.ScopeAdmin,
	"GET /api/v1/rollout/decide":                             "scope:" + auth.ScopeRolloutDecide,
	"POST /api/v1/rollout/decide":                            "scope:" + auth.ScopeRolloutDecide,
	"GET /api/v1/rollout/cohorts":                            "scope:" + auth.ScopeRolloutDecide,
	"POST /api/v1/rollout/cohorts":                           "scope:" + auth.ScopeAdmin,
	"PUT /api/v1/rollout/cohorts/order":                      "scope:" + auth.ScopeAdmin,
	"GET /api/v1/rollout/cohorts/deleted":                    "scope:" + auth.ScopeAdmin,
	"POST /api/v1/rollout/cohorts/deleted/{id}/restore":      "scope:" + auth.ScopeAdmin,
	"PATCH /api/v1/rollout/cohorts/{id}":                     "scope:" + auth.ScopeAdmin,
	"DELETE /api/v1/rollout/cohorts/{id}":                    "scope:" + auth.ScopeAdmin,
	"GET /api/v1/rollout/cohorts/{id}/members":               "scope:" + auth.ScopeAdmin,
	"PUT /api/v1/rollout/cohorts/{id}/members":               "scope:" + auth.ScopeAdmin,
	"POST /ofrep/v1/evaluate/flags":                          "scope:" + auth.ScopeRolloutDecide,
	"POST /ofrep/v1/evaluate/flags/{key}":                    "scope:" + auth.ScopeRolloutDecide,

	// Two-factor: the login's second step, the user's own set-up, an admin's reset and requirement.
	"GET /login/two-factor":                            "public",
	"POST /login/two-factor":                           "public",
	"GET /settings/account/two-factor":                 "viewer",
	"POST /settings/account/two-factor/setup":          "viewer",
	"POST /settings/account/two-factor/confirm":        "viewer",
	"POST /settings/account/two-factor/recovery-codes": "viewer",
	"POST /settings/account/two-factor/disable":        "viewer",
	"POST /settings/users/{id}/two-factor/reset":       "admin",
	"POST /settings/users/two-factor":                  "admin",
}

func registeredRoutes(t *testing.T, s *Server) []string {
	t.Helper()
	var out []string
	err := chi.Walk(s.routes(), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		route = strings.ReplaceAll(route, "/*/", "/")
		out = append(out, method+" "+route)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func TestEveryRouteHasAnAccessRule(t *testing.T) {
	app := newTestApp(t)
	seen := map[string]bool{}
	for _, r := range registeredRoutes(t, app.srv) {
		seen[r] = true
		if _, ok := routeAccess[r]; !ok {
			t.Errorf("route %s has no row in routeAccess: say who may call it", r)
		}
	}
	for r := range routeAccess {
		if !seen[r] {
			t.Errorf("routeAccess has %s, which the router does not register", r)
		}
	}
}

// fillPath replaces {id} with a fresh target so allowed mutations have something to act on.
func fillPath(t *testing.T, app *testApp, route string) string {
	route = strings.ReplaceAll(route, "{env}", "sandbox")
	if route == "/events/stream" {
		return route + "?until=2000-01-01T00:00:00Z" // a closed window answers at once instead of streaming
	}
	if strings.Contains(route, "/lookup/bundle") {
		return route + "?q=req_x"
	}
	if strings.Contains(route, "/events/export") {
		return route + "?format=csv"
	}
	if strings.Contains(route, "/environments/") || strings.HasPrefix(route, "/events/") || strings.HasPrefix(route, "/api/v1/events/") || strings.Contains(route, "/rollout/") {
		return strings.ReplaceAll(route, "{id}", "1")
	}
	if !strings.Contains(route, "{id}") {
		return strings.TrimSuffix(route, "*") + strings.Repeat("x", strings.Count(route, "*"))
	}
	var id int64
	if strings.HasPrefix(route, "/settings/tokens/") {
		app.addToken("target-" + auth.RandomID(4))
		ts, err := app.db.ListTokens(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		id = ts[0].ID
	} else {
		id = app.addUser("target-"+strings.ToLower(auth.RandomID(6))+"@example.com", db.RoleViewer).ID
	}
	return strings.ReplaceAll(route, "{id}", fmt.Sprint(id))
}

func TestRouteAccessByRole(t *testing.T) {
	app := newTestApp(t)
	roles := []db.Role{db.RoleViewer, db.RoleOperator, db.RoleAdmin}
	clients := map[db.Role]*client{}
	for _, r := range roles {
		clients[r], _ = app.login(r)
	}
	tokens := map[string]string{
		"none":         "",
		"events:read":  app.addToken("reader", auth.ScopeEventsRead),
		"metrics:read": app.addToken("prometheus", auth.ScopeMetricsRead),
		"admin":        app.addToken("admin", auth.ScopeAdmin),
	}
	for _, route := range registeredRoutes(t, app.srv) {
		rule := routeAccess[route]
		method, pattern, _ := strings.Cut(route, " ")
		t.Run(route, func(t *testing.T) {
			send := func(c *client) response {
				path := fillPath(t, app, pattern)
				req, _ := http.NewRequest(method, app.url+path, strings.NewReader(url.Values{}.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				return c.do(req)
			}
			refusedAnon := func(res response) bool {
				return res.StatusCode == http.StatusUnauthorized ||
					res.StatusCode == http.StatusSeeOther && strings.HasPrefix(res.Header.Get("Location"), "/login")
			}
			switch {
			case rule == "public":
				// POST /login (and its second step) answers 401 to the empty credentials it is sent
				// here; that is its verdict on the password, not an access rule.
				res := send(app.client())
				if res.StatusCode == http.StatusForbidden || res.StatusCode == http.StatusUnauthorized && !strings.HasPrefix(route, "POST /login") {
					t.Errorf("public route refused an anonymous client: %d", res.StatusCode)
				}
			case rule == "ingest":
				// Public ingest answers on its own terms (signature, CORS, body); it never asks for
				// a login and never reads the session cookie.
				for _, c := range []*client{app.client(), clients[db.RoleAdmin]} {
					if res := send(c); res.StatusCode == http.StatusSeeOther || res.StatusCode == http.StatusForbidden {
						t.Errorf("ingest route answered %d (Location %q)", res.StatusCode, res.Header.Get("Location"))
					}
				}
			case rule == "token" || strings.HasPrefix(rule, "scope:"):
				need := strings.TrimPrefix(rule, "scope:")
				for name, tok := range tokens {
					path := fillPath(t, app, pattern)
					res := app.api(method, path, tok, nil)
					want := http.StatusOK
					switch {
					case tok == "":
						want = http.StatusUnauthorized
					case rule != "token" && !auth.HasScope([]string{name}, need):
						want = http.StatusForbidden
					}
					if (res.StatusCode == http.StatusUnauthorized || res.StatusCode == http.StatusForbidden || want != http.StatusOK) && res.StatusCode != want {
						t.Errorf("token %s: status %d, want %d (%s)", name, res.StatusCode, want, res.body)
					}
				}
				// Page sessions never authenticate the API.
				if res := send(clients[db.RoleAdmin]); res.StatusCode != http.StatusUnauthorized {
					t.Errorf("admin session cookie on API route: %d, want 401", res.StatusCode)
				}
			default:
				min := db.Role(rule)
				if res := send(app.client()); !refusedAnon(res) {
					t.Errorf("anonymous: status %d (Location %q), want login redirect or 401", res.StatusCode, res.Header.Get("Location"))
				}
				for _, r := range roles {
					res := send(clients[r])
					allowed := r.AtLeast(min)
					if allowed && (res.StatusCode == http.StatusForbidden || refusedAnon(res)) {
						t.Errorf("%s: refused with %d, want allowed", r, res.StatusCode)
					}
					if !allowed && res.StatusCode != http.StatusForbidden {
						t.Errorf("%s: status %d, want 403", r, res.StatusCode)
					}
				}
			}
		})
	}
}

func TestNavShowsOnlyWhatTheRoleMayOpen(t *testing.T) {
	app := newTestApp(t)
	tests := []struct {
		role     db.Role
		audit    bool
		settings []string
	}{
		{db.RoleViewer, false, []string{"account"}},
		{db.RoleOperator, true, []string{"account"}},
		{db.RoleAdmin, true, []string{"account", "users", "tokens", "alerts"}},
	}
	for _, tt := range tests {
		c, _ := app.login(tt.role)
		doc := c.get("/settings/account").doc(t)
		if got := doc.Find(`[data-testid="nav-audit"]`).Length() == 1; got != tt.audit {
			t.Errorf("%s: audit link shown = %v, want %v", tt.role, got, tt.audit)
		}
		var tabs []string
		doc.Find(`nav.tabs a`).Each(func(_ int, s *goquery.Selection) {
			id, _ := s.Attr("data-testid")
			tabs = append(tabs, strings.TrimPrefix(id, "tab-"))
		})
		if strings.Join(tabs, ",") != strings.Join(tt.settings, ",") {
			t.Errorf("%s: settings tabs %v, want %v", tt.role, tabs, tt.settings)
		}
		if got := doc.Find(`[data-testid="role"]`).Text(); got != string(tt.role) {
			t.Errorf("role badge %q, want %q", got, tt.role)
		}
	}
}
