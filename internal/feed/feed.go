// Package feed is the in-process live feed: items published after they are committed to the
// store fan out to subscribers (the SSE streams), each with a bounded buffer. A recent window of
// items is kept so that a reconnecting client (Last-Event-ID) resumes without gaps or duplicates;
// what is older than that window the caller reads back from the store.
//
// The package is generic and imports nothing internal.
package feed

import (
	"errors"
	"sync"
)

// Item is one published value with its id. Ids increase with every publish.
type Item[T any] struct {
	ID    int64
	Value T
}

// Options configure a Hub.
type Options struct {
	// Buffer is how many recent items are kept for replay (default 4096).
	Buffer int
	// SubscriberBuffer is how many live items may wait for a subscriber before it is dropped
	// (default 256).
	SubscriberBuffer int
	// MaxSubscribers caps concurrent subscriptions (0: no cap).
	MaxSubscribers int
	// StartAfter is the id after which the hub sees every item: the newest id in the store when
	// the hub starts, read before anything can be published. Items up to it are only in the store.
	StartAfter int64
}

var (
	// ErrFellBehind is a subscription's Err when it was dropped because its buffer was full;
	// the client should reconnect from the last id it received.
	ErrFellBehind = errors.New("feed: subscriber fell behind")
	// ErrClosed is returned by Subscribe on a closed hub, and is Err of the subscriptions it
	// closed.
	ErrClosed = errors.New("feed: hub closed")
	// ErrTooManySubscribers is returned by Subscribe when MaxSubscribers are connected.
	ErrTooManySubscribers = errors.New("feed: too many subscribers")
)

// Hub fans published items out to subscribers. Publish never blocks on a subscriber.
type Hub[T any] struct {
	mu      sync.Mutex
	ring    []Item[T] // circular, len(ring) == opts.Buffer once full
	head    int       // index of the oldest item when the ring is full
	floor   int64     // every item published with ID > floor is in the ring
	last    int64     // newest id published (or StartAfter)
	subs    map[*Subscription[T]]struct{}
	closed  bool
	dropped uint64
	opts    Options
}

// New returns an empty hub.
func New[T any](opts Options) *Hub[T] {
	if opts.Buffer <= 0 {
		opts.Buffer = 4096
	}
	if opts.SubscriberBuffer <= 0 {
		opts.SubscriberBuffer = 256
	}
	return &Hub[T]{
		ring:  make([]Item[T], 0, opts.Buffer),
		floor: opts.StartAfter,
		last:  opts.StartAfter,
		subs:  map[*Subscription[T]]struct{}{},
		opts:  opts,
	}
}

// Subscription receives the items of one subscriber on C, in id order. C is closed when the
// subscription ends; Err then says why.
type Subscription[T any] struct {
	// C delivers replayed then live items. It is closed by Close, by Hub.Close, or when the
	// subscriber falls behind.
	C <-chan Item[T]

	c        chan Item[T]
	hub      *Hub[T]
	match    func(T) bool
	after    int64 // newest id delivered or skipped: never deliver an id at or below it
	backfill int64 // > 0: items in (afterID, backfill] are not held; read them from the store
	err      error
	done     bool
}

// Subscribe starts a subscription that delivers every matching item with ID > afterID, in id
// order, without gaps or duplicates. match nil matches everything.
//
// Items the hub still holds are replayed onto C at once; then live items follow. If afterID is
// older than what the hub holds, NeedBackfill reports the range to read from the store first:
// the caller sends those (oldest first), then reads C, which starts right after that range.
// To follow only new items, pass the newest id the caller has already shown (for example from
// the page it rendered from the store).
//
// NB: match is called with the hub's lock held, for every publish: keep it a cheap field test.
func (h *Hub[T]) Subscribe(afterID int64, match func(T) bool) (*Subscription[T], error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	if h.opts.MaxSubscribers > 0 && len(h.subs) >= h.opts.MaxSubscribers {
		return nil, ErrTooManySubscribers
	}
	s := &Subscription[T]{hub: h, match: match, after: afterID}
	if afterID < h.floor {
		s.backfill = h.floor
	}
	var replay []Item[T]
	h.each(func(it Item[T]) {
		if it.ID > afterID && s.matches(it.Value) {
			replay = append(replay, it)
		}
	})
	s.c = make(chan Item[T], len(replay)+h.opts.SubscriberBuffer)
	s.C = s.c
	for _, it := range replay {
		s.c <- it
		s.after = it.ID
	}
	h.subs[s] = struct{}{}
	return s, nil
}

// NeedBackfill reports whether items after the subscription's afterID and up to through (those
// the hub no longer holds) must be read from the store before reading C.
func (s *Subscription[T]) NeedBackfill() (through int64, ok bool) {
	return s.backfill, s.backfill > 0
}

// Err says why C was closed: nil after Close, ErrFellBehind, or ErrClosed. It is nil while the
// subscription is open.
func (s *Subscription[T]) Err() error {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	return s.err
}

// Close ends the subscription and closes C. It is safe to call more than once and after the hub
// has dropped the subscription.
func (s *Subscription[T]) Close() {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	s.hub.end(s, nil)
}

func (s *Subscription[T]) matches(v T) bool { return s.match == nil || s.match(v) }

// end removes s and closes its channel; the caller holds h.mu.
func (h *Hub[T]) end(s *Subscription[T], err error) {
	if s.done {
		return
	}
	s.done = true
	s.err = err
	delete(h.subs, s)
	close(s.c)
}

// each calls fn for the held items, oldest first; the caller holds h.mu.
func (h *Hub[T]) each(fn func(Item[T])) {
	for i := range h.ring {
		fn(h.ring[(h.head+i)%len(h.ring)])
	}
}

// Publish appends items to the feed and hands each to the matching subscribers. Items must come
// in increasing id order; an item whose id is not above the newest published is ignored (it was
// already published). A subscriber whose buffer is full is dropped (ErrFellBehind) rather than
// waited for. Publishing on a closed hub does nothing.
func (h *Hub[T]) Publish(items ...Item[T]) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	for _, it := range items {
		if it.ID <= h.last {
			continue
		}
		h.last = it.ID
		if len(h.ring) < cap(h.ring) {
			h.ring = append(h.ring, it)
		} else {
			h.floor = h.ring[h.head].ID
			h.ring[h.head] = it
			h.head = (h.head + 1) % len(h.ring)
		}
		for s := range h.subs {
			if it.ID <= s.after || !s.matches(it.Value) {
				continue
			}
			select {
			case s.c <- it:
				s.after = it.ID
			default:
				h.dropped++
				h.end(s, ErrFellBehind)
			}
		}
	}
}

// Close closes every subscription (Err ErrClosed) and refuses new ones.
func (h *Hub[T]) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	for s := range h.subs {
		h.end(s, ErrClosed)
	}
}

// Subscribers returns how many subscriptions are open.
func (h *Hub[T]) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// Dropped returns how many subscriptions have been dropped for falling behind.
func (h *Hub[T]) Dropped() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.dropped
}

// Last returns the newest id published (StartAfter before the first publish).
func (h *Hub[T]) Last() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}
