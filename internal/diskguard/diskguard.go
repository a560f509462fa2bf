// Package diskguard watches the headroom of the filesystem that holds the database, and the
// writes that failed for want of it, so that ingest can refuse what it cannot afford to store
// before the disk is full: below a soft watermark unauthenticated input is refused, below a hard
// one everything that would be acknowledged is (answered 503, so senders retry later).
//
// Free space is read at most once per interval (a statfs call), on the request that finds the
// last reading stale; every other call is a few atomic loads.
package diskguard

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Level is how much room is left.
type Level int32

const (
	OK       Level = iota // above the soft watermark (or not known)
	Low                   // below the soft watermark: unauthenticated writes are refused
	Critical              // below the hard watermark: every ingest write is refused
)

func (l Level) String() string {
	switch l {
	case Low:
		return "low"
	case Critical:
		return "critical"
	}
	return "ok"
}

// Threshold is a watermark: an amount of free space, a share of the filesystem, or both (then
// the smaller of the two, so a small disk is not declared full while it is mostly empty). The zero
// Threshold is off.
type Threshold struct {
	Bytes   uint64
	Percent float64 // of the filesystem's size, 0 to 100
}

// Default watermarks: the soft one at 512 MiB or 5 % of the filesystem, the hard one at 64 MiB or
// 1 %, whichever is smaller in each case.
var (
	DefaultSoft = Threshold{Bytes: 512 << 20, Percent: 5}
	DefaultHard = Threshold{Bytes: 64 << 20, Percent: 1}
)

// Resolve is the threshold in bytes on a filesystem of total bytes.
func (t Threshold) Resolve(total uint64) uint64 {
	pct := uint64(math.MaxUint64)
	if t.Percent > 0 && total > 0 {
		pct = uint64(float64(total) * t.Percent / 100)
	}
	switch {
	case t.Bytes > 0 && t.Percent > 0:
		return min(t.Bytes, pct)
	case t.Percent > 0:
		if total == 0 {
			return 0
		}
		return pct
	}
	return t.Bytes
}

// String writes the threshold as ParseThreshold reads it.
func (t Threshold) String() string {
	var parts []string
	if t.Bytes > 0 {
		parts = append(parts, exactBytes(t.Bytes))
	}
	if t.Percent > 0 {
		parts = append(parts, strconv.FormatFloat(t.Percent, 'f', -1, 64)+"%")
	}
	if len(parts) == 0 {
		return "0"
	}
	return strings.Join(parts, ",")
}

// ParseThreshold reads "512MiB", "5%", "512MiB,5%" (the smaller of the two) or "0" (off).
func ParseThreshold(s string) (Threshold, error) {
	var t Threshold
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if p, ok := strings.CutSuffix(part, "%"); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
			if err != nil || v < 0 || v >= 100 || t.Percent != 0 {
				return Threshold{}, fmt.Errorf("%q is not a share of the disk from 0%% to 99%%", part)
			}
			t.Percent = v
			continue
		}
		b, err := ParseBytes(part)
		if err != nil || t.Bytes != 0 {
			return Threshold{}, fmt.Errorf("%q is not an amount of space such as 512MiB or a share such as 5%%", part)
		}
		t.Bytes = b
	}
	return t, nil
}

var byteUnits = []struct {
	suffix string
	n      uint64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
}

