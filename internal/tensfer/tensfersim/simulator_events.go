package tensfersim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/tensfer-golive/dashboard/internal/tensfer"
)

// randomUserID returns one of a small pool of user ids, so the same users
// recur across events, API calls and rollout decisions.
func randomUserID(r *mrand.Rand) string { return fmt.Sprintf("usr_%04d", r.IntN(40)+1) }

// RandomWebhook returns a plausible webhook event for env: mostly
// user.reauthentication_required, identity.profile_ready and
// payment.cancelled, and about one in ten of a type no client has seen,
// with extra top-level fields. All randomness comes from r.
func RandomWebhook(r *mrand.Rand, env tensfer.Environment, now time.Time) tensfer.WebhookEvent {
	ev := tensfer.WebhookEvent{
		ID:        "evt_" + randHexFrom(r, 12),
		CreatedAt: now.UTC().Truncate(time.Second),
		RequestID: "req_" + randHexFrom(r, 12),
	}
	user := randomUserID(r)
	var data any
	switch n := r.IntN(10); {
	case n < 3:
		ev.Type = tensfer.EventUserReauthenticationRequired
		exp := now.UTC().Add(time.Duration(1+r.IntN(72)) * time.Hour).Truncate(time.Second)
		data = tensfer.ReauthenticationRequiredData{
			UserID:        user,
			ConnectionID:  "conn_" + randHexFrom(r, 8),
			InstitutionID: fmt.Sprintf("ins_%03d", 1+r.IntN(45)),
			Reason:        []string{"consent_expiring", "credentials_changed", "mfa_required"}[r.IntN(3)],
			ExpiresAt:     &exp,
		}
	case n < 6:
		ev.Type = tensfer.EventIdentityProfileReady
		data = tensfer.IdentityProfileReadyData{
			UserID:    user,
			ProfileID: "idp_" + randHexFrom(r, 8),
			Fields:    []string{"name", "email", "address", "date_of_birth"}[:2+r.IntN(3)],
		}
	case n < 9:
		ev.Type = tensfer.EventPaymentCancelled
		var reason *string
		if r.IntN(2) == 0 {
			s := []string{"user closed the bank's consent screen", "insufficient funds", "bank declined"}[r.IntN(3)]
			reason = &s
		}
		data = tensfer.PaymentCancelledData{
			PaymentID:   "pay_" + randHexFrom(r, 12),
			UserID:      user,
			Amount:      int64(100 + r.IntN(50000)),
			Currency:    []string{"GBP", "EUR"}[r.IntN(2)],
			CancelledAt: now.UTC().Truncate(time.Second),
			CancelledBy: []string{"user", "institution", "integrator"}[r.IntN(3)],
			Reason:      reason,
		}
	default:
		ev.Type = []tensfer.EventType{"account.balance_updated", "connection.synced", "consent.expiring_soon"}[r.IntN(3)]
		ev.Extra = map[string]json.RawMessage{
			"api_version": json.RawMessage(`"2025-09-01"`),
			"livemode":    json.RawMessage(fmt.Sprint(env == tensfer.Production)),
		}
		data = map[string]any{"user_id": user, "object": "connection", "attempt": r.IntN(5), "details": map[string]any{"new_field": true}}
	}
	ev.Data, _ = json.Marshal(data)
	return ev
}

// RandomCallback returns a plausible front-end callback for env:
// screen_loaded, accounts_connected or initialization_error. All
// randomness comes from r.
func RandomCallback(r *mrand.Rand, env tensfer.Environment, now time.Time) tensfer.CallbackEvent {
	ev := tensfer.CallbackEvent{
		EventID:    "cb_" + randHexFrom(r, 12),
		SessionID:  "sess_" + randHexFrom(r, 12),
		UserID:     randomUserID(r),
		OccurredAt: now.UTC().Truncate(time.Millisecond),
	}
	switch n := r.IntN(10); {
	case n < 5:
		ev.Event = tensfer.CallbackScreenLoaded
		ev.Screen = []string{"institution_select", "consent", "credentials", "account_select", "success"}[r.IntN(5)]
	case n < 8:
		ev.Event = tensfer.CallbackAccountsConnected
		ev.Screen = "success"
		ev.RequestID = "req_" + randHexFrom(r, 12)
		ev.Extra = map[string]json.RawMessage{"accounts": json.RawMessage(fmt.Sprint(1 + r.IntN(3)))}
	default:
		ev.Event = tensfer.CallbackInitializationError
		ev.RequestID = "req_" + randHexFrom(r, 12)
		codes := []tensfer.CallbackError{
			{Code: "INVALID_CLIENT_TOKEN", Message: "the client token is not valid for " + string(env)},
			{Code: "NETWORK_ERROR", Message: "could not reach Tensfer"},
			{Code: "SESSION_EXPIRED", Message: "the link session expired"},
		}
		e := codes[r.IntN(len(codes))]
		ev.Error = &e
	}
	return ev
}

