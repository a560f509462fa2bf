package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/pgtest"
	"github.com/tensfer-golive/dashboard/internal/secrets"
	"github.com/tensfer-golive/dashboard/internal/tensfer"
)

// instance is one `dashboard serve` process of a cluster test.
type instance struct {
	name   string
	cmd    *exec.Cmd
	base   string // http://ADDR
	logs   *lockedBuffer
	exited chan struct{}
}

// startInstance starts `dashboard serve` with args; ready waits for its READY=1.
func startInstance(t *testing.T, name string, args ...string) (*instance, func()) {
	t.Helper()
	notify := listenNotify(t)
	in := &instance{name: name, logs: &lockedBuffer{}, exited: make(chan struct{})}
	in.cmd = dashboardCommand(t, notify, append([]string{"serve", "--addr", "127.0.0.1:0", "--log-format", "json"}, args...)...)
	in.cmd.Stdout, in.cmd.Stderr = io.Discard, in.logs
	if err := in.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { in.cmd.Wait(); close(in.exited) }()
	t.Cleanup(in.kill)
	return in, func() {
		t.Helper()
		in.base = "http://" + servingAddr(t, notify.await(t, "READY=1", in.exited, in.logs))
	}
}

// kill ends the process with SIGKILL (no shutdown code runs) and waits for it.
func (in *instance) kill() {
	in.cmd.Process.Kill()
	<-in.exited
}

// alive reports whether the process still runs.
func (in *instance) alive() bool {
	select {
	case <-in.exited:
		return false
	default:
		return true
	}
}

// eventually polls cond until it holds or limit passes, and returns how long it took; what
// names the condition in the failure.
func eventually(t *testing.T, limit time.Duration, what string, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		ok, got := cond()
		if ok {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %s; last seen: %s", what, limit, got)
		}
		time.Sleep(20 * time.Millisecond) // the poll's pace, not an assertion
	}
}

// call sends a JSON request with a bearer token (none when token is "") and returns the status
// and body; extra headers come in pairs.
func call(t *testing.T, method, u, token, body string, headers ...string) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, u, r)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := clusterClient.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

var clusterClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}

// browser is a signed-in user's cookie jar; the instances all serve on 127.0.0.1, so one jar's
// cookie goes to each of them, as behind a balancer.
type browser struct{ hc *http.Client }

func newBrowser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{hc: &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// signIn posts the sign-in form to base and returns the status (303 when signed in).
func (b *browser) signIn(t *testing.T, base, email, password string) int {
	t.Helper()
	res, err := b.hc.PostForm(base+"/login", url.Values{"email": {email}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// get returns the status of GET base+path with the browser's cookie.
func (b *browser) get(t *testing.T, u string) int {
	t.Helper()
	res, err := b.hc.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// post posts a form (same-origin, as the page does) and returns the status.
func (b *browser) post(t *testing.T, u string, form url.Values) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := b.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// feedStream is an open live feed (GET /events/stream) whose row ids are collected as they come.
type feedStream struct {
	mu     sync.Mutex
	ids    []int64
	seen   map[int64]time.Time
	cancel context.CancelFunc
	done   chan struct{}
}

// openFeed opens the live feed of base with the browser's session, resuming after lastID when it
// is not "".
func (b *browser) openFeed(t *testing.T, base, lastID string) *feedStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/events/stream", nil)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	hc := *b.hc
	hc.Timeout = 0
	res, err := hc.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		cancel()
		t.Fatalf("live feed on %s: status %d", base, res.StatusCode)
	}
	s := &feedStream{seen: map[int64]time.Time{}, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		var id int64
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "id: "):
				id, _ = strconv.ParseInt(strings.TrimPrefix(line, "id: "), 10, 64)
			case line == "event: row" && id > 0:
				s.mu.Lock()
				s.ids = append(s.ids, id)
				s.seen[id] = time.Now()
				s.mu.Unlock()
			case line == "":
				id = 0
			}
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *feedStream) close() {
	s.cancel()
	<-s.done
}

// received returns a copy of the ids received so far, in arrival order.
func (s *feedStream) received() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.ids)
}

