package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/tensfer-golive/dashboard/internal/accounts"
	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
)

// weakPasswords are refused wherever a password is set, each with the reason; the email
// ops.team@example.com is the account's.
var weakPasswords = []struct{ pw, why string }{
	{"1234567890ab", `password is too easy to guess ("1234567890" is a common password`},
	{"ABCDEFGHIJKL1", `password is too easy to guess ("ABCDEFGHIJKL" is a sequence`},
	{"tensferr2026!", `password is too easy to guess ("tensfer" is the product's name`},
	{"password1234", "password is one of the 30,000 most common passwords"},
	{"aaaaaaaaaaaa", "password is one character repeated"},
	{"123456789012", "password is a simple sequence"},
	{"Ops.Team@example.com!", "password is made of the account's email address"},
	{"Tensfer-2024!", "password is made of the product's name"},
}

const policyEmail = "ops.team@example.com"

func TestSetupLinkRefusesWeakPasswords(t *testing.T) {
	app := newTestApp(t)
	ctx := context.Background()
	link, err := accounts.PrepareSetup(ctx, app.db, app.url)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(link)
	token := u.Query().Get("token")
	c := app.client()
	if hint := c.get("/setup?token=" + token).doc(t).Find("#hint-password").Text(); !strings.Contains(hint, auth.PasswordRule()) {
		t.Fatalf("the form's hint %q is not the domain's rule", hint)
	}
	for _, tt := range weakPasswords {
		res := c.postForm("/setup", url.Values{"token": {token}, "email": {policyEmail}, "password": {tt.pw}, "confirm": {tt.pw}})
		if got := res.doc(t).Find("#err-password").Text(); res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(got, tt.why) {
			t.Errorf("%q: %d %q, want 422 with %q", tt.pw, res.StatusCode, got, tt.why)
		}
	}
	if n, _ := app.db.CountUsers(ctx); n != 0 {
		t.Fatalf("refused setups created %d users", n)
	}
	if ok, _ := app.db.SetupTokenValid(ctx, token); !ok {
		t.Fatal("a refused password used up the setup link")
	}
}

func TestSettingsRefusesWeakNewPasswords(t *testing.T) {
	app := newTestApp(t)
	u := app.addUser(policyEmail, db.RoleViewer)
	c := app.client()
	if res := c.postForm("/login", url.Values{"email": {u.Email}, "password": {testPassword}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d", res.StatusCode)
	}
	for _, tt := range weakPasswords[:reauthRate.Burst] {
		res := c.postForm("/settings/account/password", url.Values{"current": {testPassword}, "password": {tt.pw}, "confirm": {tt.pw}})
		if got := res.doc(t).Find("#err-password").Text(); res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(got, tt.why) {
			t.Errorf("%q: %d %q, want 422 with %q", tt.pw, res.StatusCode, got, tt.why)
		}
	}
	after, _ := app.db.UserByID(context.Background(), u.ID)
	if after.PasswordHash != u.PasswordHash {
		t.Fatal("a refused password was stored")
	}
	if res := c.get("/settings/account"); res.StatusCode != http.StatusOK {
		t.Fatalf("a refused change ended the session: %d", res.StatusCode)
	}
}

func TestAdminResetAndAddRefuseWeakPasswords(t *testing.T) {
	app := newTestApp(t)
	app.login(db.RoleAdmin) // the first admin, as on a real install
	victim := app.addUser(policyEmail, db.RoleViewer)
	admins := make([]*client, len(weakPasswords))
	for i, tt := range weakPasswords {
		admin, _ := app.login(db.RoleAdmin) // a re-check budget of its own for each try
		admins[i] = admin
		res := admin.postForm("/settings/users/"+itoa(victim.ID)+"/password", url.Values{"new_password": {tt.pw}, "confirm_password": {tt.pw}, "password": {testPassword}})
		if res.StatusCode != http.StatusSeeOther {
			t.Fatalf("%q: reset answered %d", tt.pw, res.StatusCode)
		}
		if got := admin.get("/settings/users").doc(t).Find(`[data-testid="flash"]`).Text(); !strings.Contains(got, "Password not changed: "+tt.why) {
			t.Errorf("%q: flash %q, want %q", tt.pw, got, tt.why)
		}
	}
	after, _ := app.db.UserByID(context.Background(), victim.ID)
	if after.PasswordHash != victim.PasswordHash {
		t.Fatal("a refused reset was stored")
	}
	before, _ := app.db.CountUsers(context.Background())
	for i, tt := range weakPasswords {
		res := admins[i].postForm("/settings/users", url.Values{"email": {"ops.team+new@example.com"}, "role": {"viewer"}, "new_password": {tt.pw}, "password": {testPassword}})
		if got := res.doc(t).Find("#err-new-password").Text(); res.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(got, tt.why) {
			t.Errorf("add user with %q: %d %q, want 422 with %q", tt.pw, res.StatusCode, got, tt.why)
		}
	}
	if n, _ := app.db.CountUsers(context.Background()); n != before {
		t.Fatalf("users = %d, want %d: a refused password created a user", n, before)
	}
}
