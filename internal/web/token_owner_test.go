package web

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tensfer-golive/dashboard/internal/accounts"
	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
)

// TestTokensDieWithTheirCreatorsAccess: an admin's tokens stop working at once when the admin
// is disabled or demoted; a CLI token (nobody's) and another admin's tokens live on.
func TestTokensDieWithTheirCreatorsAccess(t *testing.T) {
	app := newTestApp(t)
	boss, _ := app.login(db.RoleAdmin)
	mint := func(c *client, name string) string {
		t.Helper()
		res := c.postForm("/settings/tokens", url.Values{"name": {name}, "scopes": {auth.ScopeAdmin}, "password": {testPassword}})
		secret := strings.TrimSpace(res.doc(t).Find(`[data-testid="token-secret"]`).Text())
		if res.StatusCode != http.StatusCreated || secret == "" {
			t.Fatalf("create token: %d", res.StatusCode)
		}
		return secret
	}
	works := func(token string) bool {
		return app.api(http.MethodGet, "/api/v1/whoami", token, nil).StatusCode == http.StatusOK
	}
	cli := app.addToken("cli-made", auth.ScopeAdmin)
	bossToken := mint(boss, "boss-service")
	for _, tt := range []struct {
		name   string
		change url.Values
		path   string
	}{
		{"disabled", nil, "disable"},
		{"demoted", url.Values{"role": {"operator"}, "password": {testPassword}}, "role"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, u := app.login(db.RoleAdmin)
			token := mint(c, "svc-"+tt.name)
			if !works(token) { // also puts it in the token cache
				t.Fatal("a new token does not work")
			}
			res := boss.postForm("/settings/users/"+itoa(u.ID)+"/"+tt.path, tt.change)
			if res.StatusCode != http.StatusSeeOther {
				t.Fatalf("%s: %d", tt.path, res.StatusCode)
			}
			if works(token) {
				t.Fatalf("the %s admin's token still works", tt.name)
			}
			rows, _, _ := app.db.ListAudit(t.Context(), db.AuditFilter{Target: "user:" + itoa(u.ID), Limit: 1})
			if len(rows) != 1 || !strings.Contains(string(rows[0].After), `"tokens_revoked":1`) {
				t.Fatalf("audit of the change: %+v", rows)
			}
		})
	}
	if !works(cli) || !works(bossToken) {
		t.Fatal("tokens of others were revoked too")
	}
}

// TestTokensExpireAndSayWhen: a token made to expire shows when in the list, works until then,
// and answers 401 after, even from the token cache.
func TestTokensExpireAndSayWhen(t *testing.T) {
	app := newTestApp(t)
	admin, _ := app.login(db.RoleAdmin)
	res := admin.postForm("/settings/tokens", url.Values{"name": {"temp"}, "scopes": {auth.ScopeEventsRead}, "expires_in": {"7d"}})
	doc := res.doc(t)
	secret := strings.TrimSpace(doc.Find(`[data-testid="token-secret"]`).Text())
	if res.StatusCode != http.StatusCreated || secret == "" || strings.Contains(doc.Find(`[data-testid="token-expires"]`).Text(), "never") {
		t.Fatalf("create: %d, expires %q", res.StatusCode, doc.Find(`[data-testid="token-expires"]`).Text())
	}
	if res := admin.postForm("/settings/tokens", url.Values{"name": {"bad"}, "scopes": {auth.ScopeEventsRead}, "expires_in": {"soon"}}); res.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("a bad expiry: %d", res.StatusCode)
	}
	if res := app.api(http.MethodGet, "/api/v1/whoami", secret, nil); res.StatusCode != http.StatusOK {
		t.Fatalf("before its expiry: %d", res.StatusCode)
	}
	later := time.Now().Add(8 * 24 * time.Hour)
	app.srv.SetClock(func() time.Time { return later })
	app.db.SetClock(func() time.Time { return later })
	if res := app.api(http.MethodGet, "/api/v1/whoami", secret, nil); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("after its expiry: %d", res.StatusCode)
	}
}

