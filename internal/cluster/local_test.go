package cluster

import (
	"strconv"
	"sync"
	"testing"
	"time"
)

// recv waits for the next message on c, failing the test after a deadline.
func recv(t *testing.T, c <-chan Message) Message {
	t.Helper()
	select {
	case m := <-c:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no message within 5 s")
		return Message{}
	}
}

func TestLocalBusDeliversToEverySubscriberOfTheTopic(t *testing.T) {
	b := NewLocalBus()
	defer b.Close()
	var chans []chan Message
	for range 3 {
		c := make(chan Message, 10)
		chans = append(chans, c)
		b.Subscribe(TopicRollout, func(m Message) { c <- m })
	}
	other := make(chan Message, 10)
	b.Subscribe(TopicSecrets, func(m Message) { other <- m })

	b.Publish(Message{Topic: TopicRollout, ID: "7", Reload: true}) // a publisher cannot set Reload
	b.Publish(Message{Topic: TopicRollout, ID: "8"})
	for i, c := range chans {
		for _, want := range []string{"7", "8"} {
			if m := recv(t, c); m.Topic != TopicRollout || m.ID != want || m.Reload {
				t.Errorf("subscriber %d got %+v, want %s %s in order, no reload", i, m, TopicRollout, want)
			}
		}
	}
	b.Publish(Message{Topic: TopicSecrets, ID: "sandbox"})
	if m := recv(t, other); m.ID != "sandbox" {
		t.Errorf("secrets subscriber got %+v", m)
	}
	if len(other) != 0 {
		t.Errorf("secrets subscriber got rollout messages too: %d more", len(other))
	}
}

// A subscriber that does not keep up neither stalls the publisher nor the other subscribers: it
// misses messages and is told to reload once it is free again.
func TestLocalBusSlowSubscriberGetsReloadNotBlockingPublisher(t *testing.T) {
	b := NewLocalBus()
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	defer b.Close()
	defer unblock() // before Close, which waits for the stuck handler
	slow := make(chan Message, 1000)
	b.Subscribe(TopicEvents, func(m Message) {
		<-release
		slow <- m
	})
	fast := make(chan Message, 1000)
	b.Subscribe(TopicEvents, func(m Message) { fast <- m })

	// The slow subscriber is stuck on the first message; it can hold LocalQueue more. Publish
	// in rounds the fast one keeps up with, past what the slow one can hold.
	next := 1
	for _, round := range []int{LocalQueue / 2, LocalQueue / 2, 2} {
		published := make(chan struct{})
		go func(from int) {
			for i := range round {
				b.Publish(Message{Topic: TopicEvents, ID: strconv.Itoa(from + i)})
			}
			close(published)
		}(next)
		select {
		case <-published:
		case <-time.After(5 * time.Second):
			t.Fatal("Publish blocked on a subscriber that does not read")
		}
		for range round {
			if m := recv(t, fast); m.ID != strconv.Itoa(next) || m.Reload {
				t.Fatalf("fast subscriber: message %d is %+v", next, m)
			}
			next++
		}
	}
	unblock()
	var got []Message
	for {
		m := recv(t, slow)
		got = append(got, m)
		if m.Reload {
			break
		}
	}
	if len(got) > LocalQueue+2 {
		t.Errorf("slow subscriber got %d messages before its reload; its queue holds %d", len(got), LocalQueue)
	}
	if last := got[len(got)-1]; last.Topic != TopicEvents {
		t.Errorf("reload names topic %q, want %q", last.Topic, TopicEvents)
	}
	// After the reload it is an ordinary subscriber again.
	b.Publish(Message{Topic: TopicEvents, ID: "next"})
	for {
		if m := recv(t, slow); m.ID == "next" {
			break
		}
	}
}

func TestLocalBusStopAndClose(t *testing.T) {
	b := NewLocalBus()
	var mu sync.Mutex
	calls := map[string]int{}
	count := func(name string) func(Message) {
		return func(Message) { mu.Lock(); calls[name]++; mu.Unlock() }
	}
	stopA := b.Subscribe(TopicAccess, count("a"))
	seen := make(chan Message, 1)
	b.Subscribe(TopicAccess, func(m Message) { count("b")(m); seen <- m })
	stopA()
	stopA() // twice is harmless
	b.Publish(Message{Topic: TopicAccess, ID: "1"})
	recv(t, seen)
	b.Close()
	b.Publish(Message{Topic: TopicAccess, ID: "2"}) // after Close: delivered to nobody
	late := b.Subscribe(TopicAccess, count("late"))
	late()
	mu.Lock()
	defer mu.Unlock()
	if calls["a"] != 0 || calls["b"] != 1 || calls["late"] != 0 {
		t.Errorf("calls = %v, want only b once", calls)
	}
}

func TestSoloAlwaysLeads(t *testing.T) {
	var l Leader = Solo{}
	if !l.Leading() {
		t.Error("Solo does not lead: on SQLite nothing would run the schedulers")
	}
}
