package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

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
	if n := len(failures()); n != reauthRate.Burst {
		t.Fatalf("%d failures audited, want %d", n, reauthRate.Burst)
	}
	res := c.postForm(reveal, url.Values{"password": {testPassword}, "reason": {"support ticket"}})
	if res.StatusCode != http.StatusSeeOther || strings.Contains(res.body, "REVEALME") {
		t.Fatalf("the right password after the budget: %d", res.StatusCode)
	}
	if page := c.get("/environments").body; !strings.Contains(page, "too many password attempts") {
		t.Fatal("the refusal does not say why")
	}
	rows := failures()
	if len(rows) != reauthRate.Burst+1 || !strings.Contains(string(rows[0].After), "rate_limited") || rows[0].Target != "user:"+itoa(u.ID) {
		t.Fatalf("the limited attempt: %+v", rows[0])
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
	if rows := failures(); len(rows) != reauthRate.Burst+2 || !strings.Contains(string(rows[0].After), "user.password_change") {
		t.Fatalf("password change failure not audited: %+v", rows[0])
	}
}
