package web

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/tensfer"
)

func TestReturnAlwaysSendsTheUserBack(t *testing.T) {
	app := newTestApp(t, func(c *Config) { c.CallbackRate = RateLimit{Burst: 1, Every: time.Hour} })
	app.patchEnv(app.addToken("a", auth.ScopeAdmin), "production", map[string]any{"app_url": "https://app.example.com/done"})
	c := app.client()
	for i, q := range []string{"status=success&session_id=s1", "event=accounts_connected&session_id=s2"} {
		// The first has no event (kept as type "return"); the second is over the rate limit.
		res := c.get("/callbacks/production/return?" + q)
		if res.StatusCode != 303 || !strings.HasPrefix(res.Header.Get("Location"), "https://app.example.com/done?") {
			t.Fatalf("request %d: %d %q", i, res.StatusCode, res.Header.Get("Location"))
		}
	}
	evs, _, _ := app.db.ListEvents(context.Background(), db.EventFilter{Source: db.SourceCallback})
	if len(evs) != 1 || evs[0].Type != "return" || !strings.Contains(string(evs[0].Payload), `"session_id":"s1"`) {
		t.Fatalf("recorded: %+v", evs)
	}
}

func TestOutsideValuesNeverMakeA500(t *testing.T) {
	app := newTestApp(t)
	secret := app.withSecret("production")
	long := strings.Repeat("😀", 255)
	req, _ := http.NewRequest(http.MethodPost, app.url+"/callbacks/production", strings.NewReader(`{"event":"screen_loaded","event_id":"`+long+`","user_id":"`+long+`"}`))
	if res := app.client().do(req); res.StatusCode != 202 {
		t.Fatalf("long multibyte ids: %d %s", res.StatusCode, res.body)
	}
	body := `{"type":"` + strings.Repeat("é", 128) + `","request_id":"` + long + `"}`
	if res := app.sendWebhook("production", secret, strings.Repeat("w", 5000), body); res.StatusCode != 200 {
		t.Fatalf("long webhook-id and multibyte type: %d %s\n%s", res.StatusCode, res.body, app.logs.String())
	}
}

