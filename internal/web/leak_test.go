package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/dbtest"
	"github.com/tensfer-golive/dashboard/internal/tensfer"
	"github.com/tensfer-golive/dashboard/internal/tensfer/tensfersim"
)

// TestNothingSecretLeaks plants every kind of secret the dashboard holds (the three Tensfer keys
// of both environments, a webhook signing secret, passwords, API tokens, session cookies, a TOTP
// seed and recovery codes), uses them the way people and services do, with failures on the way,
// and then looks for each one in every place a secret could surface: the log, every page and
// error page, every API answer, the audit rows, the support bundle, the exports, the database
// files and a backup. Where a secret is meant to be seen (a key's reveal, a token shown once,
// the public key and client token in the app config), that one answer is not collected.
func TestNothingSecretLeaks(t *testing.T) {
	_, root := newSimulator(t, tensfersim.Config{})
	app := newTestApp(t, loopbackOK)
	clock := app.totpClock()
	adminToken := app.addToken("admin", auth.ScopeAdmin)
	admin, _ := app.login(db.RoleAdmin)
	operator, opUser := app.login(db.RoleOperator)

	planted := map[string]string{"the test password": testPassword, "the admin token": adminToken}
	for name, c := range map[string]*client{"admin": admin, "operator": operator} {
		u, _ := url.Parse(app.url)
		for _, ck := range c.hc.Jar.Cookies(u) {
			planted[name+"'s "+ck.Name+" cookie"] = ck.Value
		}
	}

	// Keys: sandbox's through the API, production's through the form (one refused on the way,
	// because it equals sandbox's, which must not echo it back).
	sandbox := tensfersim.DefaultKeys()[tensfer.Sandbox]
	production := tensfersim.DefaultKeys()[tensfer.Production]
	planted["sandbox secret key"] = sandbox.SecretKey
	planted["production secret key"] = production.SecretKey
	if res := app.patchEnv(adminToken, "sandbox", map[string]any{"base_url": tensfersim.BaseURL(root, tensfer.Sandbox),
		"secret_key": sandbox.SecretKey, "public_key": sandbox.PublicKey, "client_token": sandbox.ClientToken}); res.StatusCode != http.StatusOK {
		t.Fatalf("sandbox keys: %d %s", res.StatusCode, res.body)
	}
	admin.postForm("/environments/production/keys", url.Values{"kind": {"secret_key"}, "value": {sandbox.SecretKey}})
	if res := app.patchEnv(adminToken, "production", map[string]any{"secret_key": sandbox.SecretKey}); res.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("a production key equal to sandbox's: %d", res.StatusCode)
	}
	if res := admin.postForm("/environments/production/keys", url.Values{"kind": {"secret_key"}, "value": {production.SecretKey}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("production key: %d", res.StatusCode)
	}
	app.api(http.MethodPost, "/api/v1/environments/sandbox/verify", adminToken, nil)

	// A webhook signing secret, used to sign deliveries, and a delivery signed with a wrong one.
	res := app.api(http.MethodPost, "/api/v1/environments/production/webhook-secrets", adminToken, nil)
	var gen struct{ Secret string }
	if err := json.Unmarshal([]byte(res.body), &gen); err != nil || gen.Secret == "" {
		t.Fatalf("webhook secret: %d %s", res.StatusCode, res.body)
	}
	planted["webhook secret"] = gen.Secret
	planted["webhook secret, bare"] = strings.TrimPrefix(gen.Secret, "whsec_")
	body := `{"type":"payment.cancelled","request_id":"req_leak_1","data":{"payment_id":"pay_1"}}`
	if res := app.sendWebhook("production", gen.Secret, "msg_leak_1", body); res.StatusCode != http.StatusOK {
		t.Fatalf("signed webhook: %d %s", res.StatusCode, res.body)
	}
	app.sendWebhook("production", "whsec_"+strings.Repeat("A", 43)+"=", "msg_leak_2", body)

	// A user made with a password, a reset, a token made in the UI, failed sign-ins.
	newPassword, resetPassword := "leak-canary kestrel 4471", "leak-canary osprey 9082"
	planted["a new user's password"], planted["a reset password"] = newPassword, resetPassword
	if res := admin.postForm("/settings/users", url.Values{"email": {"newbie@example.com"}, "role": {"viewer"}, "new_password": {newPassword}, "password": {testPassword}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("add user: %d %s", res.StatusCode, res.body)
	}
	newbie, err := app.db.UserByEmail(context.Background(), "newbie@example.com")
	if err != nil {
		t.Fatal(err)
	}
	admin.postForm(fmt.Sprintf("/settings/users/%d/password", newbie.ID), url.Values{"new_password": {resetPassword}, "confirm_password": {resetPassword}, "password": {testPassword}})
	res = admin.postForm("/settings/tokens", url.Values{"name": {"checkout"}, "scopes": {auth.ScopeEventsRead}, "expires": {"30"}})
	shown := strings.TrimSpace(res.doc(t).Find(`[data-testid="token-secret"]`).Text())
	if !strings.HasPrefix(shown, auth.TokenPrefix) {
		t.Fatalf("token made in the UI: %d, shown %q", res.StatusCode, shown)
	}
	planted["a token made in the UI"] = shown
	app.client().postForm("/login", url.Values{"email": {"newbie@example.com"}, "password": {resetPassword + "x"}})
	app.client().postForm("/login", url.Values{"email": {resetPassword}, "password": {newPassword}})

	// Two-factor: the operator's seed and recovery codes; a sign-in with a code, a wrong code.
	seed, codes := enrol(t, operator, clock)
	planted["TOTP seed"] = seed
	for i, c := range codes {
		planted[fmt.Sprintf("recovery code %d", i)] = c
	}
	clock.advance(30 * time.Second)
	b := app.client()
	loginPassword(b, opUser.Email, "/")
	b.postForm("/login/two-factor", url.Values{"code": {wrongTOTP(t, seed, clock.now())}})
	if res := b.postForm("/login/two-factor", url.Values{"code": {codes[0]}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in with a recovery code: %d", res.StatusCode)
	}

	// Alert channels: a Slack URL carries its token in the path; a webhook channel has a secret.
	slackURL := "https://hooks.slack.example/services/T0LEAK/B0LEAK/leakcanaryslacktoken"
	planted["Slack URL token"] = "leakcanaryslacktoken"
	if res := app.api(http.MethodPost, "/api/v1/alert-channels", adminToken, jsonBody(map[string]any{"name": "ops", "kind": "slack", "url": slackURL,
		"events": []string{"rollout.killed"}, "environments": []string{"production"}})); res.StatusCode != http.StatusCreated {
		t.Fatalf("slack channel: %d %s", res.StatusCode, res.body)
	}
	res = app.api(http.MethodPost, "/api/v1/alert-channels", adminToken, jsonBody(map[string]any{"name": "pager", "kind": "webhook",
		"url": "https://alerts.example.com/in", "events": []string{"rollout.killed"}, "environments": []string{"production"}}))
	var channel struct{ Secret string }
	if err := json.Unmarshal([]byte(res.body), &channel); err != nil || !strings.HasPrefix(channel.Secret, "whsec_") {
		t.Fatalf("webhook channel: %d %s", res.StatusCode, res.body)
	}
	planted["alert channel secret"] = strings.TrimPrefix(channel.Secret, "whsec_")
	app.api(http.MethodPatch, "/api/v1/alert-channels/1", adminToken, jsonBody(map[string]any{"url": slackURL + "x"}))

	// A reveal: its own answer shows the key, on purpose, and is not collected.
	admin.postForm(fmt.Sprintf("/environments/production/keys/%d/reveal", app.activeKeyID(t, "production")),
		url.Values{"password": {testPassword}, "reason": {"support ticket 42"}})

	var seen []string
	collect := func(what string, r response) { seen = append(seen, what+"\n"+r.body+"\n"+fmt.Sprint(r.Header)) }

	// Every page and API read, with the ids of what is stored, as admin and as token; error pages.
	for route := range routeAccess {
		method, path, _ := strings.Cut(route, " ")
		if method != http.MethodGet || strings.HasPrefix(path, "/static/") || strings.HasSuffix(path, "/stream") {
			continue
		}
		path = strings.NewReplacer("{env}", "production", "{id}", "1", "{request_id}", "req_leak_1", "{kind}", "secret_key",
			"{name}", "x", "{key}", "x", "{flag}", "x", "{action}", "x").Replace(path)
		if strings.HasSuffix(path, "/config") {
			continue // the app config is below, with config:read (admin may read the secret key: that is its reveal)
		}
		if strings.HasPrefix(path, "/api/") || strings.HasPrefix(path, "/ofrep/") {
			collect(route, app.api(http.MethodGet, path, adminToken, nil))
		} else {
			collect(route, admin.get(path))
			collect(route+" (operator)", b.get(path))
		}
	}
	for _, p := range []string{"/lookup?q=req_leak_1", "/lookup/bundle?q=req_leak_1", "/events/export?format=csv", "/events/export?format=ndjson",
		"/audit?limit=500", "/no-such-page", "/environments/staging", "/events/99999"} {
		collect(p, admin.get(p))
	}
	for _, p := range []string{"/api/v1/audit?limit=500", "/api/v1/lookup/req_leak_1", "/api/v1/events?limit=500", "/api/v1/no-such-route"} {
		collect(p, app.api(http.MethodGet, p, adminToken, nil))
	}
	if res := app.api(http.MethodGet, "/metrics", app.addToken("prometheus", auth.ScopeMetricsRead), nil); res.StatusCode != http.StatusOK || !strings.Contains(res.body, "dashboard_ingest_total") {
		t.Fatalf("metrics: %d", res.StatusCode)
	} else {
		collect("metrics", res)
	}
	cfgRead := app.addToken("cfg", auth.ScopeConfigRead)
	collect("app config", app.api(http.MethodGet, "/api/v1/environments/sandbox/config", cfgRead, nil))
	collect("a wrong token", app.api(http.MethodGet, "/api/v1/environments", adminToken+"x", nil))

	rows, _, err := app.db.ListAudit(context.Background(), db.AuditFilter{Limit: 1000})
	if err != nil || len(rows) < 10 {
		t.Fatalf("audit rows: %d %v", len(rows), err)
	}
	audit, _ := json.Marshal(rows)
	seen = append(seen, string(audit))

	if app.db.Postgres() {
		// Every row of every table as PostgreSQL prints it (bytea in hex, so raw bytes are
		// searched as text too).
		seen = append(seen, dbtest.StoredRows(t, app.db)...)
	} else {
		// The database files as they are, and a backup.
		app.db.W.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
		backup := filepath.Join(t.TempDir(), "backup.db")
		if err := app.db.Backup(context.Background(), backup); err != nil {
			t.Fatal(err)
		}
		files, _ := filepath.Glob(filepath.Join(filepath.Dir(app.db.Path), db.FileName+"*"))
		for _, f := range append(files, backup) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			seen = append(seen, string(data))
		}
	}

	// The log last, so what the reads above logged (error pages, a wrong token) is searched too.
	seen = append(seen, app.logs.String())
	all := strings.Join(seen, "\n")
	// The public key and client token are meant for apps: config:read may see them.
	all = strings.ReplaceAll(strings.ReplaceAll(all, sandbox.PublicKey, ""), sandbox.ClientToken, "")
	lower := strings.ToLower(all)
	names := make([]string, 0, len(planted))
	for name := range planted {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		s := planted[name]
		if len(s) < 8 {
			t.Fatalf("%s is too short to look for: %q", name, s)
		}
		if strings.Contains(all, s) || strings.Contains(lower, strings.ToLower(s)) {
			where := ""
			for _, text := range seen {
				if strings.Contains(strings.ToLower(text), strings.ToLower(s)) {
					where, _, _ = strings.Cut(text, "\n")
					break
				}
			}
			t.Errorf("%s (%s…) leaked, in %.80q", name, s[:6], where)
		}
	}
	if len(seen) < 60 {
		t.Fatalf("only %d answers and files were searched", len(seen))
	}
}

// activeKeyID is the id of env's active secret key.
func (a *testApp) activeKeyID(t *testing.T, env string) int64 {
	t.Helper()
	var id int64
	if err := a.db.R.QueryRow("SELECT id FROM env_keys WHERE env = ? AND kind = 'secret_key' ORDER BY id DESC LIMIT 1", env).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}
