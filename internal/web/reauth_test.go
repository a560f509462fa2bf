package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
)

// TestPasswordRechecksAreLimitedAndAudited: a stolen session cannot guess the password behind a
// reveal: five wrong guesses are audited, then even the right password is refused for a while.
func TestPasswordRechecksAreLimitedAndAudited(t *testing.T) {
	app := newTestApp(t)
	ctx := context.Background()
	c, u := app.login(db.RoleAdmin)
	app.patchEnv(app.addToken("a", auth.ScopeAdmin), "production", map[string]any{"secret_key": "sk_live_REVEALME99"})
	keys, _ := app.db.ListEnvKeys(ctx, "production")
	reveal := "/environments/production/keys/" + itoa(keys[0].ID) + "/reveal"
	failures := func() []db.AuditEntry {
		rows, _, _ := app.db.ListAudit(ctx, db.AuditFilter{Action: "auth.reauth_failed", Limit: 100})
		return rows
	}
	for i := range reauthRate.Burst {
		if res := c.postForm(reveal, url.Values{"password": {"guess " + itoa(int64(i))}, "reason": {"x"}}); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("guess %d: %d", i, res.StatusCode)
		}
	}
	// The first wrong password of the window is audited at once; the others are counted.
	if rows := failures(); len(rows) != 1 || !strings.Contains(string(rows[0].After), "wrong_password") {
		t.Fatalf("%d failures audited, want the first", len(rows))
	}
	res := c.postForm(reveal, url.Values{"password": {testPassword}, "reason": {"support ticket"}})
	if res.StatusCode != http.StatusSeeOther || strings.Contains(res.body, "REVEALME") {
		t.Fatalf("the right password after the budget: %d", res.StatusCode)
	}
	if page := c.get("/environments").body; !strings.Contains(page, "too many password attempts") {
		t.Fatal("the refusal does not say why")
	}
	rows := failures()
	if len(rows) != 2 || !strings.Contains(string(rows[0].After), "rate_limited") || rows[0].Target != "user:"+itoa(u.ID) {
		t.Fatalf("the limited attempt: %+v", rows[0])
	}
	// When the window is written, the count says how many more wrong passwords there were.
	if err := app.srv.failures.flush(ctx, true); err != nil {
		t.Fatal(err)
	}
	if rows := failures(); len(rows) != 3 || !strings.Contains(string(rows[0].After), `"count":4`) || !strings.Contains(string(rows[0].After), "wrong_password") {
		t.Fatalf("the count of the window: %+v", rows[0])
	}
	if got, _, _ := app.db.ListAudit(ctx, db.AuditFilter{Action: "environment.key_reveal"}); len(got) != 0 {
		t.Fatal("a key was revealed past the limit")
	}
	// Another user's budget is their own; a wrong current password is audited too.
	other, _ := app.login(db.RoleViewer)
	res = other.postForm("/settings/account/password", url.Values{"current": {"wrong"}, "password": {"a brand new long password"}, "confirm": {"a brand new long password"}})
	if res.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("wrong current password: %d", res.StatusCode)
	}
	if rows := failures(); len(rows) != 4 || !strings.Contains(string(rows[0].After), "user.password_change") {
		t.Fatalf("password change failure not audited: %+v", rows[0])
	}
}

// TestRepeatedFailuresWriteAFewAuditRows (issue 18): 1,000 wrong re-checks by one viewer, most of
// them refused by the rate limit, write at most a handful of audit rows, whose counts add up to
// every attempt; so do 1,000 failed sign-ins to one account. A new window starts afresh.
func TestRepeatedFailuresWriteAFewAuditRows(t *testing.T) {
	app := newTestApp(t, func(c *Config) { c.LoginRate = RateLimit{Burst: 1 << 20, Every: time.Millisecond} })
	ctx := context.Background()
	now := time.Now()
	app.srv.SetClock(func() time.Time { return now })
	c, u := app.login(db.RoleViewer)
	const tries = 1000
	for i := range tries {
		res := c.postForm("/settings/account/password", url.Values{"current": {"wrong " + itoa(int64(i))}, "password": {"a brand new long password"}, "confirm": {"a brand new long password"}})
		if res.StatusCode != http.StatusUnprocessableEntity && res.StatusCode != http.StatusTooManyRequests {
			t.Fatalf("try %d: %d", i, res.StatusCode)
		}
	}
	attacker, wrong := app.client(), 0 // the login lockout answers most with 429, audited once a lock
	for range tries {
		switch res := attacker.postForm("/login", url.Values{"email": {u.Email}, "password": {"not it"}}); res.StatusCode {
		case http.StatusUnauthorized:
			wrong++
		case http.StatusTooManyRequests:
		default:
			t.Fatalf("sign-in: %d", res.StatusCode)
		}
	}
	if err := app.srv.failures.flush(ctx, false); err != nil { // the window is not over: nothing more
		t.Fatal(err)
	}
	count := func(action string) (rows, total int) {
		list, _, err := app.db.ListAudit(ctx, db.AuditFilter{Action: action, Limit: 500})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range list {
			var after struct{ Count *int }
			_ = json.Unmarshal(r.After, &after)
			if after.Count == nil {
				total++
			} else {
				total += *after.Count
			}
		}
		return len(list), total
	}
	if rows, _ := count("auth.reauth_failed"); rows > 2 {
		t.Fatalf("%d audit rows before the window is over", rows)
	}
	now = now.Add(failureWindow)
	if err := app.srv.failures.flush(ctx, false); err != nil {
		t.Fatal(err)
	}
	if rows, total := count("auth.reauth_failed"); rows > 4 || total != tries {
		t.Fatalf("re-checks: %d rows counting %d attempts, want at most 4 counting %d", rows, total, tries)
	}
	if rows, total := count("session.login_failed"); rows > 2 || total != wrong {
		t.Fatalf("sign-ins: %d rows counting %d wrong passwords, want at most 2 counting %d", rows, total, wrong)
	}
	if rows, _ := count("auth.login_locked"); rows > 2 {
		t.Fatalf("sign-ins: %d rows of locks", rows)
	}
	// The next window's first failure is written at once again.
	c.postForm("/settings/account/password", url.Values{"current": {"wrong"}, "password": {"a brand new long password"}, "confirm": {"a brand new long password"}})
	if rows, total := count("auth.reauth_failed"); total != tries+1 || rows > 5 {
		t.Fatalf("a new window: %d rows counting %d", rows, total)
	}
}
