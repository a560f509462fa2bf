package alerts

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/dbtest"
	"github.com/tensfer-golive/dashboard/internal/diskguard"
	"github.com/tensfer-golive/dashboard/internal/safehttp"
	"github.com/tensfer-golive/dashboard/internal/secrets"
	"github.com/tensfer-golive/dashboard/internal/tensfer"
	"github.com/tensfer-golive/dashboard/internal/validation"
)

// clock is a settable clock shared by the database and the service.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// receiver is a local alert receiver: it records every request and answers with status.
type receiver struct {
	*httptest.Server
	mu      sync.Mutex
	got     []received
	status  atomic.Int32
	answer  atomic.Value  // string
	arrived chan struct{} // a value per request received
}

type received struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{arrived: make(chan struct{}, 1024)}
	r.status.Store(http.StatusOK)
	r.answer.Store("ok")
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, received{header: req.Header.Clone(), body: b})
		r.mu.Unlock()
		r.arrived <- struct{}{}
		w.WriteHeader(int(r.status.Load()))
		io.WriteString(w, r.answer.Load().(string))
	}))
	t.Cleanup(r.Close)
	return r
}

// await waits until n requests (in all) have arrived, failing after 10 s.
func (r *receiver) await(t *testing.T, n int) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for len(r.requests()) < n {
		select {
		case <-r.arrived:
		case <-timeout:
			t.Fatalf("%d requests arrived, want %d", len(r.requests()), n)
		}
	}
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

// fixture is a service over a real temp-file SQLite with a fake clock.
type fixture struct {
	t     *testing.T
	db    *db.DB
	box   *secrets.Box
	clock *clock
	disk  diskguard.Space
	diskM sync.Mutex
	svc   *Service
	opts  Options
}

func newFixture(t *testing.T, opts ...func(*Options)) *fixture {
	t.Helper()
	st := dbtest.New(t)
	dir := st.Dir
	ctx := context.Background()
	d, err := st.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	key, _, err := secrets.LoadKey(dir, "", "")
	if err != nil {
		t.Fatal(err)
	}
	box, err := secrets.NewBox(key)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, db: d, box: box, clock: &clock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}, disk: diskguard.Space{Free: 1 << 40, Total: 2 << 40}}
	d.SetClock(f.clock.Now)
	for _, o := range opts {
		o(&f.opts)
	}
	f.svc = f.newService()
	return f
}

// newService builds a service on the fixture's database, as a restart would.
func (f *fixture) newService() *Service {
	f.t.Helper()
	guard := diskguard.New(diskguard.Config{Now: f.clock.Now, Every: time.Nanosecond, Space: func(string) (diskguard.Space, error) {
		f.diskM.Lock()
		defer f.diskM.Unlock()
		return f.disk, nil
	}})
	s, err := New(context.Background(), Config{DB: f.db, Box: f.box, Now: f.clock.Now, UserAgent: "test", PublicURL: "https://dash.example.com/",
		HTTPClient: safehttp.NewClient(safehttp.Options{AllowLoopback: true, Timeout: 5 * time.Second}), AllowLoopbackURLs: true,
		Disk: guard, Options: f.opts, Jitter: func() float64 { return 0.5 }})
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}

func strs(xs ...string) *[]string { return &xs }
func ptr[T any](v T) *T           { return &v }

var testAudit = db.Audit{Actor: "user:1 (ana@example.com)"}

// addChannel creates a channel to url for events and envs, and returns it with its secret.
func (f *fixture) addChannel(name, kind, url string, events, envs []string) (Channel, string) {
	f.t.Helper()
	ch, secret, err := f.svc.Create(context.Background(), Input{Name: &name, Kind: kind, URL: &url, Events: &events, Envs: &envs}, testAudit)
	if err != nil {
		f.t.Fatal(err)
	}
	return ch, secret
}

func (f *fixture) audit(action, target string, after map[string]any) {
	f.t.Helper()
	if err := f.db.InsertAudit(context.Background(), db.Audit{Actor: "user:7 (oncall@example.com)", Action: action, Target: target, After: after}); err != nil {
		f.t.Fatal(err)
	}
}

// payloads are the alerts a receiver got, decoded.
func payloads(t *testing.T, rs []received) []Alert {
	t.Helper()
	var out []Alert
	for _, r := range rs {
		var a Alert
		if err := json.Unmarshal(r.body, &a); err != nil {
			t.Fatalf("body %s: %v", r.body, err)
		}
		out = append(out, a)
	}
	return out
}

