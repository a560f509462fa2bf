package tensfersim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tensfer-golive/dashboard/internal/tensfer"
)

func TestRandomWebhook(t *testing.T) {
	r := mrand.New(mrand.NewPCG(1, 2))
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	counts := map[tensfer.EventType]int{}
	unknown := 0
	for range 300 {
		ev := RandomWebhook(r, tensfer.Sandbox, now)
		body, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		got, err := tensfer.ParseWebhookEvent(body)
		if err != nil {
			t.Fatalf("generated body %s does not parse: %v", body, err)
		}
		if !strings.HasPrefix(got.ID, "evt_") || !strings.HasPrefix(got.RequestID, "req_") || !got.CreatedAt.Equal(now) {
			t.Fatalf("event = %+v", got)
		}
		var user struct {
			UserID string `json:"user_id"`
		}
		if err := got.DecodeData(&user); err != nil || !strings.HasPrefix(user.UserID, "usr_") {
			t.Fatalf("data %s: user %q, %v", got.Data, user.UserID, err)
		}
		switch got.Type {
		case tensfer.EventPaymentCancelled:
			var d tensfer.PaymentCancelledData
			if err := got.DecodeData(&d); err != nil || !strings.HasPrefix(d.PaymentID, "pay_") || d.Amount <= 0 {
				t.Fatalf("payment.cancelled data %s: %v", got.Data, err)
			}
		case tensfer.EventUserReauthenticationRequired, tensfer.EventIdentityProfileReady:
		default:
			unknown++
			if got.Extra["api_version"] == nil {
				t.Errorf("unknown type %s without extra fields", got.Type)
			}
		}
		counts[got.Type]++
	}
	for _, typ := range []tensfer.EventType{tensfer.EventUserReauthenticationRequired, tensfer.EventIdentityProfileReady, tensfer.EventPaymentCancelled} {
		if counts[typ] < 30 {
			t.Errorf("%s generated %d times in 300", typ, counts[typ])
		}
	}
	if unknown == 0 || unknown > 60 {
		t.Errorf("unknown types generated %d times in 300, want occasionally", unknown)
	}
}

func TestRandomCallback(t *testing.T) {
	r := mrand.New(mrand.NewPCG(3, 4))
	counts := map[tensfer.CallbackType]int{}
	for range 200 {
		ev := RandomCallback(r, tensfer.Production, time.Now())
		body, _ := json.Marshal(ev)
		got, err := tensfer.ParseCallbackEvent(body)
		if err != nil {
			t.Fatalf("generated body %s is rejected: %v", body, err)
		}
		if got.Event == tensfer.CallbackInitializationError && (got.Error == nil || got.Error.Code == "" || got.RequestID == "") {
			t.Errorf("initialization_error without error or request id: %s", body)
		}
		if got.Event == tensfer.CallbackScreenLoaded && got.Screen == "" {
			t.Errorf("screen_loaded without screen: %s", body)
		}
		counts[got.Event]++
	}
	for _, typ := range []tensfer.CallbackType{tensfer.CallbackScreenLoaded, tensfer.CallbackAccountsConnected, tensfer.CallbackInitializationError} {
		if counts[typ] < 10 {
			t.Errorf("%s generated %d times in 200", typ, counts[typ])
		}
	}
}

func TestRandomGeneratorsAreDeterministic(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	a, _ := json.Marshal(RandomWebhook(mrand.New(mrand.NewPCG(9, 9)), tensfer.Sandbox, now))
	b, _ := json.Marshal(RandomWebhook(mrand.New(mrand.NewPCG(9, 9)), tensfer.Sandbox, now))
	c, _ := json.Marshal(RandomWebhook(mrand.New(mrand.NewPCG(9, 10)), tensfer.Sandbox, now))
	if !bytes.Equal(a, b) || bytes.Equal(a, c) {
		t.Errorf("same seed gave %s and %s; other seed gave %s", a, b, c)
	}
}

// nextUntil calls next until match accepts an event or n tries pass.
func nextUntil[E any](n int, next func() E, match func(E) bool) (E, bool) {
	var e E
	for range n {
		if e = next(); match(e) {
			return e, true
		}
	}
	return e, false
}

