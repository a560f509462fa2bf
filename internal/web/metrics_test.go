package web

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/metrics"
	"github.com/tensfer-golive/dashboard/internal/tensfer"
	"github.com/tensfer-golive/dashboard/internal/tensfer/tensfersim"
)

// scrapeMetrics reads GET /metrics with token as Prometheus does (asking for the text format) and
// parses it with Prometheus' own text parser.
func (a *testApp) scrapeMetrics(t *testing.T, token string) (string, map[string]*dto.MetricFamily) {
	t.Helper()
	res := a.api(http.MethodGet, "/metrics", token, nil, "Accept", "text/plain;version=0.0.4")
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("scrape: %d %s: %s", res.StatusCode, res.Header.Get("Content-Type"), res.body)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(res.body))
	if err != nil {
		t.Fatalf("Prometheus' parser refuses the scrape: %v\n%s", err, res.body)
	}
	return res.body, fams
}

// sample is one series of a parsed family: its labels and value (a histogram's value is its
// count).
type sample struct {
	labels map[string]string
	value  float64
}

func samples(f *dto.MetricFamily) []sample {
	var out []sample
	for _, m := range f.GetMetric() {
		s := sample{labels: map[string]string{}}
		for _, l := range m.GetLabel() {
			s.labels[l.GetName()] = l.GetValue()
		}
		switch {
		case m.Counter != nil:
			s.value = m.GetCounter().GetValue()
		case m.Gauge != nil:
			s.value = m.GetGauge().GetValue()
		case m.Histogram != nil:
			s.value = float64(m.GetHistogram().GetSampleCount())
		}
		out = append(out, s)
	}
	return out
}

// valueOf is the value of the series of name whose labels are labels ("k=v" each); -1 when there
// is none.
func valueOf(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
next:
	for _, s := range samples(f) {
		for _, kv := range labels {
			k, v, _ := strings.Cut(kv, "=")
			if s.labels[k] != v {
				continue next
			}
		}
		return s.value
	}
	return -1
}

