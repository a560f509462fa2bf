package accounts

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/dbtest"
)

// testClock is a clock the test moves by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newLockedService(t *testing.T, p LockoutPolicy) (*Service, *testClock, db.User) {
	t.Helper()
	st := dbtest.New(t)
	d, err := st.Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	stores[d] = st
	clock := &testClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	s := New(Config{DB: d, Params: auth.TestParams, Lockout: p, Now: clock.Now, DeviceKey: []byte("0123456789abcdef0123456789abcdef")})
	u, err := s.CreateUser(context.Background(), NewUser{Email: "ana@example.com", Role: "admin", Password: "a long test password"}, testAudit)
	if err != nil {
		t.Fatal(err)
	}
	return s, clock, u
}

// try signs in and says what happened, in a form a table can hold: "ok", "bad", or
// "locked <scope> <wait> first?"; and whether a password was checked.
func try(t *testing.T, s *Service, email, pw string, from LoginFrom) (string, bool) {
	t.Helper()
	before := s.PasswordChecks()
	_, err := s.Authenticate(context.Background(), email, pw, from)
	checked := s.PasswordChecks() != before
	var locked *LockedError
	switch {
	case err == nil:
		return "ok", checked
	case errors.Is(err, ErrBadCredentials):
		return "bad", checked
	case errors.As(err, &locked):
		first := ""
		if locked.First {
			first = " first"
		}
		return fmt.Sprintf("locked %s %s%s", locked.Scope, locked.RetryAfter, first), checked
	}
	t.Fatalf("authenticate: %v", err)
	return "", false
}

func TestLockoutDelaysGrowAndNothingIsChecked(t *testing.T) {
	s, clock, _ := newLockedService(t, LockoutPolicy{})
	from := LoginFrom{Addr: "198.51.100.7"}
	steps := []struct {
		advance time.Duration
		pw      string
		want    string
	}{
		{0, "wrong 1", "bad"}, {0, "wrong 2", "bad"}, {0, "wrong 3", "bad"}, {0, "wrong 4", "bad"},
		{0, "wrong 5", "bad"}, // the fifth failure starts a 1 s wait
		{0, "a long test password", "locked address 1s first"},
		{0, "a long test password", "locked address 1s"},
		{500 * time.Millisecond, "wrong 6", "locked address 500ms"},
		{500 * time.Millisecond, "wrong 6", "bad"}, // then 2 s
		{time.Second, "wrong 7", "locked address 1s first"},
		{time.Second, "wrong 7", "bad"}, // then 4 s
		{0, "wrong 8", "locked address 4s first"},
		{4 * time.Second, "wrong 8", "bad"},
		{0, "x", "locked address 8s first"},
	}
	for i, st := range steps {
		clock.Add(st.advance)
		got, checked := try(t, s, "ana@example.com", st.pw, from)
		if got != st.want {
			t.Fatalf("step %d (%s): %s, want %s", i, st.pw, got, st.want)
		}
		if checked != !strings.HasPrefix(got, "locked") {
			t.Fatalf("step %d: %s, but a password check ran: %v", i, got, checked)
		}
	}
	// From another address the account's own counter refuses, also unchecked.
	if got, checked := try(t, s, "ana@example.com", "a long test password", LoginFrom{Addr: "203.0.113.1"}); got != "locked account 8s" || checked {
		t.Fatalf("new address during the lock: %s (checked %v)", got, checked)
	}
	// The delay is capped, and everything is forgotten after a quiet spell.
	for range 20 {
		clock.Add(15 * time.Minute)
		if got, _ := try(t, s, "ana@example.com", "wrong again", from); got != "bad" {
			t.Fatalf("after the wait: %s", got)
		}
	}
	if got, _ := try(t, s, "ana@example.com", "x", from); got != "locked address 15m0s first" {
		t.Fatalf("after many failures: %s, want the 15 min cap", got)
	}
	clock.Add(15*time.Minute + time.Hour)
	if got, _ := try(t, s, "ana@example.com", "a long test password", from); got != "ok" {
		t.Fatalf("after a quiet hour: %s", got)
	}
}