func (f *fixture) deliverDue() int {
	f.t.Helper()
	n, err := f.svc.DeliverDue(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	return n
}

func TestAuditRowsBecomeAlerts(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	// Before the service ever started on this database: not news.
	if _, err := f.db.W.Exec("DELETE FROM alert_state"); err != nil {
		t.Fatal(err)
	}
	f.audit("rollout.kill", "rollout:production", map[string]any{"state": "killed"})
	f.svc = f.newService()

	rec := newReceiver(t)
	all := []string{EventGuardrailTripped, EventKilled, EventStageAdvanced, EventVerifyFailed}
	f.addChannel("prod", db.AlertKindWebhook, rec.URL+"/hook", all, []string{"production"})
	f.addChannel("sandbox only", db.AlertKindWebhook, rec.URL+"/sandbox", all, []string{"sandbox"})

	f.audit("rollout.advance", "rollout:production", map[string]any{"stage": 2, "percent": 5})
	f.audit("rollout.pause", "rollout:production", map[string]any{"state": "paused"}) // not worth a page
	f.audit("rollout.guardrail_breach", "rollout:production", map[string]any{"state": "paused", "held": "guardrail breached: init errors: 9 of 50 (18.0 %) over 15m is above the 5.0 % limit",
		"figures": map[string]any{"init_errors": map[string]any{"bad": 9, "total": 50}}})
	f.audit("environment.verify", "environment:production", map[string]any{"outcome": "ok", "detail": "fine"})
	f.audit("environment.verify", "environment:production", map[string]any{"outcome": "wrong_key", "detail": "Tensfer rejected the production secret key (…ab12).", "request_id": "req_9"})
	f.audit("rollout.kill", "rollout:production", map[string]any{"state": "killed"})
	f.audit("environment.verify", "environment:sandbox", map[string]any{"outcome": "unreachable", "detail": "Could not reach it."})

	if err := f.svc.FollowAudit(ctx); err != nil {
		t.Fatal(err)
	}
	if n := f.deliverDue(); n != 5 {
		t.Fatalf("delivered %d, want 5 (4 to production, 1 to sandbox)", n)
	}
	var prod, sandbox []Alert
	for _, a := range payloads(t, rec.requests()) {
		if a.Env == "sandbox" {
			sandbox = append(sandbox, a)
		} else {
			prod = append(prod, a)
		}
	}
	want := []struct{ typ, title string }{
		{EventStageAdvanced, "Rollout advanced to stage 2 (5 % of users in production)"},
		{EventGuardrailTripped, "Guardrail tripped: the production rollout is paused"},
		{EventVerifyFailed, "Key verification failed in production (wrong key)"},
		{EventKilled, "Kill switch: the production rollout was killed"},
	}
	if len(prod) != len(want) {
		t.Fatalf("production alerts %+v, want %d", prod, len(want))
	}
	for i, w := range want {
		if prod[i].Type != w.typ || prod[i].Title != w.title || prod[i].Status != StatusFiring || !strings.HasPrefix(prod[i].URL, "https://dash.example.com/") {
			t.Errorf("alert %d = %s %q %s %s, want %s %q", i, prod[i].Type, prod[i].Title, prod[i].Status, prod[i].URL, w.typ, w.title)
		}
	}
	if !strings.Contains(prod[1].Text, "18.0 %") || !strings.Contains(prod[2].Text, "req_9") || !strings.Contains(prod[3].Text, "oncall@example.com") {
		t.Errorf("texts do not carry the figures, the request_id and who: %q / %q / %q", prod[1].Text, prod[2].Text, prod[3].Text)
	}
	if len(sandbox) != 1 || sandbox[0].Type != EventVerifyFailed {
		t.Errorf("sandbox channel got %+v, want only the sandbox verification failure", sandbox)
	}

	// A restart neither repeats nor loses: the cursor was stored with the deliveries.
	f.svc = f.newService()
	if err := f.svc.FollowAudit(ctx); err != nil {
		t.Fatal(err)
	}
	if n := f.deliverDue(); n != 0 {
		t.Errorf("after a restart %d deliveries were made again", n)
	}
	f.audit("rollout.kill", "rollout:production", nil)
	if err := f.svc.FollowAudit(ctx); err != nil {
		t.Fatal(err)
	}
	if n := f.deliverDue(); n != 1 {
		t.Errorf("a kill after the restart: %d deliveries, want 1", n)
	}
}

func TestChannelChoosesEventsAndDisabledChannelsGetNothing(t *testing.T) {
	f := newFixture(t)
	rec := newReceiver(t)
	f.addChannel("kills", db.AlertKindSlack, rec.URL+"/kills", []string{EventKilled}, []string{"sandbox", "production"})
	off, _ := f.addChannel("off", db.AlertKindSlack, rec.URL+"/off", []string{EventKilled, EventStageAdvanced}, []string{"production"})
	if _, _, err := f.svc.Update(context.Background(), off.ID, Input{Enabled: ptr(false)}, testAudit); err != nil {
		t.Fatal(err)
	}
	f.audit("rollout.advance", "rollout:production", map[string]any{"stage": 1, "percent": 1})
	f.audit("rollout.kill", "rollout:production", nil)
	if err := f.svc.FollowAudit(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.deliverDue()
	rs := rec.requests()
	if len(rs) != 1 {
		t.Fatalf("got %d requests, want the kill to the one enabled channel", len(rs))
	}
	var body map[string]string
	if err := json.Unmarshal(rs[0].body, &body); err != nil || len(body) != 1 {
		t.Fatalf("Slack body %s is not {\"text\": ...}", rs[0].body)
	}
	want := "[alert] production: Kill switch: the production rollout was killed. Nobody is sent to production until an admin brings the rollout back to a stage. Killed by oncall@example.com. <https://dash.example.com/rollout|Open the dashboard>"
	if body["text"] != want {
		t.Errorf("Slack text\n%s\nwant\n%s", body["text"], want)
	}
	if rs[0].header.Get("webhook-signature") != "" {
		t.Error("a Slack channel got a Standard Webhooks signature")
	}
}

func TestSlackTextEscapes(t *testing.T) {
	got := SlackText(Alert{Type: EventVerifyFailed, Status: StatusResolved, Env: "sandbox", Title: "a <b> & c", Text: "x > y.", URL: "https://d.example/p?a=1|2"})
	want := "[resolved] sandbox: a &lt;b&gt; &amp; c. x &gt; y. <https://d.example/p?a=1%7C2|Open the dashboard>"
	if got != want {
		t.Errorf("SlackText = %q, want %q", got, want)
	}
}

func TestBurstsFireOnceAndResolveAfterQuiet(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.Window, o.Quiet, o.RefusedWebhooks = 5*time.Minute, 10*time.Minute, 3 })
	ctx := context.Background()
	rec := newReceiver(t)
	f.addChannel("prod", db.AlertKindWebhook, rec.URL, []string{EventRefusedWebhooks}, []string{"production"})
	reject := func(n int, reason string) {
		for range n {
			if _, err := f.db.InsertRejected(ctx, db.RejectedDelivery{Env: "production", Reason: reason}); err != nil {
				t.Fatal(err)
			}
		}
	}
	check := func() []Alert {
		t.Helper()
		before := len(rec.requests())
		if err := f.svc.CheckBursts(ctx); err != nil {
			t.Fatal(err)
		}
		f.deliverDue()
		return payloads(t, rec.requests()[before:])
	}

	reject(5, db.RejectMissingHeader) // not webhooks: never a burst
	reject(2, db.RejectNoMatchingSignature)
	if got := check(); len(got) != 0 {
		t.Fatalf("below the threshold: %+v", got)
	}
	reject(1, db.RejectTimestampSkew)
	got := check()
	if len(got) != 1 || got[0].Status != StatusFiring || got[0].Type != EventRefusedWebhooks || got[0].Env != "production" {
		t.Fatalf("at the threshold: %+v, want one firing alert", got)
	}
	if !strings.Contains(got[0].Text, "3 webhook deliveries to production were refused in the last 5m (no_matching_signature 2, timestamp_skew 1)") || !strings.Contains(got[0].Text, "rotated") {
		t.Errorf("text %q", got[0].Text)
	}
	steps := []struct {
		advance time.Duration
		reject  int
		want    string // "" none, else the status of the one alert
	}{
		{time.Minute, 5, ""},             // still going: one incident, one alert
		{6 * time.Minute, 0, ""},         // quiet begins
		{4 * time.Minute, 3, ""},         // back above before the quiet period ends: the same incident
		{6 * time.Minute, 0, ""},         // quiet again
		{9 * time.Minute, 0, ""},         // not yet quiet for 10 minutes
		{time.Minute, 0, StatusResolved}, // now it is
		{time.Minute, 0, ""},             // over
		{time.Minute, 3, StatusFiring},   // a new incident
		{time.Minute, 0, ""},             // still above within the window
	}
	for i, st := range steps {
		f.clock.Add(st.advance)
		reject(st.reject, db.RejectNoMatchingSignature)
		got := check()
		switch {
		case st.want == "" && len(got) != 0:
			t.Fatalf("step %d: %+v, want no alert", i, got)
		case st.want != "" && (len(got) != 1 || got[0].Status != st.want):
			t.Fatalf("step %d: %+v, want one %s alert", i, got, st.want)
		}
		if st.want == StatusResolved && (got[0].Data["peak"] != float64(8) || !strings.Contains(got[0].Title, "back to normal")) {
			t.Errorf("resolved alert %+v, want peak 8", got[0])
		}
	}
	// The burst's state is stored: a restart does not fire the going incident again.
	f.svc = f.newService()
	if got := check(); len(got) != 0 {
		t.Errorf("after a restart: %+v", got)
	}
}

