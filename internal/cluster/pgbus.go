package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// PGChannel is the PostgreSQL notification channel of every PGBus on a database: one channel
// for all topics, so that the listening connection LISTENs once; the payload names the topic.
const PGChannel = "dashboard_bus"

// PGQueue is how many messages a PGBus holds for sending to PostgreSQL. When it is full the
// message is dropped and its topic marked lost; the sender then notifies a Reload of that topic,
// so remote subscribers reload rather than miss the change.
const PGQueue = 256

const (
	// maxPayload keeps a notification under PostgreSQL's limit of 8000 bytes; a message whose
	// payload would not fit is sent as a Reload of its topic.
	maxPayload = 7900
	// keepAlive is how long the listening connection may stay silent before it is pinged, so a
	// connection lost without a word (a network that drops packets) is noticed too.
	keepAlive = 10 * time.Second
)

// PGBus is the Bus of several instances on one PostgreSQL database. Local subscribers are served
// as LocalBus serves them (a goroutine and a queue each; a slow one gets one Reload). Publish
// delivers locally at once and queues the message for a connection of its own that sends it as a
// NOTIFY on PGChannel with the instance's id; one more connection LISTENs, ignores what this
// instance sent and publishes the rest locally. When the listening connection is lost,
// notifications sent meanwhile are lost with it: it reconnects (waits capped at 1 s) and every
// subscriber of every topic gets a Reload. Build it with NewPGBus; Close stops it.
//
// NB: a NOTIFY is sent after the change it announces has committed, not with it; an instance
// that dies in between leaves the other instances to the expiry of what they cache.
type PGBus struct {
	local *LocalBus
	cfg   *pgx.ConnConfig
	log   *slog.Logger
	id    string // this instance, in every payload it sends

	keepAlive time.Duration

	out  chan Message
	mu   sync.Mutex
	lost map[string]bool // topics dropped from a full out: remote subscribers must reload them
	kick chan struct{}   // wakes the sender after a drop (capacity 1)

	connected  atomic.Bool
	reconnects atomic.Int64
	listenPID  atomic.Uint32 // backend pid of the listening connection (tests end it)
	sendPID    atomic.Uint32 // backend pid of the sending connection

	closed atomic.Bool
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// notice is the payload of a notification: small, well under PostgreSQL's 8000 bytes.
type notice struct {
	Instance string `json:"i"`
	Topic    string `json:"t"`
	ID       string `json:"d,omitempty"`
	Reload   bool   `json:"r,omitempty"`
}

// NewPGBus connects to databaseURL (a listening and a sending connection) and starts the Bus.
// It fails when PostgreSQL cannot be reached; once started it reconnects on its own.
func NewPGBus(ctx context.Context, databaseURL string, log *slog.Logger) (*PGBus, error) {
	return newPGBus(ctx, databaseURL, log, PGQueue, keepAlive)
}

// newPGBus is NewPGBus with a send queue of the given size and the given keep-alive.
func newPGBus(ctx context.Context, databaseURL string, log *slog.Logger, queue int, keepAlive time.Duration) (*PGBus, error) {
	cfg, err := parseURL(databaseURL, "dashboard bus")
	if err != nil {
		return nil, fmt.Errorf("cluster: bus: %w", err)
	}
	var raw [8]byte
	rand.Read(raw[:])
	b := &PGBus{local: NewLocalBus(), cfg: cfg, log: log, id: hex.EncodeToString(raw[:]), keepAlive: keepAlive,
		out: make(chan Message, queue), lost: map[string]bool{}, kick: make(chan struct{}, 1)}
	listener, err := dial(ctx, cfg, listenSQL)
	if err != nil {
		return nil, fmt.Errorf("cluster: bus: listen: %w", err)
	}
	sender, err := dial(ctx, cfg, "")
	if err != nil {
		closeConn(listener)
		return nil, fmt.Errorf("cluster: bus: connect: %w", err)
	}
	b.listenPID.Store(listener.PgConn().PID())
	b.sendPID.Store(sender.PgConn().PID())
	b.connected.Store(true)
	run, cancel := context.WithCancel(context.WithoutCancel(ctx))
	b.cancel = cancel
	b.wg.Add(2)
	go b.listen(run, listener)
	go b.send(run, sender)
	return b, nil
}

var listenSQL = "LISTEN " + pgx.Identifier{PGChannel}.Sanitize()

// Publish delivers m to this instance's subscribers and queues it for the others; it never
// blocks. A message that finds the queue full is dropped and its topic reloaded remotely.
func (b *PGBus) Publish(m Message) {
	if b.closed.Load() {
		return
	}
	m.Reload = false
	b.local.Publish(m)
	select {
	case b.out <- m:
	default:
		b.mu.Lock()
		b.lost[m.Topic] = true
		b.mu.Unlock()
		select {
		case b.kick <- struct{}{}:
		default:
		}
	}
}

// Subscribe calls handle with each message of topic, from this instance and the others.
func (b *PGBus) Subscribe(topic string, handle func(Message)) (stop func()) {
	return b.local.Subscribe(topic, handle)
}

// Connected reports whether the listening connection is up: while it is not, changes made by
// other instances are not heard (every subscriber reloads once it is back).
func (b *PGBus) Connected() bool { return b.connected.Load() }

// Reconnects counts the listening connection's reconnections since the start.
func (b *PGBus) Reconnects() int64 { return b.reconnects.Load() }

// Close stops the Bus: the connections are closed after a last attempt (of at most a second or
// two) to send what is queued, and every goroutine, the subscribers' too, has returned.
func (b *PGBus) Close() {
	if b.closed.Swap(true) {
		return
	}
	b.cancel()
	b.wg.Wait()
	b.local.Close()
}

// listen receives notifications until ctx ends, reconnecting when the connection is lost.
func (b *PGBus) listen(ctx context.Context, conn *pgx.Conn) {
	defer b.wg.Done()
	for {
		if conn == nil {
			if conn = redial(ctx, b.cfg, listenSQL, b.log, "bus listen"); conn == nil {
				return
			}
			b.listenPID.Store(conn.PgConn().PID())
			b.connected.Store(true)
			b.reconnects.Add(1)
			// LISTEN is in place: whatever was lost while away is reloaded from here on.
			b.local.reloadAll()
			b.log.Info("cluster: bus reconnected; every subscriber reloads", "reconnects", b.reconnects.Load())
		}
		wctx, cancel := context.WithTimeout(ctx, b.keepAlive)
		n, err := conn.WaitForNotification(wctx)
		silent := errors.Is(wctx.Err(), context.DeadlineExceeded)
		cancel()
		switch {
		case err == nil:
			b.receive(n.Payload)
			continue
		case ctx.Err() != nil:
			b.connected.Store(false)
			closeConn(conn)
			return
		case silent && !conn.PgConn().IsClosed():
			// Silent for b.keepAlive: make sure the connection is still there.
			pctx, cancel := context.WithTimeout(ctx, dialTimeout)
			err = conn.Ping(pctx)
			cancel()
			if err == nil {
				continue
			}
		}
		b.connected.Store(false)
		closeConn(conn)
		conn = nil
		if ctx.Err() != nil {
			return
		}
		b.log.Warn("cluster: bus lost its listening connection; reconnecting", "err", err)
	}
}

// receive hands a notification from another instance to the local subscribers.
func (b *PGBus) receive(payload string) {
	var n notice
	err := json.Unmarshal([]byte(payload), &n)
	switch {
	case err == nil && n.Instance == b.id: // delivered locally when published
	case err != nil || n.Topic == "":
		// Not a payload this version reads (another version, or someone else's NOTIFY on the
		// channel): it may announce anything, so everything is reloaded.
		b.log.Warn("cluster: bus got a notification without a topic it can read; every subscriber reloads", "payload_bytes", len(payload))
		b.local.reloadAll()
	case n.Reload:
		b.local.reload(n.Topic)
	default:
		b.local.Publish(Message{Topic: n.Topic, ID: n.ID})
	}
}

// send sends queued messages as notifications until ctx ends, then makes a last attempt with
// what is still queued. A batch that fails is sent again on a new connection (a subscriber takes
// a message twice as a no-op).
func (b *PGBus) send(ctx context.Context, conn *pgx.Conn) {
	defer b.wg.Done()
	var batch []Message
	retry := redialFirst // wait before sending a failed batch again
	for {
		select {
		case <-ctx.Done():
		case m := <-b.out:
			batch = append(batch, m)
		case <-b.kick:
		}
		if ctx.Err() != nil {
			break
		}
		batch = b.take(batch)
		for len(batch) > 0 {
			if conn == nil {
				if conn = redial(ctx, b.cfg, "", b.log, "bus notify"); conn == nil {
					break
				}
				b.sendPID.Store(conn.PgConn().PID())
			}
			if err := b.notify(ctx, conn, batch); err != nil {
				closeConn(conn)
				conn = nil
				if ctx.Err() != nil {
					break
				}
				b.log.Warn("cluster: bus could not notify; reconnecting to send again", "messages", len(batch), "err", err)
				select {
				case <-ctx.Done():
				case <-time.After(retry):
				}
				retry = min(2*retry, redialMax)
				continue
			}
			batch, retry = batch[:0], redialFirst
		}
		if ctx.Err() != nil {
			break
		}
	}
	if conn == nil {
		return
	}
	defer closeConn(conn)
	if batch = b.take(batch); len(batch) == 0 {
		return
	}
	last, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := b.notify(last, conn, batch); err != nil {
		b.log.Warn("cluster: bus closed with messages it could not send", "messages", len(batch), "err", err)
	}
}

// take appends to batch what is queued, and a Reload for each topic lost to a full queue.
func (b *PGBus) take(batch []Message) []Message {
	for {
		select {
		case m := <-b.out:
			batch = append(batch, m)
			continue
		default:
		}
		break
	}
	b.mu.Lock()
	for topic := range b.lost {
		batch = append(batch, Message{Topic: topic, Reload: true})
	}
	clear(b.lost)
	b.mu.Unlock()
	return batch
}

// notify sends batch as notifications on PGChannel in one statement (one round trip, one
// transaction, so in order).
func (b *PGBus) notify(ctx context.Context, conn *pgx.Conn, batch []Message) error {
	payloads := make([]string, len(batch))
	for i, m := range batch {
		payloads[i] = b.payload(m)
	}
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	_, err := conn.Exec(ctx, "SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p", PGChannel, payloads)
	return err
}

// payload encodes m for NOTIFY; a message too big for it becomes a Reload of its topic.
func (b *PGBus) payload(m Message) string {
	n := notice{Instance: b.id, Topic: m.Topic, ID: m.ID, Reload: m.Reload}
	p, _ := json.Marshal(n)
	if len(p) > maxPayload {
		n.ID, n.Reload = "", true
		if p, _ = json.Marshal(n); len(p) > maxPayload {
			// No topic is that long, but should one be: a payload without a topic makes the
			// other instances reload everything.
			p, _ = json.Marshal(notice{Instance: b.id, Reload: true})
		}
	}
	return string(p)
}
