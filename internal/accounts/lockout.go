package accounts

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
)

// The login soft lockout. Failed sign-ins are counted per account (the email as typed, known or
// not, so the answers do not tell which emails exist) and per (account, source address). After
// Free failures of either, the next attempt waits BaseDelay, and each further failure doubles
// the wait up to MaxDelay; a waiting attempt is refused at once, before any password is checked,
// so guesses stop. Failures are forgotten Forget after the last delay ends, longer than the
// longest delay, so waiting out the counter costs a guesser more than waiting out the delays.
//
// A flood from many addresses keeps the per-account counter locked, but cannot lock out the real
// user: a browser that has signed in to the account before carries a known-device cookie (a MAC
// over the email under a key derived from the master key), and with it only the counter of its
// own (account, address) applies. Everything is in memory, in one map bounded by MaxKeys: when
// full, an entry that would be forgotten anyway goes first, else the one with the fewest failures
// of a small random sample, so a flood of fresh emails evicts itself rather than a locked account.

// LockoutPolicy tunes the login soft lockout; zero fields take the defaults.
type LockoutPolicy struct {
	Free      int           // failures before delays start (default 5)
	BaseDelay time.Duration // the first delay, doubled by each further failure (default 1 s)
	MaxDelay  time.Duration // the longest delay (default 15 min)
	Forget    time.Duration // failures are forgotten this long after the last one's delay ends (default 1 h)
	MaxKeys   int           // accounts and (account, address) pairs tracked at most (default 50,000)
}

func (p LockoutPolicy) withDefaults() LockoutPolicy {
	if p.Free <= 0 {
		p.Free = 5
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = time.Second
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = 15 * time.Minute
	}
	if p.Forget <= 0 {
		p.Forget = time.Hour
	}
	if p.MaxKeys <= 0 {
		p.MaxKeys = 50_000
	}
	p.MaxKeys = max(p.MaxKeys, 16)
	return p
}

// delay is the wait after the nth failure (n >= Free).
func (p LockoutPolicy) delay(n int) time.Duration {
	shift := min(n-p.Free, 30)
	return min(p.BaseDelay<<shift, p.MaxDelay)
}

// LoginFrom is where a sign-in comes from: the client's address (as rate limits count it) and
// the known-device cookie the browser sent, if any.
type LoginFrom struct {
	Addr   string
	Device string
}

// LockScope says which counter refused a sign-in.
type LockScope string

const (
	LockAccount LockScope = "account" // every address without a known-device cookie
	LockAddress LockScope = "address" // this account from this address
)

// LockedError is Authenticate's answer while an account, or the account from this address, must
// wait after failed sign-ins. The password was not checked.
type LockedError struct {
	Scope      LockScope
	RetryAfter time.Duration
	Failures   int  // failures counted so far
	First      bool // the first refusal of this lock, to audit once
}

func (e *LockedError) Error() string {
	return "too many failed sign-ins for this account; try again in " + WaitText(e.RetryAfter)
}

// WaitText says how long to wait in a few characters: "1 s", "40 s", "15 min".
func WaitText(d time.Duration) string {
	secs := int(math.Ceil(d.Seconds()))
	if secs < 120 {
		return strconv.Itoa(max(secs, 1)) + " s"
	}
	return strconv.Itoa((secs+59)/60) + " min"
}

// lockout holds the counters.
type lockout struct {
	mu    sync.Mutex
	p     LockoutPolicy
	now   func() time.Time
	m     map[string]*lockEntry
	sweep time.Time
}

type lockEntry struct {
	failures    int
	inflight    int       // attempts admitted and not yet ended
	lastFailure time.Time // zero when none
	until       time.Time // no attempt before this
	reported    bool      // the current lock was answered (and audited) once
}

func newLockout(p LockoutPolicy, now func() time.Time) *lockout {
	return &lockout{p: p.withDefaults(), now: now, m: map[string]*lockEntry{}}
}

// forgettable reports whether e holds nothing worth keeping at now.
func (l *lockout) forgettable(e *lockEntry, now time.Time) bool {
	return e.inflight == 0 && !now.Before(e.until.Add(l.p.Forget)) && !now.Before(e.lastFailure.Add(l.p.Forget))
}

// entry returns the counter for key, creating it (within MaxKeys, never evicting keep) when
// missing or forgotten.
func (l *lockout) entry(key string, now time.Time, keep *lockEntry) *lockEntry {
	if e, ok := l.m[key]; ok {
		if l.forgettable(e, now) {
			*e = lockEntry{}
		}
		return e
	}
	if now.Sub(l.sweep) > time.Minute {
		for k, e := range l.m {
			if l.forgettable(e, now) {
				delete(l.m, k)
			}
		}
		l.sweep = now
	}
	if len(l.m) >= l.p.MaxKeys {
		l.evictOne(now, keep)
	}
	e := &lockEntry{}
	l.m[key] = e
	return e
}

// evictOne drops one entry but keep: from a random sample, one that would be forgotten anyway,
// else the least worth keeping (nothing in flight, fewest failures, oldest).
func (l *lockout) evictOne(now time.Time, keep *lockEntry) {
	const sample = 32
	var victim string
	var worst *lockEntry
	n := 0
	for k, e := range l.m { // map order is random
		if e == keep {
			continue
		}
		if l.forgettable(e, now) {
			victim = k
			break
		}
		if worst == nil || less(e, worst) {
			victim, worst = k, e
		}
		if n++; n == sample {
			break
		}
	}
	delete(l.m, victim)
}

// less orders entries by how little they are worth keeping.
func less(a, b *lockEntry) bool {
	if (a.inflight > 0) != (b.inflight > 0) {
		return a.inflight == 0
	}
	if a.failures != b.failures {
		return a.failures < b.failures
	}
	return a.lastFailure.Before(b.lastFailure)
}

