package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tensfer-golive/dashboard/internal/accounts"
	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
)

func TestSetupLinkWorksOnce(t *testing.T) {
	app := newTestApp(t)
	ctx := context.Background()
	link, err := accounts.PrepareSetup(ctx, app.db, app.url)
	if err != nil || link == "" {
		t.Fatalf("PrepareSetup = %q, %v", link, err)
	}
	u, _ := url.Parse(link)
	token := u.Query().Get("token")
	c := app.client()
	if res := c.get("/setup?token=" + token); res.StatusCode != http.StatusOK || !strings.Contains(res.body, "Create the first admin") {
		t.Fatalf("GET setup link: %d", res.StatusCode)
	}
	// Bad input is refused with the fields kept, and does not use up the link.
	res := c.postForm("/setup", url.Values{"token": {token}, "email": {"ops@example.com"}, "name": {"Ops"}, "password": {"short"}, "confirm": {"short"}})
	if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(res.body, "at least 12") || !strings.Contains(res.body, `value="ops@example.com"`) {
		t.Fatalf("short password: %d %s", res.StatusCode, res.body)
	}
	res = c.postForm("/setup", url.Values{"token": {token}, "email": {"ops@example.com"}, "name": {"Ops"}, "password": {testPassword}, "confirm": {testPassword + "x"}})
	if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(res.body, "differ") {
		t.Fatalf("mismatched confirm: %d", res.StatusCode)
	}
	res = c.postForm("/setup", url.Values{"token": {token}, "email": {"ops@example.com"}, "name": {"Ops"}, "password": {testPassword}, "confirm": {testPassword}})
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/" {
		t.Fatalf("setup: %d %s", res.StatusCode, res.body)
	}
	if res := c.get("/"); res.StatusCode != http.StatusOK || !strings.Contains(res.body, "ops@example.com") {
		t.Fatalf("after setup the admin is logged in: %d", res.StatusCode)
	}
	admin, err := app.db.UserByEmail(ctx, "ops@example.com")
	if err != nil || admin.Role != db.RoleAdmin {
		t.Fatalf("first user: %+v %v", admin, err)
	}
	// The link is spent.
	other := app.client()
	if res := other.get("/setup?token=" + token); res.StatusCode != http.StatusNotFound || !strings.Contains(res.body, "not valid") {
		t.Fatalf("reused link GET: %d", res.StatusCode)
	}
	res = other.postForm("/setup", url.Values{"token": {token}, "email": {"evil@example.com"}, "password": {testPassword}, "confirm": {testPassword}})
	if res.StatusCode != http.StatusGone {
		t.Fatalf("reused link POST: %d", res.StatusCode)
	}
	if n, _ := app.db.CountUsers(ctx); n != 1 {
		t.Fatalf("users after reuse = %d, want 1", n)
	}
	if link, _ := accounts.PrepareSetup(ctx, app.db, app.url); link != "" {
		t.Fatalf("a setup link was made although an admin exists")
	}
}

func TestOnlyTheNewestSetupLinkWorks(t *testing.T) {
	app := newTestApp(t)
	first, _ := accounts.PrepareSetup(context.Background(), app.db, app.url)
	second, _ := accounts.PrepareSetup(context.Background(), app.db, app.url)
	c := app.client()
	if res := c.get(strings.TrimPrefix(first, app.url)); res.StatusCode != http.StatusNotFound {
		t.Errorf("older link: %d, want 404", res.StatusCode)
	}
	if res := c.get(strings.TrimPrefix(second, app.url)); res.StatusCode != http.StatusOK {
		t.Errorf("newest link: %d, want 200", res.StatusCode)
	}
}

