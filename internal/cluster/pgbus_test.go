package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tensfer-golive/dashboard/internal/pgtest"
)

// quiet is the logger of the instances under test.
var quiet = slog.New(slog.DiscardHandler)

// newBus starts a PGBus on url, closed when the test ends.
func newBus(t *testing.T, url string) *PGBus {
	t.Helper()
	b, err := NewPGBus(t.Context(), url, quiet)
	if err != nil {
		t.Fatalf("NewPGBus: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

// listen subscribes to topic on b and returns the channel its messages arrive on.
func listen(b Bus, topic string) chan Message {
	c := make(chan Message, 1000)
	b.Subscribe(topic, func(m Message) { c <- m })
	return c
}

// within waits up to d for the next message on c.
func within(t *testing.T, c <-chan Message, d time.Duration, what string) Message {
	t.Helper()
	select {
	case m := <-c:
		return m
	case <-time.After(d):
		t.Fatalf("%s: no message within %s", what, d)
		return Message{}
	}
}

// eventually polls cond every 10 ms until it holds, failing the test after d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sql runs stmt on a connection of its own to url.
func sql(t *testing.T, url, stmt string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, stmt, args...); err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
}

func TestPGBusDeliversToOtherInstancesNotBackToItsOwn(t *testing.T) {
	url := pgtest.URL(t)
	a, b := newBus(t, url), newBus(t, url)
	aRollout, bRollout := listen(a, TopicRollout), listen(b, TopicRollout)
	bSecrets := listen(b, TopicSecrets)

	a.Publish(Message{Topic: TopicRollout, ID: "7", Reload: true}) // a publisher cannot set Reload
	if m := within(t, aRollout, time.Second, "publisher's own subscriber"); m != (Message{Topic: TopicRollout, ID: "7"}) {
		t.Errorf("publisher's own subscriber got %+v", m)
	}
	if m := within(t, bRollout, time.Second, "other instance"); m != (Message{Topic: TopicRollout, ID: "7"}) {
		t.Errorf("other instance got %+v", m)
	}
	b.Publish(Message{Topic: TopicSecrets, ID: "sand box ✓"})
	if m := within(t, bSecrets, time.Second, "b's own secrets subscriber"); m.ID != "sand box ✓" {
		t.Errorf("b's own secrets subscriber got %+v", m)
	}
	// b's notification commits after a's (b heard a's first), so a hears its own, ignored,
	// before b's: when b's arrives, anything a redelivered of its own is queued ahead of it.
	b.Publish(Message{Topic: TopicRollout, ID: "8"})
	within(t, bRollout, time.Second, "b's own rollout subscriber")
	if m := within(t, aRollout, time.Second, "a hears b"); m != (Message{Topic: TopicRollout, ID: "8"}) {
		t.Errorf("a got %+v after its own message, want b's 8 (its own must not come back)", m)
	}
	for _, c := range []chan Message{aRollout, bRollout, bSecrets} {
		if len(c) != 0 {
			t.Errorf("a subscriber got more: %+v", <-c)
		}
	}
	if !a.Connected() || !b.Connected() || a.Reconnects()+b.Reconnects() != 0 {
		t.Errorf("connected %v %v, reconnects %d %d; want connected, none", a.Connected(), b.Connected(), a.Reconnects(), b.Reconnects())
	}
}

// A message too big for a NOTIFY reaches the publisher's subscribers whole and the others as a
// Reload of its topic; a notification the bus cannot read makes every subscriber reload.
func TestPGBusReloadsWhatItCannotCarry(t *testing.T) {
	url := pgtest.URL(t)
	a, b := newBus(t, url), newBus(t, url)
	aSecrets, bSecrets, bAccess := listen(a, TopicSecrets), listen(b, TopicSecrets), listen(b, TopicAccess)

	big := strings.Repeat("x", 9000)
	a.Publish(Message{Topic: TopicSecrets, ID: big})
	if m := within(t, aSecrets, time.Second, "publisher"); m.ID != big {
		t.Errorf("publisher's subscriber got an id of %d bytes, want %d", len(m.ID), len(big))
	}
	if m := within(t, bSecrets, time.Second, "other instance"); m != (Message{Topic: TopicSecrets, Reload: true}) {
		t.Errorf("other instance got %+v, want a reload of %s", m, TopicSecrets)
	}
	if len(bAccess) != 0 {
		t.Errorf("a subscriber of another topic got %+v", <-bAccess)
	}

	sql(t, url, "SELECT pg_notify($1, 'not json')", PGChannel)
	for _, c := range []chan Message{aSecrets, bSecrets, bAccess} {
		if m := within(t, c, time.Second, "after a foreign notification"); !m.Reload {
			t.Errorf("got %+v, want a reload", m)
		}
	}
}

// While PostgreSQL is down every notification is lost: once it is back, every subscriber of
// every topic on every instance reloads, and messages flow again.
func TestPGBusReloadsEverySubscriberAfterPostgresRestart(t *testing.T) {
	pg := pgtest.New(t)
	if err := pg.CreateDatabase("bus"); err != nil {
		t.Fatal(err)
	}
	url := pg.DatabaseURL("bus")
	a, b := newBus(t, url), newBus(t, url)
	subs := map[string]chan Message{}
	for name, bus := range map[string]*PGBus{"a": a, "b": b} {
		for _, topic := range []string{TopicEvents, TopicRollout, TopicAccess} {
			subs[name+" "+topic] = listen(bus, topic)
		}
	}

	pg.Stop()
	eventually(t, 5*time.Second, "both buses see the connection go", func() bool { return !a.Connected() && !b.Connected() })
	a.Publish(Message{Topic: TopicEvents, ID: "41"}) // while down: delivered locally only
	if m := within(t, subs["a "+TopicEvents], time.Second, "local while down"); m.ID != "41" {
		t.Errorf("local subscriber while down got %+v", m)
	}
	if err := pg.Restart(); err != nil {
		t.Fatalf("restart: %v\n%s", err, pg.Log())
	}
	for name, c := range subs {
		for {
			m := within(t, c, 5*time.Second, name+" after the restart")
			if m.Reload {
				break
			}
			if m.ID != "41" { // b may get a's message, sent again after the restart
				t.Errorf("%s: got %+v before its reload", name, m)
			}
		}
	}
	if !a.Connected() || !b.Connected() || a.Reconnects() != 1 || b.Reconnects() != 1 {
		t.Errorf("connected %v %v, reconnects %d %d; want connected, one each", a.Connected(), b.Connected(), a.Reconnects(), b.Reconnects())
	}
	for i, dir := range []struct {
		from *PGBus
		to   string
	}{{a, "b"}, {b, "a"}, {a, "b"}} {
		id := strconv.Itoa(100 + i)
		dir.from.Publish(Message{Topic: TopicRollout, ID: id})
		for {
			m := within(t, subs[dir.to+" "+TopicRollout], time.Second, "after the restart")
			if m.ID == id {
				break
			}
			// Besides a reload or a's message from before, only what it published itself.
			if n, _ := strconv.Atoi(m.ID); !m.Reload && m.ID != "41" && (n < 100 || n >= 100+i) {
				t.Errorf("%s got %+v, want %s", dir.to, m, id)
			}
		}
	}
}

// A bus whose queue to PostgreSQL is full (its connection is stuck) drops messages, and the
// other instances get a Reload of their topic once it is free again.
func TestPGBusFullQueueMakesOtherInstancesReload(t *testing.T) {
	url := pgtest.URL(t)
	const queue = 4
	a, err := newPGBus(t.Context(), url, quiet, queue, keepAlive)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	b := newBus(t, url)
	bEvents := listen(b, TopicEvents)

	// Stop the backend of a's sending connection (as a stuck network would) and publish until
	// the queue overflows.
	pid := int(a.sendPID.Load())
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("cannot stop PostgreSQL's backend %d under CI: %v", pid, err)
		}
		t.Skipf("cannot stop PostgreSQL's backend %d: %v", pid, err)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			syscall.Kill(pid, syscall.SIGCONT)
		}
	}
	t.Cleanup(resume)
	a.Publish(Message{Topic: TopicEvents, ID: "1"})
	eventually(t, 5*time.Second, "the sender takes the first message", func() bool { return len(a.out) == 0 })
	for i := range queue + 3 {
		a.Publish(Message{Topic: TopicEvents, ID: strconv.Itoa(2 + i)})
	}
	resume()
	var got []string
	for {
		// Longer than a send may take before it is tried again on a new connection.
		m := within(t, bEvents, 15*time.Second, "other instance")
		if m.Reload {
			break
		}
		got = append(got, m.ID)
	}
	// What the queue held may come first, in order (the reload makes the other instance drop
	// what it has not handled yet); what did not fit never comes.
	held := []string{"1", "2", "3", "4", "5"}
	if len(got) > len(held) || fmt.Sprint(got) != fmt.Sprint(held[:len(got)]) {
		t.Errorf("before its reload the other instance got %v, want a prefix of %v (what the queue held)", got, held)
	}
}

// A listening connection that stays silent is pinged and kept: messages still flow after many
// quiet spells, on the same connection.
func TestPGBusKeepsAQuietConnection(t *testing.T) {
	url := pgtest.URL(t)
	const quietFor = 20 * time.Millisecond
	a, err := newPGBus(t.Context(), url, quiet, PGQueue, quietFor)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	b := newBus(t, url)
	aAccess := listen(a, TopicAccess)
	pid := a.listenPID.Load()
	for i := range 5 {
		time.Sleep(5 * quietFor) // the silence is what is tested, not a wait for something
		b.Publish(Message{Topic: TopicAccess, ID: strconv.Itoa(i)})
		if m := within(t, aAccess, time.Second, "after a quiet spell"); m.ID != strconv.Itoa(i) || m.Reload {
			t.Fatalf("got %+v, want %d", m, i)
		}
	}
	if a.Reconnects() != 0 || a.listenPID.Load() != pid || !a.Connected() {
		t.Errorf("reconnects %d, connected %v: a quiet connection was replaced", a.Reconnects(), a.Connected())
	}
}
