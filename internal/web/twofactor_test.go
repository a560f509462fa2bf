package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/tensfer-golive/dashboard/internal/accounts"
	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/web/templates"
)

// totpClock is the server's clock in two-factor tests: it starts 10 s into a 30-second step and
// moves only when a test says so, so a code computed for clock.now() is the server's current code
// whatever the wall clock does.
type totpClock struct{ at atomic.Int64 }

func (c *totpClock) now() time.Time          { return time.Unix(0, c.at.Load()) }
func (c *totpClock) advance(d time.Duration) { c.at.Add(int64(d)) }

func (a *testApp) totpClock() *totpClock {
	c := &totpClock{}
	c.at.Store(time.Now().Truncate(30 * time.Second).Add(10 * time.Second).UnixNano())
	a.srv.SetClock(c.now)
	return c
}

func totpCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCode(secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wrongTOTP is a 6-digit code that is none of the codes accepted at at.
func wrongTOTP(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	for _, c := range []string{"000000", "111111", "222222", "333333"} {
		if c != totpCode(t, secret, at) && c != totpCode(t, secret, at.Add(-30*time.Second)) && c != totpCode(t, secret, at.Add(30*time.Second)) {
			return c
		}
	}
	t.Fatal("no wrong code found")
	return ""
}

// enrol sets up two-factor for c's user through the pages, as a person would: password, the
// secret shown next to the QR code, a code from it. It returns the secret and the recovery codes.
func enrol(t *testing.T, c *client, clock *totpClock) (string, []string) {
	t.Helper()
	res := c.postForm("/settings/account/two-factor/setup", url.Values{"password": {testPassword}})
	if res.StatusCode != http.StatusOK {
		t.Fatalf("set-up: %d %s", res.StatusCode, res.body)
	}
	secret := strings.ReplaceAll(res.doc(t).Find(`[data-testid="totp-secret"]`).Text(), " ", "")
	if len(secret) != 32 {
		t.Fatalf("secret %q on the set-up page", secret)
	}
	res = c.postForm("/settings/account/two-factor/confirm", url.Values{"code": {totpCode(t, secret, clock.now())}})
	if res.StatusCode != http.StatusOK {
		t.Fatalf("confirm: %d %s", res.StatusCode, res.body)
	}
	var codes []string
	for _, n := range res.doc(t).Find(`[data-testid="recovery-code"]`).Nodes {
		codes = append(codes, n.FirstChild.Data)
	}
	if len(codes) != accounts.RecoveryCodeCount {
		t.Fatalf("%d recovery codes shown", len(codes))
	}
	return secret, codes
}

// loginPassword sends the password step for email and returns where it leads.
func loginPassword(c *client, email, next string) response {
	return c.postForm("/login", url.Values{"email": {email}, "password": {testPassword}, "next": {next}})
}

func auditOf(t *testing.T, app *testApp, action string) []db.AuditEntry {
	t.Helper()
	rows, _, err := app.db.ListAudit(context.Background(), db.AuditFilter{Action: action, Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestTwoFactorEnrolment(t *testing.T) {
	app := newTestApp(t)
	clock := app.totpClock()
	ctx := context.Background()
	c, u := app.login(db.RoleViewer)
	other := app.client() // a second browser of the same user
	if res := loginPassword(other, u.Email, "/"); res.StatusCode != http.StatusSeeOther {
		t.Fatal(res.StatusCode)
	}
	if doc := c.get("/settings/account").doc(t); doc.Find(`[data-testid="two-factor-setup-link"]`).Length() != 1 {
		t.Fatal("the account page offers no set-up")
	}

	// The password first.
	res := c.postForm("/settings/account/two-factor/setup", url.Values{"password": {"wrong password"}})
	if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(res.body, "your password was incorrect") || strings.Contains(res.body, "totp-qr") {
		t.Fatalf("wrong password: %d", res.StatusCode)
	}
	if rows := auditOf(t, app, "auth.reauth_failed"); len(rows) != 1 || !strings.Contains(string(rows[0].After), "auth.totp_setup") {
		t.Fatalf("failed set-up password not audited: %+v", rows)
	}
	res = c.postForm("/settings/account/two-factor/setup", url.Values{"password": {testPassword}})
	doc := res.doc(t)
	secret := strings.ReplaceAll(doc.Find(`[data-testid="totp-secret"]`).Text(), " ", "")
	if res.StatusCode != http.StatusOK || res.Header.Get("Cache-Control") != "no-store" || len(secret) != 32 {
		t.Fatalf("set-up page: %d %q %q", res.StatusCode, res.Header.Get("Cache-Control"), secret)
	}
	// The QR code drawn on the page is the set-up's otpauth URL, which carries that secret.
	e, err := app.srv.twoFactor.PendingEnrolment(ctx, u)
	if err != nil || !strings.Contains(e.URL, "secret="+secret) || !strings.Contains(e.URL, url.PathEscape(u.Email)) {
		t.Fatalf("pending set-up %q: %v", e.URL, err)
	}
	want, _ := templates.NewQRCode(e.URL)
	if got, _ := doc.Find(`[data-testid="totp-qr"] svg path`).Attr("d"); got != want.Path || got == "" {
		t.Fatal("the QR code on the page is not the set-up's URL")
	}
	if input := doc.Find(`input[name="code"]`); input.AttrOr("inputmode", "") != "numeric" || input.AttrOr("autocomplete", "") != "one-time-code" {
		t.Fatal("the code field is not a one-time-code field")
	}

	// A wrong code shows the same set-up again and changes nothing.
	res = c.postForm("/settings/account/two-factor/confirm", url.Values{"code": {wrongTOTP(t, secret, clock.now())}})
	if res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(res.body, "does not match") ||
		strings.ReplaceAll(res.doc(t).Find(`[data-testid="totp-secret"]`).Text(), " ", "") != secret {
		t.Fatalf("wrong code: %d", res.StatusCode)
	}
	if on, _, _ := app.srv.twoFactor.State(ctx, u.ID); on {
		t.Fatal("on after a wrong code")
	}
	res = c.postForm("/settings/account/two-factor/confirm", url.Values{"code": {totpCode(t, secret, clock.now())}})
	codes := res.doc(t).Find(`[data-testid="recovery-code"]`)
	if res.StatusCode != http.StatusOK || codes.Length() != accounts.RecoveryCodeCount {
		t.Fatalf("confirm: %d, %d codes", res.StatusCode, codes.Length())
	}
	if rows := auditOf(t, app, "auth.totp_enabled"); len(rows) != 1 || rows[0].Target != "user:"+itoa(u.ID) {
		t.Fatalf("enabling not audited: %+v", rows)
	}
	// This browser got a fresh session; the other one is signed out.
	if res := other.get("/"); res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/login") {
		t.Fatalf("other session after enabling: %d", res.StatusCode)
	}
	page := c.get("/settings/account/two-factor")
	if page.StatusCode != http.StatusOK || strings.TrimSpace(page.doc(t).Find(`[data-testid="recovery-left"]`).Text()) != "10" {
		t.Fatalf("two-factor page after enabling: %d", page.StatusCode)
	}
	// And a second set-up is refused while it is on.
	if res := c.postForm("/settings/account/two-factor/setup", url.Values{"password": {testPassword}, "code": {totpCode(t, secret, clock.now().Add(30*time.Second))}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("set-up while on: %d", res.StatusCode)
	}
}

func TestLoginSecondStep(t *testing.T) {
	app := newTestApp(t, func(c *Config) { c.LoginRate = RateLimit{Burst: 100, Every: time.Second} })
	clock := app.totpClock()
	c, u := app.login(db.RoleOperator)
	secret, codes := enrol(t, c, clock)
	clock.advance(30 * time.Second)

	step := func(c *client, code string) response {
		return c.postForm("/login/two-factor", url.Values{"code": {code}, "next": {"/events"}})
	}

	// The password alone signs nobody in.
	b := app.client()
	res := loginPassword(b, u.Email, "/events")
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/login/two-factor?next=%2Fevents" {
		t.Fatalf("password step: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	if res := b.get("/events"); res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/login") {
		t.Fatalf("signed in after the password alone: %d", res.StatusCode)
	}
	form := b.get("/login/two-factor?next=%2Fevents").doc(t)
	input := form.Find(`[data-testid="login-code-form"] input[name="code"]`)
	for attr, want := range map[string]string{"inputmode": "numeric", "autocomplete": "one-time-code"} {
		if got := input.AttrOr(attr, ""); got != want {
			t.Errorf("code field %s=%q, want %q", attr, got, want)
		}
	}
	if _, ok := input.Attr("data-autofocus"); !ok {
		t.Error("the code field is not focused")
	}

	tests := []struct {
		name   string
		code   string
		status int
		says   string
		reason string // of the session.login_failed row
	}{
		{"wrong code", wrongTOTP(t, secret, clock.now()), http.StatusUnauthorized, fmt.Sprintf("%d attempts left", accounts.LoginStepAttempts-1), "wrong_code"},
		{"the enrolment's code replayed", totpCode(t, secret, clock.now().Add(-30*time.Second)), http.StatusUnauthorized, "already used", "code_reused"},
		{"not a code", "hello", http.StatusUnauthorized, "enter the 6-digit code", "no_code"},
		{"the current code", totpCode(t, secret, clock.now()), http.StatusSeeOther, "", ""},
	}
	for _, tt := range tests {
		res := step(b, tt.code)
		if res.StatusCode != tt.status || !strings.Contains(strings.ToLower(res.body), strings.ToLower(tt.says)) {
			t.Fatalf("%s: %d, want %d saying %q", tt.name, res.StatusCode, tt.status, tt.says)
		}
		if tt.reason != "" {
			rows := auditOf(t, app, "session.login_failed")
			if !strings.Contains(string(rows[0].After), tt.reason) || rows[0].Target != "user:"+itoa(u.ID) {
				t.Fatalf("%s: audited as %s", tt.name, rows[0].After)
			}
		}
	}
	if res := b.get("/events"); res.StatusCode != http.StatusOK {
		t.Fatalf("after the second step: %d", res.StatusCode)
	}
	if rows := auditOf(t, app, "session.login"); !strings.Contains(string(rows[0].After), `"second_factor":"totp"`) {
		t.Fatalf("login audited as %s", rows[0].After)
	}

	// A recovery code signs in once.
	r1 := app.client()
	loginPassword(r1, u.Email, "/")
	if res := step(r1, strings.ToUpper(codes[0])); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("recovery code: %d %s", res.StatusCode, res.body)
	}
	if rows := auditOf(t, app, "auth.recovery_code_used"); len(rows) != 1 || !strings.Contains(string(rows[0].After), `"remaining":9`) {
		t.Fatalf("recovery code use audited as %+v", rows)
	}
	r2 := app.client()
	loginPassword(r2, u.Email, "/")
	if res := step(r2, codes[0]); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("recovery code twice: %d", res.StatusCode)
	}

	// A right code forgets the account's wrong ones (TestSecondFactorCannotBeGuessedAcrossAddresses).
	r0 := app.client()
	loginPassword(r0, u.Email, "/")
	clock.advance(30 * time.Second)
	if res := step(r0, totpCode(t, secret, clock.now())); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("the right code: %d", res.StatusCode)
	}

	// Too many wrong codes end the step: even the right code then needs the password again.
	r3 := app.client()
	loginPassword(r3, u.Email, "/")
	clock.advance(30 * time.Second)
	for i := 1; i < accounts.LoginStepAttempts; i++ {
		step(r3, wrongTOTP(t, secret, clock.now()))
	}
	if res := step(r3, wrongTOTP(t, secret, clock.now())); res.StatusCode != http.StatusUnauthorized || !strings.Contains(res.body, "Too many wrong codes") ||
		res.doc(t).Find(`[data-testid="login-form"]`).Length() != 1 {
		t.Fatalf("last wrong code: %d", res.StatusCode)
	}
	if res := step(r3, totpCode(t, secret, clock.now())); res.StatusCode != http.StatusUnauthorized || r3.get("/").StatusCode != http.StatusSeeOther {
		t.Fatalf("right code after the step ended: %d", res.StatusCode)
	}
	// No step at all: the login form, and no session.
	if res := step(app.client(), totpCode(t, secret, clock.now())); res.StatusCode != http.StatusUnauthorized || !strings.Contains(res.body, "expired") {
		t.Fatalf("code without a step: %d", res.StatusCode)
	}
	// The step expires.
	r4 := app.client()
	loginPassword(r4, u.Email, "/")
	clock.advance(accounts.LoginStepTTL)
	if res := step(r4, totpCode(t, secret, clock.now())); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("expired step: %d", res.StatusCode)
	}
}

