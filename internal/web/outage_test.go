package web

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/cluster"
	"github.com/tensfer-golive/dashboard/internal/dbtest"
	"github.com/tensfer-golive/dashboard/internal/pgtest"
	"github.com/tensfer-golive/dashboard/internal/tensfer"
)

// TestPostgresOutage: PostgreSQL stops at once (as in a crash) and comes back, with no restart
// of the dashboard. While it is away a signed webhook is answered 503 with Retry-After and
// nothing is acknowledged, /readyz says not ready, and rollout decisions go on from the last
// snapshot; once it is back, /readyz is ready again and the next delivery is stored.
func TestPostgresOutage(t *testing.T) {
	if !dbtest.Postgres() {
		t.Skip("PostgreSQL run only: a SQLite file cannot go away")
	}
	cluster := pgtest.New(t)
	if err := cluster.CreateDatabase("outage"); err != nil {
		t.Fatal(err)
	}
	app := newTestAppOn(t, dbtest.Store{Dir: t.TempDir(), URL: cluster.DatabaseURL("outage")})
	key, _ := tensfer.ParseSecret(app.withSecret("production"))
	decider := app.addToken("decide", auth.ScopeRolloutDecide)
	deliver := func(id string) response {
		body := fmt.Sprintf(`{"id":"evt_%s","type":"payment.cancelled","request_id":"req_%s"}`, id, id)
		req, _ := http.NewRequest(http.MethodPost, app.url+"/hooks/production", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		tensfer.SignRequest(req, "msg_"+id, time.Now(), []byte(body), key)
		return app.client().do(req)
	}
	decide := func() response { return app.api("GET", "/api/v1/rollout/decide?user_id=u_1", decider, nil) }
	ready := func() int { return app.api("GET", "/readyz", "", nil).StatusCode }
	if res := deliver("before"); res.StatusCode != http.StatusOK {
		t.Fatalf("webhook before the outage: %d %s", res.StatusCode, res.body)
	}
	if res := decide(); res.StatusCode != http.StatusOK {
		t.Fatalf("decide before the outage: %d %s", res.StatusCode, res.body)
	}

	cluster.Stop()
	if st := ready(); st != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with PostgreSQL stopped: %d, want 503", st)
	}
	res := deliver("during")
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
		t.Fatalf("webhook with PostgreSQL stopped: %d (Retry-After %q) %s, want 503 with Retry-After", res.StatusCode, res.Header.Get("Retry-After"), res.body)
	}
	if res := decide(); res.StatusCode != http.StatusOK || !strings.Contains(res.body, `"environment"`) {
		t.Fatalf("decide with PostgreSQL stopped: %d %s, want the last snapshot's answer", res.StatusCode, res.body)
	}

	stopped := time.Now()
	if err := cluster.Restart(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for ready() != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatalf("/readyz not ready 30 s after PostgreSQL came back")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("ready again %s after the restart began", time.Since(stopped).Round(time.Millisecond))
	if res := deliver("after"); res.StatusCode != http.StatusOK {
		t.Fatalf("webhook after the outage: %d %s", res.StatusCode, res.body)
	}
	var n int
	app.db.R.QueryRow("SELECT count(*) FROM events WHERE source = 'webhook'").Scan(&n)
	if n != 2 {
		t.Fatalf("%d webhooks stored, want the two delivered while PostgreSQL was up", n)
	}
}

// quietBus is a Bus that has lost its connection to the other instances.
type quietBus struct {
	*cluster.LocalBus
	connected atomic.Bool
}

func (b *quietBus) Connected() bool { return b.connected.Load() }

// TestReadyzWantsNotifications: an instance whose Bus cannot hear the other instances is not
// ready (it would serve their revoked tokens and kills from its caches), and is again once it
// hears them.
func TestReadyzWantsNotifications(t *testing.T) {
	bus := &quietBus{LocalBus: cluster.NewLocalBus()}
	t.Cleanup(bus.Close)
	bus.connected.Store(true)
	app := newTestApp(t, func(c *Config) { c.Bus = bus })
	for _, tc := range []struct {
		connected bool
		status    int
		check     string
	}{
		{true, http.StatusOK, `"notifications":"ok"`},
		{false, http.StatusServiceUnavailable, `"notifications":"reconnecting"`},
		{true, http.StatusOK, `"notifications":"ok"`},
	} {
		bus.connected.Store(tc.connected)
		res := app.api("GET", "/readyz", "", nil)
		if res.StatusCode != tc.status || !strings.Contains(res.body, tc.check) {
			t.Fatalf("bus connected %v: /readyz %d %s, want %d with %s", tc.connected, res.StatusCode, res.body, tc.status, tc.check)
		}
	}
}