// has reports when id arrived.
func (s *feedStream) has(id int64) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.seen[id]
	return at, ok
}

// checkFeed fails the test unless ids increase strictly (nothing twice, nothing out of order) and
// holds every id of want.
func checkFeed(t *testing.T, what string, ids []int64, want []int64) {
	t.Helper()
	for i := 1; i < len(ids); i++ {
		if ids[i] <= ids[i-1] {
			t.Errorf("%s: id %d after %d (position %d): not in increasing order or repeated", what, ids[i], ids[i-1], i)
			return
		}
	}
	missing := 0
	for _, id := range want {
		if _, ok := slices.BinarySearch(ids, id); !ok {
			if missing++; missing <= 5 {
				t.Errorf("%s: acknowledged event %d never arrived", what, id)
			}
		}
	}
	if missing > 0 {
		t.Errorf("%s: %d of %d acknowledged events missing", what, missing, len(want))
	}
}

// webhookSender signs deliveries for one environment's webhook secret.
type webhookSender struct {
	key []byte
	seq sync.Mutex
	n   int
}

// delivery is one signed webhook, ready to post.
type delivery struct {
	id   string // its webhook-id
	body []byte
	key  []byte
}

// next makes the sender's next delivery, its webhook-id tagged with tag.
func (w *webhookSender) next(tag string) delivery {
	w.seq.Lock()
	w.n++
	n := w.n
	w.seq.Unlock()
	id := fmt.Sprintf("msg_%s_%06d", tag, n)
	body := fmt.Appendf(nil, `{"id":"evt_%s","type":"payment.cancelled","created_at":"2026-03-01T12:00:00Z",`+
		`"request_id":"req_%s","data":{"user_id":"user_%d","payment_id":"pay_%06d","amount":1234,`+
		`"currency":"GBP","reason":"user_cancelled"}}`, id, id, n, n)
	return delivery{id: id, body: body, key: w.key}
}

// post sends the delivery to base and returns the status (0 when no answer came) and the stored
// event id.
func (d delivery) post(base string) (int, int64) {
	req, _ := http.NewRequest(http.MethodPost, base+"/hooks/production", bytes.NewReader(d.body))
	req.Header.Set("Content-Type", "application/json")
	tensfer.SignRequest(req, d.id, time.Now(), d.body, d.key)
	res, err := clusterClient.Do(req)
	if err != nil {
		return 0, 0
	}
	defer res.Body.Close()
	var ans struct{ ID string }
	json.NewDecoder(res.Body).Decode(&ans)
	eid, _ := strconv.ParseInt(ans.ID, 10, 64)
	return res.StatusCode, eid
}

// send posts the next delivery to base and returns the status and the stored event id.
func (w *webhookSender) send(base, tag string) (int, int64) { return w.next(tag).post(base) }

