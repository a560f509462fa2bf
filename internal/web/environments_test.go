package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/environment"
	"github.com/tensfer-golive/dashboard/internal/tensfer"
	"github.com/tensfer-golive/dashboard/internal/tensfer/tensfersim"
)

// newSimulator serves a Tensfer simulator on loopback and returns its root URL.
func newSimulator(t *testing.T, cfg tensfersim.Config) (*tensfersim.Simulator, string) {
	t.Helper()
	if cfg.Seed == 0 {
		cfg.Seed = 42
	}
	sim := tensfersim.New(cfg)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return sim, srv.URL
}

func loopbackOK(c *Config) { c.AllowLoopbackURLs = true }

func jsonBody(v any) *strings.Reader {
	b, _ := json.Marshal(v)
	return strings.NewReader(string(b))
}

// patchEnv sends PATCH /api/v1/environments/{env} with an admin token.
func (a *testApp) patchEnv(token, env string, body map[string]any) response {
	a.t.Helper()
	return a.api(http.MethodPatch, "/api/v1/environments/"+env, token, jsonBody(body))
}

func TestEnvironmentValidation(t *testing.T) {
	app := newTestApp(t)
	admin := app.addToken("admin", auth.ScopeAdmin)
	// Existing state the cross-environment rules compare against.
	if res := app.patchEnv(admin, "sandbox", map[string]any{"base_url": "https://sandbox.tensfer.example", "callback_url": "https://app.example.com/tensfer/return",
		"secret_key": "sk_sandbox_1234567890", "public_key": "pk_sandbox_1234567890"}); res.StatusCode != 200 {
		t.Fatalf("seed sandbox: %d %s", res.StatusCode, res.body)
	}
	tests := []struct {
		env   string
		body  map[string]any
		field string
		want  string
	}{
		{"production", map[string]any{"base_url": "http://api.tensfer.example"}, "base_url", "must use https in production"},
		{"production", map[string]any{"base_url": "http://localhost:9000"}, "base_url", "must use https in production"},
		{"sandbox", map[string]any{"base_url": "http://sandbox.tensfer.example"}, "base_url", "http is allowed only for localhost"},
		{"sandbox", map[string]any{"base_url": "ftp://x.example"}, "base_url", "must use https"},
		{"sandbox", map[string]any{"base_url": "api.tensfer.example"}, "base_url", "absolute URL"},
		{"production", map[string]any{"base_url": "https://user:pw@api.tensfer.example"}, "base_url", "user name or password"},
		{"production", map[string]any{"base_url": "https://api.tensfer.example/#x"}, "base_url", "fragment"},
		{"production", map[string]any{"base_url": "https://api.tensfer.example/?a=1"}, "base_url", "query string"},
		{"production", map[string]any{"callback_url": "https://a.example/" + strings.Repeat("x", 2100)}, "callback_url", "at most 2048"},
		{"production", map[string]any{"app_url": "http://app.example.com"}, "app_url", "must use https in production"},
		{"production", map[string]any{"base_url": "https://sandbox.tensfer.example"}, "base_url", "equals the sandbox base URL"},
		{"production", map[string]any{"callback_url": "https://app.example.com/tensfer/return"}, "callback_url", "still the sandbox one"},
		{"production", map[string]any{"allowed_origins": []string{"*"}}, "allowed_origins", "one by one"},
		{"production", map[string]any{"allowed_origins": []string{"https://app.example.com/path"}}, "allowed_origins", "is not an origin"},
		{"production", map[string]any{"allowed_origins": []string{"http://app.example.com"}}, "allowed_origins", "https in production"},
		{"production", map[string]any{"secret_key": "sk_sandbox_1234567890"}, "secret_key", "this is the sandbox secret API key"},
		{"production", map[string]any{"public_key": "sk_sandbox_1234567890"}, "public_key", "this is the sandbox secret API key"},
		{"production", map[string]any{"secret_key": "sk_live_same_value1", "public_key": "sk_live_same_value1"}, "secret_key", "same value as the public API key"},
		{"sandbox", map[string]any{"secret_key": "sk_sandbox_1234567890"}, "secret_key", "already the active one"},
		{"production", map[string]any{"secret_key": "short"}, "secret_key", "too short"},
		{"production", map[string]any{"secret_key": "sk live with spaces"}, "secret_key", "space"},
		{"production", map[string]any{"secret_key": strings.Repeat("k", 600)}, "secret_key", "at most 512"},
		{"production", map[string]any{"secret_key": ""}, "secret_key", "cannot be cleared"},
		{"production", map[string]any{"secret_key": "sk_live_abcdefgh12", "keep_previous": "forever"}, "keep_previous", "duration"},
	}
	before, _ := app.db.ListEnvironments(context.Background())
	keysBefore, _ := app.db.ListEnvKeys(context.Background(), "")
	for _, tt := range tests {
		t.Run(tt.env+" "+tt.field+" "+tt.want, func(t *testing.T) {
			res := app.patchEnv(admin, tt.env, tt.body)
			var e fieldsError
			json.Unmarshal([]byte(res.body), &e)
			if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(e.Error.Fields[tt.field], tt.want) || e.Error.RequestID == "" {
				t.Fatalf("status %d, fields %v, want %s: %q", res.StatusCode, e.Error.Fields, tt.field, tt.want)
			}
		})
	}
	after, _ := app.db.ListEnvironments(context.Background())
	keysAfter, _ := app.db.ListEnvKeys(context.Background(), "")
	if after[0].Version != before[0].Version || after[1].Version != before[1].Version || len(keysAfter) != len(keysBefore) {
		t.Fatal("a refused change stored something")
	}
	// Bodies that are not JSON, or ask nothing, are 400 with a message; members of the wrong
	// kind or name are 422 on that field.
	for body, want := range map[string]struct {
		status int
		says   string
	}{
		`{"base_url": 3}`: {422, `"base_url":"base_url must be a string (got 3)"`},
		`{"nope": 1}`:     {422, `"nope":"nope is not a field of this request; its fields are allowed_origins, app_url, base_url, callback_url, client_token, keep_previous, public_key, replay_url, secret_key"`},
		`{}`:              {400, "nothing to change"},
		`[`:               {400, "not valid JSON"},
	} {
		res := app.api(http.MethodPatch, "/api/v1/environments/production", admin, strings.NewReader(body))
		if res.StatusCode != want.status || !strings.Contains(res.body, want.says) {
			t.Errorf("body %s: %d %s, want %d saying %s", body, res.StatusCode, res.body, want.status, want.says)
		}
	}
	if res := app.patchEnv(admin, "staging", map[string]any{"base_url": "https://x.example"}); res.StatusCode != 404 || !strings.Contains(res.body, "sandbox or production") {
		t.Errorf("unknown env: %d %s", res.StatusCode, res.body)
	}
}

