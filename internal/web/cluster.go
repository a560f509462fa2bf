package web

import (
	"strconv"
	"sync"

	"github.com/tensfer-golive/dashboard/internal/cluster"
)

// accessChanged is called after a token is revoked or a user's sessions, role or access change
// (userID 0: no one user): this instance forgets its cached tokens and its live streams check
// their session at once, and the Bus tells the other instances to do the same.
func (s *Server) accessChanged(userID int64) {
	s.forgetAccess()
	id := ""
	if userID != 0 {
		id = strconv.FormatInt(userID, 10)
	}
	s.cfg.Bus.Publish(cluster.Message{Topic: cluster.TopicAccess, ID: id})
}

// forgetAccess drops the token cache and wakes the live streams' session check.
func (s *Server) forgetAccess() {
	s.tokens.invalidate()
	s.recheck.fire()
}

// secretsChanged is the environment service's hook after a change to webhook secrets or beacon
// keys: this instance's key cache forgets them at once, and the Bus tells every instance's.
func (s *Server) secretsChanged() {
	s.events.InvalidateSecrets()
	s.cfg.Bus.Publish(cluster.Message{Topic: cluster.TopicSecrets})
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
