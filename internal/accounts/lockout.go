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
// own (account, address) applies. The counters live in the database (table login_counters), so
// every instance counts the same failures; the rows are bounded by MaxKeys: when full, rows that
// would be forgotten anyway go first, else those with the fewest failures, oldest first, so a
// flood of fresh emails evicts itself rather than a locked account. Forgotten rows are also
// purged by the leader's housekeeping (PurgeSignInState).

// LockoutPolicy tunes the login soft lockout; zero fields take the defaults.
type LockoutPolicy struct {
	Free      int           // failures before delays start (default 5)
	BaseDelay time.Duration // the first delay, doubled by each further failure (default 1 s)
	MaxDelay  time.Duration // the longest delay (default 15 min)
	Forget    time.Duration // failures are forgotten this long after the last one's delay ends (default 1 h)
	MaxKeys   int           // accounts and (account, address) pairs tracked at most: rows kept (default 50,000)
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

// attemptLease is how long an admitted attempt counts as in flight at most: an instance that
// dies while checking a password does not hold the counter for longer.
const attemptLease = 2 * time.Minute

// lockout keeps the counters in the database (db.UpdateLoginCounters), so every instance counts
// the same failures and an attacker gains nothing by asking another one.
type lockout struct {
	db  *db.DB
	p   LockoutPolicy
	now func() time.Time
	key []byte // names counters by a keyed hash: what was typed as an email is never stored
}

func newLockout(d *db.DB, p LockoutPolicy, now func() time.Time, key []byte) *lockout {
	if len(key) == 0 {
		key = []byte("no device key")
	}
	return &lockout{db: d, p: p.withDefaults(), now: now, key: key}
}

// counterKey names the counter of an account ("a", email) or of an (account, address) pair
// ("p", email, addr).
func (l *lockout) counterKey(parts ...string) []byte {
	m := hmac.New(sha256.New, l.key)
	m.Write([]byte("login-counter"))
	for _, p := range parts {
		m.Write([]byte{0})
		m.Write([]byte(p))
	}
	return m.Sum(nil)
}

// inflight is how many attempts c still counts as in flight at now.
func inflight(c *db.LoginCounter, now time.Time) int {
	if now.Before(c.InflightUntil) {
		return c.Inflight
	}
	return 0
}

// settle forgets the counters that hold nothing worth keeping at now, and sets when each will.
func (l *lockout) settle(cs []db.LoginCounter, now time.Time) {
	for i := range cs {
		c := &cs[i]
		if inflight(c, now) == 0 {
			c.Inflight, c.InflightUntil = 0, time.Time{}
		}
		c.ForgetAt = c.Until.Add(l.p.Forget)
		if last := c.LastFailure.Add(l.p.Forget); last.After(c.ForgetAt) {
			c.ForgetAt = last
		}
		if c.Inflight > 0 && c.InflightUntil.After(c.ForgetAt) {
			c.ForgetAt = c.InflightUntil
		}
		if !c.ForgetAt.After(now) {
			*c = db.LoginCounter{Key: c.Key}
		}
	}
}

// wait is how long an attempt on c must wait at now; 0 when it may go ahead. Once delays apply,
// one attempt at a time is checked, so parallel requests cannot all slip in before the count.
func (l *lockout) wait(c *db.LoginCounter, now time.Time) time.Duration {
	if now.Before(c.Until) {
		return c.Until.Sub(now)
	}
	if inflight(c, now) >= max(1, l.p.Free-c.Failures) {
		return l.p.BaseDelay
	}
	return 0
}

// attempt is one admitted sign-in; end it with its outcome.
type attempt struct {
	l             *lockout
	pair, account []byte // the counters' keys
	known         bool   // a known device: the account's counter did not admit it
}

type scoped struct {
	c     *db.LoginCounter
	scope LockScope
}

// through are the counters (of cs, loaded for pair and account) the attempt goes through.
func (a *attempt) through(cs []db.LoginCounter) []scoped {
	out := []scoped{{&cs[0], LockAddress}}
	if !a.known {
		out = append(out, scoped{&cs[1], LockAccount})
	}
	return out
}

// update applies change to the attempt's two counters, pair first, in one transaction.
func (a *attempt) update(ctx context.Context, now time.Time, change func([]db.LoginCounter)) error {
	return a.l.db.UpdateLoginCounters(ctx, [][]byte{a.pair, a.account}, now, a.l.p.MaxKeys, func(cs []db.LoginCounter) {
		a.l.settle(cs, now)
		change(cs)
		a.l.settle(cs, now)
	})
}

// begin admits a sign-in for email from addr, or refuses it with a *LockedError. A known device
// skips the per-account counter.
func (l *lockout) begin(ctx context.Context, email, addr string, known bool) (*attempt, error) {
	email = lockKey(email)
	a := &attempt{l: l, pair: l.counterKey("p", email, addr), account: l.counterKey("a", email), known: known}
	now := l.now()
	var locked *LockedError
	err := a.update(ctx, now, func(cs []db.LoginCounter) {
		through := a.through(cs)
		for _, s := range through {
			if d := l.wait(s.c, now); d > 0 {
				locked = &LockedError{Scope: s.scope, RetryAfter: d, Failures: s.c.Failures}
				// One report per lock: the address's and the account's counters usually lock at
				// the same failure, and either refusing covers both.
				for _, s := range through {
					if now.Before(s.c.Until) && !s.c.Reported {
						s.c.Reported, locked.First = true, true
					}
				}
				return
			}
		}
		for _, s := range through {
			s.c.Inflight++
			s.c.InflightUntil = now.Add(attemptLease)
		}
	})
	if err != nil {
		return nil, err
	}
	if locked != nil {
		return nil, locked
	}
	return a, nil
}

// end records the outcome: a failure counts against both counters (a known device's too, on the
// account); a success clears the counters the attempt went through. Neither (an error while
// checking) only releases the attempt. It is recorded even when ctx has ended (the browser
// went away), so a guess always counts.
func (a *attempt) end(ctx context.Context, failed, succeeded bool) error {
	l := a.l
	now := l.now()
	return a.update(context.WithoutCancel(ctx), now, func(cs []db.LoginCounter) {
		for _, s := range a.through(cs) {
			s.c.Inflight = max(0, s.c.Inflight-1)
			if succeeded {
				*s.c = db.LoginCounter{Key: s.c.Key, Inflight: s.c.Inflight, InflightUntil: s.c.InflightUntil}
			}
		}
		if !failed {
			return
		}
		for i := range cs {
			c := &cs[i]
			c.Failures++
			c.LastFailure = now
			if c.Failures >= l.p.Free {
				c.Until, c.Reported = now.Add(l.p.delay(c.Failures)), false
			}
		}
	})
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
func (l *lockout) size(ctx context.Context) (int, error) {
	return l.db.CountLoginCounters(ctx)
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
// (at most LockoutPolicy.MaxKeys), on every instance together.
func (s *Service) TrackedLogins(ctx context.Context) (int, error) { return s.lockout.size(ctx) }

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
