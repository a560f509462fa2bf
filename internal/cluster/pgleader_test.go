package cluster

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tensfer-golive/dashboard/internal/pgtest"
)

const testLeaderKey int64 = 0x7465_7374_0001

// changes records a leader's OnChange calls.
type changes struct {
	mu  sync.Mutex
	got []bool
}

func (c *changes) add(leading bool) { c.mu.Lock(); c.got = append(c.got, leading); c.mu.Unlock() }

func (c *changes) list() []bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]bool(nil), c.got...)
}

// newLeaders starts n PGLeaders on url, closed when the test ends.
func newLeaders(t *testing.T, url string, n int, interval time.Duration) ([]*PGLeader, []*changes) {
	t.Helper()
	var ls []*PGLeader
	var cs []*changes
	for range n {
		c := &changes{}
		l, err := NewPGLeader(t.Context(), url, testLeaderKey, quiet, PGLeaderOptions{Interval: interval, OnChange: c.add})
		if err != nil {
			t.Fatalf("NewPGLeader: %v", err)
		}
		t.Cleanup(l.Close)
		ls, cs = append(ls, l), append(cs, c)
	}
	return ls, cs
}

// leaders lists which of ls lead now.
func leaders(ls []*PGLeader) []int {
	var who []int
	for i, l := range ls {
		if l.Leading() {
			who = append(who, i)
		}
	}
	return who
}

func TestPGLeaderExactlyOneLeads(t *testing.T) {
	url := pgtest.URL(t)
	const interval = 20 * time.Millisecond
	ls, cs := newLeaders(t, url, 3, interval)
	// The first one started took the lock at once; the others keep trying, every interval.
	first := leaders(ls)
	if len(first) != 1 || first[0] != 0 {
		t.Fatalf("leaders after start: %v, want [0]", first)
	}
	for end := time.Now().Add(50 * interval); time.Now().Before(end); time.Sleep(interval / 4) {
		if who := leaders(ls); len(who) != 1 || who[0] != 0 {
			t.Fatalf("leaders: %v, want [0] throughout", who)
		}
	}
	for i, c := range cs {
		want := "[]"
		if i == 0 {
			want = "[true]"
		}
		if got := fmt.Sprint(c.list()); got != want {
			t.Errorf("leader %d: OnChange calls %s, want %s", i, got, want)
		}
	}
}

// When the leader goes (it closes, or its connection ends as when its process is killed),
// another one leads within two intervals, and never two at once.
func TestPGLeaderHandsOverWhenTheLeaderGoes(t *testing.T) {
	const interval = 250 * time.Millisecond
	for _, tc := range []struct {
		name string
		end  func(t *testing.T, url string, l *PGLeader)
	}{
		{"closed", func(t *testing.T, _ string, l *PGLeader) { l.Close() }},
		{"connection terminated", func(t *testing.T, url string, l *PGLeader) {
			sql(t, url, "SELECT pg_terminate_backend($1)", int(l.pid.Load()))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := pgtest.URL(t)
			ls, cs := newLeaders(t, url, 3, interval)
			if who := leaders(ls); len(who) != 1 || who[0] != 0 {
				t.Fatalf("leaders after start: %v, want [0]", who)
			}
			start := time.Now()
			tc.end(t, url, ls[0])
			var next []int
			for deadline := start.Add(2 * interval); ; time.Sleep(5 * time.Millisecond) {
				who := leaders(ls)
				if len(who) > 1 {
					t.Fatalf("leaders %v at once", who)
				}
				if len(who) == 1 && who[0] != 0 {
					next = who
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("leaders after %s: %v, want another one than 0", time.Since(start).Round(time.Millisecond), who)
				}
			}
			// The old one, back on a new connection, does not take the lock from the new one.
			for end := time.Now().Add(4 * interval); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
				if who := leaders(ls); len(who) != 1 || who[0] != next[0] {
					t.Fatalf("leaders %v, want %v throughout", who, next)
				}
			}
			if got := fmt.Sprint(cs[0].list()); got != "[true false]" {
				t.Errorf("old leader's OnChange calls %s, want [true false]", got)
			}
		})
	}
}

// A PostgreSQL restart ends leadership at once (the lock went with the server) and, once it is
// back, an instance leads again without a restart of its own.
func TestPGLeaderLeadsAgainAfterPostgresRestart(t *testing.T) {
	pg := pgtest.New(t)
	if err := pg.CreateDatabase("leader"); err != nil {
		t.Fatal(err)
	}
	const interval = 100 * time.Millisecond
	ls, _ := newLeaders(t, pg.DatabaseURL("leader"), 2, interval)
	if who := leaders(ls); len(who) != 1 {
		t.Fatalf("leaders after start: %v", who)
	}
	pg.Stop()
	eventually(t, 2*time.Second, "no leader while PostgreSQL is down", func() bool { return len(leaders(ls)) == 0 })
	if err := pg.Restart(); err != nil {
		t.Fatalf("restart: %v\n%s", err, pg.Log())
	}
	eventually(t, 5*time.Second, "a leader after the restart", func() bool { return len(leaders(ls)) == 1 })
	for end := time.Now().Add(10 * interval); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if who := leaders(ls); len(who) != 1 {
			t.Fatalf("leaders %v after the restart, want exactly one", who)
		}
	}
}

// Close gives the lock up at once: the next instance takes it on its first try, and nothing the
// Bus or Leader started is left running.
func TestPGCloseReleasesAndLeavesNoGoroutine(t *testing.T) {
	url := pgtest.URL(t)
	for range 2 {
		l, err := NewPGLeader(t.Context(), url, testLeaderKey, quiet, PGLeaderOptions{Interval: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if !l.Leading() {
			t.Fatal("a leader started after the last one closed does not lead")
		}
		b, err := NewPGBus(t.Context(), url, quiet)
		if err != nil {
			t.Fatal(err)
		}
		b.Subscribe(TopicEvents, func(Message) {})
		b.Publish(Message{Topic: TopicEvents, ID: "1"})
		b.Close()
		l.Close()
		if l.Leading() {
			t.Error("leading after Close")
		}
	}
	// A goroutine that Close waited for may still be returning (as goleak allows, it gets a
	// moment); one that is still at work never goes.
	var left string
	deadline := time.Now().Add(2 * time.Second)
	for left = survivors(); left != "" && time.Now().Before(deadline); left = survivors() {
		time.Sleep(10 * time.Millisecond)
	}
	if left != "" {
		t.Errorf("a goroutine survived Close:\n%s", left)
	}
}

// survivors returns the stacks of goroutines of the Bus, the Leader or pgx.
func survivors() string {
	buf := make([]byte, 1<<20)
	var left []string
	for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
		if strings.Contains(g, "internal/cluster.(*") || strings.Contains(g, "jackc/pgx") {
			left = append(left, g)
		}
	}
	return strings.Join(left, "\n\n")
}