func TestEnvironmentKeysAreWriteOnlyAndRolled(t *testing.T) {
	app := newTestApp(t)
	admin := app.addToken("admin", auth.ScopeAdmin)
	cfgRead := app.addToken("app", auth.ScopeConfigRead)
	secretRead := app.addToken("backend", auth.ScopeSecretsRead)
	res := app.patchEnv(admin, "production", map[string]any{"base_url": "https://api.tensfer.example/", "callback_url": "https://app.example.com/back",
		"client_token": "ct_live_AAAA1111", "public_key": "pk_live_BBBB2222", "secret_key": "sk_live_CCCC3333"})
	if res.StatusCode != 200 {
		t.Fatalf("patch: %d %s", res.StatusCode, res.body)
	}
	var env environmentJSON
	json.Unmarshal([]byte(res.body), &env)
	if env.BaseURL != "https://api.tensfer.example" || !env.SecretKey.Set || env.SecretKey.Last4 != "3333" || env.SecretKey.Fingerprint == "" {
		t.Fatalf("environment: %+v", env)
	}
	if strings.Contains(res.body, "CCCC3333") {
		t.Fatal("PATCH answer shows a key")
	}
	// The app config: public values for config:read, the secret only with secrets:read.
	res = app.api("GET", "/api/v1/environments/production/config", cfgRead, nil)
	var cfg environment.AppConfig
	json.Unmarshal([]byte(res.body), &cfg)
	if res.StatusCode != 200 || cfg.PublicKey == nil || *cfg.PublicKey != "pk_live_BBBB2222" || *cfg.ClientToken != "ct_live_AAAA1111" || cfg.SecretKey != nil || strings.Contains(res.body, "sk_live") {
		t.Fatalf("config without secrets:read: %s", res.body)
	}
	etag := res.Header.Get("ETag")
	req, _ := http.NewRequest("GET", app.url+"/api/v1/environments/production/config", nil)
	req.Header.Set("Authorization", "Bearer "+cfgRead)
	req.Header.Set("If-None-Match", etag)
	if r := app.client().do(req); r.StatusCode != http.StatusNotModified || r.body != "" {
		t.Fatalf("If-None-Match: %d", r.StatusCode)
	}
	auditCount := len(app.auditActions())
	res = app.api("GET", "/api/v1/environments/production/config", secretRead, nil)
	json.Unmarshal([]byte(res.body), &cfg)
	if cfg.SecretKey == nil || *cfg.SecretKey != "sk_live_CCCC3333" || res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("config with secrets:read: %s (Cache-Control %q)", res.body, res.Header.Get("Cache-Control"))
	}
	acts := app.auditActions()
	if len(acts) != auditCount+1 || acts[len(acts)-1] != "environment.secret_read" {
		t.Fatalf("secret read not audited: %v", acts[auditCount:])
	}

	// Roll the public key keeping the old one served for an hour.
	res = app.patchEnv(admin, "production", map[string]any{"public_key": "pk_live_DDDD4444", "keep_previous": "1h"})
	if res.StatusCode != 200 {
		t.Fatalf("roll: %d %s", res.StatusCode, res.body)
	}
	res = app.api("GET", "/api/v1/environments/production/config", cfgRead, nil)
	json.Unmarshal([]byte(res.body), &cfg)
	if *cfg.PublicKey != "pk_live_DDDD4444" || len(cfg.PreviousKeys) != 1 || cfg.PreviousKeys[0].Value != "pk_live_BBBB2222" {
		t.Fatalf("after roll: %s", res.body)
	}
	if res.Header.Get("ETag") == etag {
		t.Fatal("ETag did not change with the config")
	}
	later := time.Now().Add(2 * time.Hour)
	app.srv.SetClock(func() time.Time { return later })
	res = app.api("GET", "/api/v1/environments/production/config", cfgRead, nil)
	json.Unmarshal([]byte(res.body), &cfg)
	if len(cfg.PreviousKeys) != 0 {
		t.Fatalf("old key still served after its overlap: %s", res.body)
	}
	keys, _ := app.db.ListEnvKeys(context.Background(), "production")
	if len(keys) != 4 || keys[3].Active() {
		t.Fatalf("history: %+v", keys)
	}
	// The audit row of the roll has fingerprints, not values.
	rows, _, _ := app.db.ListAudit(context.Background(), db.AuditFilter{Action: "environment.update", Limit: 1})
	if !strings.Contains(string(rows[0].After), "4444") || strings.Contains(string(rows[0].After)+string(rows[0].Before), "pk_live") {
		t.Fatalf("audit of roll: %s -> %s", rows[0].Before, rows[0].After)
	}
}

