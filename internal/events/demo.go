package events

import (
	"context"
	"crypto/subtle"
	"net/http"
)

// DemoHeader carries the demo mark on the built-in simulator's webhooks and callbacks.
const DemoHeader = "X-Dashboard-Demo"

type demoKey struct{}

// WithDemo marks ctx: events stored under it come from the built-in simulator and are tagged
// demo. The demo wiring runs the simulator's API calls under it.
func WithDemo(ctx context.Context) context.Context { return context.WithValue(ctx, demoKey{}, true) }

func isDemo(ctx context.Context) bool {
	v, _ := ctx.Value(demoKey{}).(bool)
	return v
}

// DemoMark is the secret the simulator must send in DemoHeader so that its webhooks and
// callbacks are tagged demo; "" outside demo mode. It is made afresh at each start and never
// stored, so nobody outside this process can tag events demo.
func (s *Service) DemoMark() string { return s.demoMark }

// demoContext returns ctx marked WithDemo when h carries this process's demo mark.
func (s *Service) demoContext(ctx context.Context, h http.Header) context.Context {
	got := h.Get(DemoHeader)
	if s.demoMark == "" || got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(s.demoMark)) != 1 {
		return ctx
	}
	return WithDemo(ctx)
}
