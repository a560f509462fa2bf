package db

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ErrIngesterClosed is returned by Submit once the Ingester is closed.
var ErrIngesterClosed = errors.New("db: ingester closed")

// IngestOptions configure an Ingester.
type IngestOptions struct {
	// MaxBatch is the most events one transaction takes (default 256). One Submit is never split,
	// so a Submit larger than MaxBatch gets a transaction of its own.
	MaxBatch int
	// OnCommit, when set, is called on the writer goroutine after each commit with the events that
	// transaction newly stored (duplicates left out), in id order, before any Submit of the batch
	// returns. It is how internal/events feeds the live feed.
	//
	// NB: the writer waits for it, so it must be fast and never block (hand the events to a
	// non-blocking publish); it must not call Submit.
	OnCommit func([]Event)
	// OnBatch, when set, is called on the writer goroutine after each transaction that committed,
	// with how many events it wrote (duplicates included) and how long it took, fsync included.
	// It is how the metrics see group commits; like OnCommit it must be fast.
	OnBatch func(events int, took time.Duration)
}

// IngestResult is the outcome of one submitted event.
type IngestResult struct {
	ID        int64 // the stored event, or for a duplicate the event stored first
	Duplicate bool  // the dedupe key was already stored; nothing new was written
}

// IngestStats are running totals for metrics.
type IngestStats struct {
	Batches    uint64 // transactions committed
	Events     uint64 // events newly stored
	Duplicates uint64 // events answered with an earlier event
	Failed     uint64 // transactions that failed (every Submit in them got the error)
	Queued     int64  // Submits waiting for the writer to take them, now
}

// Ingester stores events with group commit: one goroutine takes every Submit waiting at that
// moment (up to MaxBatch events, never waiting for more), writes them in one transaction on the
// writer connection, and answers each Submit only after the commit, with synchronous=FULL, has
// returned. Under load many requests share one fsync; alone, a request does not wait for company.
type Ingester struct {
	d    *DB
	opts IngestOptions
	in   chan *ingestReq // unbuffered: a request is queued while its Submit blocks on the send
	quit chan struct{}
	done chan struct{}

	mu      sync.Mutex
	started bool
	closed  bool

	batches, events, duplicates, failed atomic.Uint64
	waiting                             atomic.Int64

	// Owned by the writer goroutine.
	ins          *sql.Stmt // the insert of API calls, prepared once on the writer connection
	insLean      *sql.Stmt // the insert of webhooks and callbacks (no API-call columns)
	lastReceived int64     // newest received_at written (ms); 0 until read from the table
}

type ingestReq struct {
	inputs []EventInput
	args   [][]any          // insert arguments per input, made in Submit
	reply  chan ingestReply // buffered: the writer never blocks on a reply
}

type ingestReply struct {
	results []IngestResult
	err     error
}

// NewIngester returns an Ingester writing to d. Call Start before Submit and Close when done.
func NewIngester(d *DB, opts IngestOptions) *Ingester {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 256
	}
	return &Ingester{d: d, opts: opts, in: make(chan *ingestReq), quit: make(chan struct{}), done: make(chan struct{})}
}

// Start starts the writer goroutine. Calling it again, or after Close, does nothing.
func (g *Ingester) Start() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.started || g.closed {
		return
	}
	g.started = true
	go g.run()
}

// Close stops accepting Submits, writes what is already queued, and returns once the writer
// goroutine has exited. It is safe to call more than once.
func (g *Ingester) Close() error {
	g.mu.Lock()
	if !g.closed {
		g.closed = true
		close(g.quit)
	}
	started := g.started
	g.mu.Unlock()
	if started {
		<-g.done
	}
	return nil
}

// Stats returns running totals.
func (g *Ingester) Stats() IngestStats {
	return IngestStats{Batches: g.batches.Load(), Events: g.events.Load(), Duplicates: g.duplicates.Load(),
		Failed: g.failed.Load(), Queued: g.waiting.Load()}
}

