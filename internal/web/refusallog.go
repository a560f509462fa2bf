package web

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
)

// refusalLinesPerMinute is how many refusals of one kind an unauthenticated client can make the
// log hold line by line each minute; past that they are counted and summarised.
const refusalLinesPerMinute = 5

// refusalKey is a kind of refusal: the method, the route (its pattern, never the path a client
// chose, so the keys are bounded by the routes) and the status.
type refusalKey struct {
	method, route string
	status        int
}

// refusalLog keeps the log lines of refusals that an unauthenticated client can repeat (a body
// cut short, a bad signature, a wrong password, an unknown token, a path that does not exist)
// to a small fixed rate: per kind, the first few of each minute are logged as usual, and the
// rest are counted and written as one summary line when the minute is over. A flood from any
// number of addresses then grows the log by at most a few lines per route and status a minute.
type refusalLog struct {
	mu     sync.Mutex
	minute int64
	seen   map[refusalKey]int
	over   map[refusalKey]int // refusals not logged this minute
}

// allow reports whether a refusal of kind k at now may be logged line by line, and returns the
// counts of the minute that just ended when a summary is due.
func (l *refusalLog) allow(k refusalKey, now time.Time) (bool, map[refusalKey]int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	due := l.roll(now)
	l.seen[k]++
	if l.seen[k] <= refusalLinesPerMinute {
		return true, due
	}
	l.over[k]++
	return false, due
}

// flush returns the counts of a minute that has ended, if any were left unlogged.
func (l *refusalLog) flush(now time.Time) map[refusalKey]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.roll(now)
}

func (l *refusalLog) roll(now time.Time) map[refusalKey]int {
	m := now.Unix() / 60
	if l.seen != nil && m == l.minute {
		return nil
	}
	due := l.over
	l.minute, l.seen, l.over = m, map[refusalKey]int{}, map[refusalKey]int{}
	if len(due) == 0 {
		return nil
	}
	return due
}

// logRefusalSummary writes one line for the refusals that were counted rather than logged.
func (s *Server) logRefusalSummary(counts map[refusalKey]int) {
	if len(counts) == 0 {
		return
	}
	keys := make([]refusalKey, 0, len(counts))
	total := 0
	for k, n := range counts {
		keys = append(keys, k)
		total += n
	}
	slices.SortFunc(keys, func(a, b refusalKey) int {
		return cmp.Or(cmp.Compare(a.route, b.route), cmp.Compare(a.method, b.method), cmp.Compare(a.status, b.status))
	})
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s %s %d=%d", k.method, k.route, k.status, counts[k])
	}
	s.log.LogAttrs(context.Background(), slog.LevelWarn,
		fmt.Sprintf("refused requests from unauthenticated clients not logged one by one (at most %d lines of each kind a minute)", refusalLinesPerMinute),
		slog.Int("refused", total), slog.String("counts", b.String()))
}

// refusalKeyOf names the kind of a refused request: unknown methods are one kind, and a path
// that matched no route is "(no route)".
func refusalKeyOf(r *http.Request, status int) refusalKey {
	k := refusalKey{method: "OTHER", route: "(no route)", status: status}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		k.method = r.Method
	}
	if rc := chi.RouteContext(r.Context()); rc != nil {
		if p := rc.RoutePattern(); p != "" {
			k.route = p
		}
	}
	return k
}