func TestUnsetKeysKeepTheirFields(t *testing.T) {
	app := newTestApp(t)
	res := app.api("GET", "/api/v1/environments/sandbox", app.addToken("r", auth.ScopeConfigRead), nil)
	if !strings.Contains(res.body, `"secret_key":{"set":false,"last4":"","fingerprint":"","updated_at":null}`) {
		t.Fatalf("unset key shape: %s", res.body)
	}
}

func TestSealedKeysCannotMoveBetweenEnvironments(t *testing.T) {
	app := newTestApp(t)
	admin := app.addToken("admin", auth.ScopeAdmin)
	app.patchEnv(admin, "sandbox", map[string]any{"public_key": "pk_sandbox_XXXX0000"})
	app.patchEnv(admin, "production", map[string]any{"public_key": "pk_live_YYYY1111"})
	// Copy the sandbox ciphertext over production's: it must not decrypt as production's key.
	if _, err := app.db.W.Exec(`UPDATE env_keys SET sealed = (SELECT sealed FROM env_keys WHERE env = 'sandbox') WHERE env = 'production'`); err != nil {
		t.Fatal(err)
	}
	res := app.api("GET", "/api/v1/environments/production/config", app.addToken("r", auth.ScopeConfigRead), nil)
	if res.StatusCode != 500 || strings.Contains(res.body, "pk_sandbox") {
		t.Fatalf("moved ciphertext opened: %d %s", res.StatusCode, res.body)
	}
}

