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
	"strings"
	"sync"
	"time"

	"github.com/tensfer-golive/dashboard/internal/accounts"
	"github.com/tensfer-golive/dashboard/internal/app"
	"github.com/tensfer-golive/dashboard/internal/cluster"
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

// openData creates the data directory (0700) unless others may write to an existing one, loads the master key and opens the database
// (PostgreSQL at databaseURL when it is set, else the SQLite file in dir), refusing a master key
// that does not match the database. A key is generated only for a database that holds no
// secrets yet: on SQLite, a data directory without a database (one whose master.key is missing is
// refused, and nothing written); on PostgreSQL, a database no instance has set up, and a key
// generated for one that another instance set up is removed again with the refusal.
func openData(ctx context.Context, dir, databaseURL, keyValue, keyFile string) (*db.DB, *secrets.Box, secrets.Source, error) {
	if err := checkDataDir(dir, nil); err != nil {
		return nil, nil, "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, "", fmt.Errorf("create data directory: %w", err)
	}
	noKeyGiven := keyValue == "" && keyFile == ""
	if databaseURL == "" {
		if err := refuseLostDatabase(dir, keyValue, keyFile); err != nil {
			return nil, nil, "", err
		}
		if noKeyGiven && databasePresent(dir) {
			if _, err := os.Stat(filepath.Join(dir, secrets.KeyFileName)); errors.Is(err, os.ErrNotExist) {
				// Never generate a key beside a database: it cannot open what the database holds,
				// and a key file written before the refusal would make the next start look like an
				// install of its own. Only a pending key that opens it (a restore cut short) is taken.
				d, box, err := finishPendingKey(ctx, dir, "")
				if err != nil {
					return nil, nil, "", fmt.Errorf("%s holds the database %s but no master key (%s is missing), and its secrets open only with the key it was set up with: put that master.key back (keep a copy with every backup), or give it with DASHBOARD_MASTER_KEY or DASHBOARD_MASTER_KEY_FILE; to start a new install instead, move the database away first",
						dir, filepath.Join(dir, db.FileName), filepath.Join(dir, secrets.KeyFileName))
				}
				return d, box, secrets.Source("finished installing " + box.KeyID()), nil
			}
		}
	}
	key, src, err := secrets.LoadKey(dir, keyValue, keyFile)
	if err != nil {
		return nil, nil, "", err
	}
	d, box, err := openWithKey(ctx, dir, databaseURL, key)
	if err != nil && noKeyGiven {
		// A master-key rotation that committed but crashed before renaming master.key.new into
		// place leaves the new key pending: finish it.
		if d, box, err2 := finishPendingKey(ctx, dir, databaseURL); err2 == nil {
			return d, box, secrets.Source("finished rotation to " + box.KeyID()), nil
		}
	}
	if err != nil && databaseURL != "" && strings.HasPrefix(string(src), "generated ") {
		// Another instance set this database up with its key: the one just generated is of no use.
		os.Remove(filepath.Join(dir, secrets.KeyFileName))
		return nil, nil, "", fmt.Errorf("%w; every instance on one database needs the same master key: copy master.key from an instance that uses %s into %s, or give the key with DASHBOARD_MASTER_KEY_FILE", err, db.RedactURL(databaseURL), dir)
	}
	if err != nil {
		return nil, nil, "", err
	}
	return d, box, src, nil
}

// openWithKey opens the database (PostgreSQL at databaseURL, else the SQLite file in dir) and
// checks that key is its master key.
func openWithKey(ctx context.Context, dir, databaseURL string, key secrets.Key) (*db.DB, *secrets.Box, error) {
	box, err := secrets.NewBox(key)
	if err != nil {
		return nil, nil, err
	}
	d, err := db.OpenAt(ctx, dir, databaseURL)
	if err != nil {
		return nil, nil, err
	}
	if err := secrets.CheckMasterKey(ctx, d, box); err != nil {
		d.Close()
		return nil, nil, err
	}
	return d, box, nil
}

// finishPendingKey opens the database with the key in dir's master.key.new, left by a rotation or
// a restore cut short before its rename, and when it is the database's key renames it into place.
func finishPendingKey(ctx context.Context, dir, databaseURL string) (*db.DB, *secrets.Box, error) {
	pending := filepath.Join(dir, pendingKeyFile)
	k, _, err := secrets.LoadKey("", "", pending)
	if err != nil {
		return nil, nil, err
	}
	d, box, err := openWithKey(ctx, dir, databaseURL, k)
	if err != nil {
		return nil, nil, err
	}
	if err := os.Rename(pending, filepath.Join(dir, secrets.KeyFileName)); err != nil {
		d.Close()
		return nil, nil, err
	}
	return d, box, nil
}

