package web

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/tensfer-golive/dashboard/internal/alerts"
	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
)

// alertReceiver is a local receiver of alerts on loopback: it keeps every request.
type alertReceiver struct {
	*httptest.Server
	mu  sync.Mutex
	got []alertRequest
}

type alertRequest struct {
	path   string
	header http.Header
	body   []byte
}

func newAlertReceiver(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) *alertReceiver {
	t.Helper()
	rec := &alertReceiver{}
	rec.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.got = append(rec.got, alertRequest{path: r.URL.Path, header: r.Header.Clone(), body: b})
		rec.mu.Unlock()
		if answer != nil {
			r.Body = io.NopCloser(strings.NewReader(string(b)))
			answer(w, r)
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(rec.Close)
	return rec
}

func (r *alertReceiver) requests() []alertRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]alertRequest(nil), r.got...)
}

func loopbackAlerts(c *Config) {
	c.AllowLoopbackURLs = true
	c.Alerts = alerts.Options{Every: 10 * time.Millisecond}
}

// createChannel adds a channel over the API and returns its JSON answer.
func (a *testApp) createChannel(token string, in map[string]any) alertChannelJSON {
	a.t.Helper()
	b, _ := json.Marshal(in)
	res := a.api(http.MethodPost, "/api/v1/alert-channels", token, strings.NewReader(string(b)))
	if res.StatusCode != http.StatusCreated {
		a.t.Fatalf("create channel: %d %s", res.StatusCode, res.body)
	}
	var out alertChannelJSON
	if err := json.Unmarshal([]byte(res.body), &out); err != nil {
		a.t.Fatal(err)
	}
	return out
}