func TestInitErrorAndDiskBursts(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.InitErrors, o.Quiet = 2, time.Minute })
	ctx := context.Background()
	rec := newReceiver(t)
	f.addChannel("all", db.AlertKindWebhook, rec.URL, []string{EventInitErrors, EventDiskRefusing}, []string{"sandbox"})
	ing := db.NewIngester(f.db, db.IngestOptions{})
	ing.Start()
	defer ing.Close()
	for i := range 2 {
		if _, err := ing.Submit(ctx, []db.EventInput{{Source: db.SourceCallback, Env: "sandbox", Type: "initialization_error", IsError: true,
			Payload: []byte(`{}`), ExternalID: string(rune('a' + i))}}); err != nil {
			t.Fatal(err)
		}
	}
	f.diskM.Lock()
	f.disk = diskguard.Space{Free: 100 << 20, Total: 100 << 30} // below the 512 MiB soft watermark
	f.diskM.Unlock()
	if err := f.svc.CheckBursts(ctx); err != nil {
		t.Fatal(err)
	}
	f.deliverDue()
	got := payloads(t, rec.requests())
	if len(got) != 2 || got[0].Type != EventInitErrors || got[1].Type != EventDiskRefusing || got[1].Env != "" {
		t.Fatalf("got %+v, want an init-error burst in sandbox and the disk (for any environment)", got)
	}
	if !strings.Contains(got[1].Title, "disk is low") || !strings.Contains(got[1].Text, "100MiB free") {
		t.Errorf("disk alert %q: %q", got[1].Title, got[1].Text)
	}
	f.diskM.Lock()
	f.disk = diskguard.Space{Free: 50 << 30, Total: 100 << 30}
	f.diskM.Unlock()
	f.clock.Add(10 * time.Minute) // the init errors leave the window too
	for range 2 {
		if err := f.svc.CheckBursts(ctx); err != nil {
			t.Fatal(err)
		}
		f.clock.Add(time.Minute)
	}
	f.deliverDue()
	got = payloads(t, rec.requests())[2:]
	if len(got) != 2 || got[0].Status != StatusResolved || got[1].Status != StatusResolved {
		t.Fatalf("after the quiet period: %+v, want both resolved", got)
	}
}