// TestSessionAloneCannotMintSecretTokens: a token that reaches production secrets or admin needs
// the password again, and the code when the admin has two-factor on, like a reveal; a refused
// attempt stores no token, is audited as a failed re-check, and keeps the form's input. Lesser
// scopes need only the session.
func TestSessionAloneCannotMintSecretTokens(t *testing.T) {
	app := newTestApp(t)
	clock := app.totpClock()
	plain, _ := app.login(db.RoleAdmin)
	with2FA, _ := app.login(db.RoleAdmin)
	secret, _ := enrol(t, with2FA, clock)
	clock.advance(30 * time.Second) // the enrolment's code counts once
	tokens := func() int {
		list, err := app.db.ListTokens(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return len(list)
	}
	for _, tt := range []struct {
		name   string
		c      *client
		form   url.Values
		want   int
		says   string
		minted bool
	}{
		{"secrets:read with the session alone", plain, url.Values{"scopes": {auth.ScopeSecretsRead}}, http.StatusUnprocessableEntity, "your password was incorrect", false},
		{"admin with the session alone", plain, url.Values{"scopes": {auth.ScopeAdmin}}, http.StatusUnprocessableEntity, "your password was incorrect", false},
		{"secrets:read hidden among lesser scopes", plain, url.Values{"scopes": {auth.ScopeEventsRead, auth.ScopeSecretsRead}}, http.StatusUnprocessableEntity, "your password was incorrect", false},
		{"admin with a wrong password", plain, url.Values{"scopes": {auth.ScopeAdmin}, "password": {"not the password"}}, http.StatusUnprocessableEntity, "your password was incorrect", false},
		{"admin with the password but no code", with2FA, url.Values{"scopes": {auth.ScopeAdmin}, "password": {testPassword}}, http.StatusUnprocessableEntity, "6-digit code", false},
		{"admin with the password and a wrong code", with2FA, url.Values{"scopes": {auth.ScopeAdmin}, "password": {testPassword}, "code": {wrongTOTP(t, secret, clock.now())}}, http.StatusUnprocessableEntity, "incorrect", false},
		{"lesser scopes with the session alone", plain, url.Values{"scopes": {auth.ScopeEventsRead, auth.ScopeRolloutWrite}}, http.StatusCreated, "", true},
		{"admin with the password", plain, url.Values{"scopes": {auth.ScopeAdmin}, "password": {testPassword}}, http.StatusCreated, "", true},
		{"secrets:read with the password and the code", with2FA, url.Values{"scopes": {auth.ScopeSecretsRead}, "password": {testPassword}, "code": {totpCode(t, secret, clock.now())}}, http.StatusCreated, "", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_ = app.srv.failures.flush(t.Context(), true) // each refusal starts a window: written at once
			before, failed := tokens(), len(auditOf(t, app, "auth.reauth_failed"))
			tt.form.Set("name", "svc-"+auth.RandomID(4))
			res := tt.c.postForm("/settings/tokens", tt.form)
			doc := res.doc(t)
			if res.StatusCode != tt.want || !strings.Contains(res.body, tt.says) {
				t.Fatalf("status %d, want %d saying %q", res.StatusCode, tt.want, tt.says)
			}
			if got := tokens() - before; got != map[bool]int{true: 1}[tt.minted] {
				t.Fatalf("%d tokens stored", got)
			}
			if tt.minted {
				return
			}
			if doc.Find(`[data-testid="token-secret"]`).Length() != 0 || doc.Find(`input[name="name"]`).AttrOr("value", "") != tt.form.Get("name") {
				t.Fatal("the refusal shows a token, or loses the form's input")
			}
			if rows := auditOf(t, app, "auth.reauth_failed"); len(rows) != failed+1 || !strings.Contains(string(rows[0].After), "token.create") {
				t.Fatalf("the refusal is not audited as a failed re-check of token.create: %d rows", len(rows)-failed)
			}
		})
	}
}

// TestServiceTokensAreListedAndRevocable: a token made by `dashboard token create` without an
// owner shows as a service token in Settings, one with an owner names them, and an admin revokes
// either there.
func TestServiceTokensAreListedAndRevocable(t *testing.T) {
	app := newTestApp(t)
	admin, _ := app.login(db.RoleAdmin)
	ctx := t.Context()
	svc := accounts.New(accounts.Config{DB: app.db})
	secret, tok, err := svc.CreateToken(ctx, "batch-job", []string{auth.ScopeEventsRead}, 0, accounts.ServiceOwner, db.Audit{Actor: "cli", Action: "token.create"})
	if err != nil {
		t.Fatal(err)
	}
	doc := admin.get("/settings/tokens").doc(t)
	if got := doc.Find(`[data-testid="token-owner"]`).First().Text(); !strings.Contains(got, "service token, owned by nobody") {
		t.Fatalf("the service token's row says %q", got)
	}
	if res := admin.postForm("/settings/tokens/"+itoa(tok.ID)+"/revoke", nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke: %d", res.StatusCode)
	}
	if res := app.api(http.MethodGet, "/api/v1/whoami", secret, nil); res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a revoked service token: %d", res.StatusCode)
	}
}