// TestThreeInstances is issue 19's process test: three `dashboard serve` processes started at
// the same moment on one empty PostgreSQL database, each with its own data directory and the
// same master key, then one subtest for each thing that must hold across them.
func TestThreeInstances(t *testing.T) {
	pg := pgtest.New(t) // a cluster of its own: the last subtest crashes it
	if err := pg.CreateDatabase("dash"); err != nil {
		t.Fatal(err)
	}
	dbURL := pg.DatabaseURL("dash")
	key, err := secrets.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	keyEnv := map[string]string{"DASHBOARD_MASTER_KEY": key.Encode(), "DASHBOARD_DATABASE_URL": dbURL}

	// All three start at once against the empty database.
	var ins []*instance
	var waits []func()
	for _, name := range []string{"A", "B", "C"} {
		in, ready := startInstance(t, name, "--data", t.TempDir(), "--database-url", dbURL, "--master-key", key.Encode())
		ins, waits = append(ins, in), append(waits, ready)
	}
	for _, ready := range waits {
		ready()
	}
	a, b, c := ins[0], ins[1], ins[2]
	t.Cleanup(func() {
		if t.Failed() {
			for _, in := range ins {
				t.Logf("instance %s log:\n%s", in.name, in.logs)
			}
		}
	})
	sqlDB, err := sql.Open("pgx", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sqlDB.Close() })

	t.Run("all three came up, migrations ran once, another key is refused", func(t *testing.T) {
		var versions []int
		rows, err := sqlDB.Query("SELECT version FROM dashboard_schema")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var v int
			rows.Scan(&v)
			versions = append(versions, v)
		}
		rows.Close()
		if want := db.KnownSchemaVersion(); len(versions) != 1 || versions[0] != want {
			t.Errorf("dashboard_schema holds %v, want one row at version %d", versions, want)
		}
		for _, in := range ins {
			if st, body := call(t, http.MethodGet, in.base+"/readyz", "", ""); st != http.StatusOK {
				t.Errorf("instance %s /readyz: %d %s", in.name, st, body)
			}
		}
		other, err := secrets.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		notify := listenNotify(t)
		cmd := dashboardCommand(t, notify, "serve", "--addr", "127.0.0.1:0", "--data", t.TempDir(), "--database-url", dbURL, "--master-key", other.Encode())
		ctx, cancel := context.WithTimeout(context.Background(), notifyDeadline)
		defer cancel()
		out, err := exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...).CombinedOutput()
		if err == nil {
			t.Fatalf("a fourth instance with another master key started:\n%s", out)
		}
		for _, id := range []string{key.ID, other.ID} {
			if !strings.Contains(string(out), id) {
				t.Errorf("the refusal does not name key id %s:\n%s", id, out)
			}
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	// An admin and an admin token, made with the CLI on a fourth data directory holding the key.
	adminPW := "a long enough password"
	if _, _, err := cli(t, keyEnv, adminPW+"\n", "user", "add", "--data", t.TempDir(), "--email", "ana@example.com", "--role", "admin"); err != nil {
		t.Fatalf("user add: %v", err)
	}
	out, _, err := cli(t, keyEnv, "", "token", "create", "--data", t.TempDir(), "--name", "cluster-test", "--scopes", "admin")
	if err != nil {
		t.Fatalf("token create: %v", err)
	}
	token := out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:]
	token = strings.TrimSpace(token)
	st, body := call(t, http.MethodPost, a.base+"/api/v1/environments/production/webhook-secrets", token, "")
	if st != http.StatusCreated {
		t.Fatalf("create webhook secret on A: %d %s", st, body)
	}
	var created struct{ Secret string }
	json.Unmarshal(body, &created)
	wkey, err := tensfer.ParseSecret(created.Secret)
	if err != nil {
		t.Fatal(err)
	}
	hooks := &webhookSender{key: wkey}
	admin := newBrowser()
	if st := admin.signIn(t, a.base, "ana@example.com", adminPW); st != http.StatusSeeOther {
		t.Fatalf("admin sign-in on A: %d", st)
	}

	t.Run("live feed", func(t *testing.T) {
		onB, onC := admin.openFeed(t, b.base, ""), admin.openFeed(t, c.base, "")
		sent := time.Now()
		st, id := hooks.send(a.base, "live")
		if st != http.StatusOK || id == 0 {
			t.Fatalf("signed webhook to A: status %d, id %d", st, id)
		}
		for _, s := range []struct {
			name string
			f    *feedStream
		}{{"B", onB}, {"C", onC}} {
			var at time.Time
			eventually(t, 5*time.Second, "event "+strconv.FormatInt(id, 10)+" on "+s.name+"'s stream", func() (bool, string) {
				var ok bool
				at, ok = s.f.has(id)
				return ok, fmt.Sprint(s.f.received())
			})
			t.Logf("webhook on A reached the stream on %s in %s", s.name, at.Sub(sent).Round(time.Millisecond))
		}

		// Several writers at once: webhooks to A and B, API-call reports to B and C; streams on
		// every instance, and one on C that is cut mid-load and resumed with Last-Event-ID.
		streams := map[string]*feedStream{"A": admin.openFeed(t, a.base, ""), "B": onB, "C": onC}
		cut := admin.openFeed(t, c.base, "")
		var (
			mu    sync.Mutex
			acked []int64
			wg    sync.WaitGroup
		)
		ack := func(id int64) {
			mu.Lock()
			acked = append(acked, id)
			mu.Unlock()
		}
		const perWriter = 40
		for w := range 6 {
			wg.Go(func() {
				for i := range perWriter {
					switch w % 3 {
					case 0, 1:
						base := []string{a.base, b.base}[w%2]
						st, id := hooks.send(base, fmt.Sprintf("mix%d", w))
						if st != http.StatusOK || id == 0 {
							t.Errorf("writer %d: webhook: status %d", w, st)
							return
						}
						ack(id)
					case 2:
						base := []string{b.base, c.base}[w/3]
						st, body := call(t, http.MethodPost, base+"/api/v1/api-calls", token,
							fmt.Sprintf(`{"env":"production","method":"POST","path":"/payments","status":201,"duration_ms":%d,"request_id":"req_call_%d_%d"}`, i, w, i))
						var ans struct{ ID string }
						json.Unmarshal(body, &ans)
						id, _ := strconv.ParseInt(ans.ID, 10, 64)
						if st != http.StatusCreated || id == 0 {
							t.Errorf("writer %d: api call: %d %s", w, st, body)
							return
						}
						ack(id)
					}
				}
			})
		}
		// Cut the stream on C once it has something, and resume it from its last id while the
		// writers go on.
		eventually(t, 10*time.Second, "a row on the stream to cut", func() (bool, string) { return len(cut.received()) > 3, "" })
		cut.close()
		before := cut.received()
		resumed := admin.openFeed(t, c.base, strconv.FormatInt(before[len(before)-1], 10))
		wg.Wait()
		if t.Failed() {
			return
		}
		slices.Sort(acked)
		newest := acked[len(acked)-1]
		all := func(s *feedStream) func() (bool, string) {
			return func() (bool, string) {
				_, ok := s.has(newest)
				return ok, fmt.Sprintf("%d rows", len(s.received()))
			}
		}
		for name, s := range streams {
			eventually(t, 10*time.Second, "the newest acknowledged event on "+name+"'s stream", all(s))
			checkFeed(t, "stream on "+name, s.received(), acked)
		}
		eventually(t, 10*time.Second, "the newest acknowledged event on the resumed stream", all(resumed))
		first := slices.IndexFunc(acked, func(id int64) bool { return id > before[0] })
		checkFeed(t, "stream on C cut and resumed with Last-Event-ID", append(before, resumed.received()...), acked[first:])
		t.Logf("%d acknowledged writes; each stream saw them once, in order", len(acked))
	})

	t.Run("rollout", func(t *testing.T) {
		decide := func(in *instance, user string) (decision, string) {
			st, body := call(t, http.MethodGet, in.base+"/api/v1/rollout/decide?user_id="+user, token, "")
			var d decision
			if st != http.StatusOK || json.Unmarshal(body, &d) != nil {
				return decision{}, fmt.Sprintf("status %d %s", st, body)
			}
			return d, string(body)
		}
		// A cohort made on B governs the decisions of A and C.
		if st, body := call(t, http.MethodPost, b.base+"/api/v1/rollout/cohorts", token,
			`{"name":"beta","environment":"production","user_ids":["u-beta"]}`); st != http.StatusCreated {
			t.Fatalf("create a cohort on B: %d %s", st, body)
		}
		for _, in := range []*instance{a, c} {
			took := eventually(t, time.Second, "the cohort made on B deciding on "+in.name, func() (bool, string) {
				d, got := decide(in, "u-beta")
				return d.Environment == "production" && d.Reason == "cohort", got
			})
			t.Logf("cohort made on B decided on %s after %s", in.name, took.Round(time.Millisecond))
		}
		// A plan changed on B: A and C decide with its version.
		st, body := call(t, http.MethodPut, b.base+"/api/v1/rollout", token, `{"stages":[{"percent":10,"min_soak":"1h"},{"percent":100}]}`)
		var plan struct{ Version int64 }
		if st != http.StatusOK || json.Unmarshal(body, &plan) != nil || plan.Version == 0 {
			t.Fatalf("change the plan on B: %d %s", st, body)
		}
		for _, in := range []*instance{a, c} {
			eventually(t, time.Second, "the plan changed on B deciding on "+in.name, func() (bool, string) {
				d, got := decide(in, "u-other")
				return d.Version >= plan.Version, got
			})
		}
		// A change on A against that version (auto-advance is off by default) makes the same
		// version stale on C.
		v := strconv.FormatInt(plan.Version, 10)
		if st, body := call(t, http.MethodPut, a.base+"/api/v1/rollout", token, `{"auto_advance":true}`, "If-Match", `"`+v+`"`); st != http.StatusOK {
			t.Fatalf("change on A with the current version: %d %s", st, body)
		}
		for _, req := range []struct{ body, ifMatch string }{{`{"auto_advance":false}`, `"` + v + `"`}, {`{"auto_advance":false,"version":` + v + `}`, ""}} {
			headers := []string{}
			if req.ifMatch != "" {
				headers = []string{"If-Match", req.ifMatch}
			}
			if st, body := call(t, http.MethodPut, c.base+"/api/v1/rollout", token, req.body, headers...); st != http.StatusConflict || !strings.Contains(string(body), "version_conflict") {
				t.Errorf("a stale change on C (%s, If-Match %s): %d %s, want 409 version_conflict", req.body, req.ifMatch, st, body)
			}
		}
		// A kill on A: B and C answer it within a second.
		if st, body := call(t, http.MethodPost, a.base+"/api/v1/rollout/kill", token, ""); st != http.StatusOK {
			t.Fatalf("kill on A: %d %s", st, body)
		}
		for _, in := range []*instance{b, c} {
			took := eventually(t, time.Second, "the kill on A deciding on "+in.name, func() (bool, string) {
				d, got := decide(in, "u-beta")
				return d.Environment == "off" && d.Reason == "killed", got
			})
			t.Logf("kill on A decided on %s after %s", in.name, took.Round(time.Millisecond))
		}
	})

	t.Run("revocation", func(t *testing.T) {
		out, _, err := cli(t, keyEnv, "", "token", "create", "--data", t.TempDir(), "--name", "revocable", "--scopes", "events:read")
		if err != nil {
			t.Fatalf("token create: %v", err)
		}
		revocable := strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:])
		var tokenID int64
		if err := sqlDB.QueryRow("SELECT id FROM api_tokens WHERE name = 'revocable'").Scan(&tokenID); err != nil {
			t.Fatal(err)
		}
		// A viewer signed in on B, her session used on every instance.
		if _, _, err := cli(t, keyEnv, "a viewer's long password\n", "user", "add", "--data", t.TempDir(), "--email", "vic@example.com", "--role", "viewer"); err != nil {
			t.Fatalf("user add: %v", err)
		}
		var viewerID int64
		if err := sqlDB.QueryRow("SELECT id FROM users WHERE email = 'vic@example.com'").Scan(&viewerID); err != nil {
			t.Fatal(err)
		}
		viewer := newBrowser()
		if st := viewer.signIn(t, b.base, "vic@example.com", "a viewer's long password"); st != http.StatusSeeOther {
			t.Fatalf("viewer sign-in on B: %d", st)
		}
		for _, in := range ins {
			// Each instance has the token and the session in its caches before the change.
			if st, body := call(t, http.MethodGet, in.base+"/api/v1/events?limit=1", revocable, ""); st != http.StatusOK {
				t.Fatalf("token on %s before revocation: %d %s", in.name, st, body)
			}
			if st := viewer.get(t, in.base+"/"); st != http.StatusOK {
				t.Fatalf("viewer's session on %s: %d", in.name, st)
			}
		}
		if st := admin.post(t, a.base+"/settings/tokens/"+strconv.FormatInt(tokenID, 10)+"/revoke", nil); st != http.StatusSeeOther {
			t.Fatalf("revoke on A: %d", st)
		}
		for _, in := range ins {
			took := eventually(t, time.Second, "the token revoked on A refused on "+in.name, func() (bool, string) {
				st, body := call(t, http.MethodGet, in.base+"/api/v1/events?limit=1", revocable, "")
				return st == http.StatusUnauthorized, fmt.Sprintf("%d %s", st, body)
			})
			t.Logf("token revoked on A refused on %s after %s", in.name, took.Round(time.Millisecond))
		}
		if st := admin.post(t, a.base+"/settings/users/"+strconv.FormatInt(viewerID, 10)+"/disable", nil); st != http.StatusSeeOther {
			t.Fatalf("disable the viewer on A: %d", st)
		}
		for _, in := range ins {
			took := eventually(t, time.Second, "the disabled viewer's session refused on "+in.name, func() (bool, string) {
				st := viewer.get(t, in.base+"/")
				return st != http.StatusOK, strconv.Itoa(st)
			})
			t.Logf("disabled user's session refused on %s after %s", in.name, took.Round(time.Millisecond))
		}
	})

	t.Run("retired webhook secret", func(t *testing.T) {
		// A second signing secret, made on A; every instance accepts it (and so caches it).
		st, body := call(t, http.MethodPost, a.base+"/api/v1/environments/production/webhook-secrets", token, "")
		if st != http.StatusCreated {
			t.Fatalf("create a second webhook secret on A: %d %s", st, body)
		}
		var second struct{ ID, Secret string }
		json.Unmarshal(body, &second)
		key2, err := tensfer.ParseSecret(second.Secret)
		if err != nil {
			t.Fatal(err)
		}
		other := &webhookSender{key: key2}
		for _, in := range ins {
			if st, _ := other.send(in.base, "second-"+in.name); st != http.StatusOK {
				t.Fatalf("a webhook signed with the new secret on %s: %d", in.name, st)
			}
		}
		if st, body := call(t, http.MethodDelete, a.base+"/api/v1/environments/production/webhook-secrets/"+second.ID, token, ""); st/100 != 2 {
			t.Fatalf("delete the second secret on A: %d %s", st, body)
		}
		for _, in := range ins {
			took := eventually(t, time.Second, "a webhook signed with the deleted secret refused on "+in.name, func() (bool, string) {
				st, _ := other.send(in.base, "gone-"+in.name)
				return st == http.StatusUnauthorized, strconv.Itoa(st)
			})
			t.Logf("the secret deleted on A refused on %s after %s", in.name, took.Round(time.Millisecond))
			if st, _ := hooks.send(in.base, "first-"+in.name); st != http.StatusOK {
				t.Fatalf("the first secret on %s after the second was deleted: %d", in.name, st)
			}
		}
	})

	t.Run("sessions shared", func(t *testing.T) {
		// The admin signed in on A; a balancer sends her next requests to B and C.
		for _, in := range ins {
			if st := admin.get(t, in.base+"/rollout"); st != http.StatusOK {
				t.Errorf("admin session from A on %s: status %d, want 200", in.name, st)
			}
		}
	})

	t.Run("login lockout shared", func(t *testing.T) {
		// Wrong passwords spread over A, B and C add up to one account's lockout, which then
		// holds on all three, even for the right password.
		const pw = "lou's long enough password"
		if _, _, err := cli(t, keyEnv, pw+"\n", "user", "add", "--data", t.TempDir(), "--email", "lou@example.com", "--role", "viewer"); err != nil {
			t.Fatalf("user add: %v", err)
		}
		guesser := newBrowser()
		for i := range 6 {
			in := ins[i%3]
			if st := guesser.signIn(t, in.base, "lou@example.com", fmt.Sprintf("wrong guess %d", i)); st != http.StatusUnauthorized && st != http.StatusTooManyRequests {
				t.Fatalf("wrong password %d on %s: status %d", i, in.name, st)
			}
		}
		for _, in := range ins {
			res, err := guesser.hc.PostForm(in.base+"/login", url.Values{"email": {"lou@example.com"}, "password": {pw}})
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(body), "Too many failed sign-ins for this account") {
				t.Errorf("the right password on %s after 6 wrong ones over A, B and C: status %d, want 429 naming the account's lockout", in.name, res.StatusCode)
			}
		}
	})

	// leaders polls /metrics of the running instances until exactly one reports
	// dashboard_leader 1, and returns it.
	leaders := func(t *testing.T, limit time.Duration, what string) *instance {
		t.Helper()
		var leader *instance
		eventually(t, limit, what, func() (bool, string) {
			leader = nil
			var report []string
			n := 0
			for _, in := range ins {
				if !in.alive() {
					continue
				}
				_, body := call(t, http.MethodGet, in.base+"/metrics", token, "")
				v := "absent"
				for _, line := range strings.Split(string(body), "\n") {
					if strings.HasPrefix(line, "dashboard_leader") {
						v = line[strings.LastIndex(line, " ")+1:]
					}
				}
				if v == "1" {
					n++
					leader = in
				}
				report = append(report, in.name+"="+v)
			}
			return n == 1, strings.Join(report, " ")
		})
		return leader
	}

	t.Run("leader, and kill -9 during load", func(t *testing.T) {
		leader := leaders(t, 30*time.Second, "exactly one instance reporting dashboard_leader 1")
		t.Logf("leader: %s", leader.name)
		// Webhooks from 12 senders spread over the three; the leader is killed after 150
		// acknowledgements, and the other senders go on for 20 more each.
		var killed time.Time
		acked, refused := webhookLoad(t, hooks, ins, 150, func() { leader.kill(); killed = time.Now() }, 20)
		t.Logf("%d deliveries acknowledged around the kill; %v answered otherwise or cut off (status 0)", len(acked), refused)
		checkStoredOnce(t, sqlDB, acked)
		next := leaders(t, 30*time.Second, "another instance leading after the leader's kill -9")
		t.Logf("%s took over as leader %s after the kill", next.name, time.Since(killed).Round(100*time.Millisecond))
	})
	if t.Failed() {
		return
	}

	t.Run("PostgreSQL crash during load", func(t *testing.T) {
		var alive []*instance
		for _, in := range ins {
			if in.alive() {
				alive = append(alive, in)
			}
		}
		ready := func(in *instance, want int) func() (bool, string) {
			return func() (bool, string) {
				st, body := call(t, http.MethodGet, in.base+"/readyz", "", "")
				return st == want, fmt.Sprintf("%d %s", st, body)
			}
		}
		var stopped time.Time
		crash := func() {
			pg.Stop() // immediate shutdown, as in a crash
			stopped = time.Now()
			for _, in := range alive {
				took := eventually(t, 2*time.Second, "/readyz 503 on "+in.name+" with PostgreSQL down", ready(in, http.StatusServiceUnavailable))
				t.Logf("%s: /readyz 503 after the crash (polled %s)", in.name, took.Round(time.Millisecond))
			}
			if err := pg.Restart(); err != nil {
				t.Fatalf("restart PostgreSQL: %v\n%s", err, pg.Log())
			}
			back := time.Now()
			for _, in := range alive {
				eventually(t, 5*time.Second, "/readyz 200 on "+in.name+" after PostgreSQL came back", ready(in, http.StatusOK))
			}
			t.Logf("every instance ready %s after PostgreSQL's restart (down %s)", time.Since(back).Round(time.Millisecond), back.Sub(stopped).Round(time.Millisecond))
		}
		acked, refused := webhookLoad(t, hooks, alive, 100, crash, 20)
		t.Logf("%d deliveries acknowledged around the crash; answered otherwise: %v", len(acked), refused)
		if refused[http.StatusServiceUnavailable] == 0 {
			t.Error("no delivery was answered 503 while PostgreSQL was down: the outage was not exercised")
		}
		for st := range refused {
			if st != http.StatusServiceUnavailable && st != 0 {
				t.Errorf("%d deliveries answered %d around the crash, want 503 (or no answer)", refused[st], st)
			}
		}
		for _, in := range alive {
			if !in.alive() {
				t.Errorf("instance %s exited during PostgreSQL's outage", in.name)
			}
		}
		checkStoredOnce(t, sqlDB, acked)
	})
}