func TestRetryScheduleThenFailed(t *testing.T) {
	for n, want := range map[int]time.Duration{1: 40 * time.Second, 2: 80 * time.Second, 3: 160 * time.Second, 4: 320 * time.Second} {
		if got := Backoff(n, 40*time.Second, 0.5); got != want {
			t.Errorf("Backoff(%d) = %s, want %s", n, got, want)
		}
	}
	if lo, hi := Backoff(1, 40*time.Second, 0), Backoff(1, 40*time.Second, 0.999999); lo != 32*time.Second || hi < 47*time.Second || hi > 48*time.Second {
		t.Errorf("jitter range %s..%s, want 32s..48s", lo, hi)
	}

	f := newFixture(t)
	rec := newReceiver(t)
	rec.status.Store(http.StatusBadGateway)
	rec.answer.Store(strings.Repeat("x", 1000))
	ch, _ := f.addChannel("flaky", db.AlertKindWebhook, rec.URL, []string{EventKilled}, []string{"production"})
	f.audit("rollout.kill", "rollout:production", nil)
	if err := f.svc.FollowAudit(context.Background()); err != nil {
		t.Fatal(err)
	}
	var total time.Duration
	for i, wait := range []time.Duration{0, 40 * time.Second, 80 * time.Second, 160 * time.Second, 320 * time.Second} {
		f.clock.Add(wait - time.Second)
		if wait > 0 && f.deliverDue() != 0 {
			t.Fatalf("attempt %d was made a second before it was due", i+1)
		}
		f.clock.Add(time.Second)
		total += wait
		if n := f.deliverDue(); n != 1 {
			t.Fatalf("attempt %d: %d deliveries tried", i+1, n)
		}
	}
	if total != 600*time.Second {
		t.Errorf("five attempts spread over %s, want 10m", total)
	}
	f.clock.Add(time.Hour)
	if n := f.deliverDue(); n != 0 {
		t.Errorf("a sixth attempt was made")
	}
	rows, err := f.svc.Deliveries(context.Background(), ch.ID, 10)
	if err != nil || len(rows) != 1 {
		t.Fatalf("deliveries %v %v", rows, err)
	}
	if rows[0].State != db.AlertFailed || rows[0].Attempts != 5 || rows[0].Last.Status != http.StatusBadGateway || len(rows[0].Last.Answer) != maxAnswer ||
		rows[0].Last.Error != "answered 502 Bad Gateway" {
		t.Errorf("delivery %+v", rows[0])
	}
	ats, err := f.db.AlertAttempts(context.Background(), rows[0].ID)
	if err != nil || len(ats) != 5 {
		t.Fatalf("attempts %d %v, want 5 recorded", len(ats), err)
	}
	// Every try has the same webhook-id, and a signature over its own timestamp.
	rs := rec.requests()
	for _, r := range rs[1:] {
		if r.header.Get("webhook-id") != rs[0].header.Get("webhook-id") || r.header.Get("webhook-timestamp") == rs[0].header.Get("webhook-timestamp") {
			t.Errorf("retry headers %v vs first %v", r.header, rs[0].header)
		}
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	f := newFixture(t)
	rec := newReceiver(t)
	rec.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "300")
		w.WriteHeader(http.StatusTooManyRequests)
	})
	f.addChannel("busy", db.AlertKindSlack, rec.URL, []string{EventKilled}, []string{"production"})
	f.audit("rollout.kill", "rollout:production", nil)
	if err := f.svc.FollowAudit(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.deliverDue()
	f.clock.Add(299 * time.Second)
	if f.deliverDue() != 0 {
		t.Error("tried again before Retry-After passed")
	}
	f.clock.Add(time.Second)
	if f.deliverDue() != 1 {
		t.Error("not tried again once Retry-After passed")
	}
}