// TestLoginStepCookie: the password step sets only the second step's cookie (no session), short
// lived, HttpOnly, SameSite=Strict, and Secure with the __Host- prefix under an https public URL.
func TestLoginStepCookie(t *testing.T) {
	for _, secure := range []bool{false, true} {
		app := newTestApp(t, func(c *Config) {
			if secure {
				c.PublicURL = mustURL("https://dash.example.com")
			}
		})
		clock := app.totpClock()
		ctx := context.Background()
		u := app.addUser("step@example.com", db.RoleViewer)
		e, err := app.srv.twoFactor.BeginEnrolment(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := app.srv.twoFactor.ConfirmEnrolment(ctx, u, totpCode(t, e.Secret, clock.now()), db.Audit{Actor: "test", Action: "auth.totp_enabled"}); err != nil {
			t.Fatal(err)
		}
		res := loginPassword(app.client(), u.Email, "/")
		cookies := res.Cookies()
		want := map[bool]string{false: "tfd_login_step", true: "__Host-tfd_login_step"}[secure]
		if len(cookies) != 1 || cookies[0].Name != want || cookies[0].Secure != secure || !cookies[0].HttpOnly ||
			cookies[0].SameSite != http.SameSiteStrictMode || cookies[0].MaxAge != int(accounts.LoginStepTTL.Seconds()) || cookies[0].Path != "/" {
			t.Errorf("secure %v: cookies %+v", secure, cookies)
		}
	}
}

// TestLoginSecondStepIsRateLimited: codes come out of the same per-address budget as passwords.
func TestLoginSecondStepIsRateLimited(t *testing.T) {
	app := newTestApp(t, func(c *Config) { c.LoginRate = RateLimit{Burst: 3, Every: time.Hour} })
	clock := app.totpClock()
	// Three attempts from this address: the first login, the second's password, a wrong code.
	c, u := app.login(db.RoleViewer)
	secret, _ := enrol(t, c, clock)
	clock.advance(30 * time.Second)
	b := app.client()
	loginPassword(b, u.Email, "/")
	if res := b.postForm("/login/two-factor", url.Values{"code": {wrongTOTP(t, secret, clock.now())}}); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong code: %d", res.StatusCode)
	}
	res := b.postForm("/login/two-factor", url.Values{"code": {totpCode(t, secret, clock.now())}})
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") == "" || b.get("/").StatusCode != http.StatusSeeOther {
		t.Fatalf("past the budget: %d", res.StatusCode)
	}
}