func TestVerifyAgainstSimulator(t *testing.T) {
	_, root := newSimulator(t, tensfersim.Config{AccountName: "Acme Ltd"})
	_, failing := newSimulator(t, tensfersim.Config{FailureRate: 1, FailureModes: []string{"500"}})
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	keys := tensfersim.DefaultKeys()
	tests := []struct {
		name    string
		env     string
		base    string
		secret  string
		outcome string
		detail  string
	}{
		{"ok", "sandbox", tensfersim.BaseURL(root, tensfer.Sandbox), keys[tensfer.Sandbox].SecretKey, "ok", "accepted the secret API key"},
		{"wrong key", "sandbox", tensfersim.BaseURL(root, tensfer.Sandbox), "sk_sandbox_wrongwrong", "wrong_key", "rejected"},
		{"sandbox key on production", "production", tensfersim.BaseURL(root, tensfer.Production), keys[tensfer.Sandbox].SecretKey + "x", "wrong_key", "rejected"},
		{"production keys at sandbox URL", "production", tensfersim.BaseURL(root, tensfer.Sandbox), keys[tensfer.Production].SecretKey, "wrong_environment", "Wrong environment"},
		{"unreachable", "production", closedURL + "/production", keys[tensfer.Production].SecretKey, "unreachable", "Could not reach"},
		{"server error", "production", tensfersim.BaseURL(failing, tensfer.Production), keys[tensfer.Production].SecretKey, "error", "500"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := newTestApp(t, loopbackOK)
			admin := app.addToken("admin", auth.ScopeAdmin)
			if res := app.patchEnv(admin, tt.env, map[string]any{"base_url": tt.base, "secret_key": tt.secret}); res.StatusCode != 200 {
				t.Fatalf("patch: %d %s", res.StatusCode, res.body)
			}
			res := app.api("POST", "/api/v1/environments/"+tt.env+"/verify", admin, nil)
			var v verificationJSON
			json.Unmarshal([]byte(res.body), &v)
			if res.StatusCode != 200 || v.Outcome != tt.outcome || !strings.Contains(v.Detail, tt.detail) {
				t.Fatalf("verify: %d %+v", res.StatusCode, v)
			}
			if tt.outcome != "unreachable" && !strings.HasPrefix(v.RequestID, "req_") {
				t.Fatalf("no Tensfer request_id recorded: %+v", v)
			}
			e, _ := app.db.EnvironmentByName(context.Background(), tt.env)
			if e.VerifyOutcome != tt.outcome || e.VerifyRequestID != v.RequestID {
				t.Fatalf("stored verification: %+v", e)
			}
		})
	}
	t.Run("nothing to verify", func(t *testing.T) {
		app := newTestApp(t, loopbackOK)
		res := app.api("POST", "/api/v1/environments/production/verify", app.addToken("a", auth.ScopeAdmin), nil)
		if res.StatusCode != 409 || !strings.Contains(res.body, "base URL") {
			t.Fatalf("%d %s", res.StatusCode, res.body)
		}
	})
}

func TestGoLiveChecklistFollowsState(t *testing.T) {
	_, root := newSimulator(t, tensfersim.Config{})
	app := newTestApp(t, loopbackOK)
	admin := app.addToken("admin", auth.ScopeAdmin)
	viewer, _ := app.login(db.RoleViewer)
	keys := tensfersim.DefaultKeys()[tensfer.Production]
	var whsec string
	state := func() map[string]string {
		doc := viewer.get("/go-live").doc(t)
		out := map[string]string{}
		doc.Find(".checklist li").Each(func(_ int, s *goquery.Selection) {
			k, _ := s.Attr("data-testid")
			v, _ := s.Attr("data-state")
			out[strings.TrimPrefix(k, "check-")] = v
		})
		return out
	}
	steps := []struct {
		name string
		do   func()
		want map[string]string
	}{
		{"fresh install", func() {}, map[string]string{"production_keys": "todo", "callback_url": "todo", "webhook": "todo", "base_url": "todo", "rollout": "todo", "signing_secret": "todo"}},
		{"keys and base URL set, not verified", func() {
			app.patchEnv(admin, "production", map[string]any{"base_url": tensfersim.BaseURL(root, tensfer.Production),
				"secret_key": keys.SecretKey, "public_key": keys.PublicKey, "client_token": keys.ClientToken})
		}, map[string]string{"production_keys": "todo", "base_url": "todo"}},
		{"verified", func() { app.api("POST", "/api/v1/environments/production/verify", admin, nil) },
			map[string]string{"production_keys": "done", "base_url": "done"}},
		{"callback URL equal to sandbox", func() {
			app.patchEnv(admin, "sandbox", map[string]any{"callback_url": "https://app.example.com/cb"})
			app.patchEnv(admin, "production", map[string]any{"callback_url": "https://app.example.com/cb-live"})
		}, map[string]string{"callback_url": "done"}},
		{"signing secret", func() {
			res := app.api("POST", "/api/v1/environments/production/webhook-secrets", admin, nil)
			var gen struct{ Secret string }
			json.Unmarshal([]byte(res.body), &gen)
			whsec = gen.Secret
		}, map[string]string{"signing_secret": "done", "webhook": "todo"}},
		{"verified production webhook", func() {
			if res := app.sendWebhook("production", whsec, "msg_1", `{"id":"evt_1","type":"payment.cancelled","data":{}}`); res.StatusCode != 200 {
				t.Fatalf("webhook: %d %s", res.StatusCode, res.body)
			}
		}, map[string]string{"webhook": "done"}},
		{"key rolled: verification stale", func() { app.patchEnv(admin, "production", map[string]any{"public_key": "pk_live_rolledrolled"}) },
			map[string]string{"production_keys": "todo", "base_url": "todo"}},
	}
	for _, st := range steps {
		st.do()
		got := state()
		for k, want := range st.want {
			if got[k] != want {
				t.Errorf("%s: %s is %q, want %q", st.name, k, got[k], want)
			}
		}
	}
	if p := strings.TrimSpace(viewer.get("/").doc(t).Find(`[data-testid="overview-golive-progress"]`).Text()); p != "2 of 5" {
		t.Errorf("overview progress %q, want 2 of 5 (callback URL and webhook done; keys, base URL and rollout not)", p)
	}
}