func TestRestartResumesPendingDelivery(t *testing.T) {
	f := newFixture(t)
	rec := newReceiver(t)
	f.addChannel("ops", db.AlertKindWebhook, rec.URL, []string{EventKilled}, []string{"production"})
	f.audit("rollout.kill", "rollout:production", nil)
	if err := f.svc.FollowAudit(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The process stops before any worker picks the delivery up; a new one starts.
	f.svc = f.newService()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.svc.Run(ctx); close(done) }()
	rec.await(t, 1)
	cancel()
	<-done
	got := payloads(t, rec.requests())
	if len(got) != 1 || got[0].Type != EventKilled {
		t.Fatalf("after the restart the receiver got %+v, want the kill once", got)
	}
}

func TestFullQueueNeverBlocksAndNothingIsLost(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.QueueSize, o.Every = 1, 10*time.Millisecond })
	rec := newReceiver(t)
	f.addChannel("ops", db.AlertKindWebhook, rec.URL, []string{EventKilled, EventStageAdvanced}, []string{"production"})
	for i := range 3 {
		f.audit("rollout.advance", "rollout:production", map[string]any{"stage": i + 1, "percent": i + 1})
	}
	// No worker runs: the first delivery fills the queue, the others must not wait for room.
	followed := make(chan error, 1)
	go func() { followed <- f.svc.FollowAudit(context.Background()) }()
	select {
	case err := <-followed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("detection blocked on the full queue")
	}
	if got := f.svc.Dropped(); got != 2 {
		t.Errorf("dropped %d, want 2", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.svc.Run(ctx); close(done) }()
	rec.await(t, 3)
	cancel()
	<-done
	seen := map[string]bool{}
	for _, a := range payloads(t, rec.requests()) {
		seen[a.Title] = true
	}
	if len(seen) != 3 || len(rec.requests()) != 3 {
		t.Errorf("delivered %d requests, %d distinct alerts; want each of 3 once", len(rec.requests()), len(seen))
	}
}

