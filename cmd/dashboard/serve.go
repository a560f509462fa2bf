package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/tensfer-golive/dashboard/internal/accounts"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/secrets"
	"github.com/tensfer-golive/dashboard/internal/web"
)

// newLogger logs text to a terminal and JSON elsewhere, unless the format is given.
func newLogger(w io.Writer, format, level string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "" {
		format = "json"
		if f, ok := w.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				format = "text"
			}
		}
	}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// openData creates the data directory (0700), loads the master key and opens the database,
// refusing a master key that does not match the database.
func openData(ctx context.Context, dir, keyValue, keyFile string) (*db.DB, *secrets.Box, secrets.Source, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, "", fmt.Errorf("create data directory: %w", err)
	}
	key, src, err := secrets.LoadKey(dir, keyValue, keyFile)
	if err != nil {
		return nil, nil, "", err
	}
	box, err := secrets.NewBox(key)
	if err != nil {
		return nil, nil, "", err
	}
	d, err := db.Open(ctx, dir)
	if err != nil {
		return nil, nil, "", err
	}
	if err := secrets.CheckMasterKey(ctx, d, box); err != nil {
		// A master-key rotation that committed but crashed before renaming master.key.new into
		// place leaves the new key pending: finish it.
		pending := filepath.Join(dir, pendingKeyFile)
		if keyValue == "" && keyFile == "" {
			if k, _, err2 := secrets.LoadKey("", "", pending); err2 == nil {
				if nb, err2 := secrets.NewBox(k); err2 == nil && secrets.CheckMasterKey(ctx, d, nb) == nil {
					if err2 := os.Rename(pending, filepath.Join(dir, secrets.KeyFileName)); err2 == nil {
						return d, nb, secrets.Source("finished rotation to " + k.ID), nil
					}
				}
			}
		}
		d.Close()
		return nil, nil, "", err
	}
	return d, box, src, nil
}

func serve(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	cfg, err := parseServe(args, stderr, getenv)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.logFormat, cfg.logLevel)
	start := time.Now()

	if err := os.MkdirAll(cfg.dataDir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	release, err := lockData(cfg.dataDir, "starting another")
	if err != nil {
		return err
	}
	defer release()
	d, box, keySource, err := openData(ctx, cfg.dataDir, cfg.masterKey, "")
	if err != nil {
		return err
	}
	defer d.Close()

	srv, err := web.New(web.Config{
		PublicURL:      cfg.publicURL,
		Version:        version(),
		Demo:           cfg.demo,
		TrustedProxies: cfg.trustedProxies,
		SessionIdle:    cfg.sessionIdle,
		SessionMax:     cfg.sessionMax,
		RetentionDays:  cfg.retentionDays,
		// The demo's simulator listens on loopback; only then may configured URLs point there.
		AllowLoopbackURLs: cfg.demo,
	}, d, box, log)
	if err != nil {
		return err
	}
	defer srv.Close()

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another dashboard running? choose another --addr)", cfg.addr, err)
	}
	httpSrv := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	httpSrv.RegisterOnShutdown(srv.EndStreams)
	log.Info("dashboard started", "addr", ln.Addr().String(), "public_url", cfg.publicURL.String(), "data", cfg.dataDir,
		"master_key", box.KeyID(), "master_key_source", string(keySource), "version", version(),
		"startup_ms", time.Since(start).Milliseconds())

	if link, err := accounts.PrepareSetup(ctx, d, cfg.publicURL.String()); err != nil {
		return err
	} else if link != "" {
		fmt.Fprintf(stdout, "\nNo users yet. Open this one-time link to create the first admin (valid %s):\n\n    %s\n\n", accounts.SetupLinkTTL, link)
	}
	var trickle func(addr string)
	if cfg.demo {
		if trickle, err = startDemo(ctx, srv, cfg.publicURL.String(), stdout, log); err != nil {
			return err
		}
	}
	go srv.Maintain(ctx)

	errc := make(chan error, 1)
	go func() { errc <- httpSrv.Serve(ln) }()
	if trickle != nil {
		go trickle(ln.Addr().String())
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down; letting in-flight requests finish")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := httpSrv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	// Every acknowledged event is already committed; this stops the writer cleanly.
	if err := srv.Close(); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}