func TestLockoutTreatsUnknownEmailsAlike(t *testing.T) {
	s, clock, _ := newLockedService(t, LockoutPolicy{})
	run := func(email string) []string {
		var out []string
		for i := range 9 {
			if i == 7 {
				clock.Add(time.Second)
			}
			got, checked := try(t, s, email, "wrong password", LoginFrom{Addr: "198.51.100.7"})
			out = append(out, fmt.Sprintf("%s checked=%v", got, checked))
		}
		return out
	}
	known, unknown := run("ana@example.com"), run("Nobody@Example.com")
	if strings.Join(known, "\n") != strings.Join(unknown, "\n") {
		t.Fatalf("a known and an unknown email are told apart:\n%v\n%v", known, unknown)
	}
	if !strings.HasPrefix(known[5], "locked") {
		t.Fatalf("no lock after five failures: %v", known)
	}
}

// newTestLockout is a lockout on a fresh database.
func newTestLockout(t testing.TB, p LockoutPolicy, now func() time.Time) *lockout {
	t.Helper()
	d, err := dbtest.New(t).Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return newLockout(d, p, now, nil)
}

func TestLockoutCountsAttemptsInFlight(t *testing.T) {
	ctx := context.Background()
	l := newTestLockout(t, LockoutPolicy{}, (&testClock{t: time.Unix(1e9, 0)}).Now)
	var admitted []*attempt
	for range 5 {
		a, err := l.begin(ctx, "ana@example.com", fmt.Sprint("addr", len(admitted)), false)
		if err != nil {
			t.Fatal(err)
		}
		admitted = append(admitted, a)
	}
	// Five checks running: a sixth in parallel would be a guess past the limit.
	var locked *LockedError
	if _, err := l.begin(ctx, "ana@example.com", "another", false); !errors.As(err, &locked) || locked.First {
		t.Fatalf("sixth attempt in flight: %v", err)
	}
	for _, a := range admitted {
		if err := a.end(ctx, true, false); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.begin(ctx, "ana@example.com", "another", false); !errors.As(err, &locked) || !locked.First || locked.Failures != 5 {
		t.Fatalf("after five failures: %v", err)
	}
}

func TestKnownDeviceSkipsTheAccountCounter(t *testing.T) {
	s, clock, u := newLockedService(t, LockoutPolicy{})
	device := s.DeviceToken(u.Email)
	// A flood from 20 addresses locks the account.
	for i := range 20 {
		for range 3 {
			try(t, s, u.Email, "guess", LoginFrom{Addr: fmt.Sprintf("203.0.113.%d", i)})
		}
	}
	stranger := LoginFrom{Addr: "192.0.2.1"}
	if got, _ := try(t, s, u.Email, "a long test password", stranger); !strings.HasPrefix(got, "locked account") {
		t.Fatalf("new address during the flood: %s", got)
	}
	home := LoginFrom{Addr: "198.51.100.7", Device: device}
	if got, checked := try(t, s, "ANA@example.com", "a long test password", home); got != "ok" || !checked {
		t.Fatalf("the known device during the flood: %s", got)
	}
	// Its own address still has its own counter.
	for range 5 {
		try(t, s, u.Email, "typo", home)
	}
	if got, _ := try(t, s, u.Email, "a long test password", home); got != "locked address 1s first" {
		t.Fatalf("known device after its own five failures: %s", got)
	}
	// The cookie is bound to its email, its MAC and its age.
	clock.Add(time.Hour)
	other, err := s.CreateUser(context.Background(), NewUser{Email: "bo@example.com", Role: "viewer", Password: "a long test password"}, testAudit)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		try(t, s, other.Email, "guess", stranger)
	}
	for name, token := range map[string]string{
		"another account's": device,
		"tampered":          device[:len(device)-2] + "xx",
		"garbage":           "v1.x.y",
		"empty":             "",
	} {
		if got, _ := try(t, s, other.Email, "a long test password", LoginFrom{Addr: "198.51.100.9", Device: token}); !strings.HasPrefix(got, "locked account") {
			t.Errorf("%s device token let %s through: %s", name, other.Email, got)
		}
	}
	if !s.knownDevice(u.Email, device) {
		t.Fatal("the token stopped working within its life")
	}
	clock.Add(KnownDeviceLife)
	if s.knownDevice(u.Email, device) {
		t.Fatal("an expired known-device token still works")
	}
	if (&Service{}).DeviceToken(u.Email) != "" {
		t.Fatal("a service without a device key made a token")
	}
}