// serve runs the dashboard until ctx ends (SIGINT or SIGTERM). It signals readiness (log line
// "dashboard started", READY=1 to a service manager) only once it serves: the listener accepts,
// the setup link is printed and the demo is wired. A stop asked for at any point of start-up is a
// clean stop like one while serving: serve returns nil, with the lock released and the database
// closed.
func serve(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	cfg, err := parseServe(args, stderr, getenv)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.logFormat, cfg.logLevel)
	// Everything that can be refused without creating anything is checked first: the certificate
	// files (or the ACME CA's root), the data directory's mode, then the listeners are bound. Only
	// then is the data directory created, so a failed start leaves nothing behind.
	tlsSrv, err := loadTLS(cfg, log)
	if err != nil {
		return err
	}
	if err := checkDataDir(cfg.dataDir, log); err != nil {
		return err
	}
	notify := notifier{socket: cfg.notifySocket, log: log}
	start := time.Now()
	notify.status("starting")
	if ctx.Err() != nil {
		return startFailed(ctx, log, ctx.Err())
	}

	ln, err := cfg.listen("addr", cfg.addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	cfg.settleAddr(ln.Addr(), log)
	httpLn, err := tlsSrv.listenHTTP(cfg, log)
	if err != nil {
		return err
	}
	if httpLn != nil {
		defer httpLn.Close()
	}
	var metricsLn net.Listener
	if cfg.metricsAddr != "" {
		if metricsLn, err = cfg.listen("metrics-addr", cfg.metricsAddr); err != nil {
			return err
		}
		defer metricsLn.Close()
	}

	release, err := takeDataDir(cfg.dataDir, "starting another")
	if err != nil {
		return err
	}
	defer release()
	notify.status("opening the database")
	d, box, keySource, err := openData(ctx, cfg.dataDir, cfg.databaseURL, cfg.masterKey, "")
	if err != nil {
		return startFailed(ctx, log, err)
	}
	defer d.Close()
	if err := checkSQLiteSchema(ctx, d); err != nil {
		// A database swapped in behind the dashboard's back may bring triggers or views of its own.
		if se := (*db.SchemaError)(nil); errors.As(err, &se) {
			return fmt.Errorf("%w; the dashboard serves only the schema it creates: restore a backup (dashboard restore --data %s --from BACKUP_FILE, which checks it), or remove what differs", err, cfg.dataDir)
		}
		return startFailed(ctx, log, err)
	}

	bus, leader, closeCluster, err := joinCluster(ctx, cfg.databaseURL, log)
	if err != nil {
		return startFailed(ctx, log, err)
	}
	defer closeCluster() // after srv.Close (deferred below, so run first)
	// The composition root: the store, the Bus and the Leader above, then the domain services
	// over them, then the web server that serves them (and closes them in Close).
	webCfg := web.Config{
		PublicURL:      cfg.publicURL,
		Version:        version(),
		Demo:           cfg.demo,
		TrustedProxies: cfg.trustedProxies,
		HSTS:           cfg.publicURL.Scheme == "https",
		SessionIdle:    cfg.sessionIdle,
		SessionMax:     cfg.sessionMax,
		RetentionDays:  cfg.retentionDays,
		PublicBudget:   cfg.publicBudget,
		Disk:           cfg.disk,
		// The demo's simulator listens on loopback; only then may configured URLs point there.
		AllowLoopbackURLs: cfg.demo,
		Metrics:           newMetrics(),
		Bus:               bus,
		Leader:            leader,
	}.WithDefaults()
	// NB: not ctx: the services outlive a stop signal until the HTTP server has drained (srv.Close).
	services, err := app.Build(context.WithoutCancel(ctx), webCfg.Services(log), d, box, log)
	if err != nil {
		return startFailed(ctx, log, err)
	}
	srv, err := web.New(webCfg, services, d, box, log)
	if err != nil {
		services.Close()
		return err
	}
	defer srv.Close()

	if metricsLn != nil {
		defer startMetrics(metricsLn, srv.MetricsHandler(), log)()
	}
	httpSrv := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          serverErrorLog(log),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	httpSrv.RegisterOnShutdown(srv.EndStreams)
	if err := tlsSrv.configure(httpSrv); err != nil {
		return err
	}
	defer tlsSrv.release()

	if link, err := accounts.PrepareSetup(ctx, d, cfg.publicURL.String()); err != nil {
		return startFailed(ctx, log, err)
	} else if link != "" {
		fmt.Fprintf(stdout, "\nNo users yet. Open this one-time link to create the first admin (valid %s):\n\n    %s\n\n", accounts.SetupLinkTTL, link)
		if cfg.localOnlyURL() {
			fmt.Fprintf(stdout, "The link works in a browser on this machine only. To open it from another one, restart with %s set to the URL that machine uses.\n\n", cfg.flags.ref("public-url"))
		}
	}
	var trickle func(ctx context.Context, addr string)
	if cfg.demo {
		notify.status("starting the demo")
		if trickle, err = startDemo(ctx, srv, cfg.publicURL.String(), stdout, log); err != nil {
			return startFailed(ctx, log, err)
		}
	}
	if ctx.Err() != nil {
		return startFailed(ctx, log, ctx.Err())
	}
	// Background work ends before the database closes, however serve returns.
	var bg sync.WaitGroup
	bgCtx, stopBg := context.WithCancel(ctx)
	defer bg.Wait()
	defer stopBg()
	bg.Go(func() { srv.Maintain(bgCtx) })
	bg.Go(func() { srv.Rollout().Run(bgCtx, 15*time.Second) })
	bg.Go(func() { tlsSrv.run(bgCtx, log) })
	bg.Go(func() { srv.Alerts().Run(bgCtx) })
	bg.Go(func() { srv.Alerts().PublishHeads(bgCtx) })

	errc := make(chan error, 2)
	go func() { errc <- serveOn(httpSrv, ln) }()
	if httpLn != nil {
		go func() { errc <- serveOn(tlsSrv.httpSrv, httpLn) }()
	}
	addr := ln.Addr().String()
	if trickle != nil {
		bg.Go(func() { trickle(bgCtx, addr) })
	}
	log.Info("dashboard started", "addr", addr, "serving", tlsSrv.describe(addr, httpLn), "public_url", cfg.publicURL.String(), "data", cfg.dataDir, "database", d.Where(),
		"master_key", box.KeyID(), "master_key_source", string(keySource), "version", version(),
		"startup_ms", time.Since(start).Milliseconds())
	notify.ready(tlsSrv.describe(addr, httpLn))
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	notify.stopping()
	log.Info("shutting down; letting in-flight requests finish")
	bg.Wait()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := errors.Join(tlsSrv.shutdown(shutdownCtx), httpSrv.Shutdown(shutdownCtx)); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	// Every acknowledged event is already committed; this stops the writer cleanly.
	if err := srv.Close(); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("stopped")
	return nil
}