func TestDisabledChannelsPendingDeliveryFails(t *testing.T) {
	f := newFixture(t)
	rec := newReceiver(t)
	ch, _ := f.addChannel("ops", db.AlertKindWebhook, rec.URL, []string{EventKilled}, []string{"production"})
	f.audit("rollout.kill", "rollout:production", nil)
	if err := f.svc.FollowAudit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.Update(context.Background(), ch.ID, Input{Enabled: ptr(false)}, testAudit); err != nil {
		t.Fatal(err)
	}
	f.deliverDue()
	rows, _ := f.svc.Deliveries(context.Background(), ch.ID, 5)
	if len(rec.requests()) != 0 || len(rows) != 1 || rows[0].State != db.AlertFailed || !strings.Contains(rows[0].Last.Error, "disabled") {
		t.Errorf("requests %d, delivery %+v", len(rec.requests()), rows)
	}
}

func TestTestDeliveryIsSignedAndScrubbed(t *testing.T) {
	f := newFixture(t)
	rec := newReceiver(t)
	ch, secret := f.addChannel("ops", db.AlertKindWebhook, rec.URL+"/T0/B0/sEcReTtOkEn?k=v", []string{EventKilled}, []string{"production"})
	if !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("secret %q", secret)
	}
	f.clock.Set(time.Now().UTC()) // the receiver checks the timestamp against its own clock
	rec.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		key, _ := tensfer.ParseSecret(secret)
		if _, err := tensfer.Verify([][]byte{key}, r.Header, body, time.Now(), 0); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		http.Error(w, "Cannot POST "+r.URL.RequestURI(), http.StatusNotFound) // an echo of the path, as Express does
	})
	res, err := f.svc.Test(context.Background(), ch.ID, testAudit)
	if err != nil {
		t.Fatal(err)
	}
	if res.Delivered || res.Status != http.StatusNotFound || strings.Contains(res.Answer, "sEcReTtOkEn") || !strings.Contains(res.Answer, "[channel URL path]") {
		t.Errorf("test result %+v: the signature should verify and the echoed path be scrubbed", res)
	}
	rows, _ := f.svc.Deliveries(context.Background(), ch.ID, 5)
	if len(rows) != 1 || rows[0].Type != EventTest || rows[0].State != db.AlertFailed {
		t.Errorf("a test is one recorded try: %+v", rows)
	}
}

func TestUnreachableChannelErrorNamesNoURL(t *testing.T) {
	f := newFixture(t)
	rec := newReceiver(t)
	target := rec.URL + "/services/T0/B0/sEcReT"
	rec.Close() // nothing listens any more
	ch, _ := f.addChannel("gone", db.AlertKindSlack, target, []string{EventKilled}, []string{"production"})
	res, err := f.svc.Test(context.Background(), ch.ID, testAudit)
	if err != nil {
		t.Fatal(err)
	}
	if res.Delivered || res.Error == "" || strings.Contains(res.Error, "sEcReT") || strings.Contains(res.Error, "/services") {
		t.Errorf("error %q must say what failed without the URL's path", res.Error)
	}
}

