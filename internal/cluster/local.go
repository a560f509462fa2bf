package cluster

import (
	"sync"
	"sync/atomic"
)

// LocalQueue is how many messages a LocalBus subscriber may have waiting before the next one is
// dropped and replaced by a Reload.
const LocalQueue = 64

// LocalBus is the Bus of one process: every subscriber has a goroutine and a bounded queue, and
// Publish only enqueues, so a slow subscriber never holds up the publisher (a change being
// committed) or the other subscribers. A subscriber whose queue is full misses the message and
// gets one Reload of its topic once it catches up. Build it with NewLocalBus; Close stops it.
type LocalBus struct {
	mu     sync.RWMutex
	subs   map[string]map[*localSub]struct{}
	closed bool
}

type localSub struct {
	topic  string
	handle func(Message)
	queue  chan Message
	missed atomic.Bool   // a message did not fit the queue
	kick   chan struct{} // wakes the goroutine after a miss (capacity 1)
	done   chan struct{} // closed by stop
	ended  chan struct{} // closed when the goroutine returns
	once   sync.Once
}

// NewLocalBus returns an empty LocalBus.
func NewLocalBus() *LocalBus {
	return &LocalBus{subs: map[string]map[*localSub]struct{}{}}
}

// Publish enqueues m for each subscriber of m.Topic without waiting for any of them.
func (b *LocalBus) Publish(m Message) {
	m.Reload = false
	b.mu.RLock()
	defer b.mu.RUnlock()
	for s := range b.subs[m.Topic] {
		select {
		case s.queue <- m:
		default:
			s.miss()
		}
	}
}

// reload makes every subscriber of topic reload it, as if it had missed a message: what it has
// queued is dropped and one Reload follows. The PostgreSQL Bus uses it when messages were lost on
// the way between instances.
func (b *LocalBus) reload(topic string) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for s := range b.subs[topic] {
		s.miss()
	}
}

// reloadAll makes every subscriber of every topic reload (after a lost connection, say).
func (b *LocalBus) reloadAll() {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for _, subs := range b.subs {
		for s := range subs {
			s.miss()
		}
	}
}

// miss marks that s lost a message and wakes its goroutine to send a Reload.
func (s *localSub) miss() {
	s.missed.Store(true)
	select {
	case s.kick <- struct{}{}:
	default: // already woken
	}
}

// Subscribe starts a subscriber of topic. On a closed bus handle is never called.
func (b *LocalBus) Subscribe(topic string, handle func(Message)) (stop func()) {
	s := &localSub{topic: topic, handle: handle, queue: make(chan Message, LocalQueue),
		kick: make(chan struct{}, 1), done: make(chan struct{}), ended: make(chan struct{})}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		close(s.ended)
		return func() {}
	}
	if b.subs[topic] == nil {
		b.subs[topic] = map[*localSub]struct{}{}
	}
	b.subs[topic][s] = struct{}{}
	b.mu.Unlock()
	go s.run()
	return func() { b.stop(s) }
}

// stop removes s and waits for its goroutine.
func (b *LocalBus) stop(s *localSub) {
	b.mu.Lock()
	delete(b.subs[s.topic], s)
	b.mu.Unlock()
	s.once.Do(func() { close(s.done) })
	<-s.ended
}

// Close ends every subscription, waiting for running handlers; later subscriptions get nothing.
func (b *LocalBus) Close() {
	b.mu.Lock()
	b.closed = true
	var all []*localSub
	for _, subs := range b.subs {
		for s := range subs {
			all = append(all, s)
		}
	}
	b.mu.Unlock()
	for _, s := range all {
		b.stop(s)
	}
}

// run hands queued messages to handle until stopped. After a miss it drops what is queued (a
// Reload covers it) and sends one Reload.
func (s *localSub) run() {
	defer close(s.ended)
	for {
		select {
		case <-s.done:
			return
		default:
		}
		if s.missed.Swap(false) {
			for drained := false; !drained; {
				select {
				case <-s.queue:
				default:
					drained = true
				}
			}
			s.handle(Message{Topic: s.topic, Reload: true})
			continue
		}
		select {
		case <-s.done:
			return
		case m := <-s.queue:
			s.handle(m)
		case <-s.kick:
		}
	}
}
