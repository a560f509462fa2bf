package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
)

// newLockoutApp is an app behind a trusted proxy on loopback, so a test can sign in from any
// address with X-Forwarded-For, with a per-address rate limit out of the way and a clock the
// test moves.
func newLockoutApp(t *testing.T, opts ...func(*Config)) (app *testApp, advance func(time.Duration)) {
	t.Helper()
	app = newTestApp(t, append([]func(*Config){func(c *Config) {
		c.TrustedProxies = mustPrefixes("127.0.0.0/8", "::1/128")
		c.LoginRate = RateLimit{Burst: 100_000, Every: time.Millisecond}
	}}, opts...)...)
	var at atomic.Int64
	at.Store(time.Now().UnixNano())
	app.srv.SetClock(func() time.Time { return time.Unix(0, at.Load()) })
	return app, func(d time.Duration) { at.Add(int64(d)) }
}

// signIn posts the login form as if from addr.
func (c *client) signIn(addr, email, password string) response {
	c.app.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, c.app.url+"/login", strings.NewReader(url.Values{"email": {email}, "password": {password}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-For", addr)
	return c.do(req)
}

// outcome is what a person sees of a sign-in: the status, Retry-After and the page's error.
func outcome(t *testing.T, res response) string {
	t.Helper()
	msg := strings.TrimSpace(res.doc(t).Find(`[data-testid="login-error"]`).Text())
	return fmt.Sprintf("%d retry=%q %s", res.StatusCode, res.Header.Get("Retry-After"), msg)
}

func (a *testApp) countAudit(action string) int {
	n := 0
	for _, got := range a.auditActions() {
		if got == action {
			n++
		}
	}
	return n
}

func TestLoginLockoutRefusesWithoutCheckingThePassword(t *testing.T) {
	app, advance := newLockoutApp(t)
	u := app.addUser("ana@example.com", db.RoleViewer)
	checks := app.srv.accounts.PasswordChecks
	c := app.client()
	for i := range 5 {
		if res := c.signIn("198.51.100.7", u.Email, "wrong guess "+itoa(int64(i))); res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d", i, res.StatusCode)
		}
	}
	locked := "429 retry=\"1\" Too many failed sign-ins for this account; try again in 1 s."
	steps := []struct {
		name     string
		advance  time.Duration
		addr, pw string
		want     string // prefix of the outcome
		checked  bool
		audits   int // auth.login_locked rows so far
	}{
		{"the right password, locked", 0, "198.51.100.7", testPassword, locked, false, 1},
		{"again: audited once per lock", 0, "198.51.100.7", testPassword, locked, false, 1},
		{"the right password from a new address", 0, "203.0.113.50", testPassword, locked + " A browser that has signed in", false, 1},
		{"after the wait, one more guess is checked", time.Second, "198.51.100.7", "wrong guess 5", "401", true, 1},
		{"the delay grew", 0, "198.51.100.7", testPassword, "429 retry=\"2\" Too many failed sign-ins for this account; try again in 2 s.", false, 2},
		{"and grows", 2 * time.Second, "203.0.113.50", "wrong guess 6", "401", true, 2},
		{"to 4 s", 0, "203.0.113.50", testPassword, "429 retry=\"4\"", false, 3},
		{"the right password after the wait", 4 * time.Second, "198.51.100.7", testPassword, "303", true, 3},
	}
	for _, st := range steps {
		advance(st.advance)
		before := checks()
		res := c.signIn(st.addr, u.Email, st.pw)
		if got := outcome(t, res); !strings.HasPrefix(got, st.want) {
			t.Fatalf("%s: %s, want %s", st.name, got, st.want)
		}
		if checked := checks() != before; checked != st.checked {
			t.Fatalf("%s: password checked = %v, want %v", st.name, checked, st.checked)
		}
		if n := app.countAudit("auth.login_locked"); n != st.audits {
			t.Fatalf("%s: %d auth.login_locked rows, want %d", st.name, n, st.audits)
		}
		if st.want != "303" {
			for _, ck := range res.Cookies() {
				if ck.Name == "tfd_session" || ck.Name == "tfd_device" {
					t.Fatalf("%s: a refused sign-in set %s", st.name, ck.Name)
				}
			}
		}
	}
}

func TestKnownDeviceGetsInDuringAFlood(t *testing.T) {
	app, _ := newLockoutApp(t)
	u := app.addUser("ana@example.com", db.RoleOperator)
	home := "198.51.100.7"
	ana := app.client()
	res := ana.signIn(home, u.Email, testPassword)
	var device *http.Cookie
	for _, ck := range res.Cookies() {
		if ck.Name == "tfd_device" {
			device = ck
		}
	}
	if res.StatusCode != http.StatusSeeOther || device == nil || !device.HttpOnly || device.MaxAge < 86400*30 || strings.Contains(device.Value, u.Email) {
		t.Fatalf("sign-in: %d, known-device cookie %+v", res.StatusCode, device)
	}
	ana.postForm("/logout", nil)

	// A flood of guesses from 20 other addresses: the first five are checked, then none.
	before := app.srv.accounts.PasswordChecks()
	refused := 0
	for i := range 20 {
		attacker := app.client()
		for j := range 4 {
			if attacker.signIn(fmt.Sprintf("203.0.113.%d", i+1), u.Email, fmt.Sprintf("guess %d-%d", i, j)).StatusCode == http.StatusTooManyRequests {
				refused++
			}
		}
	}
	if checked := app.srv.accounts.PasswordChecks() - before; checked != 5 || refused != 75 {
		t.Fatalf("flood of 80 guesses: %d checked, %d refused; want 5 and 75", checked, refused)
	}
	// The real user, on a browser without the cookie, waits like everyone else...
	if res := app.client().signIn("192.0.2.10", u.Email, testPassword); res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("right password from an unknown browser during the flood: %d", res.StatusCode)
	}
	// ...but on their own browser they get in.
	res = ana.signIn(home, u.Email, testPassword)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("known device during the flood: %s", outcome(t, res))
	}
	if page := ana.get("/"); page.StatusCode != http.StatusOK {
		t.Fatalf("signed in, but the overview answers %d", page.StatusCode)
	}
	// The cookie is worth nothing for another account, and its own address has its own counter.
	app.addUser("bo@example.com", db.RoleViewer)
	for range 5 {
		app.client().signIn("203.0.113.1", "bo@example.com", "guess")
	}
	if res := ana.signIn(home, "bo@example.com", testPassword); res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("ana's known-device cookie let bo in during bo's lock: %d", res.StatusCode)
	}
	for range 5 {
		ana.signIn(home, u.Email, "typo")
	}
	if res := ana.signIn(home, u.Email, testPassword); res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("the known device's own address after five failures: %d", res.StatusCode)
	}
}