func TestLoginFailuresLookAlike(t *testing.T) {
	app := newTestApp(t)
	u := app.addUser("ana@example.com", db.RoleViewer)
	off := app.addUser("off@example.com", db.RoleViewer)
	yes := true
	admin := app.addUser("boss@example.com", db.RoleAdmin)
	_ = admin
	if _, err := app.db.UpdateUser(context.Background(), off.ID, db.UserChange{Disabled: &yes}, db.Audit{Actor: "test", Action: "user.disable"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, email, password string }{
		{"wrong password", u.Email, "not the password at all"},
		{"unknown email", "nobody@example.com", testPassword},
		{"disabled user", off.Email, testPassword},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := app.client()
			res := c.postForm("/login", url.Values{"email": {tt.email}, "password": {tt.password}})
			doc := res.doc(t)
			if res.StatusCode != http.StatusUnauthorized || strings.TrimSpace(doc.Find(`[data-testid="login-error"]`).Text()) != loginFailed {
				t.Fatalf("status %d, error %q", res.StatusCode, doc.Find(`[data-testid="login-error"]`).Text())
			}
			if len(res.Cookies()) > 0 && res.Cookies()[0].Name == "tfd_session" {
				t.Fatal("a failed login set a session cookie")
			}
		})
	}
}

func TestLoginRedirectsOnlyWithinSite(t *testing.T) {
	app := newTestApp(t)
	u := app.addUser("ana@example.com", db.RoleViewer)
	for next, want := range map[string]string{
		"/audit?x=1":            "/audit?x=1",
		"//evil.example/":       "/",
		"https://evil.example/": "/",
		"/\\evil.example":       "/",
		"":                      "/",
	} {
		res := app.client().postForm("/login", url.Values{"email": {u.Email}, "password": {testPassword}, "next": {next}})
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != want {
			t.Errorf("next=%q: %d Location %q, want %q", next, res.StatusCode, res.Header.Get("Location"), want)
		}
	}
}

func TestLoginRateLimitedPerClientIP(t *testing.T) {
	app := newTestApp(t, func(c *Config) { c.LoginRate = RateLimit{Burst: 3, Every: time.Hour} })
	c := app.client()
	for i := range 3 {
		if res := c.postForm("/login", url.Values{"email": {"x@example.com"}, "password": {"wrong password!"}}); res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i, res.StatusCode)
		}
	}
	// A forged X-Forwarded-For does not buy new attempts: the peer is not a trusted proxy.
	req, _ := http.NewRequest(http.MethodPost, app.url+"/login", strings.NewReader("email=x%40example.com&password=x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	res := c.do(req)
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" || !strings.Contains(res.body, "Too many login attempts") {
		t.Fatalf("4th attempt: %d Retry-After %q", res.StatusCode, res.Header.Get("Retry-After"))
	}
}

func TestClientIPTrustsOnlyConfiguredProxies(t *testing.T) {
	app := newTestApp(t)
	app.srv.cfg.TrustedProxies = nil
	req := httptestRequest("10.0.0.5:1234", "198.51.100.7, 10.0.0.9")
	if got := app.srv.clientIP(req); got != "10.0.0.5" {
		t.Errorf("untrusted peer: %s", got)
	}
	app.srv.cfg.TrustedProxies = mustPrefixes("10.0.0.0/8")
	if got := app.srv.clientIP(req); got != "198.51.100.7" {
		t.Errorf("trusted chain: %s, want 198.51.100.7", got)
	}
	req = httptestRequest("10.0.0.5:1234", "garbage")
	if got := app.srv.clientIP(req); got != "10.0.0.5" {
		t.Errorf("garbage XFF: %s", got)
	}
}

