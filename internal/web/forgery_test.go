package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/events"
	"github.com/tensfer-golive/dashboard/internal/rollout"
	"github.com/tensfer-golive/dashboard/internal/tensfer"
)

// forgeryApp is the app behind a trusted proxy (so X-Forwarded-For is each sender's address),
// with the rollout started at stage 1 over the API.
func forgeryApp(t *testing.T, budget events.PublicBudget) *testApp {
	t.Helper()
	app := newTestApp(t, func(c *Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}
		c.PublicBudget = budget
	})
	if res := app.api("POST", "/api/v1/rollout/advance", app.addToken("rw", auth.ScopeRolloutWrite), strings.NewReader(`{}`)); res.StatusCode != http.StatusOK {
		t.Fatalf("start the rollout: %d %s", res.StatusCode, res.body)
	}
	return app
}

// send posts body to path from addr, concurrently over a few connections, and returns the status
// of each request in order.
func send(t *testing.T, app *testApp, reqs []publicReq) []int {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	t.Cleanup(hc.CloseIdleConnections)
	out := make([]int, len(reqs))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(reqs) {
					return
				}
				r := reqs[i]
				req, _ := http.NewRequest(http.MethodPost, app.url+r.path, strings.NewReader(r.body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Forwarded-For", r.addr)
				if r.sign != nil {
					tensfer.SignRequest(req, r.id, time.Now(), []byte(r.body), r.sign)
				}
				res, err := hc.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				out[i] = res.StatusCode
			}
		})
	}
	wg.Wait()
	return out
}

type publicReq struct {
	path, addr, body string
	sign             []byte // a webhook's signing key (nil: unsigned)
	id               string // its webhook-id
}

func initError(user, token string) string {
	return fmt.Sprintf(`{"event":"initialization_error","user_id":%q,"token":%q,"error":{"code":"INVALID_CLIENT_TOKEN"}}`, user, token)
}

// tick runs one guardrail round and returns the rollout's state after it.
func tick(t *testing.T, app *testApp) rollout.Rollout {
	t.Helper()
	if err := app.srv.rollout.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	return app.srv.rollout.Snapshot().Rollout
}

// TestForgedBeaconsCannotPauseTheRollout (issue 17, item 15): one unsigned initialization_error
// beacon from each of 25 /64s of one /48, and from each of 4,096 IPv4 addresses, all stored,
// cannot pause the rollout; 25 users whose tokens verify do.
func TestForgedBeaconsCannotPauseTheRollout(t *testing.T) {
	app := forgeryApp(t, events.PublicBudget{BytesPerSecond: 64 << 20, RowsPerSecond: 100_000})
	var reqs []publicReq
	for i := range 25 {
		reqs = append(reqs, publicReq{path: "/callbacks/production", addr: fmt.Sprintf("2001:db8:42:%x::1", i+1), body: initError(fmt.Sprintf("v6-%d", i), "")})
	}
	for i := range 4096 {
		reqs = append(reqs, publicReq{path: "/callbacks/production", addr: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255+1), body: initError(fmt.Sprintf("v4-%d", i), "v1.9999999999.forged")})
	}
	for i, st := range send(t, app, reqs) {
		if st != http.StatusAccepted {
			t.Fatalf("forged beacon %d: %d, want it stored (202) so that the guardrail could see it", i, st)
		}
	}
	if r := tick(t, app); r.State != rollout.Active {
		t.Fatalf("4,121 forged beacons moved the rollout: %s, %q", r.State, r.Held)
	}
	// The same guardrail trips on 25 users whose beacons carry a token from the integrator's backend.
	_, key, err := app.srv.envs.BeaconKey(context.Background(), "production")
	if err != nil {
		t.Fatal(err)
	}
	reqs = reqs[:0]
	for i := range 25 {
		user := fmt.Sprintf("real-%d", i)
		reqs = append(reqs, publicReq{path: "/callbacks/production", addr: "192.0.2.1", body: initError(user, events.MintBeaconToken(key, "production", user, time.Now().Add(time.Hour)))})
	}
	for i, st := range send(t, app, reqs) {
		if st != http.StatusAccepted {
			t.Fatalf("signed beacon %d: %d", i, st)
		}
	}
	if r := tick(t, app); r.State != rollout.Paused || !strings.Contains(r.Held, "Init errors") {
		t.Fatalf("25 verified users with init errors did not pause the rollout: %s %q", r.State, r.Held)
	}
	// The guardrail's link lists the events behind its figure: the 25 signed beacons, none of
	// the 4,121 forged ones.
	link := signalEventsURL(rollout.SignalInitErrors, time.Now().Add(-time.Hour), time.Now())
	q, _ := url.ParseQuery(strings.TrimPrefix(link, "/events?"))
	q.Set("limit", "500")
	res := app.api("GET", "/api/v1/events?"+q.Encode(), app.addToken("reader", auth.ScopeEventsRead), nil)
	var page struct {
		Events []struct {
			UserID string `json:"user_id"`
		} `json:"events"`
	}
	if err := json.Unmarshal([]byte(res.body), &page); err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("the guardrail's events: %d %s", res.StatusCode, res.body)
	}
	if len(page.Events) != 25 {
		t.Fatalf("the guardrail's link lists %d events, want the 25 signed beacons", len(page.Events))
	}
	for _, e := range page.Events {
		if !strings.HasPrefix(e.UserID, "real-") {
			t.Fatalf("the guardrail's link lists a forged beacon of %q", e.UserID)
		}
	}
}