// webhookLoad sends signed webhooks from four senders per instance until after acknowledgements
// in all, then calls disrupt (a kill, a crash) while they go on, and lets each sender still
// running send more deliveries answered 2xx afterwards. It returns the webhook-ids answered 2xx
// and how many deliveries were answered with each other status (0: cut off). A sender whose instance is gone
// (connection refused) stops.
func webhookLoad(t *testing.T, hooks *webhookSender, ins []*instance, after int, disrupt func(), more int) (acked []string, refused map[int]int) {
	t.Helper()
	var (
		mu       sync.Mutex
		wg       sync.WaitGroup
		once     sync.Once
		done     = make(chan struct{}) // disrupt returned
		deadline = time.Now().Add(60 * time.Second)
	)
	refused = map[int]int{}
	for g := range 4 * len(ins) {
		in := ins[g%len(ins)]
		wg.Go(func() {
			extra := 0
			for extra < more {
				if time.Now().After(deadline) {
					t.Errorf("sender %d on %s: still sending after 60s", g, in.name)
					return
				}
				w := hooks.next(fmt.Sprintf("load%02d", g))
				st, _ := w.post(in.base)
				mu.Lock()
				if st >= 200 && st < 300 {
					acked = append(acked, w.id)
				} else {
					refused[st]++
				}
				n := len(acked)
				mu.Unlock()
				select {
				case <-done:
					if st >= 200 && st < 300 {
						extra++
					}
				default:
					if n >= after {
						// The first sender past the mark disrupts; the others go on meanwhile.
						once.Do(func() { go func() { disrupt(); close(done) }() })
					}
				}
				if st == 0 && !in.alive() {
					return
				}
			}
		})
	}
	wg.Wait()
	reached := true
	once.Do(func() { reached = false; t.Error("the load never reached the disruption") })
	if reached {
		<-done // disrupt has returned, whatever the senders saw
	}
	return acked, refused
}

// checkStoredOnce fails the test unless every webhook-id in acked is stored exactly once.
func checkStoredOnce(t *testing.T, sqlDB *sql.DB, acked []string) {
	t.Helper()
	stored := map[string]int{}
	rows, err := sqlDB.Query("SELECT external_id FROM events WHERE source = 'webhook'")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		rows.Scan(&id)
		stored[id]++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	lost := 0
	for _, id := range acked {
		if stored[id] != 1 {
			if lost++; lost <= 10 {
				t.Errorf("acknowledged webhook %s is stored %d times, want exactly once", id, stored[id])
			}
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged webhooks are not stored exactly once", lost, len(acked))
	}
}

// decision is the API's answer to GET /api/v1/rollout/decide.
type decision struct {
	Environment string
	Reason      string
	Version     int64
}