// wait is how long an attempt on e must wait at now; 0 when it may go ahead. Once delays apply,
// one attempt at a time is checked, so parallel requests cannot all slip in before the count.
func (l *lockout) wait(e *lockEntry, now time.Time) time.Duration {
	if now.Before(e.until) {
		return e.until.Sub(now)
	}
	if e.inflight >= max(1, l.p.Free-e.failures) {
		return l.p.BaseDelay
	}
	return 0
}

// attempt is one admitted sign-in; end it with its outcome.
type attempt struct {
	l             *lockout
	email         string     // as lockKey has it
	pair, account *lockEntry // account is nil for a known device
}

// begin admits a sign-in for email from addr, or refuses it with a *LockedError. A known device
// skips the per-account counter.
func (l *lockout) begin(email, addr string, known bool) (*attempt, error) {
	email = lockKey(email)
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	a := &attempt{l: l, email: email, pair: l.entry("p\x00"+email+"\x00"+addr, now, nil)}
	if !known {
		a.account = l.entry("a\x00"+email, now, a.pair)
	}
	for _, c := range a.counters() {
		if d := l.wait(c.e, now); d > 0 {
			locked := &LockedError{Scope: c.scope, RetryAfter: d, Failures: c.e.failures}
			// One report per lock: the address's and the account's counters usually lock at
			// the same failure, and either refusing covers both.
			for _, c := range a.counters() {
				if now.Before(c.e.until) && !c.e.reported {
					c.e.reported, locked.First = true, true
				}
			}
			return nil, locked
		}
	}
	for _, c := range a.counters() {
		c.e.inflight++
	}
	return a, nil
}

type scoped struct {
	e     *lockEntry
	scope LockScope
}

// counters are the counters the attempt went through.
func (a *attempt) counters() []scoped {
	out := []scoped{{a.pair, LockAddress}}
	if a.account != nil {
		out = append(out, scoped{a.account, LockAccount})
	}
	return out
}

// end records the outcome: a failure counts against both counters (a known device's too, on the
// account); a success clears the counters the attempt went through. Neither (an error while
// checking) only releases the attempt.
func (a *attempt) end(failed, succeeded bool) {
	l := a.l
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	account := a.account
	if failed && account == nil { // found before this attempt lets go of its pair's counter
		account = l.entry("a\x00"+a.email, now, a.pair)
	}
	for _, c := range a.counters() {
		c.e.inflight = max(0, c.e.inflight-1)
		if succeeded {
			*c.e = lockEntry{inflight: c.e.inflight}
		}
	}
	if !failed {
		return
	}
	for _, e := range []*lockEntry{a.pair, account} {
		e.failures++
		e.lastFailure = now
		if e.failures >= l.p.Free {
			e.until, e.reported = now.Add(l.p.delay(e.failures)), false
		}
	}
}

// lockKey is the counter's name for an email: trimmed, lower case, clipped (emails are at most
// 254 characters), so a megabyte of "email" takes no more room than a real one.
func lockKey(email string) string {
	email = strings.ToLower(strings.TrimSpace(email))
	if len(email) > 320 {
		email = email[:320]
	}
	return email
}

// size is how many counters are kept.
func (l *lockout) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}

// KnownDeviceLife is how long a known-device cookie is honoured after the sign-in that set it.
const KnownDeviceLife = 180 * 24 * time.Hour

// DeviceToken is the value of the known-device cookie for a browser that just signed in as
// email; "" when the Service has no DeviceKey.
func (s *Service) DeviceToken(email string) string {
	if len(s.deviceKey) == 0 {
		return ""
	}
	ts := strconv.FormatInt(s.now().Unix(), 10)
	return "v1." + ts + "." + s.deviceMAC(email, ts)
}

// knownDevice reports whether token came from DeviceToken for this email within KnownDeviceLife.
func (s *Service) knownDevice(email, token string) bool {
	if len(s.deviceKey) == 0 || len(token) > 100 {
		return false
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[0] != "v1" {
		return false
	}
	ts, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return false
	}
	if age := s.now().Sub(time.Unix(ts, 0)); age < -time.Minute || age > KnownDeviceLife {
		return false
	}
	return hmac.Equal([]byte(parts[2]), []byte(s.deviceMAC(email, parts[1])))
}

func (s *Service) deviceMAC(email, ts string) string {
	m := hmac.New(sha256.New, s.deviceKey)
	fmt.Fprintf(m, "known-device\x00%s\x00%s", lockKey(email), ts)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
}

// TrackedLogins is how many accounts and (account, address) pairs the login lockout counts
// (at most LockoutPolicy.MaxKeys).
func (s *Service) TrackedLogins() int { return s.lockout.size() }

// PasswordChecks is how many password hashes have been compared since start; a refused locked
// sign-in adds none.
func (s *Service) PasswordChecks() int64 { return s.checks.Load() }

// FailedLoginTarget names the account of a refused or locked sign-in for the audit log. People
// type their password into the email field by mistake, so text that is no account's email is
// not kept: it becomes "email:unknown-" and a keyed fingerprint of it, which still groups repeated
// attempts with the same text together without saying what it was.
func (s *Service) FailedLoginTarget(ctx context.Context, email string) (string, error) {
	u, err := s.db.UserByEmail(ctx, strings.TrimSpace(email))
	switch {
	case err == nil:
		return "email:" + u.Email, nil
	case !errors.Is(err, db.ErrNotFound):
		return "", err
	}
	key := s.deviceKey
	if len(key) == 0 {
		key = []byte("no device key")
	}
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "unknown-email\x00%s", lockKey(email))
	return "email:unknown-" + hex.EncodeToString(m.Sum(nil)[:6]), nil
}