func TestNextWebhookSharesRequestIDsWithAPICalls(t *testing.T) {
	sim, root := simServer(t, Config{Seed: 5})
	c, _ := simClient(t, root, tensfer.Sandbox, DefaultKeys()[tensfer.Sandbox], nil)
	ctx := t.Context()
	p, err := c.CreatePayment(ctx, tensfer.PaymentParams{Amount: 4200, Currency: "GBP", UserID: "usr_0009"})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := c.CreateSession(ctx, tensfer.SessionParams{UserID: "usr_0010"})
	if err != nil {
		t.Fatal(err)
	}
	next := func() tensfer.WebhookEvent { return sim.NextWebhook(tensfer.Sandbox) }
	ev, ok := nextUntil(200, next, func(e tensfer.WebhookEvent) bool { return e.Type == tensfer.EventPaymentCancelled })
	if !ok {
		t.Fatal("no payment.cancelled in 200 events")
	}
	var d tensfer.PaymentCancelledData
	if err := ev.DecodeData(&d); err != nil || ev.RequestID != p.RequestID || d.PaymentID != p.ID || d.Amount != 4200 || d.UserID != "usr_0009" {
		t.Fatalf("event %+v data %+v; want the created payment and its creation request id %s", ev, d, p.RequestID)
	}
	got, err := c.Payment(ctx, p.ID)
	if at, ok := got.CancelledAt.Get(); err != nil || got.Status != tensfer.PaymentCancelled || !ok || !at.Equal(d.CancelledAt) {
		t.Errorf("payment after event = %+v, %v; want cancelled at the event's time", got, err)
	}
	// With its only API-created payment cancelled, later payment.cancelled
	// events are synthetic and do not cancel it again.
	if ev2, ok := nextUntil(200, next, func(e tensfer.WebhookEvent) bool { return e.Type == tensfer.EventPaymentCancelled }); ok && ev2.RequestID == p.RequestID {
		t.Errorf("payment %s cancelled twice", p.ID)
	}
	ev, ok = nextUntil(200, next, func(e tensfer.WebhookEvent) bool { return e.Type == tensfer.EventIdentityProfileReady })
	var idd tensfer.IdentityProfileReadyData
	if !ok || ev.DecodeData(&idd) != nil || ev.RequestID != sess.RequestID || idd.SessionID != sess.ID || idd.UserID != "usr_0010" {
		t.Errorf("identity event %+v data %+v; want session %s and request id %s", ev, idd, sess.ID, sess.RequestID)
	}
	// Production has no API-created payments: its events stay synthetic.
	if ev, ok := nextUntil(200, func() tensfer.WebhookEvent { return sim.NextWebhook(tensfer.Production) },
		func(e tensfer.WebhookEvent) bool { return e.Type == tensfer.EventPaymentCancelled }); !ok || ev.RequestID == p.RequestID {
		t.Errorf("production event %+v linked to a sandbox call", ev)
	}
}

func TestNextCallbackSharesRequestIDs(t *testing.T) {
	sim, root := simServer(t, Config{Seed: 6})
	c, rec := simClient(t, root, tensfer.Production, DefaultKeys()[tensfer.Production], func(cfg *tensfer.Config) { cfg.MaxRetries = -1 })
	ctx := t.Context()
	_, _ = c.Do(ctx, tensfer.Request{Method: "GET", Path: "/v1/credentials", Header: http.Header{"X-Sim-Fail": {"500"}}}, nil)
	failedID := rec.Calls()[0].RequestID
	sess, err := c.CreateSession(ctx, tensfer.SessionParams{UserID: "usr_0011"})
	if err != nil {
		t.Fatal(err)
	}
	next := func() tensfer.CallbackEvent { return sim.NextCallback(tensfer.Production) }
	ev, ok := nextUntil(200, next, func(e tensfer.CallbackEvent) bool { return e.Event == tensfer.CallbackInitializationError })
	if !ok || ev.RequestID != failedID {
		t.Errorf("initialization_error request id = %q, want the failed call's %q", ev.RequestID, failedID)
	}
	ev, ok = nextUntil(200, next, func(e tensfer.CallbackEvent) bool { return e.Event == tensfer.CallbackAccountsConnected })
	if !ok || ev.SessionID != sess.ID || ev.UserID != "usr_0011" || ev.RequestID != sess.RequestID {
		t.Errorf("accounts_connected = %+v, want session %s", ev, sess.ID)
	}
}