// checkSQLiteSchema is d.CheckSchema on SQLite. NB: the check reads SQLite's own catalogue; on
// PostgreSQL the schema is vouched for by its migrations' version alone.
func checkSQLiteSchema(ctx context.Context, d *db.DB) error {
	if d.Postgres() {
		return nil
	}
	return d.CheckSchema(ctx)
}

// startFailed returns a start-up step's error, unless the step failed only because ctx ended
// (SIGINT or SIGTERM during start-up): that is a stop asked for, not a failure, so it returns nil
// and the process exits 0 as after a stop while serving. A real error is returned even then.
func startFailed(ctx context.Context, log *slog.Logger, err error) error {
	if ctx.Err() == nil || !errors.Is(err, ctx.Err()) {
		return err
	}
	log.Info("stopped during start-up")
	return nil
}

// databasePresent reports whether dir holds a database with something in it (in its file or in a
// write-ahead log beside it).
func databasePresent(dir string) bool {
	path := filepath.Join(dir, db.FileName)
	for _, p := range []string{path, path + "-wal"} {
		if st, err := os.Stat(p); err == nil && st.Size() > 0 {
			return true
		}
	}
	return false
}

// refuseLostDatabase stops a start that would silently begin a fresh install next to the master
// key of an old one: the data directory holds master.key but the database is missing or empty
// (deleted, or lost in a restore gone wrong). Starting would print a new setup link, and every
// secret sealed with that key would be gone without a word.
func refuseLostDatabase(dir, keyValue, keyFile string) error {
	if keyValue != "" || keyFile != "" {
		return nil // a key given from outside says nothing about this directory's history
	}
	if _, err := os.Stat(filepath.Join(dir, secrets.KeyFileName)); err != nil {
		return nil
	}
	if databasePresent(dir) {
		return nil
	}
	path := filepath.Join(dir, db.FileName)
	return fmt.Errorf("%s holds a master key but the database %s is missing or empty; if it was lost, restore it from a backup (dashboard restore --data %s --from BACKUP_FILE); to start a new install instead, move %s away first",
		dir, path, dir, filepath.Join(dir, secrets.KeyFileName))
}

// joinCluster builds the Bus and the Leader. One process on SQLite: the Bus is in process and
// this instance always leads. On PostgreSQL several instances share the database: the Bus is
// LISTEN/NOTIFY and the Leader is whoever holds the leader advisory lock.
func joinCluster(ctx context.Context, databaseURL string, log *slog.Logger) (cluster.Bus, cluster.Leader, func(), error) {
	if databaseURL == "" {
		bus := cluster.NewLocalBus()
		return bus, cluster.Solo{}, bus.Close, nil
	}
	bus, err := cluster.NewPGBus(ctx, databaseURL, log)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("join the other instances' notifications: %w", err)
	}
	leader, err := cluster.NewPGLeader(ctx, databaseURL, db.LeaderLockKey, log, cluster.PGLeaderOptions{
		OnChange: func(leading bool) {
			if leading {
				log.Info("this instance now runs the schedulers (leader)")
			} else {
				log.Info("this instance no longer runs the schedulers; another instance leads")
			}
		},
	})
	if err != nil {
		bus.Close()
		return nil, nil, nil, fmt.Errorf("join the leader election: %w", err)
	}
	return bus, leader, func() { leader.Close(); bus.Close() }, nil
}
