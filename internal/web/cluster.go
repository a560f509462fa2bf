package web

import (
	"sync"
)

// forgetAccess drops the token cache and wakes the live streams' session check: accounts calls
// it when a change of access is made here (before telling the Bus), and the Bus subscription
// when one is made anywhere.
func (s *Server) forgetAccess() {
	s.tokens.invalidate()
	s.recheck.fire()
}

// signal is a broadcast: wait returns a channel that fire closes (a new one for the next fire).
type signal struct {
	mu sync.Mutex
	c  chan struct{}
}

func (g *signal) wait() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.c == nil {
		g.c = make(chan struct{})
	}
	return g.c
}

func (g *signal) fire() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.c != nil {
		close(g.c)
		g.c = nil
	}
}