func TestChannelInputIsValidated(t *testing.T) {
	f := newFixture(t)
	f.svc.cfg.AllowLoopbackURLs = false
	ok := Input{Name: ptr("ops"), Kind: db.AlertKindSlack, URL: ptr("https://hooks.slack.com/services/T0/B0/x"), Events: strs(EventKilled), Envs: strs("production")}
	tests := []struct {
		name  string
		edit  func(*Input)
		field string
		msg   string
	}{
		{"kind", func(in *Input) { in.Kind = "email" }, "kind", "slack"},
		{"no url", func(in *Input) { in.URL = ptr(" ") }, "url", "paste the URL"},
		{"http", func(in *Input) { in.URL = ptr("http://hooks.example.com/x") }, "url", "URL must use https"},
		{"credentials", func(in *Input) { in.URL = ptr("https://u:p@hooks.example.com/x") }, "url", "user name or password"},
		{"private", func(in *Input) { in.URL = ptr("https://10.1.2.3/hook") }, "url", "points at an internal address (10.1.2.3)"},
		{"metadata", func(in *Input) { in.URL = ptr("https://169.254.169.254/latest") }, "url", "points at an internal address (169.254.169.254)"},
		{"loopback", func(in *Input) { in.URL = ptr("https://localhost:8443/hook") }, "url", "this machine"},
		{"not a URL", func(in *Input) { in.URL = ptr("hooks.slack.com/x") }, "url", "absolute URL"},
		{"no name", func(in *Input) { in.Name = ptr("  ") }, "name", "give the channel a name"},
		{"long name", func(in *Input) { in.Name = ptr(strings.Repeat("n", 81)) }, "name", "at most 80"},
		{"no events", func(in *Input) { in.Events = strs() }, "events", "at least one event"},
		{"unknown event", func(in *Input) { in.Events = strs("rollout.exploded") }, "events", "unknown event"},
		{"test is no event", func(in *Input) { in.Events = strs(EventTest) }, "events", "unknown event"},
		{"no envs", func(in *Input) { in.Envs = strs() }, "environments", "at least one"},
		{"unknown env", func(in *Input) { in.Envs = strs("staging") }, "environments", "unknown environment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := ok
			tt.edit(&in)
			_, _, err := f.svc.Create(context.Background(), in, testAudit)
			var errs validation.Errors
			if !errors.As(err, &errs) || !strings.Contains(errs[tt.field], tt.msg) {
				t.Fatalf("error %v, want %s: …%s…", err, tt.field, tt.msg)
			}
			if strings.Contains(err.Error(), "hooks.slack.com/services") {
				t.Errorf("the message repeats the URL: %v", err)
			}
		})
	}
	chs, _ := f.svc.Channels(context.Background())
	if len(chs) != 0 {
		t.Fatalf("bad input stored %d channels", len(chs))
	}
	if _, _, err := f.svc.Create(context.Background(), ok, testAudit); err != nil {
		t.Fatal(err)
	}
	_, _, err := f.svc.Create(context.Background(), ok, testAudit)
	var errs validation.Errors
	if !errors.As(err, &errs) || !strings.Contains(errs["name"], "exists") {
		t.Errorf("a second channel with the same name: %v", err)
	}
}

func TestUpdateKeepsURLAndRotatesSecret(t *testing.T) {
	f := newFixture(t)
	rec := newReceiver(t)
	ch, first := f.addChannel("ops", db.AlertKindWebhook, rec.URL+"/a", []string{EventKilled}, []string{"production"})
	up, second, err := f.svc.Update(context.Background(), ch.ID, Input{Name: ptr("ops-2"), URL: ptr(""), RotateSecret: true, Version: ch.Version}, testAudit)
	if err != nil {
		t.Fatal(err)
	}
	if up.Name != "ops-2" || up.Fingerprint != ch.Fingerprint || second == "" || second == first || up.Version != ch.Version+1 {
		t.Errorf("updated %+v secret %q", up, second)
	}
	if _, _, err := f.svc.Update(context.Background(), ch.ID, Input{Name: ptr("x"), Version: ch.Version}, testAudit); !errors.Is(err, ErrStale) {
		t.Errorf("stale version: %v", err)
	}
	if _, _, err := f.svc.Update(context.Background(), "ach_nope", Input{Name: ptr("x")}, testAudit); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("missing: %v", err)
	}
	slack, _ := f.addChannel("slack", db.AlertKindSlack, rec.URL+"/s", []string{EventKilled}, []string{"production"})
	var errs validation.Errors
	if _, _, err := f.svc.Update(context.Background(), slack.ID, Input{RotateSecret: true}, testAudit); !errors.As(err, &errs) {
		t.Errorf("rotating a Slack channel's secret: %v", err)
	}
	if err := f.svc.Delete(context.Background(), slack.ID, testAudit); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Delete(context.Background(), slack.ID, testAudit); !errors.Is(err, db.ErrNotFound) {
		t.Errorf("deleting twice: %v", err)
	}
}

func TestMasterKeyRotationResealsChannels(t *testing.T) {
	f := newFixture(t)
	rec := newReceiver(t)
	ch, secret := f.addChannel("ops", db.AlertKindWebhook, rec.URL+"/hook", []string{EventKilled}, []string{"production"})
	f.addChannel("slack", db.AlertKindSlack, rec.URL+"/slack", []string{EventKilled}, []string{"production"})
	newKey, err := secrets.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	newBox, err := secrets.NewBox(newKey)
	if err != nil {
		t.Fatal(err)
	}
	before, err := secrets.CheckSealed(context.Background(), f.db, f.box)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := secrets.RotateMasterKey(context.Background(), f.db, f.box, newBox, db.Audit{Actor: "cli", Action: "master_key.rotate"}); err != nil {
		t.Fatal(err)
	}
	after, err := secrets.CheckSealed(context.Background(), f.db, newBox)
	if err != nil || after != before || before != 3 {
		t.Fatalf("sealed values %d before, %d after (%v); want the 3 channel values (two URLs, one secret)", before, after, err)
	}
	f.box = newBox
	f.svc = f.newService()
	got, _ := f.svc.Channel(context.Background(), ch.ID)
	if got.Fingerprint == ch.Fingerprint || got.Fingerprint != newBox.Fingerprint([]byte(rec.URL+"/hook")) {
		t.Errorf("fingerprint %s not recomputed under the new key", got.Fingerprint)
	}
	f.clock.Set(time.Now().UTC())
	rec.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		key, _ := tensfer.ParseSecret(secret)
		if _, err := tensfer.Verify([][]byte{key}, r.Header, body, time.Now(), 0); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
		}
	})
	if res, err := f.svc.Test(context.Background(), ch.ID, testAudit); err != nil || !res.Delivered {
		t.Errorf("after rotation the channel sends signed with its secret: %+v %v", res, err)
	}
}

