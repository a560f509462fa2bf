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

// send posts one signed webhook to base and returns the status and the stored event id.
func (w *webhookSender) send(t *testing.T, base, tag string) (int, int64) {
	t.Helper()
	w.seq.Lock()
	w.n++
	n := w.n
	w.seq.Unlock()
	id := fmt.Sprintf("msg_%s_%06d", tag, n)
	body := fmt.Appendf(nil, `{"id":"evt_%s","type":"payment.cancelled","created_at":"2026-03-01T12:00:00Z",`+
		`"request_id":"req_%s","data":{"user_id":"user_%d","payment_id":"pay_%06d","amount":1234,`+
		`"currency":"GBP","reason":"user_cancelled"}}`, id, id, n, n)
	req, _ := http.NewRequest(http.MethodPost, base+"/hooks/production", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	tensfer.SignRequest(req, id, time.Now(), body, w.key)
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
		st, id := hooks.send(t, a.base, "live")
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
						st, id := hooks.send(t, base, fmt.Sprintf("mix%d", w))
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
}