// ParseBytes reads an amount of bytes: a whole number, optionally followed by B, KB, MB, GB, TB
// (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024).
func ParseBytes(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	mult := uint64(1)
	for _, u := range byteUnits {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(num), u.n
			break
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || (mult > 1 && n > math.MaxUint64/mult) {
		return 0, errors.New("not an amount of bytes such as 512MiB")
	}
	return n * mult, nil
}

// exactBytes writes n in the largest unit that divides it, so that it reads back exactly.
func exactBytes(n uint64) string {
	units := append(slices.Clone(byteUnits[:4]), byteUnits[4:8]...)
	slices.Reverse(units[:4]) // TiB down to KiB,
	slices.Reverse(units[4:]) // then TB down to KB
	for _, u := range units {
		if n > 0 && n%u.n == 0 {
			return strconv.FormatUint(n/u.n, 10) + u.suffix
		}
	}
	return strconv.FormatUint(n, 10)
}

// FormatBytes writes n in the largest binary unit that divides it, or with one decimal.
func FormatBytes(n uint64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i, v := 0, float64(n)
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if v == math.Trunc(v) {
		return strconv.FormatFloat(v, 'f', 0, 64) + units[i]
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + units[i]
}

// Space is a reading of a filesystem: bytes free to an unprivileged process, and its size.
type Space struct {
	Free  uint64
	Total uint64
}

// Config is what a Guard watches. Zero values get the defaults noted.
type Config struct {
	Dir string // a directory on the watched filesystem (the data directory)
	// Soft and Hard are the watermarks; when both are zero they are DefaultSoft and DefaultHard,
	// and a zero one beside a set one is off.
	Soft Threshold
	Hard Threshold
	// Off disables both watermarks (write failures are still tracked).
	Off bool
	// Every is the least time between two readings of free space (default 5 s).
	Every time.Duration
	// FailureWindow is how long a failed write keeps the guard failing when no write succeeds
	// after it (default 1 minute); a successful write clears it at once.
	FailureWindow time.Duration
	Now           func() time.Time                // default time.Now
	Space         func(dir string) (Space, error) // default: the filesystem's statfs
}

// Status is what the guard knows now, for /readyz and the Overview.
type Status struct {
	Level     Level
	Space     Space     // the last reading; zero when none succeeded
	Soft      uint64    // the soft watermark in bytes on this filesystem
	Hard      uint64    // the hard watermark in bytes
	CheckedAt time.Time // of the last reading
	ReadError string    // why the last reading failed, if it did
	// WriteFailure is the last write failure while it is recent (no write has succeeded since,
	// and it is within the failure window); empty otherwise.
	WriteFailure  string
	WriteFailedAt time.Time
}

// Failing reports whether a recent write failed.
func (s Status) Failing() bool { return s.WriteFailure != "" }

// Guard watches free space and write failures. Its methods are safe for concurrent use.
type Guard struct {
	cfg       Config
	level     atomic.Int32
	nextCheck atomic.Int64 // Unix ns after which free space is read again
	failing   atomic.Bool

	mu        sync.Mutex // guards the fields below and serialises readings
	space     Space
	soft      uint64
	hard      uint64
	checkedAt time.Time
	readErr   string
	failure   string
	failedAt  time.Time
}

// New returns a Guard; the first reading happens on the first call that needs it.
func New(cfg Config) *Guard {
	if cfg.Soft == (Threshold{}) && cfg.Hard == (Threshold{}) {
		cfg.Soft, cfg.Hard = DefaultSoft, DefaultHard
	}
	if cfg.Every <= 0 {
		cfg.Every = 5 * time.Second
	}
	if cfg.FailureWindow <= 0 {
		cfg.FailureWindow = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Space == nil {
		cfg.Space = statSpace
	}
	return &Guard{cfg: cfg}
}

// Level is the level of free space, read again when the last reading is older than the interval.
func (g *Guard) Level() Level {
	if now := g.cfg.Now().UnixNano(); now >= g.nextCheck.Load() && g.mu.TryLock() {
		// One caller reads; the others go on with the last level meanwhile.
		if now >= g.nextCheck.Load() {
			g.readLocked()
		}
		g.mu.Unlock()
	}
	return Level(g.level.Load())
}

// readLocked takes a reading of free space. g.mu is held.
func (g *Guard) readLocked() {
	now := g.cfg.Now()
	g.nextCheck.Store(now.Add(g.cfg.Every).UnixNano())
	g.checkedAt = now
	sp, err := g.cfg.Space(g.cfg.Dir)
	if err != nil {
		// Unknown is not low: a filesystem that cannot be read says nothing about its room, and
		// failed writes are caught on their own.
		g.readErr = err.Error()
		g.level.Store(int32(OK))
		return
	}
	g.readErr = ""
	g.space = sp
	lvl := OK
	if !g.cfg.Off {
		g.soft, g.hard = g.cfg.Soft.Resolve(sp.Total), g.cfg.Hard.Resolve(sp.Total)
		g.soft = max(g.soft, g.hard)
		switch {
		case g.hard > 0 && sp.Free < g.hard:
			lvl = Critical
		case g.soft > 0 && sp.Free < g.soft:
			lvl = Low
		}
	}
	g.level.Store(int32(lvl))
}

// WriteFailed records a write that failed for want of storage (disk full, I/O error).
func (g *Guard) WriteFailed(err error) {
	g.mu.Lock()
	g.failure, g.failedAt = err.Error(), g.cfg.Now()
	g.failing.Store(true)
	// Read free space again at the next check: a failed write is news about the disk.
	g.nextCheck.Store(0)
	g.mu.Unlock()
}

// WriteSucceeded records a write that was stored, which ends a failure.
func (g *Guard) WriteSucceeded() {
	if !g.failing.Load() {
		return
	}
	g.mu.Lock()
	g.failure, g.failedAt = "", time.Time{}
	g.failing.Store(false)
	g.mu.Unlock()
}

// Failing reports whether a write failed recently, with no successful write since.
func (g *Guard) Failing() bool {
	if !g.failing.Load() {
		return false
	}
	return g.Status().Failing()
}

// Status reads free space if the last reading is stale and reports everything known.
func (g *Guard) Status() Status {
	lvl := g.Level()
	g.mu.Lock()
	defer g.mu.Unlock()
	st := Status{Level: lvl, Space: g.space, Soft: g.soft, Hard: g.hard, CheckedAt: g.checkedAt, ReadError: g.readErr}
	if g.failure != "" && g.cfg.Now().Sub(g.failedAt) < g.cfg.FailureWindow {
		st.WriteFailure, st.WriteFailedAt = g.failure, g.failedAt
	}
	return st
}