func TestPurgeKeepsPendingDeliveries(t *testing.T) {
	f := newFixture(t)
	rec := newReceiver(t)
	ch, _ := f.addChannel("ops", db.AlertKindSlack, rec.URL, []string{EventKilled}, []string{"production"})
	if _, err := f.svc.Test(context.Background(), ch.ID, testAudit); err != nil {
		t.Fatal(err)
	}
	rec.status.Store(http.StatusInternalServerError)
	f.audit("rollout.kill", "rollout:production", nil)
	if err := f.svc.FollowAudit(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.deliverDue() // fails once: stays pending
	f.clock.Add(31 * 24 * time.Hour)
	n, err := f.svc.PurgeOld(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("purged %d (%v), want the finished test delivery", n, err)
	}
	rows, _ := f.svc.Deliveries(context.Background(), "", 10)
	if len(rows) != 1 || rows[0].State != db.AlertPending {
		t.Errorf("left %+v, want the pending delivery", rows)
	}
}

// TestLockedSecondFactorIsAlerted: the audit row of a locked second factor reaches the channels
// that chose it, whatever their environments, once.
func TestLockedSecondFactorIsAlerted(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	rec := newReceiver(t)
	f.addChannel("security", db.AlertKindWebhook, rec.URL, []string{EventCodesLocked}, []string{"production"})
	if err := f.db.InsertAudit(ctx, db.Audit{Actor: "user:7 (ana@example.com)", Action: "auth.second_factor_locked", Target: "user:7",
		After: map[string]any{"wrong_codes": 5, "lockout": 1, "locked_for_s": 900, "locked_until": "2026-03-02T09:15:10Z"}}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := f.svc.FollowAudit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	f.deliverDue()
	got := payloads(t, rec.requests())
	if len(got) != 1 || got[0].Type != EventCodesLocked || got[0].Env != "" || !strings.Contains(got[0].Text, "5 wrong two-factor codes") ||
		!strings.Contains(got[0].Text, "2026-03-02T09:15:10Z") {
		t.Fatalf("got %+v, want one alert of the lock", got)
	}
}

// TestTwoInstancesDeliverEachAlertOnce: two services on one database (two instances, or a leader
// and one that has not yet noticed it lost the lead) deliver the due alerts at the same time;
// the claim in the database gives each delivery to one of them, so the receiver gets each once.
func TestTwoInstancesDeliverEachAlertOnce(t *testing.T) {
	f := newFixture(t)
	rec := newReceiver(t)
	f.addChannel("ops", db.AlertKindWebhook, rec.URL, []string{EventKilled, EventStageAdvanced}, []string{"production"})
	for i := range 10 {
		action := "rollout.kill"
		if i%2 == 1 {
			action = "rollout.advance"
		}
		f.audit(action, "rollout:production", map[string]any{"n": i})
	}
	if err := f.svc.FollowAudit(context.Background()); err != nil {
		t.Fatal(err)
	}
	other := f.newService()
	var wg sync.WaitGroup
	tried := make([]int, 2)
	for k, s := range []*Service{f.svc, other} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := s.DeliverDue(context.Background())
			if err != nil {
				t.Error(err)
			}
			tried[k] = n
		}()
	}
	wg.Wait()
	got := payloads(t, rec.requests())
	seen := map[string]int{}
	for _, p := range got {
		seen[p.ID]++
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("alert %s delivered %d times", id, n)
		}
	}
	if len(got) != tried[0]+tried[1] || len(seen) == 0 {
		t.Fatalf("the receiver got %d alerts (%d distinct); the instances tried %v", len(got), len(seen), tried)
	}
}