func TestLoginLockoutAnswersUnknownEmailsAlike(t *testing.T) {
	app, advance := newLockoutApp(t)
	app.addUser("ana@example.com", db.RoleViewer)
	run := func(email string) []string {
		var out []string
		for i := range 9 {
			if i == 7 {
				advance(time.Second)
			}
			out = append(out, outcome(t, app.client().signIn("198.51.100.7", email, "wrong password "+itoa(int64(i)))))
		}
		return out
	}
	known, unknown := run("ana@example.com"), run("nobody@example.com")
	if strings.Join(known, "\n") != strings.Join(unknown, "\n") {
		t.Fatalf("a known and an unknown email are answered differently:\n%s\n--\n%s", strings.Join(known, "\n"), strings.Join(unknown, "\n"))
	}
	if !strings.HasPrefix(known[5], "429") || !strings.HasPrefix(known[7], "401") || !strings.HasPrefix(known[8], "429 retry=\"2\"") {
		t.Fatalf("unexpected sequence:\n%s", strings.Join(known, "\n"))
	}
	if n := app.countAudit("auth.login_locked"); n != 4 {
		t.Fatalf("%d auth.login_locked rows, want 2 per email", n)
	}
}

func TestLoginLockoutStaysBoundedUnderAFloodOfEmails(t *testing.T) {
	app, _ := newLockoutApp(t, func(c *Config) { c.LoginLockout.MaxKeys = 64 })
	u := app.addUser("ana@example.com", db.RoleViewer)
	for range 5 {
		app.client().signIn("198.51.100.7", u.Email, "guess")
	}
	for i := range 300 {
		app.client().signIn(fmt.Sprintf("203.0.%d.%d", i/200, i%200), fmt.Sprintf("random-%d@example.com", i), "guess")
		n, err := app.srv.accounts.TrackedLogins(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n > 64 {
			t.Fatalf("after %d random emails the lockout tracks %d keys, over its bound of 64", i+1, n)
		}
	}
	if res := app.client().signIn("192.0.2.1", u.Email, testPassword); res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("the flood of random emails evicted the locked account: %d", res.StatusCode)
	}
}