// TestMetricsAfterKnownTraffic drives a known sequence of requests through the real router and
// checks the scrape as Prometheus reads it: types, help, and the value of each series the
// requests moved; promlint (promtool check metrics) finds no problem in it.
func TestMetricsAfterKnownTraffic(t *testing.T) {
	_, sim := newSimulator(t, tensfersim.Config{})
	app := newTestApp(t, loopbackOK)
	ctx := context.Background()
	prom := app.addToken("prometheus", auth.ScopeMetricsRead)
	admin := app.addToken("admin", auth.ScopeAdmin)
	decide := app.addToken("app", auth.ScopeRolloutDecide)
	reporter := app.addToken("reporter", auth.ScopeEventsWrite)
	secret := app.withSecret("sandbox")
	wrong, _ := tensfer.GenerateSecret()

	// A live stream open while we scrape.
	viewer, _ := app.login(db.RoleViewer)
	viewer.stream(t, "/events/stream", "")

	for i := range 3 {
		if res := app.sendWebhook("sandbox", secret, fmt.Sprintf("msg_%d", i), `{"type":"payment.cancelled","data":{}}`); res.StatusCode != 200 {
			t.Fatalf("webhook %d: %d %s", i, res.StatusCode, res.body)
		}
	}
	if res := app.sendWebhook("sandbox", secret, "msg_0", `{"type":"payment.cancelled","data":{}}`); !strings.Contains(res.body, "duplicate") {
		t.Fatalf("repeated webhook: %d %s", res.StatusCode, res.body)
	}
	if res := app.sendWebhook("sandbox", wrong, "msg_forged", `{"type":"payment.cancelled","data":{}}`); res.StatusCode != 401 {
		t.Fatalf("forged webhook: %d %s", res.StatusCode, res.body)
	}
	for _, u := range []string{"u1", "u2"} {
		if res := app.api(http.MethodGet, "/api/v1/rollout/decide?user_id="+u, decide, nil); res.StatusCode != 200 {
			t.Fatalf("decide: %d %s", res.StatusCode, res.body)
		}
	}
	post := func(path, body string) int {
		res, err := http.Post(app.url+path, "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if st := post("/callbacks/production", `{"event":"screen_loaded","event_id":"cb_1"}`); st != 202 {
		t.Fatalf("beacon: %d", st)
	}
	if st := post("/callbacks/production", `not a beacon`); st != 400 {
		t.Fatalf("malformed beacon: %d", st)
	}
	if res := app.api(http.MethodPost, "/api/v1/api-calls", reporter, jsonBody(map[string]any{"env": "production", "method": "GET", "path": "/v1/x", "status": 200})); res.StatusCode != 201 {
		t.Fatalf("api call: %d %s", res.StatusCode, res.body)
	}
	if res := app.api(http.MethodPost, "/api/v1/api-calls", reporter, jsonBody(map[string]any{"env": "production", "method": "GET", "path": "no slash", "status": 200})); res.StatusCode != 422 {
		t.Fatalf("invalid api call: %d %s", res.StatusCode, res.body)
	}
	keys := tensfersim.DefaultKeys()[tensfer.Sandbox]
	app.patchEnv(admin, "sandbox", map[string]any{"base_url": tensfersim.BaseURL(sim, tensfer.Sandbox), "secret_key": keys.SecretKey})
	if res := app.api(http.MethodPost, "/api/v1/environments/sandbox/verify", admin, nil); !strings.Contains(res.body, `"outcome":"ok"`) {
		t.Fatalf("verify: %d %s", res.StatusCode, res.body)
	}
	if err := app.srv.Rollout().Tick(ctx); err != nil { // the guardrails' evaluation, as the loop does it
		t.Fatal(err)
	}

	text, fams := app.scrapeMetrics(t, prom)
	types := map[string]dto.MetricType{
		"dashboard_ingest_total": dto.MetricType_COUNTER, "dashboard_ingest_duration_seconds": dto.MetricType_HISTOGRAM,
		"dashboard_ingest_commit_duration_seconds": dto.MetricType_HISTOGRAM, "dashboard_webhook_rejections_total": dto.MetricType_COUNTER,
		"dashboard_ingest_refusals_total": dto.MetricType_COUNTER, "dashboard_rollout_decisions_total": dto.MetricType_COUNTER,
		"dashboard_key_verifications_total": dto.MetricType_COUNTER, "dashboard_live_stream_subscribers": dto.MetricType_GAUGE,
		"dashboard_rollout_stage": dto.MetricType_GAUGE, "dashboard_rollout_guardrail_observations": dto.MetricType_GAUGE,
		"dashboard_ready": dto.MetricType_GAUGE, "dashboard_build_info": dto.MetricType_GAUGE, "dashboard_disk_free_bytes": dto.MetricType_GAUGE,
		"go_goroutines": dto.MetricType_GAUGE, "process_resident_memory_bytes": dto.MetricType_GAUGE, "process_cpu_seconds_total": dto.MetricType_COUNTER,
	}
	for name, typ := range types {
		if f := fams[name]; f == nil || f.GetType() != typ {
			t.Errorf("%s: %v, want a %v", name, f.GetType(), typ)
		}
	}
	for name, f := range fams {
		if strings.HasPrefix(name, "dashboard_") && len(f.GetHelp()) < 20 {
			t.Errorf("%s has no help worth the name: %q", name, f.GetHelp())
		}
	}
	tests := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"dashboard_ingest_total", []string{"env=sandbox", "source=webhook", "outcome=stored"}, 3},
		{"dashboard_ingest_total", []string{"env=sandbox", "source=webhook", "outcome=duplicate"}, 1},
		{"dashboard_ingest_total", []string{"env=sandbox", "source=webhook", "outcome=refused_signature"}, 1},
		{"dashboard_ingest_total", []string{"env=production", "source=webhook", "outcome=stored"}, 0},
		{"dashboard_ingest_total", []string{"env=production", "source=callback", "outcome=stored"}, 1},
		{"dashboard_ingest_total", []string{"env=production", "source=callback", "outcome=refused_malformed"}, 1},
		{"dashboard_ingest_total", []string{"env=production", "source=api_call", "outcome=stored"}, 1},
		{"dashboard_ingest_total", []string{"env=production", "source=api_call", "outcome=invalid"}, 1},
		{"dashboard_ingest_refusals_total", []string{"env=production", "input=callback", "reason=shape"}, 1},
		{"dashboard_webhook_rejections_total", []string{"env=sandbox", "reason=no_matching_signature"}, 1},
		{"dashboard_ingest_duration_seconds", []string{"source=webhook"}, 4}, // stored and duplicate
		{"dashboard_rollout_decisions_total", []string{"env=off", "reason=not_started"}, 2},
		{"dashboard_rollout_decisions_total", []string{"env=production", "reason=percentage"}, 0},
		{"dashboard_key_verifications_total", []string{"env=sandbox", "outcome=ok"}, 1},
		{"dashboard_live_stream_subscribers", nil, 1},
		{"dashboard_rollout_stage", nil, 0},
		{"dashboard_rollout_state", []string{"state=active"}, 1},
		{"dashboard_rollout_state", []string{"state=killed"}, 0},
		{"dashboard_rollout_guardrail_breached", []string{"signal=rejected_webhooks"}, 0},
		{"dashboard_rollout_guardrail_max_error_ratio", []string{"signal=api_errors"}, 0.02},
		{"dashboard_ready", nil, 1},
		{"dashboard_leader", nil, 1}, // one process on SQLite always runs the schedulers
		{"dashboard_storage_writes_failing", nil, 0},
		{"dashboard_disk_free_bytes", nil, 1 << 40},
		{"dashboard_build_info", []string{"version=test"}, 1},
	}
	for _, tt := range tests {
		if got := valueOf(fams, tt.name, tt.labels...); got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	// The verification's own call to Tensfer is stored as a sandbox API call.
	if got := valueOf(fams, "dashboard_ingest_total", "env=sandbox", "source=api_call", "outcome=stored"); got < 1 {
		t.Errorf("the verification's Tensfer call was not counted: %v", got)
	}
	// Every stored or duplicate input went through a group commit.
	commits := fams["dashboard_ingest_commit_events"].GetMetric()[0].GetHistogram()
	if commits.GetSampleCount() < 1 || commits.GetSampleSum() < 7 {
		t.Errorf("group commits: %d transactions of %v inputs, want at least 7 inputs", commits.GetSampleCount(), commits.GetSampleSum())
	}
	problems, err := promlint.New(strings.NewReader(text)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

// TestMetricsNeverShowSecretsOrIDs plants every kind of secret and identifier the dashboard
// handles, drives traffic that carries them, and finds none of them in the scrape.
func TestMetricsNeverShowSecretsOrIDs(t *testing.T) {
	app := newTestApp(t)
	admin := app.addToken("admin", auth.ScopeAdmin)
	prom := app.addToken("prometheus", auth.ScopeMetricsRead)
	reporter := app.addToken("reporter", auth.ScopeEventsWrite)
	decide := app.addToken("app", auth.ScopeRolloutDecide)
	planted := map[string]string{
		"secret key":     "sk_production_PLANTEDsecret0001",
		"public key":     "pk_production_PLANTEDpublic0002",
		"client token":   "ct_production_PLANTEDclient0003",
		"admin token":    admin,
		"metrics token":  prom,
		"reporter token": reporter,
		"user email":     "planted.person@example.com",
		"user id":        "user_PLANTED_0004",
		"request id":     "req_PLANTED_0005",
		"webhook id":     "msg_PLANTED_0006",
		"session id":     "sess_PLANTED_0007",
		"error message":  "PLANTED error text 0008",
		"path":           "/v1/PLANTED/0009",
		"attribute":      "PLANTEDcountry0010",
	}
	if res := app.patchEnv(admin, "production", map[string]any{"secret_key": planted["secret key"], "public_key": planted["public key"],
		"client_token": planted["client token"]}); res.StatusCode != 200 {
		t.Fatalf("keys: %d %s", res.StatusCode, res.body)
	}
	planted["webhook secret"] = app.withSecret("production")
	app.addUser(planted["user email"], db.RoleOperator)
	c := app.client()
	c.postForm("/login", url.Values{"email": {planted["user email"]}, "password": {testPassword}})
	c.postForm("/login", url.Values{"email": {planted["user email"]}, "password": {"wrong password, twice"}})

	var requestIDs []string
	keep := func(res response) { requestIDs = append(requestIDs, res.Header.Get("X-Request-Id")) }
	body := `{"type":"payment.cancelled","request_id":"` + planted["request id"] + `","data":{"user_id":"` + planted["user id"] + `"}}`
	keep(app.sendWebhook("production", planted["webhook secret"], planted["webhook id"], body))
	keep(app.sendWebhook("production", "whsec_"+strings.Repeat("A", 43)+"=", planted["webhook id"]+"x", body))
	beacon := fmt.Sprintf(`{"event":"initialization_error","event_id":"e1","session_id":%q,"user_id":%q,"request_id":%q,"error":{"message":%q}}`,
		planted["session id"], planted["user id"], planted["request id"], planted["error message"])
	res, err := http.Post(app.url+"/callbacks/production", "text/plain", strings.NewReader(beacon))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	requestIDs = append(requestIDs, res.Header.Get("X-Request-Id"))
	keep(app.api(http.MethodPost, "/api/v1/api-calls", reporter, jsonBody(map[string]any{"env": "production", "method": "POST", "path": planted["path"],
		"status": 503, "request_id": planted["request id"], "error_message": planted["error message"], "user_id": planted["user id"]})))
	keep(app.api(http.MethodGet, "/api/v1/rollout/decide?user_id="+planted["user id"]+"&attr.country="+planted["attribute"], decide, nil))
	keep(app.api(http.MethodGet, "/api/v1/lookup/"+planted["request id"], admin, nil))
	keep(app.api(http.MethodGet, "/callbacks/production/return?request_id="+planted["request id"]+"&user_id="+planted["user id"], "", nil))

	text, _ := app.scrapeMetrics(t, prom)
	for what, v := range planted {
		if strings.Contains(text, v) {
			t.Errorf("the scrape shows the %s %q", what, v)
		}
	}
	for _, id := range requestIDs {
		if id == "" || strings.Contains(text, id) {
			t.Errorf("the scrape shows a request id (or a request had none): %q", id)
		}
	}
	for _, s := range []string{"PLANTED", "req_", "tfd_", "whsec_", "@", "127.0.0.1"} {
		if strings.Contains(text, s) {
			t.Errorf("the scrape contains %q", s)
		}
	}
}

// TestMetricsLabelsStayBoundedUnderRandomInput sends requests naming random environments and
// paths: every label value in the scrape is from its closed list, and a second, larger round of
// other random names adds no series.
func TestMetricsLabelsStayBoundedUnderRandomInput(t *testing.T) {
	app := newTestApp(t)
	prom := app.addToken("prometheus", auth.ScopeMetricsRead)
	decide := app.addToken("app", auth.ScopeRolloutDecide)
	reporter := app.addToken("reporter", auth.ScopeEventsWrite)
	secret := app.withSecret("sandbox")
	word := func() string {
		const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_."
		b := make([]byte, 4+rand.IntN(12))
		for i := range b {
			b[i] = letters[rand.IntN(len(letters))]
		}
		return string(b)
	}
	round := func(n int) {
		for range n {
			env := word()
			app.sendWebhook(env, secret, word(), `{"type":"x"}`)
			app.api(http.MethodPost, "/callbacks/"+env, "", strings.NewReader(`{"event":"screen_loaded"}`))
			app.api(http.MethodGet, "/callbacks/"+env+"/return?event="+word(), "", nil)
			app.api(http.MethodGet, "/"+word()+"/"+word(), "", nil)
			app.api(http.MethodGet, "/api/v1/"+word(), reporter, nil)
			app.api(http.MethodGet, "/api/v1/rollout/decide?user_id="+word()+"&attr."+word()+"="+word(), decide, nil)
			app.api(http.MethodPost, "/api/v1/api-calls", reporter, jsonBody(map[string]any{"env": env, "method": word(), "path": "/" + word(), "status": 200}))
		}
	}
	series := func() map[string]bool {
		_, fams := app.scrapeMetrics(t, prom)
		out := map[string]bool{}
		for name, f := range fams {
			for _, s := range samples(f) {
				key := name
				names := make([]string, 0, len(s.labels))
				for k := range s.labels {
					names = append(names, k)
				}
				slices.Sort(names)
				for _, k := range names {
					v := s.labels[k]
					key += "," + k + "=" + v
					if k == "env" && !slices.Contains(append(metrics.Envs, "off"), v) {
						t.Errorf("%s: env label %q", name, v)
					}
				}
				out[key] = true
			}
		}
		return out
	}
	round(5)
	first := series()
	round(20)
	for k := range series() {
		if !first[k] {
			t.Errorf("random names made a new series: %s", k)
		}
	}
	// They were counted all the same, under "other".
	_, fams := app.scrapeMetrics(t, prom)
	if got := valueOf(fams, "dashboard_ingest_total", "env=other", "source=webhook", "outcome=refused_unknown_env"); got != 25 {
		t.Errorf("webhooks to unknown environments: %v, want 25", got)
	}
}

// TestMetricsTokenFromTheTokensPage: the token page offers metrics:read with its help; a token
// made there with only that scope scrapes /metrics and reads nothing else.
func TestMetricsTokenFromTheTokensPage(t *testing.T) {
	app := newTestApp(t)
	c, _ := app.login(db.RoleAdmin)
	page := c.get("/settings/tokens").doc(t)
	if page.Find(`input[name="scopes"][value="metrics:read"]`).Length() != 1 || !strings.Contains(page.Text(), auth.ScopeHelp[auth.ScopeMetricsRead]) {
		t.Fatal("the tokens page does not offer metrics:read with its help")
	}
	res := c.postForm("/settings/tokens", url.Values{"name": {"prometheus"}, "scopes": {auth.ScopeMetricsRead}})
	secret := strings.TrimSpace(res.doc(t).Find(`[data-testid="token-secret"]`).Text())
	if res.StatusCode != http.StatusCreated || !strings.HasPrefix(secret, auth.TokenPrefix) {
		t.Fatalf("create token: %d", res.StatusCode)
	}
	if _, fams := app.scrapeMetrics(t, secret); fams["dashboard_build_info"] == nil {
		t.Fatal("a metrics:read token's scrape has no dashboard_build_info")
	}
	for _, path := range []string{"/api/v1/events", "/api/v1/rollout", "/api/v1/environments"} {
		if r := app.api(http.MethodGet, path, secret, nil); r.StatusCode != http.StatusForbidden {
			t.Errorf("metrics:read token on %s: %d, want 403", path, r.StatusCode)
		}
	}
	if r := app.api(http.MethodGet, "/metrics", "", nil); r.StatusCode != http.StatusUnauthorized || !strings.Contains(r.body, `"error"`) {
		t.Errorf("/metrics without a token: %d %s", r.StatusCode, r.body)
	}
}
