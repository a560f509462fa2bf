package events

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/diskguard"
	"github.com/tensfer-golive/dashboard/internal/metrics"
	"github.com/tensfer-golive/dashboard/internal/ratelimit"
)

// What ingest refuses to store is counted by input (where it came from) and reason, never logged
// one line per request: whoever floods the public endpoints must not be able to fill the log
// either. A summary line goes to the log at most once a minute.

// Inputs, as counted.
const (
	InputCallback = "callback"         // POST /callbacks/{env} (unauthenticated)
	InputReturn   = "return"           // GET /callbacks/{env}/return (unauthenticated)
	InputRefused  = "refused_delivery" // a webhook delivery refused before it became an event (unauthenticated)
	InputWebhook  = "webhook"          // a verified webhook
	InputAPICall  = "api_call"         // an API-call report (a bearer token)
)

// Reasons input was not stored.
const (
	RefusedRateLimited  = "rate_limited"  // the sender's address is over its own limit
	RefusedQuota        = "quota"         // over the byte or row budget of unauthenticated input
	RefusedShape        = "shape"         // not a callback beacon (malformed)
	RefusedTooLarge     = "too_large"     // a body over its size limit
	RefusedDiskLow      = "disk_low"      // below the soft disk watermark: unauthenticated input waits
	RefusedDiskCritical = "disk_critical" // below the hard watermark: nothing new is acknowledged
	RefusedWriteFailed  = "write_failed"  // the database could not write (disk full, I/O error)
)

// diskRetry is the Retry-After of a refusal for want of disk: long enough for an operator to act.
const diskRetry = time.Minute

// Refusal is input that was not stored and was counted instead (see the Input* and Refused*
// constants). The web layer answers it: 400 or 413 for its shape, 429 over a limit or quota, 503
// for want of disk, each with RetryAfter when set. A refused delivery of a webhook is a
// *Rejection instead, which keeps its signature reason.
type Refusal struct {
	Input      string
	Reason     string
	Message    string // for the sender
	RetryAfter time.Duration
}

func (r *Refusal) Error() string { return r.Message }

// PublicBudget is how much unauthenticated input (callback beacons, return visits, refused
// deliveries) may be stored: bytes and rows a second for all of it together. Each environment
// and input gets half of that, so one of them cannot take all; each budget holds four seconds'
// worth as its burst.
type PublicBudget struct {
	BytesPerSecond float64 // default 1 MiB
	RowsPerSecond  float64 // default 1,000
}

// DefaultPublicBudget is the budget of unauthenticated input when none is configured.
var DefaultPublicBudget = PublicBudget{BytesPerSecond: 1 << 20, RowsPerSecond: 1000}

// publicBurst is how many seconds of a budget may be spent at once.
const publicBurst = 4

// Limits are the global budgets and those of each environment and input.
func (b PublicBudget) Limits() (perKey, global ratelimit.Limits) {
	global = ratelimit.Limits{
		Rows:  ratelimit.Budget{PerSecond: b.RowsPerSecond, Burst: publicBurst * b.RowsPerSecond},
		Bytes: ratelimit.Budget{PerSecond: b.BytesPerSecond, Burst: publicBurst * b.BytesPerSecond},
	}
	perKey = global
	perKey.Rows.PerSecond, perKey.Rows.Burst = global.Rows.PerSecond/2, global.Rows.Burst/2
	perKey.Bytes.PerSecond, perKey.Bytes.Burst = global.Bytes.PerSecond/2, global.Bytes.Burst/2
	return perKey, global
}

// rowOverhead is what a stored row costs beyond its payload and headers (columns, indexes,
// page slack), in bytes, as charged to the budgets.
const rowOverhead = 256

// storedCost is the bytes a row of payload and headers is charged.
func storedCost(payload int, headers map[string]string, extra int) int {
	n := rowOverhead + payload + extra
	for k, v := range headers {
		n += len(k) + len(v) + 6 // quotes, colon, comma
	}
	return n
}

