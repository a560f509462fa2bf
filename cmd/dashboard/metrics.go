package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/tensfer-golive/dashboard/internal/metrics"
)

// metricsFlag binds --metrics-addr: a second listener for Prometheus, off by default.
func metricsFlag(f *envFlags, p *string) {
	f.string(p, "metrics-addr", "DASHBOARD_METRICS_ADDR", "",
		"address of a second listener that serves only GET /metrics, without authentication, e.g. 127.0.0.1:9090 (default off; keep it off the internet: on --addr, /metrics needs a token with metrics:read)")
}

// checkMetricsAddr validates --metrics-addr (empty: off) against --addr.
func checkMetricsAddr(f *envFlags, addr, main string) error {
	if addr == "" {
		return nil
	}
	if err := checkListenAddr(f, "metrics-addr", "127.0.0.1:9090"); err != nil {
		return err
	}
	if clash(addr, main) {
		return f.bad("metrics-addr", "must differ from %s: the metrics listener serves /metrics without authentication", f.ref("addr"))
	}
	return nil
}

// newMetrics is the registry of the running binary, labelled with its build.
func newMetrics() *metrics.Metrics {
	b := readBuild()
	return metrics.New(metrics.BuildInfo{Version: b.Short(), Revision: b.Revision, GoVersion: b.GoVersion})
}

// startMetrics serves GET /metrics, and nothing else, on ln without authentication, until stop
// is called. Whoever reaches its address reads the metrics: counts and figures, never an event, a key or
// an id, but still nobody else's business, so it belongs on loopback or a private network.
func startMetrics(ln net.Listener, h http.Handler, log *slog.Logger) (stop func()) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          serverErrorLog(log),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener", "error", err)
		}
	}()
	log.Info("serving metrics without authentication; keep this address off the internet", "metrics_addr", ln.Addr().String())
	var once sync.Once
	return func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(ctx)
			<-done
		})
	}
}
