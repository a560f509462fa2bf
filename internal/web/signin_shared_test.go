package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
)

// on is the same browser (cookie jar) talking to another instance, as behind a round-robin
// balancer: the instances listen on one host, so every cookie goes to both.
func (c *client) on(app *testApp) *client { return &client{app: app, hc: c.hc} }

// twoInstances starts a lockout app and a second server on its database, reading the same clock.
func twoInstances(t *testing.T) (a, b *testApp, advance func(time.Duration)) {
	t.Helper()
	a, advance = newLockoutApp(t)
	b = a.twin(t)
	b.srv.SetClock(a.srv.clock)
	return a, b, advance
}

// TestSignInStateIsSharedByInstances (issue 19): two servers on one database, and browsers whose
// requests land on either. A lockout reached through one holds on the other, a second step of a
// login started on one finishes on the other, a re-check budget spent on one is spent on the
// other, and a session started on one is the same session on the other.
func TestSignInStateIsSharedByInstances(t *testing.T) {
	t.Run("lockout", func(t *testing.T) {
		a, b, advance := twoInstances(t)
		u := a.addUser("ana@example.com", db.RoleViewer)
		attacker := a.client()
		// Five wrong guesses, alternating between the instances, lock the account on both.
		for i := range 5 {
			inst := []*testApp{a, b}[i%2]
			if res := attacker.on(inst).signIn("198.51.100.7", u.Email, "wrong guess "+itoa(int64(i))); res.StatusCode != http.StatusUnauthorized {
				t.Fatalf("guess %d: %s", i, outcome(t, res))
			}
		}
		for _, st := range []struct {
			name string
			inst *testApp
			addr string
			want string
		}{
			{"same address, first instance", a, "198.51.100.7", "429 retry=\"1\" Too many failed sign-ins for this account; try again in 1 s."},
			{"same address, second instance", b, "198.51.100.7", "429 retry=\"1\" Too many failed sign-ins for this account; try again in 1 s."},
			{"new address, second instance", b, "203.0.113.9", "429 retry=\"1\" Too many failed sign-ins for this account; try again in 1 s. A browser that has signed in"},
		} {
			if got := outcome(t, attacker.on(st.inst).signIn(st.addr, u.Email, testPassword)); !strings.HasPrefix(got, st.want) {
				t.Fatalf("%s: %s, want %s", st.name, got, st.want)
			}
		}
		if n := a.countAudit("auth.login_locked"); n != 1 {
			t.Fatalf("%d auth.login_locked rows for one lock answered by two instances, want 1", n)
		}
		// The wait is over on both at once, and one more failure (on b) doubles it on a.
		advance(time.Second)
		if res := attacker.on(b).signIn("198.51.100.7", u.Email, "wrong guess 5"); res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("after the wait: %s", outcome(t, res))
		}
		if got := outcome(t, attacker.on(a).signIn("198.51.100.7", u.Email, testPassword)); !strings.HasPrefix(got, "429 retry=\"2\"") {
			t.Fatalf("the delay after a failure on the other instance: %s", got)
		}
	})

	t.Run("second step of a login", func(t *testing.T) {
		a, b, _ := twoInstances(t)
		clock := a.totpClock()
		b.srv.SetClock(clock.now)
		c, u := a.login(db.RoleViewer)
		secret, _ := enrol(t, c, clock)
		clock.advance(30 * time.Second) // the set-up used this step's code
		browser := a.client()
		if res := loginPassword(browser, u.Email, "/events"); res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/login/two-factor") {
			t.Fatalf("password on a: %d %s", res.StatusCode, res.Header.Get("Location"))
		}
		if res := browser.on(b).get("/login/two-factor?next=/events"); res.StatusCode != http.StatusOK || !strings.Contains(res.body, `name="code"`) {
			t.Fatalf("the code form on b: %d", res.StatusCode)
		}
		// Wrong codes spend one budget, wherever they land.
		bad := wrongTOTP(t, secret, clock.now())
		for i, inst := range []*testApp{a, b} {
			res := browser.on(inst).postForm("/login/two-factor", url.Values{"code": {bad}, "next": {"/events"}})
			if want := plural(3-i, "attempt", "attempts") + " left."; res.StatusCode != http.StatusUnauthorized || !strings.Contains(res.body, want) {
				t.Fatalf("wrong code %d: %d, want %q", i, res.StatusCode, want)
			}
		}
		res := browser.on(b).postForm("/login/two-factor", url.Values{"code": {totpCode(t, secret, clock.now())}, "next": {"/events"}})
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/events" {
			t.Fatalf("the right code on b: %d %s", res.StatusCode, res.Header.Get("Location"))
		}
		if page := browser.on(a).get("/events"); page.StatusCode != http.StatusOK {
			t.Fatalf("signed in on b, a answers %d", page.StatusCode)
		}
		// The step is over on both.
		if res := browser.on(a).postForm("/login/two-factor", url.Values{"code": {totpCode(t, secret, clock.now())}}); res.StatusCode == http.StatusSeeOther {
			t.Fatal("a finished second step was finished again on the other instance")
		}
	})

	t.Run("re-check budget", func(t *testing.T) {
		a, b, _ := twoInstances(t)
		c, _ := a.login(db.RoleViewer)
		for i := range reauthRate.Burst {
			inst := []*testApp{a, b}[i%2]
			res := c.on(inst).postForm("/settings/account/two-factor/setup", url.Values{"password": {"guess " + itoa(int64(i))}})
			if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(res.body, "your password was incorrect") {
				t.Fatalf("guess %d on instance %d: %d", i, i%2, res.StatusCode)
			}
		}
		for _, inst := range []*testApp{a, b} {
			res := c.on(inst).postForm("/settings/account/two-factor/setup", url.Values{"password": {testPassword}})
			if !strings.Contains(res.body, "too many password attempts; try again in 60 seconds") || strings.Contains(res.body, "totp-secret") {
				t.Fatalf("the right password after the budget was spent on both instances: %d", res.StatusCode)
			}
		}
	})

	t.Run("session", func(t *testing.T) {
		a, b, _ := twoInstances(t)
		c, _ := a.login(db.RoleViewer)
		if page := c.on(b).get("/events"); page.StatusCode != http.StatusOK {
			t.Fatalf("a session from a on b: %d", page.StatusCode)
		}
		// Signing out on b ends the session on a: a copy of the cookie is worthless there.
		stolen := a.client()
		stolen.hc.Jar.SetCookies(mustURL(a.url), c.hc.Jar.Cookies(mustURL(a.url)))
		if page := stolen.get("/events"); page.StatusCode != http.StatusOK {
			t.Fatalf("the copied cookie before logout: %d", page.StatusCode)
		}
		if res := c.on(b).postForm("/logout", nil); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("logout on b: %d", res.StatusCode)
		}
		if page := stolen.get("/events"); page.StatusCode != http.StatusSeeOther || !strings.HasPrefix(page.Header.Get("Location"), "/login") {
			t.Fatalf("the copied cookie on a after logout on b: %d", page.StatusCode)
		}
	})
}
