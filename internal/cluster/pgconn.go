package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

const (
	// dialTimeout bounds one attempt to connect (and set the connection up).
	dialTimeout = 5 * time.Second
	// redialFirst and redialMax are the first wait after a failed attempt and the cap of the
	// doubling waits: capped at 1 s so that an instance is back within about a second of
	// PostgreSQL's return.
	redialFirst = 50 * time.Millisecond
	redialMax   = time.Second
	// closeTimeout bounds closing a connection that may be dead already.
	closeTimeout = time.Second
)

// parseURL parses a PostgreSQL URL for a dedicated connection named app (application_name, as
// pg_stat_activity shows it) unless the URL names one itself.
func parseURL(databaseURL, app string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(databaseURL) // its errors never show the password
	if err != nil {
		return nil, err
	}
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = app
	}
	return cfg, nil
}

// dial connects with cfg and runs setup (nil: none) on the new connection, within dialTimeout.
func dial(ctx context.Context, cfg *pgx.ConnConfig, setup string) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if setup != "" {
		if _, err := conn.Exec(ctx, setup); err != nil {
			closeConn(conn)
			return nil, fmt.Errorf("%s: %w", setup, err)
		}
	}
	return conn, nil
}

// redial dials until it succeeds, waiting redialFirst after the first failure and doubling up
// to redialMax; it returns nil once ctx is done. The first failure of a series is logged, the
// rest are not (PostgreSQL may be away for minutes).
func redial(ctx context.Context, cfg *pgx.ConnConfig, setup string, log *slog.Logger, what string) *pgx.Conn {
	wait := redialFirst
	for attempt := 0; ; attempt++ {
		conn, err := dial(ctx, cfg, setup)
		if err == nil {
			return conn
		}
		if ctx.Err() != nil {
			return nil
		}
		if attempt == 0 {
			log.Warn("cluster: cannot reach PostgreSQL; retrying every second at most", "conn", what, "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, redialMax)
	}
}

// closeConn closes conn, waiting at most closeTimeout for a connection that is already dead.
func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	conn.Close(ctx)
}

// idle waits up to d for conn to fail, reading from it as LISTEN does: it returns nil when d
// passed with the connection still up, ctx's error once ctx is done, and the connection's error
// at once when PostgreSQL ends the session (a restart, pg_terminate_backend, a broken network
// that the kernel notices). A notification, which no caller expects, ends the wait early.
func idle(ctx context.Context, conn *pgx.Conn, d time.Duration) error {
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	_, err := conn.WaitForNotification(wctx)
	if err != nil && ctx.Err() == nil && errors.Is(wctx.Err(), context.DeadlineExceeded) && !conn.PgConn().IsClosed() {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}