// countKey names one counter.
type countKey struct{ env, input, reason string }

// minuteCount is one minute's count in a ring of the last hour.
type minuteCount struct {
	minute int64
	n      int64
}

// refusals counts refused input per environment, input and reason: per minute over the last
// hour, in total since start, and since the last summary line in the log.
type refusals struct {
	mu      sync.Mutex
	ring    map[countKey]*[60]minuteCount
	total   map[countKey]int64
	pending map[countKey]int64
	logged  time.Time // of the last summary line
}

// count adds one refusal at now, and returns the counts to log when a summary line is due (at
// most once a minute), else nil.
func (c *refusals) count(k countKey, now time.Time) map[countKey]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ring == nil {
		c.ring, c.total, c.pending = map[countKey]*[60]minuteCount{}, map[countKey]int64{}, map[countKey]int64{}
	}
	r := c.ring[k]
	if r == nil {
		r = &[60]minuteCount{}
		c.ring[k] = r
	}
	m := now.Unix() / 60
	slot := &r[m%60]
	if slot.minute != m {
		*slot = minuteCount{minute: m}
	}
	slot.n++
	c.total[k]++
	c.pending[k]++
	if now.Sub(c.logged) < time.Minute {
		return nil
	}
	c.logged = now
	out := c.pending
	c.pending = map[countKey]int64{}
	return out
}

// RefusalCount is how much of one input was refused for one reason in one environment.
type RefusalCount struct {
	Env      string // sandbox, production, or "other" for a path naming no environment
	Input    string // one of the Input* constants
	Reason   string // one of the Refused* constants
	LastHour int64
	Total    int64 // since the process started
}

// report lists the counts, by environment, input and reason; those with nothing in the last
// hour are left out unless all is set.
func (c *refusals) report(now time.Time, all bool) []RefusalCount {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := now.Unix() / 60
	var out []RefusalCount
	for k, r := range c.ring {
		var hour int64
		for _, s := range r {
			if s.minute > m-60 && s.minute <= m {
				hour += s.n
			}
		}
		if hour > 0 || all {
			out = append(out, RefusalCount{Env: k.env, Input: k.input, Reason: k.reason, LastHour: hour, Total: c.total[k]})
		}
	}
	slices.SortFunc(out, func(a, b RefusalCount) int {
		return cmp.Or(cmp.Compare(a.Env, b.Env), cmp.Compare(a.Input, b.Input), cmp.Compare(a.Reason, b.Reason))
	})
	return out
}

// Refuse counts a refusal and returns it as the error to answer with. The web layer calls it for
// input it refuses before the pipeline sees it (a sender over its own rate limit, a body over
// its size limit).
func (s *Service) Refuse(env, input, reason, msg string, retry time.Duration) *Refusal {
	s.countRefusal(env, input, reason)
	return &Refusal{Input: input, Reason: reason, Message: msg, RetryAfter: retry}
}

// countRefusal counts one refusal, and writes the summary line when one is due.
func (s *Service) countRefusal(env, input, reason string) {
	pending := s.refused.count(countKey{metrics.Env(env), input, reason}, s.now())
	if pending == nil {
		return
	}
	keys := make([]countKey, 0, len(pending))
	var n int64
	for k, v := range pending {
		keys = append(keys, k)
		n += v
	}
	slices.SortFunc(keys, func(a, b countKey) int {
		return cmp.Or(cmp.Compare(a.env, b.env), cmp.Compare(a.input, b.input), cmp.Compare(a.reason, b.reason))
	})
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s/%s/%s=%d", k.env, k.input, k.reason, pending[k])
	}
	s.log.LogAttrs(context.Background(), slog.LevelWarn, "input refused and not stored (at most one line a minute; counts on the Overview and /readyz)",
		slog.Int64("refused", n), slog.String("counts", b.String()))
}

