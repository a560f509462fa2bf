package events

import (
	"cmp"
	"context"
	"encoding/json"
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

// What a row of public input really costs on disk, as charged to the budgets, so that the
// budget is the growth a flood can cause. A row is its table cell plus one cell in each index
// that takes it, each cell laid out as SQLite lays it out in the database's pages (page_size
// 4096, the default):
//
//   - A page holds whole cells, filled in the order they arrive: the cell that does not fit
//     starts a new page, so a page is left less empty than that cell's size, and an attacker who
//     alternates sizes can leave every page half empty. Each cell is charged packing times its
//     size, which bounds that whatever the order.
//   - A cell longer than its b-tree keeps in a page (maxLocalTable, maxLocalIndex) keeps
//     minLocal bytes or so in the page and puts the rest on overflow pages of its own, charged
//     whole. A request_id near its bound of 1,024 bytes is such a key in its index: alone it
//     costs a 4 KiB page.
//   - The fixed parts (record headers, the columns every row has, cell pointers and varints,
//     index keys that are not input) were read with the dbstat table and rounded up.
//
// Measured by TestPublicRowCostsCoverDiskGrowth (cost_test.go), which floods every public input
// into a real database file, checkpoints it, and fails if the file grew more than was charged:
// the old flat charge (payload, headers and 256 bytes a row) let beacons with long request_ids
// grow the file 6.4 times what they were charged.
const (
	pageSize      = 4096                      // the database's page size
	maxLocalTable = pageSize - 35             // the most of a table row a page keeps in its cell
	maxLocalIndex = (pageSize-12)*64/255 - 23 // the most of an index key a page keeps in its cell (1,002)
	minLocal      = (pageSize-12)*32/255 - 23 // what a cell that spills keeps at least (489)
	packing       = 2                         // times its size a cell is charged (see above)
	// cellOverhead is what a cell takes beyond its record: its pointer, its size and row id
	// varints (ids below 2^41), and the first overflow page's number when it spills.
	cellOverhead = 11

	// eventRecordFixed is an events record beyond its input: its header (22 columns) and the
	// columns every row has (source, env, received_at, occurred_at), at most.
	eventRecordFixed = 72
	// eventFixedIndexRecords is the records of the four index entries every event takes,
	// whatever it holds: (env, id) 21 bytes, (env, source, id) 29, received_at 15 and the dedupe
	// key's 9 (a NULL when there is none); eventFixedIndexes counts them.
	eventFixedIndexRecords = 74
	eventFixedIndexes      = 4
	// rejectedRecordFixed is a rejected_deliveries record beyond its input: its header (13
	// columns), received_at and body_size, at most.
	rejectedRecordFixed = 40
	// indexRecordFixed is an index record beyond its input key: its header and the row id.
	indexRecordFixed = 11
	// timeKey is the key of a received_at index: a time in Unix milliseconds, at most.
	timeKey = 6
)

// cellCost is what a b-tree cell of n record bytes costs on disk, in a b-tree whose cells keep at
// most maxLocal bytes in their page: packing times what it keeps in the page, plus its overflow
// pages; and local, what it keeps in the page.
func cellCost(n, maxLocal int) (cost, local int) {
	local, overflow := n, 0
	if n > maxLocal {
		// SQLite's rule: keep what leaves whole overflow pages behind if it fits, else minLocal.
		if local = minLocal + (n-minLocal)%(pageSize-4); local > maxLocal {
			local = minLocal
		}
		overflow = (n - local + pageSize - 5) / (pageSize - 4)
		local += 4 // the first overflow page's number
	}
	local += cellOverhead
	return packing*local + overflow*pageSize, local
}

// indexCost is what an index entry of a key of n bytes costs. Beyond its cell (see cellCost), an
// index keeps a whole copy of one key of each leaf page in the page above, overflow pages and
// all: one in as many keys as a leaf holds, and a leaf holds at least half a page of them.
func indexCost(n int) int {
	cost, local := cellCost(indexRecordFixed+n, maxLocalIndex)
	return cost + cost*local*packing/(pageSize-8)
}

// rowCost is what a table row of n record bytes costs (see cellCost). Its copy in the page above
// is its id, which cellOverhead covers.
func rowCost(n int) int {
	cost, _ := cellCost(n, maxLocalTable)
	return cost
}

// jsonLen is the length of headers as the database stores them (JSON, in which a '<' takes six
// bytes).
func jsonLen(headers map[string]string) int {
	if headers == nil {
		return 0
	}
	b, _ := json.Marshal(headers)
	return len(b)
}

// eventCost is the bytes an events row of in is charged: its record and an entry in each index
// that takes it (see the schema in internal/db/migrations: the lookup indexes leave the empty string out).
func eventCost(in db.EventInput) int {
	keys := [...]string{in.Type, in.RequestID, in.UserID, in.ExternalID, in.DedupeKey}
	row := eventRecordFixed + len(in.Payload) + jsonLen(in.Headers) + len(in.Verification) + len(in.Client)
	n := packing * (eventFixedIndexRecords + eventFixedIndexes*cellOverhead)
	for _, k := range keys {
		row += len(k)
		if k != "" {
			n += indexCost(len(k))
		}
	}
	if in.IsError { // (env, id) where is_error = 1
		n += indexCost(len(in.Env))
	}
	return n + rowCost(row)
}

// rejectedCost is the bytes a rejected_deliveries row of r is charged: its record and its
// entries in the received_at, env and (when signed) signed indexes.
func rejectedCost(r db.RejectedDelivery) int {
	row := rejectedRecordFixed + len(r.Env) + len(r.Reason) + len(r.Detail) + jsonLen(r.Headers) + len(r.Body) +
		len(r.IP) + len(r.RequestID) + len(r.Client) + len(r.SignedBy) + len(r.WebhookID)
	n := indexCost(timeKey) + indexCost(len(r.Env))
	if r.SignedBy != "" { // received_at where signed_by IS NOT NULL
		n += indexCost(timeKey)
	}
	return n + rowCost(row)
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
		s.charged.Add(int64(cost))
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
		s.charged.Add(int64(cost))
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