// hub is a fake dashboard: it verifies webhooks per environment and
// signals what arrived.
type hub struct {
	keys map[tensfer.Environment][]byte

	mu        sync.Mutex
	webhooks  map[tensfer.Environment]int
	callbacks map[tensfer.Environment]int
	rejected  []string
	badTokens []string // callbacks whose token is not the one BeaconToken minted for their user
	changed   chan struct{}
}

func (h *hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	kind, envName, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	env, err := tensfer.ParseEnvironment(envName)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	switch kind {
	case "hooks":
		if _, err := tensfer.Verify([][]byte{h.keys[env]}, r.Header, body, time.Now(), 0); err != nil {
			h.rejected = append(h.rejected, err.Error())
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if _, err := tensfer.ParseWebhookEvent(body); err != nil {
			h.rejected = append(h.rejected, err.Error())
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		h.webhooks[env]++
	case "callbacks":
		ev, err := tensfer.ParseCallbackEvent(body)
		if err != nil || r.Header.Get("Origin") == "" {
			h.rejected = append(h.rejected, "callback: "+string(body))
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		var tok string
		_ = json.Unmarshal(ev.Extra["token"], &tok)
		if tok != fmt.Sprintf("tok-%s-%s", env, ev.UserID) {
			h.badTokens = append(h.badTokens, string(body))
		}
		h.callbacks[env]++
	}
	w.WriteHeader(http.StatusNoContent)
	select {
	case h.changed <- struct{}{}:
	default:
	}
}

func (h *hub) done() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.webhooks[tensfer.Sandbox] > 0 && h.webhooks[tensfer.Production] > 0 && h.callbacks[tensfer.Sandbox] > 0 && h.callbacks[tensfer.Production] > 0
}

func TestRunEmitsATrickleUntilCanceled(t *testing.T) {
	sim, root := simServer(t, Config{Seed: 8})
	h := &hub{
		keys:      map[tensfer.Environment][]byte{tensfer.Sandbox: bytes.Repeat([]byte{1}, 32), tensfer.Production: bytes.Repeat([]byte{2}, 32)},
		webhooks:  map[tensfer.Environment]int{},
		callbacks: map[tensfer.Environment]int{},
		changed:   make(chan struct{}, 1),
	}
	dash := httptest.NewServer(h)
	t.Cleanup(dash.Close)
	clients := map[tensfer.Environment]*tensfer.Client{}
	recs := map[tensfer.Environment]*recorder{}
	for _, env := range tensfer.Environments() {
		clients[env], recs[env] = simClient(t, root, env, DefaultKeys()[env], nil)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- sim.Run(ctx, RunConfig{
			Interval:        2 * time.Millisecond,
			WebhookTargets:  map[tensfer.Environment]string{tensfer.Sandbox: dash.URL + "/hooks/sandbox", tensfer.Production: dash.URL + "/hooks/production"},
			CallbackTargets: map[tensfer.Environment]string{tensfer.Sandbox: dash.URL + "/callbacks/sandbox", tensfer.Production: dash.URL + "/callbacks/production"},
			WebhookKeys:     func(env tensfer.Environment) [][]byte { return [][]byte{h.keys[env]} },
			BeaconToken:     func(env tensfer.Environment, user string) string { return fmt.Sprintf("tok-%s-%s", env, user) },
			Clients:         clients,
		})
	}()
	deadline := time.After(10 * time.Second)
	for !h.done() {
		select {
		case <-h.changed:
		case err := <-done:
			t.Fatalf("Run returned early: %v", err)
		case <-deadline:
			h.mu.Lock()
			msg := fmt.Sprintf("after 10s: webhooks %v callbacks %v rejected %v", h.webhooks, h.callbacks, h.rejected)
			h.mu.Unlock()
			t.Fatal(msg)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil after cancel", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.rejected) > 0 {
		t.Errorf("the fake dashboard rejected deliveries: %v", h.rejected)
	}
	if len(h.badTokens) > 0 {
		t.Errorf("beacons without the token minted for their user: %v", h.badTokens)
	}
	for _, env := range tensfer.Environments() {
		calls := recs[env].Calls()
		if len(calls) == 0 {
			t.Errorf("%s: no API calls observed", env)
		}
		for _, c := range calls {
			if tensfer.KindOf(c.Err) == tensfer.KindCanceled {
				continue // in flight when Run was canceled
			}
			if c.Env != env || !strings.HasPrefix(c.RequestID, "req_") {
				t.Errorf("%s: call %+v", env, c)
			}
		}
	}
}

func TestRunNeedsSomethingToDo(t *testing.T) {
	sim := New(Config{Seed: 1})
	if err := sim.Run(t.Context(), RunConfig{}); err == nil || !strings.Contains(err.Error(), "no webhook target") {
		t.Errorf("Run with nothing configured = %v", err)
	}
}

// TestRunFailsEveryNthCall: with FailEvery, every n-th API call of the trickle fails the way
// FailModes say, retries included, and the calls between succeed; an initialization error
// callback then carries the request_id of the latest failed call.
func TestRunFailsEveryNthCall(t *testing.T) {
	sim, root := simServer(t, Config{Seed: 9})
	const want = 10
	observed := make(chan tensfer.Call, 64)
	client, _ := simClient(t, root, tensfer.Sandbox, DefaultKeys()[tensfer.Sandbox], func(c *tensfer.Config) {
		c.Observer = func(_ context.Context, call tensfer.Call) { observed <- call }
	})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- sim.Run(ctx, RunConfig{Interval: time.Millisecond, FailEvery: 2, FailModes: map[tensfer.Environment][]string{tensfer.Sandbox: {"500", "401"}},
			Clients: map[tensfer.Environment]*tensfer.Client{tensfer.Sandbox: client}})
	}()
	var calls []tensfer.Call
	for len(calls) < want {
		select {
		case c := <-observed:
			calls = append(calls, c)
		case err := <-done:
			t.Fatalf("Run returned early: %v", err)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	// Run has returned, so every call it made was observed: take the ones made after the first
	// want too, or the latest failure below could be one this test never saw.
	for drained := false; !drained; {
		select {
		case c := <-observed:
			calls = append(calls, c)
		default:
			drained = true
		}
	}
	for n, c := range calls[:want] {
		failing := n%2 == 1
		switch {
		case !failing && (c.Status < 200 || c.Status > 299):
			t.Errorf("call %d (%s %s) = %d, want a success", n, c.Method, c.Path, c.Status)
		case failing && n/2%2 == 0 && c.Status != 500:
			t.Errorf("call %d (%s %s) = %d after %d attempts, want 500 (retries fail too)", n, c.Method, c.Path, c.Status, c.Attempts)
		case failing && n/2%2 == 1 && c.Status != 401:
			t.Errorf("call %d (%s %s) = %d, want 401", n, c.Method, c.Path, c.Status)
		case failing && !strings.HasPrefix(c.RequestID, "req_"):
			t.Errorf("call %d failed without a request_id: %+v", n, c)
		}
	}
	// Call 9 is GET /credentials with the 500: retried, and every retry failed too.
	if calls[9].Method != "GET" || calls[9].Attempts < 2 {
		t.Errorf("call 9 = %s %s after %d attempts; want a retried GET", calls[9].Method, calls[9].Path, calls[9].Attempts)
	}
	var lastFailed string
	for _, c := range calls {
		if c.Status >= 400 {
			lastFailed = c.RequestID
		}
	}
	for range 20 {
		if ev := sim.NextCallback(tensfer.Sandbox); ev.Event == tensfer.CallbackInitializationError {
			if ev.RequestID != lastFailed {
				t.Errorf("initialization_error carries %q, want the latest failed call's %q", ev.RequestID, lastFailed)
			}
			return
		}
	}
	t.Error("no initialization_error in 20 callbacks")
}

// TestQueuedFailureHitsOnlyItsCall: the trickle's failure is for its own call's method and path;
// another request to the environment meanwhile (a Verify's credentials check) is answered.
func TestQueuedFailureHitsOnlyItsCall(t *testing.T) {
	sim, root := simServer(t, Config{Seed: 3})
	client, _ := simClient(t, root, tensfer.Production, DefaultKeys()[tensfer.Production], nil)
	sim.mu.Lock()
	sim.failNext[tensfer.Production] = failure{mode: "401", method: http.MethodGet, path: "/v1/payments/pay_demo_pending"}
	sim.mu.Unlock()
	if _, err := client.CheckCredentials(t.Context()); err != nil {
		t.Fatalf("a request the failure is not for failed: %v", err)
	}
	if _, err := client.Payment(t.Context(), "pay_demo_pending"); tensfer.KindOf(err) != tensfer.KindAuth {
		t.Fatalf("the failing call's request: %v, want a 401", err)
	}
}