func TestReauthAsksForTheCode(t *testing.T) {
	app := newTestApp(t)
	clock := app.totpClock()
	ctx := context.Background()
	c, _ := app.login(db.RoleAdmin)
	app.patchEnv(app.addToken("a", auth.ScopeAdmin), "production", map[string]any{"secret_key": "sk_live_REVEALME77"})
	keys, _ := app.db.ListEnvKeys(ctx, "production")
	reveal := "/environments/production/keys/" + itoa(keys[0].ID) + "/reveal"
	if c.get("/environments").doc(t).Find(`form[action="`+reveal+`"] input[name="code"]`).Length() != 0 {
		t.Fatal("a code field without two-factor")
	}
	secret, _ := enrol(t, c, clock)
	if c.get("/environments").doc(t).Find(`form[action="`+reveal+`"] input[name="code"]`).Length() != 1 {
		t.Fatal("the reveal form asks for no code")
	}
	clock.advance(5 * time.Minute) // the set-up's password check is back in the re-check budget
	tests := []struct {
		name, password, code string
		revealed             bool
		reason               string
	}{
		{"password without a code", testPassword, "", false, "no_code"},
		{"password and a wrong code", testPassword, wrongTOTP(t, secret, clock.now()), false, "wrong_code"},
		{"a wrong password and the right code", "not my password", totpCode(t, secret, clock.now()), false, "wrong_password"},
		{"password and the code", testPassword, totpCode(t, secret, clock.now()), true, ""},
		{"the same code again", testPassword, totpCode(t, secret, clock.now()), false, "code_reused"},
	}
	for _, tt := range tests {
		res := c.postForm(reveal, url.Values{"password": {tt.password}, "code": {tt.code}, "reason": {"ticket 42"}})
		if got := strings.Contains(res.body, "REVEALME77"); got != tt.revealed {
			t.Fatalf("%s: revealed=%v (%d)", tt.name, got, res.StatusCode)
		}
		if tt.reason != "" {
			rows := auditOf(t, app, "auth.reauth_failed")
			if !strings.Contains(string(rows[0].After), `"reason":"`+tt.reason+`"`) {
				t.Fatalf("%s: audited as %s", tt.name, rows[0].After)
			}
		}
	}
	// Wrong codes take from the same budget as wrong passwords: it is spent, and even the right
	// password and code wait.
	clock.advance(30 * time.Second)
	if res := c.postForm(reveal, url.Values{"password": {testPassword}, "code": {totpCode(t, secret, clock.now())}, "reason": {"x"}}); strings.Contains(res.body, "REVEALME") {
		t.Fatal("revealed past the re-check budget")
	}
	if rows := auditOf(t, app, "auth.reauth_failed"); !strings.Contains(string(rows[0].After), "rate_limited") {
		t.Fatalf("budget not applied: %s", rows[0].After)
	}

	// Changing the password asks for the code too.
	v, _ := app.login(db.RoleViewer)
	vSecret, _ := enrol(t, v, clock)
	change := func(code string) response {
		return v.postForm("/settings/account/password", url.Values{"current": {testPassword}, "password": {"a brand new long password"}, "confirm": {"a brand new long password"}, "code": {code}})
	}
	if res := change(wrongTOTP(t, vSecret, clock.now())); res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(res.body, "two-factor code was incorrect") {
		t.Fatalf("password change with a wrong code: %d", res.StatusCode)
	}
	if rows := auditOf(t, app, "user.password_change"); len(rows) != 0 {
		t.Fatal("password changed with a wrong code")
	}
	clock.advance(30 * time.Second)
	if res := change(totpCode(t, vSecret, clock.now())); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("password change with the code: %d %s", res.StatusCode, res.body)
	}
}

