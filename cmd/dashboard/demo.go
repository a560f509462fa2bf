package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/tensfer-golive/dashboard/internal/tensfer"
	"github.com/tensfer-golive/dashboard/internal/web"
)

// startSimulator serves the built-in Tensfer simulator on a free loopback port until ctx ends and
// returns its root URL.
func startSimulator(ctx context.Context, log *slog.Logger) (string, *tensfer.Simulator, error) {
	// NB: no random failure injection, so the start-up verification is deterministic.
	sim := tensfer.NewSimulator(tensfer.SimConfig{AccountName: "Demo Ltd (simulated)"})
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
func startDemo(ctx context.Context, srv *web.Server, stdout io.Writer, log *slog.Logger) (func(ctx context.Context, addr string), error) {
	root, sim, err := startSimulator(ctx, log)
	if err != nil {
		return nil, err
	}
	if err := srv.SetupDemo(ctx, root); err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	log.Info("demo: Tensfer simulator running", "url", root)
	fmt.Fprintf(stdout, "Demo mode: a simulated Tensfer sandbox and production run at %s; both environments are configured against it.\n", root)
	return func(ctx context.Context, addr string) {
		clients, err := srv.TensferClients(ctx)
		if err != nil {
			if ctx.Err() == nil {
				log.Error("demo: clients", "error", err)
			}
			return
		}
		base := "http://" + addr
		cfg := tensfer.RunConfig{
			Interval:        700 * time.Millisecond,
			WebhookTargets:  map[tensfer.Environment]string{},
			CallbackTargets: map[tensfer.Environment]string{},
			WebhookKeys:     srv.WebhookKeys,
			Clients:         clients,
			Logger:          log,
		}
		for _, env := range tensfer.Environments() {
			cfg.WebhookTargets[env] = base + "/hooks/" + string(env)
			cfg.CallbackTargets[env] = base + "/callbacks/" + string(env)
		}
		if err := sim.Run(ctx, cfg); err != nil && ctx.Err() == nil {
			log.Error("demo: simulator run", "error", err)
		}
	}, nil
}