func TestAlertChannelsAPI(t *testing.T) {
	app := newTestApp(t, loopbackAlerts)
	admin := app.addToken("admin", auth.ScopeAdmin)
	rec := newAlertReceiver(t, nil)

	slack := app.createChannel(admin, map[string]any{"name": "#ops", "kind": "slack", "url": rec.URL + "/services/T0/B0/tok",
		"events": []string{alerts.EventKilled}, "environments": []string{"production"}})
	if slack.Secret != "" || slack.URL.Host != strings.TrimPrefix(rec.URL, "http://") || len(slack.URL.Fingerprint) != 12 || !slack.Enabled || slack.Version != 1 {
		t.Errorf("slack channel %+v", slack)
	}
	hook := app.createChannel(admin, map[string]any{"name": "pager", "kind": "webhook", "url": rec.URL + "/hook",
		"events": []string{alerts.EventKilled, alerts.EventGuardrailTripped}, "environments": []string{"production", "sandbox"}})
	if !strings.HasPrefix(hook.Secret, "whsec_") {
		t.Errorf("webhook channel's secret %q", hook.Secret)
	}

	bad := []struct {
		name, body, field string
		status            int
	}{
		{"http URL", `{"name":"x","kind":"slack","url":"http://example.com/h","events":["rollout.killed"],"environments":["production"]}`, "url", 422},
		{"private address", `{"name":"x","kind":"slack","url":"https://192.168.1.10/h","events":["rollout.killed"],"environments":["production"]}`, "url", 422},
		{"unknown event", `{"name":"x","kind":"slack","url":"https://example.com/h","events":["nope"],"environments":["production"]}`, "events", 422},
		{"taken name", `{"name":"#ops","kind":"slack","url":"https://example.com/h","events":["rollout.killed"],"environments":["production"]}`, "name", 422},
		{"no kind", `{"name":"y","url":"https://example.com/h","events":["rollout.killed"],"environments":["production"]}`, "kind", 422},
		{"unknown field", `{"name":"y","colour":"red"}`, "colour", 422},
		{"not JSON", `{`, "", 400},
	}
	for _, tt := range bad {
		res := app.api(http.MethodPost, "/api/v1/alert-channels", admin, strings.NewReader(tt.body))
		if res.StatusCode != tt.status || tt.field != "" && !strings.Contains(res.body, `"`+tt.field+`":`) {
			t.Errorf("%s: %d %s, want %d naming %s", tt.name, res.StatusCode, res.body, tt.status, tt.field)
		}
	}

	res := app.api(http.MethodGet, "/api/v1/alert-channels", admin, nil)
	var list struct{ Channels []alertChannelJSON }
	if err := json.Unmarshal([]byte(res.body), &list); err != nil || len(list.Channels) != 2 || list.Channels[0].Name != "#ops" {
		t.Fatalf("list: %s", res.body)
	}

	patch := func(id, body string) response {
		return app.api(http.MethodPatch, "/api/v1/alert-channels/"+id, admin, strings.NewReader(body))
	}
	if res := patch(hook.ID, `{"name":"pager-2","version":7}`); res.StatusCode != http.StatusConflict {
		t.Errorf("stale version: %d %s", res.StatusCode, res.body)
	}
	if res := patch(hook.ID, `{"kind":"slack"}`); res.StatusCode != http.StatusUnprocessableEntity {
		t.Errorf("kind change: %d %s", res.StatusCode, res.body)
	}
	if res := patch("ach_missing", `{"name":"z"}`); res.StatusCode != http.StatusNotFound {
		t.Errorf("missing channel: %d", res.StatusCode)
	}
	res = patch(hook.ID, `{"name":"pager-2","rotate_secret":true,"enabled":false,"version":1}`)
	var up alertChannelJSON
	if err := json.Unmarshal([]byte(res.body), &up); err != nil || res.StatusCode != 200 || up.Name != "pager-2" || up.Enabled ||
		!strings.HasPrefix(up.Secret, "whsec_") || up.Secret == hook.Secret || up.URL != hook.URL {
		t.Errorf("update: %d %s", res.StatusCode, res.body)
	}

	res = app.api(http.MethodPost, "/api/v1/alert-channels/"+slack.ID+"/test", admin, nil)
	if res.StatusCode != 200 || !strings.Contains(res.body, `"delivered":true`) || !strings.Contains(res.body, `"http_status":200`) {
		t.Errorf("test: %d %s", res.StatusCode, res.body)
	}
	if got := rec.requests(); len(got) != 1 || got[0].path != "/services/T0/B0/tok" || !strings.Contains(string(got[0].body), "Test alert") {
		t.Errorf("receiver got %+v", got)
	}
	res = app.api(http.MethodGet, "/api/v1/alert-channels/"+slack.ID, admin, nil)
	if !strings.Contains(res.body, `"state":"delivered"`) || !strings.Contains(res.body, `"type":"test"`) || !strings.Contains(res.body, `"last_delivery":{`) {
		t.Errorf("show: %s", res.body)
	}

	if res := app.api(http.MethodDelete, "/api/v1/alert-channels/"+slack.ID, admin, nil); res.StatusCode != http.StatusNoContent {
		t.Errorf("delete: %d", res.StatusCode)
	}
	if res := app.api(http.MethodDelete, "/api/v1/alert-channels/"+slack.ID, admin, nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("delete again: %d", res.StatusCode)
	}
	var acts []string
	for _, a := range app.auditActions() {
		if strings.HasPrefix(a, "alert_channel.") {
			acts = append(acts, a)
		}
	}
	if strings.Join(acts, ",") != "alert_channel.create,alert_channel.create,alert_channel.update,alert_channel.test,alert_channel.delete" {
		t.Errorf("audited %v", acts)
	}
}