func TestWebhookSecretsAPI(t *testing.T) {
	app := newTestApp(t)
	admin := app.addToken("admin", auth.ScopeAdmin)
	res := app.api("POST", "/api/v1/environments/production/webhook-secrets", admin, nil)
	var gen struct{ ID, Secret, Fingerprint string }
	json.Unmarshal([]byte(res.body), &gen)
	if res.StatusCode != 201 || !strings.HasPrefix(gen.Secret, "whsec_") || gen.ID == "" {
		t.Fatalf("generate: %d %s", res.StatusCode, res.body)
	}
	given, _ := tensfer.GenerateSecret()
	res = app.api("POST", "/api/v1/environments/production/webhook-secrets", admin, jsonBody(map[string]string{"secret": given}))
	if res.StatusCode != 201 || strings.Contains(res.body, given) {
		t.Fatalf("add: %d %s", res.StatusCode, res.body)
	}
	for _, bad := range []string{"nope", "whsec_!!!", "whsec_c2hvcnQ="} {
		if res := app.api("POST", "/api/v1/environments/production/webhook-secrets", admin, jsonBody(map[string]string{"secret": bad})); res.StatusCode != 422 {
			t.Errorf("secret %q: %d %s", bad, res.StatusCode, res.body)
		}
	}
	if res := app.api("POST", "/api/v1/environments/production/webhook-secrets", admin, jsonBody(map[string]string{"secret": given})); res.StatusCode != 422 || !strings.Contains(res.body, "already active") {
		t.Errorf("duplicate: %d %s", res.StatusCode, res.body)
	}
	if res := app.api("DELETE", "/api/v1/environments/production/webhook-secrets/"+gen.ID, admin, nil); res.StatusCode != 204 {
		t.Fatalf("retire: %d", res.StatusCode)
	}
	if res := app.api("DELETE", "/api/v1/environments/production/webhook-secrets/"+gen.ID, admin, nil); res.StatusCode != 404 {
		t.Fatalf("retire twice: %d", res.StatusCode)
	}
	res = app.api("GET", "/api/v1/environments/production", admin, nil)
	var env environmentJSON
	json.Unmarshal([]byte(res.body), &env)
	active := 0
	for _, s := range env.WebhookSecrets {
		if s.Active {
			active++
		}
	}
	if len(env.WebhookSecrets) != 2 || active != 1 || strings.Contains(res.body, "whsec_") {
		t.Fatalf("secrets listed: %s", res.body)
	}
}