// NextWebhook returns a random webhook for env tied to the simulator's
// state where natural: payment.cancelled cancels a pending payment created
// through the API and carries that call's request_id; identity.profile_ready
// names a session created through the API and carries its request_id.
func (s *Simulator) NextWebhook(env tensfer.Environment) tensfer.WebhookEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	ev := RandomWebhook(s.rng, env, now)
	switch ev.Type {
	case tensfer.EventPaymentCancelled:
		p := pickSorted(s.rng, s.payments[env], func(p *tensfer.Payment) bool {
			return p.Status == tensfer.PaymentPending && p.CreationRequestID != ""
		})
		if p == nil {
			return ev
		}
		var d tensfer.PaymentCancelledData
		_ = json.Unmarshal(ev.Data, &d)
		p.Status = tensfer.PaymentCancelled
		p.CancelledAt = tensfer.Some(now.UTC().Truncate(time.Second))
		if d.Reason != nil {
			p.FailureReason = tensfer.Some(*d.Reason)
		}
		d.PaymentID, d.UserID, d.Amount, d.Currency, d.CancelledAt = p.ID, p.UserID, p.Amount, p.Currency, p.CancelledAt.Value
		ev.Data, _ = json.Marshal(d)
		ev.RequestID = p.CreationRequestID
	case tensfer.EventIdentityProfileReady:
		sess := pickSorted(s.rng, s.sessions[env], func(*tensfer.Session) bool { return true })
		if sess == nil {
			return ev
		}
		var d tensfer.IdentityProfileReadyData
		_ = json.Unmarshal(ev.Data, &d)
		d.UserID, d.SessionID = sess.UserID, sess.ID
		ev.Data, _ = json.Marshal(d)
		ev.RequestID = sess.RequestID
	}
	return ev
}

// NextCallback returns a random callback for env tied to the simulator's
// state where natural: accounts_connected and screen_loaded name a session
// created through the API (with its request_id), and initialization_error
// carries the request_id of a recent failed API call.
func (s *Simulator) NextCallback(env tensfer.Environment) tensfer.CallbackEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	ev := RandomCallback(s.rng, env, s.cfg.Now())
	switch ev.Event {
	case tensfer.CallbackAccountsConnected, tensfer.CallbackScreenLoaded:
		if sess := pickSorted(s.rng, s.sessions[env], func(*tensfer.Session) bool { return true }); sess != nil {
			ev.SessionID, ev.UserID, ev.RequestID = sess.ID, sess.UserID, sess.RequestID
		}
	case tensfer.CallbackInitializationError:
		for i := len(s.recent[env]) - 1; i >= 0; i-- {
			if req := s.recent[env][i]; req.Status >= 400 {
				ev.RequestID = req.RequestID
				break
			}
		}
	}
	return ev
}