// TestAnUnsignedFloodCannotStarveSignedBeacons (item 16): while 128 addresses flood unsigned
// beacons past their budget, every genuine signed beacon from 50 other addresses is stored (and
// the answer says it verified), and the guardrail sees every one.
func TestAnUnsignedFloodCannotStarveSignedBeacons(t *testing.T) {
	clock := newFakeClock()
	app := forgeryApp(t, events.PublicBudget{BytesPerSecond: 64 << 10, RowsPerSecond: 50})
	app.srv.SetClock(clock.now)
	since := time.Now().Add(-time.Second)
	_, key, err := app.srv.envs.BeaconKey(context.Background(), "production")
	if err != nil {
		t.Fatal(err)
	}
	var reqs []publicReq
	genuine := map[int]bool{}
	for i := range 2000 {
		if i%40 == 0 && len(genuine) < 50 {
			user := fmt.Sprintf("real-%d", len(genuine))
			genuine[i] = true
			reqs = append(reqs, publicReq{path: "/callbacks/production", addr: fmt.Sprintf("192.0.2.%d", len(genuine)), body: initError(user, events.MintBeaconToken(key, "production", user, time.Now().Add(time.Hour)))})
			continue
		}
		reqs = append(reqs, publicReq{path: "/callbacks/production", addr: fmt.Sprintf("198.51.100.%d", i%128), body: `{"event":"screen_loaded","user_id":"x"}`})
	}
	statuses := send(t, app, reqs)
	flooded := 0
	for i, st := range statuses {
		switch {
		case genuine[i] && st != http.StatusAccepted:
			t.Errorf("genuine beacon %d during the flood: %d", i, st)
		case !genuine[i] && st == http.StatusTooManyRequests:
			flooded++
		}
	}
	if flooded == 0 {
		t.Fatal("the flood never reached its budget: the test proves nothing")
	}
	figs, err := app.srv.events.GuardrailFigures(context.Background(), since, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if got := figs["init_errors"]; got != (db.SignalCount{Bad: 50, Total: 50}) {
		t.Fatalf("init_errors = %+v after the flood, want all 50 genuine users", got)
	}
	res := app.api("GET", "/api/v1/events?source=callback&limit=500", app.addToken("read", auth.ScopeEventsRead), nil)
	if !strings.Contains(res.body, `"verified":false`) || strings.Count(res.body, `"verified":true`) != 50 {
		t.Fatalf("the API marks %d beacons verified (want the 50 genuine) and unverified ones: %v", strings.Count(res.body, `"verified":true`), strings.Contains(res.body, `"verified":false`))
	}
}

// TestNoAddressIsKnown (item 17): an address that delivered a valid webhook gets no exemption:
// its unsigned POSTs are kept within the per-sender limit and cannot trip the guardrail; a
// sandbox-signed webhook makes no address anything for production.
func TestNoAddressIsKnown(t *testing.T) {
	app := forgeryApp(t, events.DefaultPublicBudget)
	prod, _ := tensfer.ParseSecret(app.withSecret("production"))
	sandbox, _ := tensfer.ParseSecret(app.withSecret("sandbox"))
	since := time.Now().Add(-time.Second)
	const tensferAddr, sandboxAddr = "203.0.113.7", "203.0.113.8"
	reqs := []publicReq{
		{path: "/hooks/production", addr: tensferAddr, body: `{"type":"payment.cancelled"}`, sign: prod, id: "msg_ok"},
		{path: "/hooks/sandbox", addr: sandboxAddr, body: `{"type":"payment.cancelled"}`, sign: sandbox, id: "msg_sb"},
	}
	if st := send(t, app, reqs); st[0] != http.StatusOK || st[1] != http.StatusOK {
		t.Fatalf("valid webhooks: %v", st)
	}
	reqs = reqs[:0]
	for i := range 300 {
		reqs = append(reqs, publicReq{path: "/hooks/production", addr: tensferAddr, body: `{"type":"payment.cancelled"}`})
		reqs = append(reqs, publicReq{path: "/hooks/production", addr: sandboxAddr, body: `{"type":"payment.cancelled"}`, sign: sandbox, id: fmt.Sprint("msg_sb_", i)})
	}
	for i, st := range send(t, app, reqs) {
		if st != http.StatusUnauthorized {
			t.Fatalf("forged delivery %d: %d, want 401", i, st)
		}
	}
	var fromTensfer, fromSandbox int
	app.db.R.QueryRow(`SELECT count(*) FROM rejected_deliveries WHERE ip = ?`, tensferAddr).Scan(&fromTensfer)
	app.db.R.QueryRow(`SELECT count(*) FROM rejected_deliveries WHERE ip = ?`, sandboxAddr).Scan(&fromSandbox)
	if fromTensfer == 0 || fromTensfer >= 300 || fromSandbox >= 300 {
		t.Fatalf("kept %d of 300 unsigned deliveries from a once-valid sender and %d of 300 sandbox-signed ones, want each within the sender's limit", fromTensfer, fromSandbox)
	}
	figs, err := app.srv.events.GuardrailFigures(context.Background(), since, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if got := figs["rejected_webhooks"]; got.Bad != 0 {
		t.Fatalf("rejected_webhooks = %+v: forged deliveries counted", got)
	}
	if r := tick(t, app); r.State != rollout.Active {
		t.Fatalf("forged deliveries moved the rollout: %s %q", r.State, r.Held)
	}
}

// TestBeaconKeyOnTheEnvironmentsPage: admins see each environment's beacon key with Copy and
// rotate it; the old key keeps verifying tokens for the overlap; operators see no key.
func TestBeaconKeyOnTheEnvironmentsPage(t *testing.T) {
	app := newTestApp(t)
	admin, _ := app.login(db.RoleAdmin)
	doc := admin.get("/environments").doc(t)
	old := doc.Find(`#env-production [data-testid="beacon-key-value"]`).Text()
	if !strings.HasPrefix(old, "tbk_") || doc.Find(`#env-production [data-testid="beacon-key"] button.copy`).Length() != 1 {
		t.Fatalf("production's beacon key as shown to an admin: %q", old)
	}
	if res := admin.postForm("/environments/production/beacon-key/rotate", nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("rotate: %d %s", res.StatusCode, res.body)
	}
	k, cur, err := app.srv.envs.BeaconKey(context.Background(), "production")
	if err != nil || cur == old || !strings.HasPrefix(cur, "tbk_") {
		t.Fatalf("after rotation: %q (was %q) %v", cur, old, err)
	}
	if got := admin.get("/environments").doc(t).Find(`#env-production [data-testid="beacon-key-value"]`).Text(); got != cur {
		t.Fatalf("the page shows %q after rotation, want the new key %s", got, k.ID)
	}
	for _, key := range []string{old, cur} { // both verify during the overlap
		tok := events.MintBeaconToken(key, "production", "u1", time.Now().Add(time.Hour))
		b, err := app.srv.events.ParseBeacon(context.Background(), "production", []byte(`{"event":"screen_loaded","user_id":"u1","token":"`+tok+`"}`))
		if err != nil || !b.Verified {
			t.Fatalf("a token of key %.8s… after rotation: %+v %v", key, b, err)
		}
	}
	var audited int
	app.db.R.QueryRow(`SELECT count(*) FROM audit_log WHERE action = 'environment.beacon_key_rotate' AND target = 'environment:production'`).Scan(&audited)
	if audited != 1 {
		t.Fatalf("%d audit rows for the rotation", audited)
	}
	operator, _ := app.login(db.RoleOperator)
	if doc := operator.get("/environments").doc(t); doc.Find(`[data-testid="beacon-key-value"]`).Length() != 0 || strings.Contains(doc.Text(), cur) {
		t.Fatal("an operator sees the beacon key")
	}
}