// Submit stores events (all in one transaction) and returns one result per event, in order,
// once that transaction has committed. An invalid event fails the whole Submit before anything
// is queued.
//
// If ctx ends while the request is still queued, Submit returns ctx.Err() and nothing is stored.
// NB: once the writer has taken the request into a batch, Submit waits for that batch and returns
// its outcome even if ctx ends meanwhile, so a caller never sees an error for stored events.
// If the transaction fails, every Submit in the batch gets the error and nothing of it is stored.
// Before Start, Submit waits (for Start or ctx); after Close it returns ErrIngesterClosed.
func (g *Ingester) Submit(ctx context.Context, inputs []EventInput) ([]IngestResult, error) {
	if len(inputs) == 0 {
		return nil, nil
	}
	for i := range inputs {
		if err := inputs[i].validate(); err != nil {
			return nil, fmt.Errorf("db: ingest: event %d: %w", i, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	args := make([][]any, len(inputs))
	for i := range inputs {
		a, err := insertArgs(&inputs[i], 0)
		if err != nil {
			return nil, fmt.Errorf("db: ingest: event %d: %w", i, err)
		}
		args[i] = a
	}
	r := &ingestReq{inputs: inputs, args: args, reply: make(chan ingestReply, 1)}
	g.waiting.Add(1)
	select {
	case g.in <- r:
		g.waiting.Add(-1)
	case <-ctx.Done():
		g.waiting.Add(-1)
		return nil, ctx.Err()
	case <-g.quit:
		g.waiting.Add(-1)
		return nil, ErrIngesterClosed
	}
	rep := <-r.reply // the writer answers every request it has taken
	return rep.results, rep.err
}

// run is the writer goroutine.
func (g *Ingester) run() {
	defer close(g.done)
	defer func() {
		if g.ins != nil {
			g.ins.Close()
			g.insLean.Close()
		}
	}()
	var carry *ingestReq // taken but did not fit in the previous batch
	for {
		first := carry
		carry = nil
		if first == nil {
			select {
			case first = <-g.in:
			case <-g.quit:
				select { // drain: whoever is still blocked in Submit is written
				case first = <-g.in:
				default:
					return
				}
			}
		}
		batch := []*ingestReq{first}
		n := len(first.inputs)
	gather:
		for n < g.opts.MaxBatch {
			select {
			case r := <-g.in:
				if n+len(r.inputs) > g.opts.MaxBatch {
					carry = r
					break gather
				}
				batch = append(batch, r)
				n += len(r.inputs)
			default:
				break gather
			}
		}
		g.write(batch, n)
	}
}

// write stores one batch in one transaction and answers its requests.
func (g *Ingester) write(batch []*ingestReq, n int) {
	results := make([][]IngestResult, len(batch))
	inserted := make([]Event, 0, n)
	// NB: not the callers' contexts: one caller going away must not fail the others' batch.
	ctx := context.Background()
	if g.ins == nil && !g.d.dia.postgres { // PostgreSQL builds one statement per batch
		// Prepared outside any transaction: the writer pool has one connection, which an open
		// transaction would hold.
		ins, err := g.d.W.PrepareContext(ctx, insertEventSQL)
		if err != nil {
			g.fail(batch, err)
			return
		}
		lean, err := g.d.W.PrepareContext(ctx, insertLeanSQL)
		if err != nil {
			ins.Close()
			g.fail(batch, err)
			return
		}
		g.ins, g.insLean = ins, lean
	}
	start := time.Now()
	err := g.d.tx(ctx, func(tx txer) error {
		var err error
		inserted, err = g.insert(ctx, tx, batch, results, inserted)
		return err
	})
	if err != nil {
		g.lastReceived = 0 // re-read after a failed transaction
		g.fail(batch, err)
		return
	}
	if g.opts.OnBatch != nil {
		g.opts.OnBatch(n, time.Since(start))
	}
	g.batches.Add(1)
	g.events.Add(uint64(len(inserted)))
	g.duplicates.Add(uint64(n - len(inserted)))
	if g.opts.OnCommit != nil && len(inserted) > 0 {
		g.opts.OnCommit(inserted)
	}
	for i, r := range batch {
		r.reply <- ingestReply{results: results[i]}
	}
}

// fail answers every request of a batch with err.
func (g *Ingester) fail(batch []*ingestReq, err error) {
	g.failed.Add(1)
	err = fmt.Errorf("db: ingest: %w", err)
	for _, r := range batch {
		r.reply <- ingestReply{err: err}
	}
}

const insertEventSQL = `INSERT INTO events (source, env, type, request_id, user_id, external_id, dedupe_key,
	received_at, occurred_at, is_error, method, path, status, duration_ms, error_code, error_message, payload,
	headers, verification, demo, client)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (dedupe_key) DO NOTHING`

func (g *Ingester) insert(ctx context.Context, tx txer, batch []*ingestReq, results [][]IngestResult, inserted []Event) ([]Event, error) {
	// received_at never goes below the newest stored one, even if the clock steps back, so that
	// a time window is an id range (see firstEventAtOrAfter).
	now := g.d.Now()
	if g.d.dia.postgres {
		// Other instances write too, with clocks of their own: read the newest stamp under the
		// writer lock that tx holds, every batch.
		g.lastReceived = 0
	}
	if g.lastReceived == 0 {
		var last sql.NullInt64
		if err := tx.QueryRowContext(ctx, "SELECT received_at FROM events ORDER BY id DESC LIMIT 1").Scan(&last); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, err
		}
		g.lastReceived = last.Int64
	}
	if g.lastReceived > ms(now) {
		now = fromMS(g.lastReceived)
	}
	g.lastReceived = ms(now)
	if g.d.dia.postgres {
		return g.insertPostgres(ctx, tx, batch, results, inserted, now)
	}
	var ins, lean *sql.Stmt // bound to this transaction on first use
	defer func() {
		if ins != nil {
			ins.Close()
		}
		if lean != nil {
			lean.Close()
		}
	}()
	var dup *sql.Stmt
	counts := map[counter]int64{}
	for i, r := range batch {
		results[i] = make([]IngestResult, len(r.inputs))
		for j := range r.inputs {
			in := &r.inputs[j]
			args := r.args[j]
			args[receivedAtArg] = ms(now)
			var st *sql.Stmt
			if in.Source == SourceAPI {
				if ins == nil {
					ins = tx.StmtContext(ctx, g.ins)
				}
				st = ins
			} else {
				if lean == nil {
					lean = tx.StmtContext(ctx, g.insLean)
				}
				st, args = lean, leanArgs(args)
			}
			// Exec, not RETURNING: one step less per row on the hot path. No row affected means
			// the dedupe key is already stored.
			id, stored, err := g.exec(ctx, st, args)
			if err != nil {
				return nil, err
			}
			if !stored {
				if dup == nil {
					if dup, err = tx.PrepareContext(ctx, "SELECT id FROM events WHERE dedupe_key = ?"); err != nil {
						return nil, err
					}
					defer dup.Close()
				}
				if err := dup.QueryRowContext(ctx, in.DedupeKey).Scan(&id); err != nil {
					return nil, fmt.Errorf("duplicate of %q: %w", in.DedupeKey, err)
				}
				results[i][j] = IngestResult{ID: id, Duplicate: true}
				continue
			}
			results[i][j] = IngestResult{ID: id}
			inserted = append(inserted, storedEvent(in, id, now))
			if !in.Demo && in.Source == SourceAPI { // only API calls are counted (free-call budget)
				counts[counter{in.Env, in.Source}]++
			}
		}
	}
	return inserted, bumpEventCounts(ctx, tx, counts)
}

// counter is a row of event_counts.
type counter struct{ env, source string }

// storedEvent is an inserted event as it will read back: the API-call fields are stored for API
// calls only.
func storedEvent(in *EventInput, id int64, now time.Time) Event {
	e := Event{ID: id, ReceivedAt: now, EventInput: *in}
	if in.Source != SourceAPI {
		e.Method, e.Path, e.Status, e.DurationMS, e.ErrorCode, e.ErrorMessage = "", "", 0, 0, "", ""
	}
	return e
}

// bumpEventCounts adds a batch's counts to event_counts.
func bumpEventCounts(ctx context.Context, tx txer, counts map[counter]int64) error {
	for c, k := range counts {
		_, err := tx.ExecContext(ctx, `INSERT INTO event_counts (env, source, n) VALUES (?, ?, ?)
			ON CONFLICT (env, source) DO UPDATE SET n = event_counts.n + excluded.n`, c.env, c.source, k)
		if err != nil {
			return err
		}
	}
	return nil
}

// insertPostgres stores a batch on PostgreSQL in a fixed number of round trips, whatever its
// size (one statement per row, each a round trip to the server, cost a third of the throughput):
// it takes the batch's ids from the sequence at once (the writer lock is held, so they are the
// next ids in commit order), inserts every row with its id in one statement, and learns from
// RETURNING which rows were stored; a row missing there had its dedupe key stored already, and
// its stored id is read back. The ids of duplicates are left unused, a gap in the sequence.
func (g *Ingester) insertPostgres(ctx context.Context, tx txer, batch []*ingestReq, results [][]IngestResult, inserted []Event, now time.Time) ([]Event, error) {
	n := 0
	for _, r := range batch {
		n += len(r.inputs)
	}
	ids := make([]int64, 0, n)
	err := eachRow(ctx, tx, "event ids", func(r rowScanner) error {
		var id int64
		err := r.Scan(&id)
		ids = append(ids, id)
		return err
	}, "SELECT nextval(pg_get_serial_sequence('events', 'id')) FROM generate_series(1, ?)", n)
	if err != nil {
		return nil, err
	}
	if len(ids) != n {
		return nil, fmt.Errorf("%d ids for %d events", len(ids), n)
	}
	var q strings.Builder
	q.WriteString(`INSERT INTO events (id, source, env, type, request_id, user_id, external_id, dedupe_key,
	received_at, occurred_at, is_error, method, path, status, duration_ms, error_code, error_message, payload,
	headers, verification, demo, client) VALUES `)
	args := make([]any, 0, n*22)
	k := 0
	for _, r := range batch {
		for j := range r.inputs {
			a := r.args[j]
			a[receivedAtArg] = ms(now)
			if k > 0 {
				q.WriteString(", ")
			}
			q.WriteByte('(')
			for c := range 22 {
				if c > 0 {
					q.WriteString(", ")
				}
				fmt.Fprintf(&q, "$%d", k*22+c+1)
			}
			q.WriteByte(')')
			args = append(args, ids[k])
			args = append(args, g.d.dia.args(a)...)
			k++
		}
	}
	q.WriteString(" ON CONFLICT (dedupe_key) DO NOTHING RETURNING id")
	stored := make(map[int64]bool, n)
	// NB: straight to the transaction, not through the dialect: the statement is PostgreSQL's.
	rows, err := tx.Tx.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		stored[id] = true
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, err
	}
	counts := map[counter]int64{}
	k = 0
	for i, r := range batch {
		results[i] = make([]IngestResult, len(r.inputs))
		for j := range r.inputs {
			in := &r.inputs[j]
			id := ids[k]
			k++
			if !stored[id] {
				var dup int64
				if err := tx.QueryRowContext(ctx, "SELECT id FROM events WHERE dedupe_key = ?", in.DedupeKey).Scan(&dup); err != nil {
					return nil, fmt.Errorf("duplicate of %q: %w", in.DedupeKey, err)
				}
				results[i][j] = IngestResult{ID: dup, Duplicate: true}
				continue
			}
			results[i][j] = IngestResult{ID: id}
			inserted = append(inserted, storedEvent(in, id, now))
			if !in.Demo && in.Source == SourceAPI {
				counts[counter{in.Env, in.Source}]++
			}
		}
	}
	return inserted, bumpEventCounts(ctx, tx, counts)
}

// exec runs one prepared insert and returns the new row's id, or stored false when the dedupe
// key was already there.
func (g *Ingester) exec(ctx context.Context, st *sql.Stmt, args []any) (id int64, stored bool, err error) {
	res, err := st.ExecContext(ctx, args...)
	if err != nil {
		return 0, false, err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return 0, false, err
	}
	id, err = res.LastInsertId()
	return id, err == nil, err
}

// insertLeanSQL stores a webhook or callback: the API-call columns stay NULL, so they are not
// bound at all (fewer arguments to convert per row on the serial writer).
const insertLeanSQL = `INSERT INTO events (source, env, type, request_id, user_id, external_id, dedupe_key,
	received_at, occurred_at, is_error, payload, headers, verification, demo, client)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (dedupe_key) DO NOTHING`

// leanArgs picks insertLeanSQL's arguments out of insertArgs', in place (each row's arguments
// are used once).
func leanArgs(a []any) []any {
	copy(a[10:15], a[16:21])
	return a[:15]
}

// receivedAtArg is the position of received_at in insertArgs; the writer fills it in.
const receivedAtArg = 7

// insertArgs turns an event into the insert's arguments as plain driver values (nil for NULL),
// so the serial writer does no encoding or conversion work. It runs in Submit, on the caller's
// goroutine.
func insertArgs(in *EventInput, receivedAt int64) ([]any, error) {
	var dedupe, headers, verification, occurred, client any
	if in.DedupeKey != "" {
		dedupe = in.DedupeKey
	}
	if in.Client != "" {
		client = in.Client
	}
	if in.Headers != nil {
		b, err := json.Marshal(in.Headers)
		if err != nil {
			return nil, err
		}
		headers = string(b)
	}
	if len(in.Verification) > 0 {
		verification = string(in.Verification)
	}
	if !in.OccurredAt.IsZero() {
		occurred = ms(in.OccurredAt)
	}
	var method, path, errCode, errMsg, status, duration any
	if in.Source == SourceAPI {
		method, path, errCode, errMsg, duration = in.Method, in.Path, in.ErrorCode, in.ErrorMessage, in.DurationMS
		if in.Status != 0 {
			status = int64(in.Status)
		}
	}
	return []any{in.Source, in.Env, in.Type, in.RequestID, in.UserID, in.ExternalID, dedupe,
		receivedAt, occurred, boolInt(in.IsError), method, path, status, duration, errCode, errMsg, in.Payload,
		headers, verification, boolInt(in.Demo), client}, nil
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