func TestRevealNeedsPasswordAndIsAudited(t *testing.T) {
	app := newTestApp(t)
	c, _ := app.login(db.RoleAdmin)
	app.patchEnv(app.addToken("a", auth.ScopeAdmin), "production", map[string]any{"secret_key": "sk_live_REVEALME99"})
	keys, _ := app.db.ListEnvKeys(context.Background(), "production")
	path := "/environments/production/keys/" + itoa(keys[0].ID) + "/reveal"
	res := c.postForm(path, url.Values{"password": {"wrong password here"}, "reason": {"debugging"}})
	if res.StatusCode != 303 || strings.Contains(res.body, "REVEALME") {
		t.Fatalf("wrong password: %d", res.StatusCode)
	}
	if res := c.postForm(path, url.Values{"password": {testPassword}}); res.StatusCode != 303 {
		t.Fatalf("no reason: %d", res.StatusCode)
	}
	res = c.postForm(path, url.Values{"password": {testPassword}, "reason": {"support ticket 42"}})
	if res.StatusCode != 200 || res.Header.Get("Cache-Control") != "no-store" || strings.TrimSpace(res.doc(t).Find(`[data-testid="revealed-value"]`).Text()) != "sk_live_REVEALME99" {
		t.Fatalf("reveal: %d %q", res.StatusCode, res.Header.Get("Cache-Control"))
	}
	rows, _, _ := app.db.ListAudit(context.Background(), db.AuditFilter{Action: "environment.key_reveal"})
	if len(rows) != 1 || !strings.Contains(string(rows[0].After), "support ticket 42") || strings.Contains(string(rows[0].After), "REVEALME") {
		t.Fatalf("reveal audit: %+v", rows)
	}
}

func TestURLsAreNormalisedBeforeTheyAreCompared(t *testing.T) {
	app := newTestApp(t)
	admin := app.addToken("admin", auth.ScopeAdmin)
	app.patchEnv(admin, "sandbox", map[string]any{"base_url": "https://api.tensfer.example"})
	app.patchEnv(admin, "production", map[string]any{"callback_url": "https://app.example.com/cb"})
	tests := []struct {
		env   string
		body  map[string]any
		field string
		want  string
	}{
		{"production", map[string]any{"base_url": "https://API.Tensfer.example:443/"}, "base_url", "equals the sandbox base URL"},
		{"sandbox", map[string]any{"callback_url": "https://APP.example.com:443/cb"}, "callback_url", "equals the production one"},
	}
	for _, tt := range tests {
		res := app.patchEnv(admin, tt.env, tt.body)
		var e fieldsError
		json.Unmarshal([]byte(res.body), &e)
		if res.StatusCode != 422 || !strings.Contains(e.Error.Fields[tt.field], tt.want) {
			t.Errorf("%s %v: %d %s", tt.env, tt.body, res.StatusCode, res.body)
		}
	}
	// An origin with the default port is stored as browsers send it, so it matches.
	res := app.patchEnv(admin, "production", map[string]any{"allowed_origins": []string{"https://Shop.Example.com:443"}})
	var env environmentJSON
	json.Unmarshal([]byte(res.body), &env)
	if len(env.AllowedOrigins) != 1 || env.AllowedOrigins[0] != "https://shop.example.com" {
		t.Fatalf("origin stored as %v", env.AllowedOrigins)
	}
}

// TestSavingTheSameURLsLeavesNoTrace: the URL form submitted untouched says there was nothing to
// save and writes no audit row; the API's PATCH with the same values answers 200 with the state,
// also unaudited, so a client may repeat it.
func TestSavingTheSameURLsLeavesNoTrace(t *testing.T) {
	app := newTestApp(t)
	admin := app.addToken("admin", auth.ScopeAdmin)
	urls := map[string]any{"base_url": "https://sandbox.tensfer.example", "callback_url": "https://app.example.com/tensfer/return",
		"allowed_origins": []string{"https://app.example.com"}}
	if res := app.patchEnv(admin, "sandbox", urls); res.StatusCode != 200 {
		t.Fatalf("seed: %d %s", res.StatusCode, res.body)
	}
	rows := app.countAudit("environment.update")
	c, _ := app.login("admin")
	res := c.postForm("/environments/sandbox", url.Values{"base_url": {"https://sandbox.tensfer.example"}, "callback_url": {"https://app.example.com/tensfer/return"},
		"app_url": {""}, "replay_url": {""}, "allowed_origins": {"https://app.example.com\r\n"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("form: %d %s", res.StatusCode, res.body)
	}
	if flash := c.get("/environments").doc(t).Find(`[data-testid="flash"]`).Text(); !strings.Contains(flash, "Nothing to save") {
		t.Errorf("flash %q, want it to say there was nothing to save", flash)
	}
	if res := app.patchEnv(admin, "sandbox", urls); res.StatusCode != 200 || !strings.Contains(res.body, `"base_url":"https://sandbox.tensfer.example"`) {
		t.Errorf("the same PATCH again: %d %s", res.StatusCode, res.body)
	}
	if n := app.countAudit("environment.update"); n != rows {
		t.Errorf("saving the same values wrote %d audit rows", n-rows)
	}
}