// TestSessionEnds covers every way a session must stop working.
func TestSessionEnds(t *testing.T) {
	tests := []struct {
		name string
		end  func(app *testApp, victim *client, u db.User, admin *client)
	}{
		{"logout", func(app *testApp, victim *client, u db.User, admin *client) {
			victim.postForm("/logout", nil)
		}},
		{"own password change", func(app *testApp, victim *client, u db.User, admin *client) {
			// The change happens in a second browser of the same user.
			other := app.client()
			other.postForm("/login", url.Values{"email": {u.Email}, "password": {testPassword}})
			res := other.postForm("/settings/account/password", url.Values{"current": {testPassword}, "password": {"another long password"}, "confirm": {"another long password"}})
			if res.StatusCode != http.StatusSeeOther {
				app.t.Fatalf("password change: %d", res.StatusCode)
			}
			if r := other.get("/"); r.StatusCode != http.StatusOK {
				app.t.Fatalf("the browser that changed the password was logged out: %d", r.StatusCode)
			}
		}},
		{"role change", func(app *testApp, victim *client, u db.User, admin *client) {
			admin.postForm("/settings/users/"+itoa(u.ID)+"/role", url.Values{"role": {"operator"}, "password": {testPassword}})
		}},
		{"disabled", func(app *testApp, victim *client, u db.User, admin *client) {
			admin.postForm("/settings/users/"+itoa(u.ID)+"/disable", nil)
		}},
		{"password reset by admin", func(app *testApp, victim *client, u db.User, admin *client) {
			admin.postForm("/settings/users/"+itoa(u.ID)+"/password", url.Values{"new_password": {"reset long password"}, "confirm_password": {"reset long password"}, "password": {testPassword}})
		}},
		{"sign out everywhere", func(app *testApp, victim *client, u db.User, admin *client) {
			admin.postForm("/settings/users/"+itoa(u.ID)+"/sign-out", nil)
		}},
		{"idle timeout", func(app *testApp, victim *client, u db.User, admin *client) {
			later := time.Now().Add(13 * time.Hour)
			app.srv.SetClock(func() time.Time { return later })
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := newTestApp(t)
			admin, _ := app.login(db.RoleAdmin)
			victim, u := app.login(db.RoleViewer)
			if res := victim.get("/"); res.StatusCode != http.StatusOK {
				t.Fatalf("before: %d", res.StatusCode)
			}
			tt.end(app, victim, u, admin)
			res := victim.get("/")
			if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/login") {
				t.Fatalf("after %s the old session still works: %d", tt.name, res.StatusCode)
			}
		})
	}
}

func TestAbsoluteSessionTimeout(t *testing.T) {
	app := newTestApp(t, func(c *Config) { c.SessionIdle = time.Hour; c.SessionMax = 3 * time.Hour })
	c, _ := app.login(db.RoleViewer)
	start := time.Now()
	// Keep the session busy (never idle) for longer than its absolute lifetime.
	for step := 1; step <= 4; step++ {
		at := start.Add(time.Duration(step) * 50 * time.Minute)
		app.srv.SetClock(func() time.Time { return at })
		app.db.SetClock(func() time.Time { return at })
		res := c.get("/")
		if step < 4 && res.StatusCode != http.StatusOK {
			t.Fatalf("after %d minutes: %d", step*50, res.StatusCode)
		}
		if step == 4 && res.StatusCode != http.StatusSeeOther {
			t.Fatalf("after the absolute timeout (200 minutes > 3h) the session still works")
		}
	}
}

func TestLoginRotatesSessionID(t *testing.T) {
	app := newTestApp(t)
	c, u := app.login(db.RoleViewer)
	base, _ := url.Parse(app.url)
	first := c.hc.Jar.Cookies(base)
	c.postForm("/login", url.Values{"email": {u.Email}, "password": {testPassword}})
	second := c.hc.Jar.Cookies(base)
	if len(first) == 0 || len(second) == 0 || first[0].Value == second[0].Value {
		t.Fatalf("session id not rotated on login: %v -> %v", first, second)
	}
	if n, _ := app.db.CountUserSessions(context.Background(), u.ID); n != 1 {
		t.Fatalf("old session row kept after re-login: %d rows", n)
	}
	// The cookie holds an opaque id only, and the table stores only its hash.
	var raw []byte
	app.db.R.QueryRow("SELECT id_hash FROM sessions").Scan(&raw)
	if strings.Contains(string(raw), second[0].Value) {
		t.Fatal("session id stored in clear")
	}
}