// checkDisk refuses input when the disk is too full for it: unauthenticated input below the soft
// watermark, anything below the hard one.
func (s *Service) checkDisk(env, input string, authenticated bool) error {
	switch lvl := s.disk.Level(); {
	case lvl == diskguard.Critical:
		return s.Refuse(env, input, RefusedDiskCritical,
			"the dashboard is almost out of disk space and is not storing anything new; retry later (an operator has to free space)", diskRetry)
	case lvl == diskguard.Low && !authenticated:
		return s.Refuse(env, input, RefusedDiskLow,
			"the dashboard is low on disk space and is not storing unauthenticated input for now; retry later", diskRetry)
	}
	return nil
}

// takeBudget draws one row of cost bytes from the budgets of env's input, or refuses it.
func (s *Service) takeBudget(env, input string, cost int) error {
	ok, wait := s.quotas.Take(metrics.Env(env)+"/"+input, cost)
	if ok {
		return nil
	}
	secs := max(1, int(math.Ceil(min(wait, time.Hour).Seconds())))
	return s.Refuse(env, input, RefusedQuota,
		fmt.Sprintf("too much unauthenticated input is arriving for %s; this %s was not stored; retry in %d seconds", metrics.Env(env), strings.ReplaceAll(input, "_", " "), secs),
		time.Duration(secs)*time.Second)
}

// takeVouched draws one row of cost bytes from the budget of input that only a key holder can
// produce (verified beacons, signed refusals), which unauthenticated input never draws on, or
// refuses it.
func (s *Service) takeVouched(env, input string, cost int) error {
	ok, wait := s.vouched.Take(metrics.Env(env)+"/"+input, cost)
	if ok {
		return nil
	}
	secs := max(1, int(math.Ceil(min(wait, time.Hour).Seconds())))
	return s.Refuse(env, input, RefusedQuota,
		fmt.Sprintf("too much verified input is arriving for %s; this %s was not stored; retry in %d seconds", metrics.Env(env), strings.ReplaceAll(input, "_", " "), secs),
		time.Duration(secs)*time.Second)
}

// storageFailed handles a write that failed: a storage failure is recorded for readiness,
// counted and answered "retry later"; anything else passes through.
func (s *Service) storageFailed(env, input string, err error) error {
	if !db.IsStorageFailure(err) {
		return err
	}
	s.disk.WriteFailed(err)
	if s.writeLog.Due("", s.now()) {
		s.log.Error("store failed for want of storage (at most one line a minute)", "input", input, "error", err)
	}
	return s.Refuse(env, input, RefusedWriteFailed, "the dashboard could not store this (its disk is full or failing); retry later", diskRetry)
}

// IngestHealth is the state of ingest that readiness and the Overview report: the disk, the
// budgets of unauthenticated input, and what was refused.
type IngestHealth struct {
	Disk     diskguard.Status
	Budget   PublicBudget
	Refusals []RefusalCount // those with a refusal in the last hour
}

// Health reports the disk, the budgets and the refusals of the last hour.
func (s *Service) Health() IngestHealth {
	return IngestHealth{Disk: s.disk.Status(), Budget: s.cfg.PublicBudget, Refusals: s.refused.report(s.now(), false)}
}

// InputLabel names an input for people.
func InputLabel(input string) string {
	switch input {
	case InputCallback:
		return "Callback beacons"
	case InputReturn:
		return "Return visits"
	case InputRefused:
		return "Refused deliveries (not kept)"
	case InputWebhook:
		return "Signed webhooks"
	case InputAPICall:
		return "API-call reports"
	}
	return input
}

// ReasonLabel says why input was refused, for people.
func ReasonLabel(reason string) string {
	switch reason {
	case RefusedRateLimited:
		return "sender over its rate limit"
	case RefusedQuota:
		return "over the budget of unauthenticated input"
	case RefusedShape:
		return "not a callback beacon"
	case RefusedTooLarge:
		return "body too large"
	case RefusedDiskLow:
		return "disk below the soft watermark"
	case RefusedDiskCritical:
		return "disk below the hard watermark"
	case RefusedWriteFailed:
		return "the database could not write"
	}
	return reason
}