func TestAdminResetsTwoFactor(t *testing.T) {
	app := newTestApp(t)
	clock := app.totpClock()
	ctx := context.Background()
	admin, me := app.login(db.RoleAdmin)
	bob, bu := app.login(db.RoleOperator)
	enrol(t, bob, clock)
	reset := "/settings/users/" + itoa(bu.ID) + "/two-factor/reset"

	if res := admin.postForm(reset, url.Values{"password": {"wrong"}}); res.StatusCode != http.StatusSeeOther {
		t.Fatal(res.StatusCode)
	}
	if on, _, _ := app.srv.twoFactor.State(ctx, bu.ID); !on {
		t.Fatal("reset with a wrong password")
	}
	if res := admin.postForm(reset, url.Values{"password": {testPassword}}); res.StatusCode != http.StatusSeeOther {
		t.Fatal(res.StatusCode)
	}
	if !strings.Contains(admin.get("/settings/users").body, "Reset two-factor for "+bu.Email) {
		t.Fatal("no confirmation")
	}
	if on, _, _ := app.srv.twoFactor.State(ctx, bu.ID); on {
		t.Fatal("still on after the reset")
	}
	if rows := auditOf(t, app, "auth.totp_reset"); len(rows) != 1 || rows[0].Target != "user:"+itoa(bu.ID) || !strings.Contains(string(rows[0].After), "sessions_ended") {
		t.Fatalf("reset audited as %+v", rows)
	}
	if res := bob.get("/"); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("bob's session survived the reset: %d", res.StatusCode)
	}
	// Bob signs in with the password alone now.
	if res := loginPassword(app.client(), bu.Email, "/"); res.Header.Get("Location") != "/" {
		t.Fatalf("bob after the reset goes to %q", res.Header.Get("Location"))
	}
	// Nobody resets their own: that is turning it off, which asks for a code.
	enrol(t, admin, clock)
	clock.advance(30 * time.Second)
	self := "/settings/users/" + itoa(me.ID) + "/two-factor/reset"
	admin.postForm(self, url.Values{"password": {testPassword}, "code": {"000000"}})
	if on, _, _ := app.srv.twoFactor.State(ctx, me.ID); !on {
		t.Fatal("an admin reset their own two-factor")
	}
}

