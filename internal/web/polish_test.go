package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
)

// TestNewPasswordNeedsConfirmation: a new password typed differently twice changes nothing, on
// the user's own form (a field error) and on an admin's reset (an error flash).
func TestNewPasswordNeedsConfirmation(t *testing.T) {
	app := newTestApp(t)
	admin, me := app.login(db.RoleAdmin)
	victim := app.addUser("victim@example.com", db.RoleViewer)
	tests := []struct {
		name, path string
		form       url.Values
		status     int
		says       string
	}{
		{"own password", "/settings/account/password", url.Values{"current": {testPassword}, "password": {"a brand new long password"}, "confirm": {"a brand new long passwort"}},
			http.StatusUnprocessableEntity, "does not match the new password"},
		{"admin reset", "/settings/users/" + itoa(victim.ID) + "/password", url.Values{"password": {testPassword}, "new_password": {"a brand new long password"}, "confirm_password": {"a brand new long passwort"}},
			http.StatusSeeOther, "the two new passwords differ"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := admin.postForm(tt.path, tt.form)
			if res.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tt.status, res.body)
			}
			if res.StatusCode == http.StatusSeeOther {
				res = admin.get(res.Header.Get("Location"))
			}
			doc := res.doc(t)
			if got := doc.Find(`[data-testid="flash"], .field-error`).Text(); !strings.Contains(got, tt.says) {
				t.Fatalf("says %q, want %q", got, tt.says)
			}
		})
	}
	for _, u := range []db.User{me, victim} {
		after, err := app.db.UserByID(context.Background(), u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if auth.CheckPassword(testPassword, after.PasswordHash) != nil {
			t.Errorf("%s: password changed although the confirmation differed", u.Email)
		}
	}
}

// TestSettingsOpensOnYourAccount: /settings is the user's own account for every role, and the
// account page shows the user's name.
func TestSettingsOpensOnYourAccount(t *testing.T) {
	app := newTestApp(t)
	for _, role := range []db.Role{db.RoleViewer, db.RoleAdmin} {
		c, _ := app.login(role)
		if res := c.get("/settings"); res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/settings/account" {
			t.Errorf("%s: /settings -> %d %q, want /settings/account", role, res.StatusCode, res.Header.Get("Location"))
		}
	}
	h, _ := auth.HashPassword(testPassword, auth.TestParams)
	u, err := app.db.InsertUser(context.Background(), db.User{Email: "grace@example.com", Name: "Grace Hopper", Role: db.RoleViewer, PasswordHash: h}, db.Audit{Actor: "test", Action: "user.create"})
	if err != nil {
		t.Fatal(err)
	}
	c := app.client()
	c.postForm("/login", url.Values{"email": {u.Email}, "password": {testPassword}})
	if got := strings.TrimSpace(c.get("/settings/account").doc(t).Find(`[data-testid="account-name"]`).Text()); got != "Grace Hopper" {
		t.Errorf("account name %q", got)
	}
}

// TestNotFoundKeepsTheFrame: a signed-in user's 404 has the navigation; a stranger's has not.
func TestNotFoundKeepsTheFrame(t *testing.T) {
	app := newTestApp(t)
	signedIn, _ := app.login(db.RoleViewer)
	for _, tt := range []struct {
		name string
		c    *client
		nav  bool
	}{{"signed in", signedIn, true}, {"signed out", app.client(), false}} {
		res := tt.c.get("/no-such-page")
		doc := res.doc(t)
		if res.StatusCode != http.StatusNotFound || doc.Find(`[data-testid="error-page"]`).Length() != 1 {
			t.Fatalf("%s: %d without the error page", tt.name, res.StatusCode)
		}
		if got := doc.Find(`[data-testid="nav"]`).Length() == 1; got != tt.nav {
			t.Errorf("%s: navigation shown %v, want %v", tt.name, got, tt.nav)
		}
	}
}

// TestCopyButtonsSayWhatTheyCopy: no copy button is labelled just "Copy".
func TestCopyButtonsSayWhatTheyCopy(t *testing.T) {
	app := newTestApp(t)
	c, _ := app.login(db.RoleAdmin)
	for _, path := range []string{"/", "/environments", "/no-such-page"} {
		doc := c.get(path).doc(t)
		buttons := doc.Find(`button[data-copy]`)
		if buttons.Length() == 0 {
			t.Errorf("%s: no copy button to check", path)
		}
		buttons.Each(func(_ int, b *goquery.Selection) {
			label := b.AttrOr("aria-label", b.Text())
			if !strings.HasPrefix(label, "Copy ") || len(label) < len("Copy x") {
				t.Errorf("%s: copy button labelled %q", path, label)
			}
		})
	}
}

// TestFieldErrorsAreTiedToTheirControls: every field error a form shows is named by the
// aria-describedby of a control (and that control is marked invalid or is in a group that is).
func TestFieldErrorsAreTiedToTheirControls(t *testing.T) {
	app := newTestApp(t)
	admin, _ := app.login(db.RoleAdmin)
	tests := []struct {
		name, path string
		form       url.Values
	}{
		{"empty key", "/environments/production/keys", url.Values{"kind": {"secret_key"}, "value": {"  "}}},
		{"token without scopes", "/settings/tokens", url.Values{"name": {"ci"}}},
		{"short new password", "/settings/account/password", url.Values{"current": {testPassword}, "password": {"x"}, "confirm": {"x"}}},
		{"confirmation differs", "/settings/account/password", url.Values{"current": {testPassword}, "password": {"a long new password"}, "confirm": {"another"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := admin.postForm(tt.path, tt.form)
			doc := res.doc(t)
			errs := doc.Find(`.field-error`)
			if res.StatusCode != http.StatusUnprocessableEntity || errs.Length() == 0 {
				t.Fatalf("status %d with %d field errors, want 422 and at least one", res.StatusCode, errs.Length())
			}
			errs.Each(func(_ int, e *goquery.Selection) {
				id := e.AttrOr("id", "")
				tied := doc.Find(`[aria-describedby]`).FilterFunction(func(_ int, c *goquery.Selection) bool {
					for _, ref := range strings.Fields(c.AttrOr("aria-describedby", "")) {
						if ref == id {
							return true
						}
					}
					return false
				})
				if id == "" || tied.Length() == 0 {
					t.Errorf("error %q (id %q) is tied to no control", strings.TrimSpace(e.Text()), id)
				}
			})
		})
	}
}