func TestLockoutStaysBounded(t *testing.T) {
	ctx := context.Background()
	clock := &testClock{t: time.Unix(1e9, 0)}
	l := newTestLockout(t, LockoutPolicy{MaxKeys: 100}, clock.Now)
	fail := func(email, addr string) {
		if a, err := l.begin(ctx, email, addr, false); err == nil {
			if err := a.end(ctx, true, false); err != nil {
				t.Fatal(err)
			}
		}
	}
	size := func() int {
		n, err := l.size(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	for range 6 {
		fail("ana@example.com", "203.0.113.1")
	}
	for i := range 1_000 {
		fail(fmt.Sprintf("random%d@example.com", i), fmt.Sprintf("198.51.%d.%d", i/256, i%256))
		if n := size(); n > 100 {
			t.Fatalf("after %d random emails the lockout tracks %d keys, over its bound of 100", i+1, n)
		}
	}
	var locked *LockedError
	if _, err := l.begin(ctx, "ana@example.com", "192.0.2.1", false); !errors.As(err, &locked) || locked.Scope != LockAccount {
		t.Fatalf("the flood evicted the locked account: %v", err)
	}
	// Once everything is forgotten, the next new key sweeps it all away.
	clock.Add(2 * time.Hour)
	fail("late@example.com", "192.0.2.2")
	if n := size(); n > 2 {
		t.Fatalf("%d keys left after everything was forgotten", n)
	}
}

func TestWaitText(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "1 s", 300 * time.Millisecond: "1 s", time.Second: "1 s", 40 * time.Second: "40 s",
		119 * time.Second: "119 s", 2 * time.Minute: "2 min", 14*time.Minute + time.Second: "15 min",
	} {
		if got := WaitText(d); got != want {
			t.Errorf("WaitText(%s) = %q, want %q", d, got, want)
		}
	}
}

// BenchmarkLockout is one sign-in's bookkeeping (begin and end) against a full map, each from a
// fresh email so every attempt evicts, next to the same attempt on one account as the baseline.
func BenchmarkLockout(b *testing.B) {
	ctx := context.Background()
	clock := &testClock{t: time.Unix(1e9, 0)}
	b.Run("fresh-email-full-map", func(b *testing.B) {
		l := newTestLockout(b, LockoutPolicy{}, clock.Now)
		i := 0
		for b.Loop() {
			i++
			if a, err := l.begin(ctx, "random"+strconv.Itoa(i)+"@example.com", "203.0.113.1", false); err == nil {
				_ = a.end(ctx, true, false)
			}
		}
		n, _ := l.size(ctx)
		b.ReportMetric(float64(n), "keys")
	})
	b.Run("baseline-one-account", func(b *testing.B) {
		l := newTestLockout(b, LockoutPolicy{}, clock.Now)
		for b.Loop() {
			if a, err := l.begin(ctx, "ana@example.com", "203.0.113.1", false); err == nil {
				_ = a.end(ctx, false, true)
			}
		}
	})
}

// TestLockoutHoldsAcrossInstances (issue 19): two services, each with its own connections to one
// database, as two instances behind a balancer. Parallel guesses spread over both get exactly
// Free password checks between them, and the lock then holds on both.
func TestLockoutHoldsAcrossInstances(t *testing.T) {
	a, clock, u := newLockedService(t, LockoutPolicy{})
	d, err := stores[a.db].Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	b := New(Config{DB: d, Params: auth.TestParams, Now: clock.Now, DeviceKey: []byte("0123456789abcdef0123456789abcdef")})
	var wg sync.WaitGroup
	for i := range 20 {
		s := []*Service{a, b}[i%2]
		wg.Go(func() {
			if _, err := s.Authenticate(context.Background(), u.Email, "guess", LoginFrom{Addr: fmt.Sprint("203.0.113.", i)}); err != nil &&
				!errors.Is(err, ErrBadCredentials) && !errors.As(err, new(*LockedError)) {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if checks := a.PasswordChecks() + b.PasswordChecks(); checks != 5 {
		t.Fatalf("20 parallel guesses on two instances: %d passwords checked, want 5", checks)
	}
	for name, s := range map[string]*Service{"a": a, "b": b} {
		if got, checked := try(t, s, u.Email, "a long test password", LoginFrom{Addr: "192.0.2.1"}); !strings.HasPrefix(got, "locked account 1s") || checked {
			t.Fatalf("instance %s after the guesses: %s (checked %v)", name, got, checked)
		}
	}
	// Addresses refused unchecked leave nothing to remember.
	if n, err := b.TrackedLogins(context.Background()); err != nil || n != 6 {
		t.Fatalf("instance b sees %d counters (%v), want 6: the account and the five addresses checked", n, err)
	}
}

// stores are the stores of the databases newLockedService opened, so that a test can open a
// second instance on the same one.
var stores = map[*db.DB]dbtest.Store{}