func TestRequireTwoFactor(t *testing.T) {
	app := newTestApp(t)
	clock := app.totpClock()
	admin, _ := app.login(db.RoleAdmin)
	viewer, _ := app.login(db.RoleViewer)
	token := app.addToken("reader", auth.ScopeEventsRead)
	adminSecret, _ := enrol(t, admin, clock)
	clock.advance(30 * time.Second)

	// Requiring it needs the admin's password and code, and is audited.
	if res := admin.postForm("/settings/users/two-factor", url.Values{"required": {"1"}, "password": {testPassword}}); res.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("without a code: %d", res.StatusCode)
	}
	if res := admin.postForm("/settings/users/two-factor", url.Values{"required": {"1"}, "password": {testPassword}, "code": {totpCode(t, adminSecret, clock.now())}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("require: %d", res.StatusCode)
	}
	if rows := auditOf(t, app, "settings.two_factor_required"); len(rows) != 1 || string(rows[0].After) != `{"required":true}` {
		t.Fatalf("requirement audited as %+v", rows)
	}
	if doc := admin.get("/settings/users").doc(t); doc.Find(`[data-testid="two-factor-required-box"][checked]`).Length() != 1 {
		t.Fatal("the users page does not show the requirement")
	}

	// A user without two-factor is sent to the set-up from every page; the API is not affected.
	for _, path := range []string{"/", "/events", "/settings/account", "/rollout"} {
		if res := viewer.get(path); res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != twoFactorPath {
			t.Errorf("GET %s: %d to %q", path, res.StatusCode, res.Header.Get("Location"))
		}
	}
	if res := viewer.postForm("/settings/account/password", url.Values{"current": {testPassword}, "password": {"another long password"}, "confirm": {"another long password"}}); res.StatusCode != http.StatusForbidden {
		t.Errorf("POST before set-up: %d", res.StatusCode)
	}
	if res := app.api(http.MethodGet, "/api/v1/events", token, nil); res.StatusCode != http.StatusOK {
		t.Errorf("API token under the requirement: %d", res.StatusCode)
	}
	page := viewer.get(twoFactorPath)
	if page.StatusCode != http.StatusOK || page.doc(t).Find(`[data-testid="two-factor-required"]`).Length() != 1 {
		t.Fatalf("set-up page: %d", page.StatusCode)
	}
	secret, _ := enrol(t, viewer, clock)
	if res := viewer.get("/"); res.StatusCode != http.StatusOK {
		t.Fatalf("after set-up: %d", res.StatusCode)
	}
	// While required, nobody turns their own off.
	clock.advance(30 * time.Second)
	if res := viewer.postForm(twoFactorPath+"/disable", url.Values{"password": {testPassword}, "code": {totpCode(t, secret, clock.now())}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("disable: %d", res.StatusCode)
	}
	if !strings.Contains(viewer.get(twoFactorPath).body, "cannot be turned off") {
		t.Fatal("turned off while required")
	}
	if rows := auditOf(t, app, "auth.totp_disabled"); len(rows) != 0 {
		t.Fatal("disable audited while refused")
	}
}

// TestTwoFactorSecretsNeverLeak plants a seed and recovery codes, uses them every way there is,
// and then looks for them in the audit log (table and API), the log output, the database files
// and every page a user sees afterwards.
func TestTwoFactorSecretsNeverLeak(t *testing.T) {
	app := newTestApp(t)
	clock := app.totpClock()
	admin, _ := app.login(db.RoleAdmin)
	c, u := app.login(db.RoleOperator)
	secret, codes := enrol(t, c, clock)
	planted := append([]string{secret}, codes...)

	// New recovery codes (after the password and a code), a login with a recovery code, a
	// re-check with a code, and an admin's reset.
	clock.advance(30 * time.Second)
	res := c.postForm(twoFactorPath+"/recovery-codes", url.Values{"password": {testPassword}, "code": {totpCode(t, secret, clock.now())}})
	for _, n := range res.doc(t).Find(`[data-testid="recovery-code"]`).Nodes {
		planted = append(planted, n.FirstChild.Data)
	}
	if len(planted) != 1+2*accounts.RecoveryCodeCount {
		t.Fatalf("regenerate: %d %s", res.StatusCode, res.body)
	}
	if rows := auditOf(t, app, "auth.recovery_codes_regenerated"); len(rows) != 1 {
		t.Fatal("regeneration not audited")
	}
	b := app.client()
	loginPassword(b, u.Email, "/")
	if res := b.postForm("/login/two-factor", url.Values{"code": {planted[len(planted)-1]}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("recovery login: %d", res.StatusCode)
	}
	b.postForm("/login/two-factor", url.Values{"code": {codes[3]}}) // an old code, refused
	clock.advance(30 * time.Second)
	if res := b.postForm("/settings/account/password", url.Values{"current": {testPassword}, "password": {"a brand new long password"}, "confirm": {"a brand new long password"}, "code": {totpCode(t, secret, clock.now())}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("password change with a code: %d", res.StatusCode)
	}

	var pages strings.Builder
	for _, p := range []string{"/settings/account", twoFactorPath, "/rollout", "/environments"} {
		pages.WriteString(b.get(p).body)
	}
	for _, p := range []string{"/settings/users", "/audit", "/audit?action=auth.recovery_code_used"} {
		pages.WriteString(admin.get(p).body)
	}
	pages.WriteString(app.api(http.MethodGet, "/api/v1/audit?limit=500", app.addToken("auditor", auth.ScopeAdmin), nil).body)
	if res := admin.postForm("/settings/users/"+itoa(u.ID)+"/two-factor/reset", url.Values{"password": {testPassword}}); res.StatusCode != http.StatusSeeOther {
		t.Fatal(res.StatusCode)
	}
	pages.WriteString(admin.get("/settings/users").body)

	rows := auditOf(t, app, "")
	audit, _ := json.Marshal(rows)
	if len(rows) < 8 {
		t.Fatalf("only %d audit rows", len(rows))
	}
	var files strings.Builder
	names, _ := filepath.Glob(filepath.Join(filepath.Dir(app.db.Path), db.FileName+"*"))
	for _, name := range names {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		files.Write(data)
	}
	for where, text := range map[string]string{"audit log": string(audit), "log output": app.logs.String(), "later pages": pages.String(), "database files": files.String()} {
		text = strings.ToLower(text)
		for _, v := range planted {
			for _, form := range []string{v, strings.ReplaceAll(v, "-", "")} {
				if strings.Contains(text, strings.ToLower(form)) {
					t.Errorf("%s holds %q", where, form)
				}
			}
		}
	}
}

// TestSecondFactorCannotBeGuessedAcrossAddresses (issue 18): an attacker who has the password
// signs in again from a new address each round and tries codes; however many rounds, at most
// accounts.CodeLimit.Attempts wrong codes are checked before the factor locks, the lock is
// audited once (the row alert channels follow: TestLockedSecondFactorIsAlerted), and while it lasts even the right code does not sign in.
func TestSecondFactorCannotBeGuessedAcrossAddresses(t *testing.T) {
	app := newTestApp(t, func(c *Config) {
		c.TrustedProxies = mustPrefixes("127.0.0.1/32", "::1/128")
		c.LoginRate = RateLimit{Burst: 1 << 20, Every: time.Millisecond}
	})
	clock := app.totpClock()
	c, u := app.login(db.RoleViewer)
	secret, codes := enrol(t, c, clock)
	clock.advance(time.Minute)
	wrong := wrongTOTP(t, secret, clock.now())
	checked, refusedLocked := 0, 0
	for round := range 10 {
		from := fmt.Sprintf("203.0.113.%d", round+1)
		attacker := app.client()
		req := func(path string, form url.Values) response {
			r, _ := http.NewRequest(http.MethodPost, app.url+path, strings.NewReader(form.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Header.Set("X-Forwarded-For", from)
			return attacker.do(r)
		}
		if res := req("/login", url.Values{"email": {u.Email}, "password": {testPassword}}); res.StatusCode != http.StatusSeeOther {
			t.Fatalf("round %d: password step %d", round, res.StatusCode)
		}
		for range accounts.LoginStepAttempts {
			guess := wrong
			if round%3 == 1 {
				guess = "zzzz-zzzz-zzzz-zzzz" // recovery codes count too
			}
			res := req("/login/two-factor", url.Values{"code": {guess}})
			switch {
			case strings.Contains(res.body, "refused for a while"):
				refusedLocked++
			case res.StatusCode == http.StatusUnauthorized:
				checked++
			default:
				t.Fatalf("round %d: a wrong code answered %d", round, res.StatusCode)
			}
			if res.doc(t).Find(`form[action="/login/two-factor"]`).Length() == 0 {
				break // the step ended: the password again, from a new address
			}
		}
	}
	if checked > accounts.CodeLimit.Attempts || refusedLocked == 0 {
		t.Fatalf("%d wrong codes checked (limit %d), %d refused as locked", checked, accounts.CodeLimit.Attempts, refusedLocked)
	}
	if rows := auditOf(t, app, "auth.second_factor_locked"); len(rows) != 1 || rows[0].Target != "user:"+itoa(u.ID) {
		t.Fatalf("the lock is not audited once: %+v", rows)
	}
	// The right code, and a recovery code, from the real user's browser: still locked.
	owner := app.client()
	for _, code := range []string{totpCode(t, secret, clock.now()), codes[0]} {
		loginPassword(owner, u.Email, "/")
		if res := owner.postForm("/login/two-factor", url.Values{"code": {code}}); !strings.Contains(res.body, "refused for a while") {
			t.Fatalf("a right code while locked: %d", res.StatusCode)
		}
	}
	// After the lock the owner signs in.
	clock.advance(accounts.CodeLimit.Lock)
	loginPassword(owner, u.Email, "/")
	if res := owner.postForm("/login/two-factor", url.Values{"code": {totpCode(t, secret, clock.now())}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("the right code after the lock: %d", res.StatusCode)
	}
}
