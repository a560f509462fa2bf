package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/environment"
	"github.com/tensfer-golive/dashboard/internal/events"
	"github.com/tensfer-golive/dashboard/internal/launch"
	"github.com/tensfer-golive/dashboard/internal/rollout"
	"github.com/tensfer-golive/dashboard/internal/tensfer"
	"github.com/tensfer-golive/dashboard/internal/tensfer/tensfersim"
	"github.com/tensfer-golive/dashboard/internal/web"
)

// startSimulator serves the built-in Tensfer simulator on a free loopback port until ctx ends and
// returns its root URL.
func startSimulator(ctx context.Context, demoMark string, log *slog.Logger) (string, *tensfersim.Simulator, error) {
	// NB: no random failure injection, so the start-up verification is deterministic.
	// The "timeout" failure answers 504 after 1.5 s, so a retried call holds the trickle briefly.
	sim := tensfersim.New(tensfersim.Config{AccountName: "Demo Ltd (simulated)", MaxBlock: 1500 * time.Millisecond, HTTPClient: &http.Client{
		Timeout:       15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     demoMarked{mark: demoMark, next: http.DefaultTransport},
	}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("demo: start simulator: %w", err)
	}
	srv := &http.Server{Handler: sim, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("simulator stopped", "error", err)
		}
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	return "http://" + ln.Addr().String(), sim, nil
}

// startDemo starts the simulator and wires the dashboard to it. The returned func runs the
// steady trickle of API calls, webhooks and callbacks until its ctx ends; call it once the
// dashboard serves at addr.
func startDemo(ctx context.Context, srv *web.Server, publicURL string, stdout io.Writer, log *slog.Logger) (func(ctx context.Context, addr string), error) {
	root, sim, err := startSimulator(ctx, srv.Events().DemoMark(), log)
	if err != nil {
		return nil, err
	}
	// What the simulator produces is tagged demo: its API calls run under events.WithDemo, its
	// webhooks and callbacks carry the demo mark (demoMarked).
	if err := configureDemo(events.WithDemo(ctx), srv.Environments(), root, publicURL); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	if err := configureDemoRollout(ctx, srv.Rollout()); err != nil {
		return nil, fmt.Errorf("demo: rollout: %w", err)
	}
	log.Info("demo: Tensfer simulator running", "url", root)
	fmt.Fprintf(stdout, "Demo mode: a simulated Tensfer sandbox and production run at %s; both environments are configured against it.\n", root)
	return func(ctx context.Context, addr string) {
		clients, err := srv.Environments().Clients(ctx)
		if err != nil {
			if ctx.Err() == nil {
				log.Error("demo: clients", "error", err)
			}
			return
		}
		base := "http://" + addr
		cfg := tensfersim.RunConfig{
			Interval: 700 * time.Millisecond,
			// One call in 7 fails. Sandbox goes through 400, 401, 500, 503 and a timeout;
			// production only through client errors, so its guardrails (5xx and timeouts)
			// stay healthy and the demo's rollout is not held from the start.
			FailEvery:       7,
			FailModes:       map[tensfer.Environment][]string{tensfer.Production: {"400", "401", "429"}},
			WebhookTargets:  map[tensfer.Environment]string{},
			CallbackTargets: map[tensfer.Environment]string{},
			WebhookKeys:     srv.Events().WebhookKeys,
			// The demo's front end sends beacons signed as an integrator's backend would mint
			// them, so they count toward the guardrails as real users' beacons do.
			BeaconToken: func(env tensfer.Environment, userID string) string {
				_, key, err := srv.Environments().BeaconKey(ctx, string(env))
				if err != nil || userID == "" {
					return ""
				}
				return events.MintBeaconToken(key, string(env), userID, time.Now().Add(time.Hour))
			},
			Clients: clients,
			Logger:  log,
		}
		for _, env := range tensfer.Environments() {
			cfg.WebhookTargets[env] = base + "/hooks/" + string(env)
			cfg.CallbackTargets[env] = base + "/callbacks/" + string(env)
		}
		go askDemoDecisions(ctx, srv.Rollout())
		if err := sim.Run(events.WithDemo(ctx), cfg); err != nil && ctx.Err() == nil {
			log.Error("demo: simulator run", "error", err)
		}
	}, nil
}

// configureDemo points both environments at the built-in simulator served at simRoot, with the
// simulator's keys and a webhook signing secret each, then verifies them, so a newcomer sees a
// configured, verified dashboard within seconds. On a restart (the simulator gets a new port) only
// the base URL is moved; an environment the user pointed at a non-loopback URL is left alone.
func configureDemo(ctx context.Context, envs *environment.Service, simRoot, publicURL string) error {
	keys := tensfersim.DefaultKeys()
	a := db.Audit{Actor: "demo", Action: "environment.update"}
	verify := db.Audit{Actor: "demo", Action: "environment.verify"}
	for _, env := range tensfer.Environments() {
		name := string(env)
		st, err := envs.Load(ctx, name)
		if err != nil {
			return err
		}
		if st.Env.BaseURL != "" && !environment.IsLoopbackURL(st.Env.BaseURL) {
			continue
		}
		base := tensfersim.BaseURL(simRoot, env)
		in := environment.Input{BaseURL: &base}
		if st.Env.BaseURL == "" {
			// The first demo run: the whole configuration, and a signing secret.
			callback := strings.TrimRight(publicURL, "/") + "/callbacks/" + name + "/return"
			app := simRoot + "/app/" + name
			origins := []string{"http://localhost:3000"}
			k := keys[env]
			in = environment.Input{BaseURL: &base, CallbackURL: &callback, AppURL: &app, AllowedOrigins: &origins,
				Keys: map[string]string{db.KeyClientToken: k.ClientToken, db.KeyPublic: k.PublicKey, db.KeySecret: k.SecretKey}}
		}
		// A previous demo run otherwise: follow the simulator to its new port.
		if _, err := envs.Update(ctx, name, in, a); err != nil && !errors.Is(err, environment.ErrNothingToChange) && !errors.Is(err, environment.ErrUnchanged) {
			return fmt.Errorf("configure %s against the simulator: %w", name, err)
		}
		if st.Env.BaseURL == "" {
			if _, _, err := envs.AddWebhookSecret(ctx, name, "", 0, db.Audit{Actor: "demo", Action: "environment.webhook_secret_add"}); err != nil {
				return err
			}
		}
		if _, err := envs.Verify(ctx, name, verify); err != nil {
			return err
		}
	}
	return nil
}

// demoUser is one of the simulator's users (usr_0001 to usr_0040).
func demoUser(i int) string { return fmt.Sprintf("usr_%04d", i) }

// configureDemoRollout gives a fresh demo a rollout to look at: internal testers on sandbox, a
// pilot allow-list on production, and the first stage started. A rollout someone has touched is
// left alone.
func configureDemoRollout(ctx context.Context, svc *launch.Service) error {
	if r := svc.Snapshot().Rollout; r.Stage != 0 || r.Version != 1 {
		return nil
	}
	a := db.Audit{Actor: "demo"}
	testers := launch.CohortInput{Name: "internal-testers", Env: string(rollout.Sandbox), Match: rollout.MatchAny,
		Rules: []rollout.Rule{{Attribute: "email", Op: rollout.OpPrefix, Values: []string{"qa+"}}, {Attribute: "team", Op: rollout.OpEq, Values: []string{"internal"}}}}
	pilot := launch.CohortInput{Name: "pilot-users", Env: string(rollout.Production)}
	for i := 1; i <= 5; i++ {
		pilot.UserIDs = append(pilot.UserIDs, demoUser(i))
	}
	for _, c := range []launch.CohortInput{testers, pilot} {
		if _, _, err := svc.CreateCohort(ctx, c, 0, a); err != nil {
			return err
		}
	}
	_, err := svc.Act(ctx, launch.Advance, 0, 0, false, a)
	return err
}

// askDemoDecisions asks, as an app would, where the simulator's users go, every few seconds, so
// the Rollout page's reach fills in.
func askDemoDecisions(ctx context.Context, svc *launch.Service) {
	t := time.NewTicker(3 * time.Second)
	defer t.Stop()
	for {
		for i := 1; i <= 40; i++ {
			svc.Decide(rollout.User{ID: demoUser(i), Attributes: map[string]string{"country": "SE"}})
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// demoMarked adds the demo mark to the simulator's webhooks and callbacks, so the dashboard tags
// them demo (and nothing else).
type demoMarked struct {
	mark string
	next http.RoundTripper
}

func (d demoMarked) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(events.DemoHeader, d.mark)
	return d.next.RoundTrip(r)
}
