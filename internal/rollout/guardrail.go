package rollout

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Signal is a production error signal a guardrail watches.
type Signal string

// The signals. How each is counted (and why a script cannot trip or blind it) is in
// docs/rollout.md: unauthenticated sources count distinct sending clients, not requests.
const (
	SignalInitErrors       Signal = "init_errors"       // initialization_error callbacks, per client
	SignalAPIErrors        Signal = "api_errors"        // API calls reported with 5xx or no answer
	SignalRejectedWebhooks Signal = "rejected_webhooks" // refused webhook deliveries from known senders
	SignalVerifyFailures   Signal = "verify_failures"   // failed verifications of the production keys
)

// Signals lists every signal.
var Signals = []Signal{SignalInitErrors, SignalAPIErrors, SignalRejectedWebhooks, SignalVerifyFailures}

// SignalLabel is how a person calls a signal.
func SignalLabel(s Signal) string {
	switch s {
	case SignalInitErrors:
		return "Init errors (callbacks)"
	case SignalAPIErrors:
		return "API 5xx and timeouts"
	case SignalRejectedWebhooks:
		return "Rejected webhooks"
	case SignalVerifyFailures:
		return "Key verification failures"
	}
	return string(s)
}

// Guardrail trips when Signal's rate over Window passes MaxRate, once at least MinVolume
// observations were made in the window (below that the figures say too little to act on).
type Guardrail struct {
	Signal    Signal        `json:"signal"`
	MaxRate   float64       `json:"max_rate"` // a fraction: 0.05 is 5 %
	MinVolume int64         `json:"min_volume"`
	Window    time.Duration `json:"-"`
}

// DefaultGuardrails are a fresh install's: 5 % init errors (at least 20 senders), 2 % API errors
// (at least 50 calls), 10 % rejected webhooks (at least 10 deliveries), any failed verification,
// each over 15 minutes.
func DefaultGuardrails() []Guardrail {
	w := 15 * time.Minute
	return []Guardrail{
		{Signal: SignalInitErrors, MaxRate: 0.05, MinVolume: 20, Window: w},
		{Signal: SignalAPIErrors, MaxRate: 0.02, MinVolume: 50, Window: w},
		{Signal: SignalRejectedWebhooks, MaxRate: 0.10, MinVolume: 10, Window: w},
		{Signal: SignalVerifyFailures, MaxRate: 0, MinVolume: 1, Window: w},
	}
}

// Figures are what was observed of a signal over a guardrail's window: Bad out of Total.
type Figures struct {
	Bad, Total int64
}

// Rate is Bad/Total, 0 with no observations.
func (f Figures) Rate() float64 {
	if f.Total == 0 {
		return 0
	}
	return float64(f.Bad) / float64(f.Total)
}

// Status is one guardrail's verdict.
type Status struct {
	Guardrail Guardrail
	Figures   Figures
	Breached  bool
	Judged    bool // enough volume to judge
	// Soak is what was observed since the current stage began or its soak restarted: before an
	// auto-advance every guardrail must have seen MinVolume of it (WaitingForData).
	Soak Figures
}

// WaitingForData returns the statuses whose guardrail has not seen its minimum volume during the
// soak: on those, healthy only means silent, so auto-advance waits for them. Key verifications
// are not traffic (one happens when someone presses Verify or changes a key), so none during a
// soak is no missing evidence of how users fare: that guardrail judges the verifications there
// are and never holds auto-advance for want of them.
func WaitingForData(sts []Status) []Status {
	var out []Status
	for _, s := range sts {
		if s.Guardrail.Signal == SignalVerifyFailures {
			continue
		}
		if s.Soak.Total < s.Guardrail.MinVolume {
			out = append(out, s)
		}
	}
	return out
}

// DescribeWaiting says what a guardrail waiting for data lacks, for the page.
func (s Status) DescribeWaiting() string {
	return fmt.Sprintf("%s has %d of the %d observations needed", SignalLabel(s.Guardrail.Signal), s.Soak.Total, s.Guardrail.MinVolume)
}

// describeWaiting says it of several, or "" for none: "waiting for data: Init errors (callbacks)
// has 3 of the 20 observations needed since this stage began".
func describeWaiting(sts []Status) string {
	switch len(sts) {
	case 0:
		return ""
	case 1:
		return "waiting for data: " + sts[0].DescribeWaiting() + " since this stage began"
	}
	parts := make([]string, 0, len(sts))
	for _, s := range sts {
		parts = append(parts, s.DescribeWaiting())
	}
	return "waiting for data since this stage began: " + strings.Join(parts, "; ")
}

