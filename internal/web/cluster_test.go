package web

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/cluster"
	"github.com/tensfer-golive/dashboard/internal/db"
)

// twin starts a second server on a's database and Bus, as a second instance would run: what it
// caches can only learn of a's changes through the Bus. Its clock is frozen, so no cache of it
// ever expires: a change seen there came by the Bus, not by a TTL running out.
func (a *testApp) twin(t *testing.T) *testApp {
	t.Helper()
	b := &testApp{t: t, db: a.db, box: a.box, logs: &syncBuffer{}}
	b.http = httptest.NewUnstartedServer(nil)
	b.url = "http://" + b.http.Listener.Addr().String()
	cfg := a.srv.cfg
	cfg.PublicURL, _ = url.Parse(b.url)
	cfg.Metrics = nil
	cfg.Clock = nil // a clock of its own
	srv := startServer(t, cfg, a.db, a.box, slog.New(slog.NewJSONHandler(b.logs, nil)))
	frozen := time.Now()
	srv.SetClock(func() time.Time { return frozen })
	b.srv = srv
	t.Cleanup(func() { srv.Close() })
	b.http.Config.Handler = srv.Handler()
	b.http.Start()
	t.Cleanup(func() { srv.EndStreams(); b.http.Close() })
	return b
}

// eventually polls cond until it holds, failing after a deadline shorter than every cache's TTL.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 3 s", what)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline, not waiting for time to pass
	}
}

// TestChangesReachTheOtherInstanceThroughTheBus: two servers share a database and a Bus; a
// change made through one governs the other at once.
func TestChangesReachTheOtherInstanceThroughTheBus(t *testing.T) {
	bus := cluster.NewLocalBus()
	t.Cleanup(bus.Close)
	a := newTestApp(t, func(c *Config) { c.Bus = bus })
	b := a.twin(t)
	ctx := context.Background()
	admin := a.addToken("admin", auth.ScopeAdmin, auth.ScopeRolloutDecide, auth.ScopeEventsRead)

	t.Run("a token revoked on one is refused by the other", func(t *testing.T) {
		secret, prefix := auth.NewToken()
		tok, err := a.db.InsertToken(ctx, secret, db.Token{Name: "svc", Prefix: prefix, Scopes: []string{auth.ScopeEventsRead}, CreatedBy: "test"}, db.Audit{Actor: "test", Action: "token.create"})
		if err != nil {
			t.Fatal(err)
		}
		if res := b.api(http.MethodGet, "/api/v1/events", secret, nil); res.StatusCode != http.StatusOK { // now cached on b
			t.Fatalf("before revocation: %d %s", res.StatusCode, res.body)
		}
		c, _ := a.login(db.RoleAdmin)
		if res := c.postForm(fmt.Sprintf("/settings/tokens/%d/revoke", tok.ID), nil); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("revoke: %d %s", res.StatusCode, res.body)
		}
		eventually(t, "the other instance refuses the revoked token", func() bool {
			return b.api(http.MethodGet, "/api/v1/events", secret, nil).StatusCode == http.StatusUnauthorized
		})
	})

	t.Run("a cohort saved on one decides on the other", func(t *testing.T) {
		if got := b.decideFor(t, admin, "vip-1"); got.Environment != "off" {
			t.Fatalf("before the cohort: %+v", got)
		}
		a.createCohort(t, admin, map[string]any{"name": "vips", "environment": "production", "user_ids": []string{"vip-1"}})
		eventually(t, "the other instance decides by the new cohort", func() bool {
			return b.decideFor(t, admin, "vip-1").Environment == "production"
		})
	})

	t.Run("an event stored by one is on the other's live feed", func(t *testing.T) {
		sub, err := b.srv.events.Hub().Subscribe(b.srv.events.Hub().Last(), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Close()
		whsec := a.withSecret("sandbox")
		res := a.sendWebhook("sandbox", whsec, "msg_bus_1", `{"id":"evt_bus_1","type":"payment.cancelled","request_id":"req_bus_1"}`)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("webhook: %d %s", res.StatusCode, res.body)
		}
		select {
		case it := <-sub.C:
			if it.Value.RequestID != "req_bus_1" {
				t.Errorf("the other feed got %+v, want req_bus_1", it.Value)
			}
		case <-time.After(3 * time.Second):
			t.Fatal("the event did not reach the other instance's live feed within 3 s")
		}
	})

	t.Run("a webhook secret added on one verifies on the other", func(t *testing.T) {
		body := `{"id":"evt_bus_2","type":"payment.cancelled"}`
		whsec := a.withSecret("production")
		if res := b.sendWebhook("production", whsec, "msg_bus_2", body); res.StatusCode != http.StatusOK {
			t.Fatalf("first delivery to the other instance: %d %s", res.StatusCode, res.body)
		}
		next := a.withSecret("production")
		eventually(t, "the other instance verifies with the new secret", func() bool {
			return b.sendWebhook("production", next, "msg_bus_3", body).StatusCode == http.StatusOK
		})
	})
}