func TestAlertsPage(t *testing.T) {
	app := newTestApp(t, loopbackAlerts)
	rec := newAlertReceiver(t, nil)
	c, _ := app.login(db.RoleAdmin)

	doc := c.get("/settings/alerts").doc(t)
	if doc.Find(`[data-testid="alert-channels-empty"]`).Length() != 1 || doc.Find(`[data-testid="alert-deliveries-empty"]`).Length() != 1 {
		t.Fatal("a fresh page should say there are no channels and no deliveries")
	}
	if got := doc.Find(`[data-testid="alert-rules"]`).Text(); !strings.Contains(got, "10 refused webhooks") || !strings.Contains(got, "up to 5 tries") {
		t.Errorf("rules say %q", got)
	}

	form := url.Values{"name": {"#payments"}, "kind": {"slack"}, "url": {"http://example.com/x"}, "events": {alerts.EventKilled, alerts.EventStageAdvanced}, "environments": {"production"}}
	res := c.postForm("/settings/alerts", form)
	if res.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("http URL: %d", res.StatusCode)
	}
	doc = res.doc(t)
	if msg := doc.Find("#err-alert-url").Text(); msg != "URL must use https" {
		t.Errorf("URL error %q", msg)
	}
	if v, _ := doc.Find(`#alert-name`).Attr("value"); v != "#payments" || doc.Find(`input[name="events"][value="rollout.stage_advanced"][checked]`).Length() != 1 {
		t.Error("the form did not keep the input")
	}
	if v, _ := doc.Find(`#alert-url`).Attr("value"); v != "" {
		t.Errorf("the URL was echoed back: %q", v)
	}

	form.Set("url", rec.URL+"/services/T0/B0/tok")
	if res := c.postForm("/settings/alerts", form); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("create slack: %d %s", res.StatusCode, res.body)
	}
	form.Set("name", "signed")
	form.Set("kind", "webhook")
	res = c.postForm("/settings/alerts", form)
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("create webhook: %d", res.StatusCode)
	}
	secret := res.doc(t).Find(`[data-testid="alert-secret"]`).Text()
	if !strings.HasPrefix(secret, "whsec_") || res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("secret shown %q, cache %q", secret, res.Header.Get("Cache-Control"))
	}
	page := c.get("/settings/alerts")
	if strings.Contains(page.body, secret) {
		t.Fatal("the secret is shown again")
	}
	doc = page.doc(t)
	if n := doc.Find(`[data-testid="alert-channel-row"]`).Length(); n != 2 {
		t.Fatalf("%d rows", n)
	}
	link, _ := doc.Find(`[data-testid="alert-channel-name"]`).First().Attr("href")

	// Send a test from the list: the flash says what the receiver answered.
	testPath, _ := doc.Find(`[data-testid="alert-channel-row"] form`).First().Attr("action")
	res = c.postForm(testPath, url.Values{"back": {"list"}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/settings/alerts" {
		t.Fatalf("test: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	doc = c.get("/settings/alerts").doc(t)
	if flash := doc.Find(`[data-testid="flash"]`).Text(); !strings.Contains(flash, "Test alert delivered to #payments: 200") {
		t.Errorf("flash %q", flash)
	}
	if doc.Find(`[data-testid="alert-delivery-row"]`).Length() != 1 || doc.Find(`[data-testid="alert-channel-last"] [data-testid="alert-state"]`).First().Text() != "delivered" {
		t.Error("the delivery is not listed")
	}

	// Edit: no event is a 422 with the form kept; a good change saves and disables.
	edit := c.get(link).doc(t)
	version, _ := edit.Find(`input[name="version"]`).Attr("value")
	if hint := edit.Find(`#hint-alert-url` + strings.TrimPrefix(link, "/settings/alerts/")).Text(); !strings.Contains(hint, "Leave empty to keep it") {
		t.Errorf("URL hint %q", hint)
	}
	res = c.postForm(link, url.Values{"name": {"#payments"}, "environments": {"production"}, "version": {version}, "enabled": {"on"}})
	if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(res.body, "choose at least one event") {
		t.Fatalf("no events: %d", res.StatusCode)
	}
	res = c.postForm(link, url.Values{"name": {"#payments-2"}, "events": {alerts.EventKilled}, "environments": {"production", "sandbox"}, "version": {version}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("save: %d %s", res.StatusCode, res.body)
	}
	res = c.postForm(link, url.Values{"name": {"#payments-3"}, "events": {alerts.EventKilled}, "environments": {"production"}, "version": {version}})
	if res.StatusCode != http.StatusSeeOther || !strings.Contains(c.get(link).body, "changed this channel while you were editing") {
		t.Errorf("a stale edit was not refused")
	}
	doc = c.get("/settings/alerts").doc(t)
	if doc.Find(`[data-testid="alert-channel-disabled"]`).Length() != 1 || !strings.Contains(doc.Text(), "#payments-2") {
		t.Error("the edit did not take")
	}

	res = c.postForm(link+"/delete", nil)
	if res.StatusCode != http.StatusSeeOther || c.get(link).StatusCode != http.StatusNotFound {
		t.Errorf("delete: %d", res.StatusCode)
	}
	if res := c.get("/settings/alerts/ach_nope"); res.StatusCode != http.StatusNotFound || !strings.Contains(res.body, "no alert channel") {
		t.Errorf("missing channel: %d", res.StatusCode)
	}
}

// TestKillSwitchReachesChannels pulls the kill switch through the rollout API and waits for both
// kinds of channel to receive it from the running alert loop; the webhook's signature is checked
// with the reference Standard Webhooks library.
func TestKillSwitchReachesChannels(t *testing.T) {
	app := newTestApp(t, loopbackAlerts)
	admin := app.addToken("admin", auth.ScopeAdmin)
	oncall := app.addToken("on-call", auth.ScopeRolloutWrite)
	verified := make(chan error, 4)
	var secret string
	var secretMu sync.Mutex
	hookRec := newAlertReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		secretMu.Lock()
		wh, err := standardwebhooks.NewWebhook(secret)
		secretMu.Unlock()
		if err == nil {
			body, _ := io.ReadAll(r.Body)
			err = wh.Verify(body, r.Header)
		}
		verified <- err
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
		}
	})
	slackRec := newAlertReceiver(t, nil)
	hook := app.createChannel(admin, map[string]any{"name": "pager", "kind": "webhook", "url": hookRec.URL + "/alerts",
		"events": []string{alerts.EventKilled}, "environments": []string{"production"}})
	secretMu.Lock()
	secret = hook.Secret
	secretMu.Unlock()
	app.createChannel(admin, map[string]any{"name": "#ops", "kind": "slack", "url": slackRec.URL + "/services/T0/B0/x",
		"events": []string{alerts.EventKilled, alerts.EventStageAdvanced}, "environments": []string{"production"}})
	app.createChannel(admin, map[string]any{"name": "sandbox people", "kind": "slack", "url": slackRec.URL + "/sandbox",
		"events": []string{alerts.EventKilled}, "environments": []string{"sandbox"}})

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { app.srv.Alerts().Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	if res := app.api(http.MethodPost, "/api/v1/rollout/kill", oncall, nil); res.StatusCode != http.StatusOK {
		t.Fatalf("kill: %d %s", res.StatusCode, res.body)
	}
	waitFor(t, "both channels to receive the kill", func() bool { return len(hookRec.requests()) >= 1 && len(slackRec.requests()) >= 1 })
	if err := <-verified; err != nil {
		t.Fatalf("the reference library refused the signature: %v", err)
	}
	var a alerts.Alert
	got := hookRec.requests()[0]
	if err := json.Unmarshal(got.body, &a); err != nil {
		t.Fatal(err)
	}
	if a.Type != alerts.EventKilled || a.Env != "production" || a.Status != "firing" || a.ID != got.header.Get("webhook-id") ||
		a.URL != app.url+"/rollout" || !strings.Contains(a.Text, "token:") {
		t.Errorf("payload %+v", a)
	}
	var slack struct{ Text string }
	if err := json.Unmarshal(slackRec.requests()[0].body, &slack); err != nil || !strings.Contains(slack.Text, "Kill switch") || !strings.Contains(slack.Text, "|Open the dashboard>") {
		t.Errorf("slack body %s", slackRec.requests()[0].body)
	}
	waitFor(t, "both deliveries to be recorded as delivered", func() bool {
		ds, err := app.srv.Alerts().Deliveries(context.Background(), "", 10)
		if err != nil || len(ds) != 2 {
			return false
		}
		return ds[0].State == db.AlertDelivered && ds[1].State == db.AlertDelivered
	})
	for _, r := range slackRec.requests() {
		if r.path == "/sandbox" {
			t.Error("a sandbox-only channel got the production kill switch")
		}
	}
}

// TestAlertSecretsNeverLeak: a channel's URL (with its token) and signing secret appear in no
// audit row, log line, page or API answer after the one that created them.
func TestAlertSecretsNeverLeak(t *testing.T) {
	app := newTestApp(t, loopbackAlerts)
	admin := app.addToken("admin", auth.ScopeAdmin)
	const token = "SLACKtok3nSECRET"
	// A receiver that echoes the path, as some frameworks' error pages do, and fails.
	rec := newAlertReceiver(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "Cannot POST "+r.URL.RequestURI(), http.StatusNotFound)
	})
	slackURL := rec.URL + "/services/T0/B0/" + token + "?k=" + token
	c, _ := app.login(db.RoleAdmin)
	res := c.postForm("/settings/alerts", url.Values{"name": {"#ops"}, "kind": {"slack"}, "url": {slackURL}, "events": {alerts.EventKilled}, "environments": {"production"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("create: %d", res.StatusCode)
	}
	hook := app.createChannel(admin, map[string]any{"name": "pager", "kind": "webhook", "url": rec.URL + "/hook/" + token,
		"events": []string{alerts.EventKilled}, "environments": []string{"production"}})
	patched := app.api(http.MethodPatch, "/api/v1/alert-channels/"+hook.ID, admin, strings.NewReader(`{"rotate_secret":true,"url":"`+rec.URL+`/hook2/`+token+`"}`))
	var up alertChannelJSON
	if err := json.Unmarshal([]byte(patched.body), &up); err != nil || up.Secret == "" {
		t.Fatalf("rotate: %s", patched.body)
	}
	chs, _ := app.srv.Alerts().Channels(context.Background())
	for _, ch := range chs {
		c.postForm("/settings/alerts/"+ch.ID+"/test", nil)
		app.api(http.MethodPost, "/api/v1/alert-channels/"+ch.ID+"/test", admin, nil)
	}
	if res := app.api(http.MethodPost, "/api/v1/rollout/kill", admin, nil); res.StatusCode != http.StatusOK {
		t.Fatal(res.body)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { app.srv.Alerts().Run(ctx); close(done) }()
	waitFor(t, "the kill to be tried on both channels", func() bool { return len(rec.requests()) >= 6 })
	cancel()
	<-done
	if len(rec.requests()) < 6 || !strings.Contains(string(rec.requests()[0].body), "Test alert") {
		t.Fatalf("the receiver got %d requests", len(rec.requests()))
	}

	secrets := []string{token, hook.Secret, up.Secret, strings.TrimPrefix(hook.Secret, "whsec_"), strings.TrimPrefix(up.Secret, "whsec_")}
	var places []struct{ name, text string }
	add := func(name, text string) { places = append(places, struct{ name, text string }{name, text}) }
	audit, _, err := app.db.ListAudit(context.Background(), db.AuditFilter{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(audit)
	add("audit rows", string(b))
	add("logs", app.logs.String())
	for _, p := range []string{"/settings/alerts", "/settings/alerts/" + hook.ID, "/audit"} {
		add("page "+p, c.get(p).body)
	}
	for _, ch := range chs {
		add("page of "+ch.Name, c.get("/settings/alerts/"+ch.ID).body)
		add("API of "+ch.Name, app.api(http.MethodGet, "/api/v1/alert-channels/"+ch.ID, admin, nil).body)
	}
	add("API list", app.api(http.MethodGet, "/api/v1/alert-channels", admin, nil).body)
	add("API audit", app.api(http.MethodGet, "/api/v1/audit?limit=500", admin, nil).body)
	for _, p := range places {
		for _, s := range secrets {
			if strings.Contains(p.text, s) {
				t.Errorf("%s contains %q", p.name, s)
			}
		}
	}
	if !strings.Contains(places[0].text, "alert_channel.create") || !strings.Contains(places[2].text, "[channel URL path]") {
		t.Error("the places checked do not hold what they should (audit rows, the scrubbed answer)")
	}
}