func TestCannotRemoveLastAdmin(t *testing.T) {
	app := newTestApp(t)
	c, me := app.login(db.RoleAdmin)
	res := c.postForm("/settings/users/"+itoa(me.ID)+"/role", url.Values{"role": {"viewer"}, "password": {testPassword}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("%d", res.StatusCode)
	}
	if u, _ := app.db.UserByID(context.Background(), me.ID); u.Role != db.RoleAdmin {
		t.Fatal("the last admin was demoted")
	}
	if !strings.Contains(c.get("/settings/users").body, "no active admin") {
		t.Fatal("no explanation shown")
	}
}

func TestAdminAddsUserWithValidation(t *testing.T) {
	app := newTestApp(t)
	c, _ := app.login(db.RoleAdmin)
	tests := []struct {
		form   url.Values
		status int
		msg    string
	}{
		{url.Values{"email": {"not-an-email"}, "role": {"viewer"}, "new_password": {testPassword}, "password": {testPassword}}, 422, "is not an email address"},
		{url.Values{"email": {"x@example.com"}, "role": {"root"}, "new_password": {testPassword}, "password": {testPassword}}, 422, "role must be one of"},
		{url.Values{"email": {"x@example.com"}, "role": {"viewer"}, "new_password": {"short"}, "password": {testPassword}}, 422, "at least 12"},
		{url.Values{"email": {"new@example.com"}, "role": {"operator"}, "new_password": {testPassword}, "password": {testPassword}, "name": {"New"}}, 303, ""},
		{url.Values{"email": {"NEW@example.com"}, "role": {"viewer"}, "new_password": {testPassword}, "password": {testPassword}}, 422, "already exists"},
	}
	for _, tt := range tests {
		res := c.postForm("/settings/users", tt.form)
		if res.StatusCode != tt.status || !strings.Contains(res.body, tt.msg) {
			t.Errorf("%v: %d, want %d with %q", tt.form, res.StatusCode, tt.status, tt.msg)
		}
		if tt.status == 422 && !strings.Contains(res.body, `value="`+tt.form.Get("email")+`"`) {
			t.Errorf("%v: input not kept", tt.form)
		}
	}
	u, err := app.db.UserByEmail(context.Background(), "new@example.com")
	if err != nil || u.Role != db.RoleOperator || u.Name != "New" {
		t.Fatalf("created user: %+v %v", u, err)
	}
	if n, _ := app.db.CountUsers(context.Background()); n != 2 {
		t.Fatalf("users = %d, want 2 (failed attempts must store nothing)", n)
	}
}

func TestTokensCreatedInUIWork(t *testing.T) {
	app := newTestApp(t)
	c, _ := app.login(db.RoleAdmin)
	res := c.postForm("/settings/tokens", url.Values{"name": {"checkout"}, "scopes": {"events:read", "config:read"}})
	if res.StatusCode != http.StatusCreated || res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("create token: %d %q", res.StatusCode, res.Header.Get("Cache-Control"))
	}
	secret := strings.TrimSpace(res.doc(t).Find(`[data-testid="token-secret"]`).Text())
	if !strings.HasPrefix(secret, auth.TokenPrefix) {
		t.Fatalf("token not shown once: %q", secret)
	}
	if r := app.api("GET", "/api/v1/whoami", secret, nil); r.StatusCode != 200 || !strings.Contains(r.body, `"checkout"`) {
		t.Fatalf("whoami: %d %s", r.StatusCode, r.body)
	}
	if strings.Contains(c.get("/settings/tokens").body, secret) {
		t.Fatal("token shown again on the list page")
	}
	if r := c.postForm("/settings/tokens", url.Values{"name": {""}}); r.StatusCode != 422 || !strings.Contains(r.body, "name is required") || !strings.Contains(r.body, "at least one scope") {
		t.Fatalf("invalid token form: %d", r.StatusCode)
	}
	ts, _ := app.db.ListTokens(context.Background())
	c.postForm("/settings/tokens/"+itoa(ts[0].ID)+"/revoke", nil)
	if r := app.api("GET", "/api/v1/whoami", secret, nil); r.StatusCode != 401 {
		t.Fatalf("revoked token still works: %d", r.StatusCode)
	}
}