func TestFormEncodedWebhookKeepsItsBody(t *testing.T) {
	app := newTestApp(t)
	secret := app.withSecret("production")
	key, _ := tensfer.ParseSecret(secret)
	body := `{"type":"payment.cancelled"}`
	req, _ := http.NewRequest(http.MethodPost, app.url+"/hooks/production", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	tensfer.SignRequest(req, "m1", time.Now(), []byte(body), key)
	if res := app.client().do(req); res.StatusCode != 200 {
		t.Fatalf("signed webhook sent as a form: %d %s", res.StatusCode, res.body)
	}
}

func TestCSVExportDefusesFormulas(t *testing.T) {
	app := newTestApp(t)
	viewer, _ := app.login(db.RoleViewer)
	req, _ := http.NewRequest(http.MethodPost, app.url+"/callbacks/sandbox", strings.NewReader(`{"event":"screen_loaded","user_id":"=HYPERLINK(\"http://evil\")"}`))
	app.client().do(req)
	res := viewer.get("/events/export?format=csv")
	if !strings.Contains(res.body, `'=HYPERLINK`) {
		t.Fatalf("formula cell not defused: %s", res.body)
	}
}

func TestTestEventDoesNotTickTheWebhookStep(t *testing.T) {
	app := newTestApp(t)
	op, _ := app.login(db.RoleOperator)
	secret := app.withSecret("production")
	op.postForm("/environments/production/test-event", nil)
	state := func() string {
		v, _ := op.get("/go-live").doc(t).Find(`[data-testid="check-webhook"]`).Attr("data-state")
		return v
	}
	if s := state(); s != "todo" {
		t.Fatalf("after a test event the webhook step is %q, want todo", s)
	}
	app.sendWebhook("production", secret, "from_tensfer", `{"type":"payment.cancelled"}`)
	if s := state(); s != "done" {
		t.Fatalf("after a real webhook the step is %q, want done", s)
	}
}

// TestIngestRoutesDoNotLoadTheSession checks the router itself: no middleware of a public
// ingest route is the one that reads the session cookie.
func TestIngestRoutesDoNotLoadTheSession(t *testing.T) {
	app := newTestApp(t)
	loadUser := reflect.ValueOf(app.srv.loadUser).Pointer()
	requireRole := reflect.ValueOf(app.srv.requireRole(db.RoleViewer)).Pointer()
	checked := 0
	chi.Walk(app.srv.routes(), func(method, route string, _ http.Handler, mws ...func(http.Handler) http.Handler) error {
		if routeAccess[method+" "+route] != "ingest" {
			return nil
		}
		checked++
		for _, mw := range mws {
			if p := reflect.ValueOf(mw).Pointer(); p == loadUser || p == requireRole {
				t.Errorf("%s %s runs session middleware", method, route)
			}
		}
		return nil
	})
	if checked != 4 {
		t.Fatalf("checked %d ingest routes, want 4", checked)
	}
	// And the page routes do load it (so the comparison above can find it).
	found := false
	chi.Walk(app.srv.routes(), func(method, route string, _ http.Handler, mws ...func(http.Handler) http.Handler) error {
		if method+" "+route == "GET /events" {
			for _, mw := range mws {
				found = found || reflect.ValueOf(mw).Pointer() == loadUser
			}
		}
		return nil
	})
	if !found {
		t.Fatal("GET /events does not list loadUser: the check above cannot see it")
	}
}

func TestClientKeyGroupsIPv6By64(t *testing.T) {
	app := newTestApp(t)
	key := func(remote string) string {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		return app.srv.clientKey(r)
	}
	if a, b := key("[2001:db8:1:2::1]:5000"), key("[2001:db8:1:2:ffff::9]:5000"); a != b || a != "2001:db8:1:2::/64" {
		t.Fatalf("same /64: %q %q", a, b)
	}
	if a, b := key("[2001:db8:1:3::1]:5000"), key("[2001:db8:1:2::1]:5000"); a == b {
		t.Fatal("different /64s share a bucket")
	}
	if k := key("198.51.100.7:1234"); k != "198.51.100.7" {
		t.Fatalf("IPv4 key %q", k)
	}
}

// TestSlowSubscriberIsDroppedNotWaitedFor connects a stream that never reads, with a tiny
// receive window, so its buffers really fill: ingest goes on and the hub drops it.
func TestSlowSubscriberIsDroppedNotWaitedFor(t *testing.T) {
	app := newTestApp(t, func(c *Config) { c.FeedSubscriberBuffer = 4 })
	secret := app.withSecret("production")
	viewer, u := app.login(db.RoleViewer)
	_ = u
	// The stream is served by a listener with small socket buffers, so an unread stream fills
	// them after a few rows, as a stalled browser on a real network would.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	small := httptest.NewUnstartedServer(app.srv.Handler())
	small.Listener.Close()
	small.Listener = smallBufListener{ln}
	small.Start()
	defer small.Close()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.(*net.TCPConn).SetReadBuffer(1024)
	var cookies bytes.Buffer
	for _, c := range viewer.hc.Jar.Cookies(mustURL(app.url)) {
		fmt.Fprintf(&cookies, "%s=%s; ", c.Name, c.Value)
	}
	fmt.Fprintf(conn, "GET /events/stream HTTP/1.1\r\nHost: x\r\nCookie: %s\r\n\r\n", cookies.String())
	waitFor(t, "the stream to subscribe", func() bool { return app.srv.events.Hub().Subscribers() == 1 })
	for i := 0; app.srv.events.Hub().Dropped() == 0; i++ {
		if i == 5000 {
			t.Fatal("5000 events and the unread stream was never dropped")
		}
		if res := app.sendWebhook("production", secret, fmt.Sprintf("m%d", i), `{"type":"bulk"}`); res.StatusCode != 200 {
			t.Fatalf("ingest %d: %d", i, res.StatusCode)
		}
	}
	waitFor(t, "the dropped stream to end", func() bool { return app.srv.events.Hub().Subscribers() == 0 })
}

type smallBufListener struct{ net.Listener }

func (l smallBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(2048)
	}
	return c, err
}