// pickSorted picks a random value of m (in key order, so a seeded
// generator gives the same pick) among those that match, or nil.
func pickSorted[V any](r *mrand.Rand, m map[string]*V, match func(*V) bool) *V {
	var keys []string
	for k, v := range m {
		if match(v) {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	sort.Strings(keys)
	return m[keys[r.IntN(len(keys))]]
}

// RunConfig configures Simulator.Run.
type RunConfig struct {
	// Interval between steps; zero means 2 seconds.
	Interval time.Duration
	// WebhookTargets and CallbackTargets are where each environment's
	// webhooks and callbacks go, e.g. http://127.0.0.1:8080/hooks/sandbox.
	WebhookTargets  map[tensfer.Environment]string
	CallbackTargets map[tensfer.Environment]string
	// WebhookKeys returns the keys to sign env's webhooks with, read at
	// each delivery so secret rotation in the dashboard takes effect. A
	// nil func or an empty answer skips webhooks for env.
	WebhookKeys func(tensfer.Environment) [][]byte
	// BeaconToken, if set, is the integrator's backend: it mints the
	// short-lived token the front end sends with its beacons for userID in
	// env (the dashboard counts only such beacons toward its guardrails). A
	// nil func or an empty answer sends the beacon unsigned.
	BeaconToken func(env tensfer.Environment, userID string) string
	// Clients, if set, make API calls against the simulator through the
	// real client (so its Observer sees them), which gives later events
	// request_ids to share.
	Clients map[tensfer.Environment]*tensfer.Client
	// FailEvery, when positive, makes every FailEvery-th API call of an
	// environment fail, retries included, going through that environment's
	// FailModes in turn (X-Sim-Fail values; none means 400, 401, 500, 503 and
	// timeout), so the feed shows failed calls with their request_ids and the
	// initialization errors that follow them. Only requests with the call's
	// method and path fail, so someone pressing Verify meanwhile is hit only
	// while the trickle's own credentials check is failing.
	FailEvery int
	FailModes map[tensfer.Environment][]string
	// MaxInFlight bounds concurrent webhook deliveries (each may retry for
	// a while); zero means 4. A step finding them all busy skips its webhook.
	MaxInFlight int
	// Logger receives delivery failures at Warn; nil discards them.
	Logger *slog.Logger
}

// Run emits a steady trickle until ctx is done: each step makes one API
// call, one webhook delivery or one callback (in that rotation), cycling
// through the environments that have somewhere to send to. The first step
// runs at once. It returns nil when ctx is done, after in-flight
// deliveries have stopped, or an error if cfg gives it nothing to do.
func (s *Simulator) Run(ctx context.Context, cfg RunConfig) error {
	if cfg.Interval <= 0 {
		cfg.Interval = 2 * time.Second
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 4
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var envs []tensfer.Environment
	for _, env := range tensfer.Environments() {
		if cfg.WebhookTargets[env] != "" || cfg.CallbackTargets[env] != "" || cfg.Clients[env] != nil {
			envs = append(envs, env)
		}
	}
	if len(envs) == 0 {
		return errors.New("simulator run: no webhook target, callback target or client configured")
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	sem := make(chan struct{}, cfg.MaxInFlight)
	tick := time.NewTicker(cfg.Interval)
	defer tick.Stop()
	for step := 0; ; step++ {
		env := envs[(step/3)%len(envs)]
		switch step % 3 {
		case 0:
			if c := cfg.Clients[env]; c != nil {
				n := step / 3 / len(envs)
				if cfg.FailEvery > 0 && n%cfg.FailEvery == cfg.FailEvery-1 {
					modes := cfg.FailModes[env]
					if len(modes) == 0 {
						modes = []string{"400", "401", "500", "503", FailTimeout}
					}
					call := apiRotation[n%len(apiRotation)]
					s.mu.Lock()
					s.failNext[env] = failure{mode: modes[(n/cfg.FailEvery)%len(modes)], method: call.method, path: call.path}
					s.mu.Unlock()
				}
				s.apiStep(ctx, c, n)
				s.mu.Lock()
				delete(s.failNext, env)
				s.mu.Unlock()
			}
		case 1:
			target := cfg.WebhookTargets[env]
			var keys [][]byte
			if target != "" && cfg.WebhookKeys != nil {
				keys = cfg.WebhookKeys(env)
			}
			if len(keys) == 0 {
				break
			}
			if !tryAcquire(sem) {
				log.Warn("simulator: webhook deliveries busy, skipping one", "env", env)
				break
			}
			ev := s.NextWebhook(env)
			wg.Go(func() {
				defer func() { <-sem }()
				if attempts, err := s.EmitWebhook(ctx, target, keys, ev); err != nil && ctx.Err() == nil {
					log.Warn("simulator: webhook not delivered", "env", env, "event_id", ev.ID, "attempts", len(attempts), "err", err)
				}
			})
		case 2:
			if target := cfg.CallbackTargets[env]; target != "" {
				ev := s.NextCallback(env)
				if cfg.BeaconToken != nil {
					if tok := cfg.BeaconToken(env, ev.UserID); tok != "" {
						q, _ := json.Marshal(tok)
						if ev.Extra == nil {
							ev.Extra = map[string]json.RawMessage{}
						}
						ev.Extra["token"] = q
					}
				}
				if _, err := s.EmitCallback(ctx, target, ev); err != nil && ctx.Err() == nil {
					log.Warn("simulator: callback not delivered", "env", env, "event", ev.Event, "err", err)
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// tryAcquire takes a slot of sem if one is free.
func tryAcquire(sem chan struct{}) bool {
	select {
	case sem <- struct{}{}:
		return true
	default:
		return false
	}
}

// failure is an injected failure for the requests with a method and path.
type failure struct{ mode, method, path string }

// apiRotation is the trickle's API calls, in turn: ones that create things events can later
// refer to, and reads. method and path are what the simulator sees of each.
var apiRotation = []struct {
	method, path string
	call         func(ctx context.Context, c *tensfer.Client, r *mrand.Rand)
}{
	{http.MethodPost, "/v1/payments", func(ctx context.Context, c *tensfer.Client, r *mrand.Rand) {
		_, _ = c.CreatePayment(ctx, tensfer.PaymentParams{Amount: int64(100 + r.IntN(20000)), Currency: "GBP", UserID: randomUserID(r)})
	}},
	{http.MethodPost, "/v1/sessions", func(ctx context.Context, c *tensfer.Client, r *mrand.Rand) {
		_, _ = c.CreateSession(ctx, tensfer.SessionParams{UserID: randomUserID(r)})
	}},
	{http.MethodGet, "/v1/institutions", func(ctx context.Context, c *tensfer.Client, _ *mrand.Rand) {
		_, _ = c.InstitutionsPage(ctx, tensfer.ListParams{Limit: 10})
	}},
	{http.MethodGet, "/v1/payments/pay_demo_pending", func(ctx context.Context, c *tensfer.Client, _ *mrand.Rand) {
		_, _ = c.Payment(ctx, "pay_demo_pending")
	}},
	{http.MethodGet, "/v1/credentials", func(ctx context.Context, c *tensfer.Client, _ *mrand.Rand) {
		_, _ = c.CheckCredentials(ctx)
	}},
}

// apiStep makes the n-th call of apiRotation. Errors are left to the client's Observer.
func (s *Simulator) apiStep(ctx context.Context, c *tensfer.Client, n int) {
	s.mu.Lock()
	r := mrand.New(mrand.NewPCG(s.rng.Uint64(), s.rng.Uint64()))
	s.mu.Unlock()
	apiRotation[n%len(apiRotation)].call(ctx, c, r)
}