// Describe says the verdict in words, with the figures.
func (s Status) Describe() string {
	g, f := s.Guardrail, s.Figures
	switch {
	case !s.Judged:
		return fmt.Sprintf("%s: %d of %d, below the minimum volume of %d to judge", SignalLabel(g.Signal), f.Bad, f.Total, g.MinVolume)
	case s.Breached:
		return fmt.Sprintf("%s: %d of %d (%.1f %%) over %s is above the %.1f %% limit", SignalLabel(g.Signal), f.Bad, f.Total, 100*f.Rate(), FormatDuration(g.Window), 100*g.MaxRate)
	}
	return fmt.Sprintf("%s: %d of %d (%.1f %%), limit %.1f %%", SignalLabel(g.Signal), f.Bad, f.Total, 100*f.Rate(), 100*g.MaxRate)
}

// Evaluate judges each guardrail against its figures. A guardrail breaches when the volume is at
// least MinVolume and the rate is above MaxRate.
func Evaluate(gs []Guardrail, figures func(Guardrail) Figures) []Status {
	out := make([]Status, 0, len(gs))
	for _, g := range gs {
		f := figures(g)
		st := Status{Guardrail: g, Figures: f, Judged: f.Total >= g.MinVolume && f.Total > 0}
		st.Breached = st.Judged && f.Rate() > g.MaxRate
		out = append(out, st)
	}
	return out
}

// Breaches returns the statuses that breached.
func Breaches(sts []Status) []Status {
	var out []Status
	for _, s := range sts {
		if s.Breached {
			out = append(out, s)
		}
	}
	return out
}

// OnBreachOf is what the rollout does when guardrails breach: pause (or roll back one stage), with
// Held saying why. A rollout that is not active, or not started, is left alone.
func (r Rollout) OnBreachOf(breaches []Status, now time.Time) (Rollout, bool) {
	if len(breaches) == 0 || r.State != Active || r.Stage == 0 {
		return r, false
	}
	held := "guardrail breached: " + breaches[0].Describe()
	if r.OnBreach == OnBreachRollback {
		r, _ = r.Rollback(now)
		r.EnteredBy = EnteredByGuardrail
	} else {
		r, _ = r.Pause()
	}
	r.Held = held
	return r, true
}

// CheckGuardrails validates guardrails as a person gave them: every problem of every guardrail
// at once, as FieldErrors naming guardrails[i].field.
func CheckGuardrails(gs []Guardrail) error {
	var errs FieldErrors
	seen := map[Signal]bool{}
	for i, g := range gs {
		field := fmt.Sprintf("guardrails[%d]", i)
		known := false
		for _, s := range Signals {
			known = known || s == g.Signal
		}
		switch {
		case !known:
			errs = append(errs, FieldError{field + ".signal", fmt.Sprintf("unknown signal %q; use init_errors, api_errors, rejected_webhooks or verify_failures", g.Signal)})
		case seen[g.Signal]:
			errs = append(errs, FieldError{field + ".signal", fmt.Sprintf("signal %s has two guardrails; keep one", g.Signal)})
		}
		// NaN compares false with everything: without the finite check it would pass as a limit
		// that never trips, and the stored plan could not be written as JSON.
		if math.IsNaN(g.MaxRate) || math.IsInf(g.MaxRate, 0) || g.MaxRate < 0 || g.MaxRate >= 1 {
			errs = append(errs, FieldError{field + ".max_rate", fmt.Sprintf("%s: max_rate is a finite fraction from 0 (any error) to below 1, e.g. 0.05 for 5 %%", g.Signal)})
		}
		if g.MinVolume < 1 || g.MinVolume > 1_000_000 {
			errs = append(errs, FieldError{field + ".min_volume", fmt.Sprintf("%s: min_volume must be from 1 to 1000000", g.Signal)})
		}
		if g.Window < time.Minute || g.Window > 24*time.Hour {
			errs = append(errs, FieldError{field + ".window", fmt.Sprintf("%s: window must be from 1m to 24h", g.Signal)})
		}
		seen[g.Signal] = true
	}
	return errs.Err()
}

// ShouldAdvance is whether the rollout should advance by itself at now, given the guardrails'
// statuses, and if not, why (for the page). Unless the plan allows advancing without volume,
// every guardrail must have seen its minimum volume during the soak (Status.Soak).
func (r Rollout) ShouldAdvance(now time.Time, statuses []Status) (bool, string) {
	at, ok := r.NextAdvance()
	var waiting string
	if !r.AdvanceWithoutVolume {
		waiting = describeWaiting(WaitingForData(statuses))
	}
	switch {
	case !r.AutoAdvance:
		return false, "auto-advance is off"
	case r.State != Active:
		return false, "the rollout is " + string(r.State)
	case r.Stage == 0:
		return false, "the first stage is started by hand"
	case !ok:
		return false, "the rollout is at its last stage"
	case now.Before(at):
		if waiting != "" {
			return false, "soaking until " + at.UTC().Format(time.RFC3339) + "; " + waiting
		}
		return false, "soaking until " + at.UTC().Format(time.RFC3339)
	}
	if b := Breaches(statuses); len(b) > 0 {
		return false, "held: " + b[0].Describe()
	}
	if waiting != "" {
		return false, waiting
	}
	return true, "soak done and guardrails healthy"
}
