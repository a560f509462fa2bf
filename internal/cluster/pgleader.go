package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultLeaderInterval is how often a PGLeader tries to take the lock, and pings the
// connection that holds it: an instance that dies is replaced within about this long.
const DefaultLeaderInterval = 5 * time.Second

// PGLeaderOptions tunes a PGLeader; the zero value is the default.
type PGLeaderOptions struct {
	// Interval between attempts to take the lock, and between pings while holding it
	// (DefaultLeaderInterval when zero).
	Interval time.Duration
	// OnChange, when set, is called with the new state each time Leading changes (to log it,
	// set the dashboard_leader gauge), on the leader's goroutine: it must return quickly, and
	// must not call Close.
	OnChange func(leading bool)
}

// PGLeader is the Leader of several instances on one PostgreSQL database: the instance that
// holds a session-level advisory lock on a connection of its own leads. The others try to take
// the lock every Interval; when the leader dies its connection closes, PostgreSQL releases the
// lock, and another instance takes it within an Interval. The leader pings its connection every
// Interval, and reads from it in between, so a lost connection ends its leadership as soon as it
// is noticed; it then waits two Intervals before trying again, which leaves the lock to an
// instance whose connection held. Build it with NewPGLeader; Close gives the lock up.
//
// NB: a leader cut off from PostgreSQL without its connection being closed (a partition) leads
// until its ping fails, up to an Interval, while PostgreSQL may hand the lock on sooner; work the
// schedulers must never do twice (alert deliveries) is claimed in the database as well.
type PGLeader struct {
	cfg      *pgx.ConnConfig
	key      int64
	interval time.Duration
	onChange func(bool)
	log      *slog.Logger

	leading atomic.Bool
	pid     atomic.Uint32 // backend pid of the connection (tests end it)

	cancel context.CancelFunc
	done   chan struct{}
}

// NewPGLeader connects to databaseURL and makes a first attempt at the advisory lock key (one
// the caller reserves for leadership), then keeps trying in the background. It fails when
// PostgreSQL cannot be reached.
func NewPGLeader(ctx context.Context, databaseURL string, key int64, log *slog.Logger, opts PGLeaderOptions) (*PGLeader, error) {
	cfg, err := parseURL(databaseURL, "dashboard leader")
	if err != nil {
		return nil, fmt.Errorf("cluster: leader: %w", err)
	}
	if opts.Interval <= 0 {
		opts.Interval = DefaultLeaderInterval
	}
	l := &PGLeader{cfg: cfg, key: key, interval: opts.Interval, onChange: opts.OnChange, log: log,
		done: make(chan struct{})}
	conn, err := dial(ctx, cfg, "")
	if err != nil {
		return nil, fmt.Errorf("cluster: leader: connect: %w", err)
	}
	l.pid.Store(conn.PgConn().PID())
	run, cancel := context.WithCancel(context.WithoutCancel(ctx))
	l.cancel = cancel
	conn = l.round(run, conn)
	go l.run(run, conn)
	return l, nil
}

// Leading reports whether this instance holds the lock.
func (l *PGLeader) Leading() bool { return l.leading.Load() }

// Close stops trying, gives the lock up if held and closes the connection.
func (l *PGLeader) Close() {
	l.cancel()
	<-l.done
}

// run keeps trying (or checking) the lock every interval until ctx ends. An instance whose
// connection failed waits two intervals before it tries again: the others try every interval,
// so one whose connection held takes the lock first.
func (l *PGLeader) run(ctx context.Context, conn *pgx.Conn) {
	defer close(l.done)
	defer func() { l.release(conn) }()
	wait := l.interval
	for {
		if conn != nil {
			// Reading from the connection while waiting notices its loss at once.
			err := idle(ctx, conn, l.interval)
			if ctx.Err() != nil {
				return
			}
			if wait = 0; err != nil {
				conn, wait = l.drop(conn, err), 2*l.interval
			}
		}
		if wait > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
		held := l.leading.Load()
		if conn = l.round(ctx, conn); conn == nil && held {
			wait = 2 * l.interval
		} else {
			wait = l.interval
		}
	}
}

// round connects if need be, then takes the lock, or checks that the connection holding it is
// alive. It returns the connection, or nil when it was lost.
func (l *PGLeader) round(ctx context.Context, conn *pgx.Conn) *pgx.Conn {
	if conn == nil {
		c, err := dial(ctx, l.cfg, "")
		if err != nil {
			if ctx.Err() == nil {
				l.log.Debug("cluster: leader cannot reach PostgreSQL; trying again", "err", err)
			}
			return nil
		}
		conn = c
		l.pid.Store(conn.PgConn().PID())
	}
	qctx, cancel := context.WithTimeout(ctx, max(l.interval, time.Second))
	defer cancel()
	if l.leading.Load() {
		if err := conn.Ping(qctx); err != nil {
			return l.drop(conn, err)
		}
		return conn
	}
	var got bool
	if err := conn.QueryRow(qctx, "SELECT pg_try_advisory_lock($1)", l.key).Scan(&got); err != nil {
		return l.drop(conn, err)
	}
	l.set(got)
	return conn
}

// drop ends leadership at once and closes conn, which has failed with err.
func (l *PGLeader) drop(conn *pgx.Conn, err error) *pgx.Conn {
	if l.leading.Load() {
		l.log.Warn("cluster: leader lost its connection to PostgreSQL", "err", err)
	}
	l.set(false)
	closeConn(conn)
	return nil
}

// release gives the lock up (closing the connection would too, once PostgreSQL notices) and
// closes the connection.
func (l *PGLeader) release(conn *pgx.Conn) {
	if conn == nil {
		l.set(false)
		return
	}
	held := l.leading.Load()
	l.set(false) // before the lock goes: never two leaders at once
	if held {
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		if _, err := conn.Exec(ctx, "SELECT pg_advisory_unlock($1)", l.key); err != nil {
			l.log.Warn("cluster: leader could not unlock; closing its connection releases the lock", "err", err)
		}
		cancel()
	}
	closeConn(conn)
}

// set records the state and reports a change.
func (l *PGLeader) set(leading bool) {
	if l.leading.Swap(leading) == leading {
		return
	}
	l.log.Info("cluster: leadership changed", "leading", leading)
	if l.onChange != nil {
		l.onChange(leading)
	}
}
