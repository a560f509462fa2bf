package web

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/tensfer-golive/dashboard/internal/app"
	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/cluster"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/dbtest"
	"github.com/tensfer-golive/dashboard/internal/diskguard"
	"github.com/tensfer-golive/dashboard/internal/secrets"
	"github.com/tensfer-golive/dashboard/internal/tensfer"
)

// testApp is the whole dashboard on a real router, a temp-file SQLite and a loopback listener.
type testApp struct {
	t    testing.TB
	srv  *Server
	db   *db.DB
	box  *secrets.Box
	http *httptest.Server
	logs *syncBuffer
	url  string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

const testPassword = "a long test password"

// newTestApp starts the whole app in one line. Options may adjust the config before start.
func newTestApp(t testing.TB, opts ...func(*Config)) *testApp {
	t.Helper()
	return newTestAppOn(t, dbtest.New(t), opts...)
}

// newTestAppOn is newTestApp on a store the test made (a PostgreSQL cluster of its own, say).
func newTestAppOn(t testing.TB, st dbtest.Store, opts ...func(*Config)) *testApp {
	t.Helper()
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
	if err := secrets.CheckMasterKey(ctx, d, box); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	app := &testApp{t: t, db: d, box: box, logs: logs}
	app.http = httptest.NewUnstartedServer(nil)
	app.url = "http://" + app.http.Listener.Addr().String()
	pub, _ := url.Parse(app.url)
	cfg := Config{PublicURL: pub, Version: "test", PasswordParams: auth.TestParams}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.Disk.Space == nil { // the host's free space must not decide a test: plenty, unless a test says otherwise
		cfg.Disk.Space = func(string) (diskguard.Space, error) { return diskguard.Space{Free: 1 << 40, Total: 2 << 40}, nil }
	}
	if cfg.Bus == nil {
		bus := cluster.NewLocalBus()
		t.Cleanup(bus.Close) // after the server's Close (registered below, so run first)
		cfg.Bus = bus
	}
	srv := startServer(t, cfg, d, box, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})))
	app.srv = srv
	t.Cleanup(func() { srv.Close() })
	app.http.Config.Handler = app.srv.Handler()
	app.http.Config.RegisterOnShutdown(srv.EndStreams)
	app.http.Start()
	t.Cleanup(func() { srv.EndStreams(); app.http.Close() })
	return app
}

// startServer builds the services and the server over d as cmd/dashboard does.
func startServer(t testing.TB, cfg Config, d *db.DB, box *secrets.Box, log *slog.Logger) *Server {
	t.Helper()
	cfg = cfg.WithDefaults()
	svc, err := app.Build(context.Background(), cfg.Services(log), d, box, log)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(cfg, svc, d, box, log)
	if err != nil {
		svc.Close()
		t.Fatal(err)
	}
	return srv
}

// addUser creates a user directly in the database.
func (a *testApp) addUser(email string, role db.Role) db.User {
	a.t.Helper()
	h, err := auth.HashPassword(testPassword, auth.TestParams)
	if err != nil {
		a.t.Fatal(err)
	}
	u, err := a.db.InsertUser(context.Background(), db.User{Email: email, Role: role, PasswordHash: h}, db.Audit{Actor: "test", Action: "user.create"})
	if err != nil {
		a.t.Fatal(err)
	}
	return u
}

// addToken creates an API token with scopes and returns its secret.
func (a *testApp) addToken(name string, scopes ...string) string {
	a.t.Helper()
	secret, prefix := auth.NewToken()
	if _, err := a.db.InsertToken(context.Background(), secret, db.Token{Name: name, Prefix: prefix, Scopes: scopes, CreatedBy: "test"}, db.Audit{Actor: "test", Action: "token.create"}); err != nil {
		a.t.Fatal(err)
	}
	return secret
}

// client is a browser-like HTTP client: its own cookie jar, redirects not followed.
type client struct {
	app *testApp
	hc  *http.Client
}

func (a *testApp) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{app: a, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// login returns a client logged in as a new user with role.
func (a *testApp) login(role db.Role) (*client, db.User) {
	a.t.Helper()
	u := a.addUser(string(role)+"-"+auth.RandomID(4)+"@example.com", role)
	c := a.client()
	res := c.postForm("/login", url.Values{"email": {u.Email}, "password": {testPassword}})
	if res.StatusCode != http.StatusSeeOther {
		a.t.Fatalf("login as %s: status %d: %s", role, res.StatusCode, res.body)
	}
	return c, u
}

type response struct {
	*http.Response
	body string
}

func (r response) doc(t *testing.T) *goquery.Document {
	t.Helper()
	d, err := goquery.NewDocumentFromReader(strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (c *client) do(req *http.Request) response {
	c.app.t.Helper()
	res, err := c.hc.Do(req)
	if err != nil {
		c.app.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{Response: res, body: string(b)}
}

func (c *client) get(path string) response {
	req, _ := http.NewRequest(http.MethodGet, c.app.url+path, nil)
	return c.do(req)
}

func (c *client) postForm(path string, v url.Values) response {
	req, _ := http.NewRequest(http.MethodPost, c.app.url+path, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(req)
}

// api sends a JSON API request with a bearer token, and header as name, value pairs (which may
// replace the JSON Content-Type).
func (a *testApp) api(method, path, token string, body io.Reader, header ...string) response {
	a.t.Helper()
	req, _ := http.NewRequest(method, a.url+path, body)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	c := a.client()
	return c.do(req)
}

// waitFor polls cond until it holds or the deadline passes (no fixed sleeps).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// auditActions returns the actions of every audit row, oldest first.
func (a *testApp) auditActions() []string {
	a.t.Helper()
	rows, _, err := a.db.ListAudit(context.Background(), db.AuditFilter{Limit: 500})
	if err != nil {
		a.t.Fatal(err)
	}
	var out []string
	for i := len(rows) - 1; i >= 0; i-- {
		out = append(out, rows[i].Action)
	}
	return out
}

func httptestRequest(remote, xff string) *http.Request {
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.RemoteAddr = remote
	req.Header.Set("X-Forwarded-For", xff)
	return req
}

func mustPrefixes(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, p := range s {
		out = append(out, netip.MustParsePrefix(p))
	}
	return out
}

// sendWebhook posts a webhook signed with whsec to /hooks/{env}, as Tensfer would.
func (a *testApp) sendWebhook(env, whsec, id, body string) response {
	a.t.Helper()
	key, err := tensfer.ParseSecret(whsec)
	if err != nil {
		a.t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, a.url+"/hooks/"+env, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	tensfer.SignRequest(req, id, time.Now(), []byte(body), key)
	return a.client().do(req)
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}
