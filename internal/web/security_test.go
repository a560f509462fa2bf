package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/secrets"
	"github.com/tensfer-golive/dashboard/web/static"
)

func TestCrossOriginPostsRefused(t *testing.T) {
	app := newTestApp(t)
	c, _ := app.login(db.RoleAdmin)
	form := url.Values{"email": {"csrf@example.com"}, "role": {"admin"}, "new_password": {"csrf test passphrase kestrel 4471"}, "password": {testPassword}}
	tests := []struct {
		name    string
		headers map[string]string
		want    int
	}{
		{"cross-site fetch metadata", map[string]string{"Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"foreign Origin", map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden},
		{"same-origin", map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": app.url}, http.StatusSeeOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, app.url+"/settings/users", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			res := c.do(req)
			if res.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", res.StatusCode, tt.want)
			}
			_, err := app.db.UserByEmail(context.Background(), "csrf@example.com")
			if created := err == nil; created != (tt.want == http.StatusSeeOther) {
				t.Fatalf("user created = %v", created)
			}
		})
	}
}

func TestEveryAnswerHasRequestIDAndSecurityHeaders(t *testing.T) {
	app := newTestApp(t)
	c, _ := app.login(db.RoleViewer)
	for _, path := range []string{"/", "/login", "/healthz", "/nope", "/api/v1/whoami", static.URL("css/app.css"), "/settings/users"} {
		res := c.get(path)
		if !regexp.MustCompile(`^req_[A-Za-z0-9_-]{16}$`).MatchString(res.Header.Get("X-Request-Id")) {
			t.Errorf("%s: X-Request-Id %q", path, res.Header.Get("X-Request-Id"))
		}
		for _, h := range []string{"Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy"} {
			if res.Header.Get(h) == "" {
				t.Errorf("%s: missing %s", path, h)
			}
		}
	}
	// The CSP nonce is fresh per answer and is the one on the page's scripts.
	res := c.get("/")
	nonce := regexp.MustCompile(`'nonce-([^']+)'`).FindStringSubmatch(res.Header.Get("Content-Security-Policy"))
	if nonce == nil || !strings.Contains(res.body, `nonce="`+nonce[1]+`"`) {
		t.Fatalf("page scripts do not carry the CSP nonce")
	}
	if strings.Contains(c.get("/").Header.Get("Content-Security-Policy"), nonce[1]) {
		t.Fatal("nonce reused across answers")
	}
	if regexp.MustCompile(`<script>|\son[a-z]+="|style="`).MatchString(res.body) {
		t.Fatal("inline script, handler or style on the page would break under the CSP")
	}
}

func TestErrorsShowRequestID(t *testing.T) {
	app := newTestApp(t)
	c, _ := app.login(db.RoleViewer)
	res := c.get("/no/such/page")
	id := res.Header.Get("X-Request-Id")
	if res.StatusCode != 404 || strings.TrimSpace(res.doc(t).Find(`[data-testid="error-request-id"]`).Text()) != id {
		t.Fatalf("404 page: %d, request id shown %q, header %q", res.StatusCode, res.doc(t).Find(`[data-testid="error-request-id"]`).Text(), id)
	}
	res = app.api("GET", "/api/v1/nope", "", nil)
	var e apiError
	if err := json.Unmarshal([]byte(res.body), &e); err != nil || e.Error.RequestID != res.Header.Get("X-Request-Id") || e.Error.Code != "unauthorized" || e.Error.Message == "" {
		t.Fatalf("API error shape: %s", res.body)
	}
}

func TestBodyLimit(t *testing.T) {
	app := newTestApp(t, func(c *Config) { c.MaxBodyBytes = 1024 })
	c := app.client()
	big := url.Values{"email": {strings.Repeat("a", 4096)}, "password": {"x"}}
	if res := c.postForm("/login", big); res.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(res.body, "1024 byte limit") {
		t.Fatalf("oversized login form: %d", res.StatusCode)
	}
	if res := c.postForm("/login", big); res.StatusCode == http.StatusSeeOther {
		t.Fatal("oversized body logged in")
	}
}

func TestStaticAssetsAreImmutable(t *testing.T) {
	app := newTestApp(t)
	c := app.client()
	res := c.get(static.URL("css/app.css"))
	if res.StatusCode != 200 || !strings.Contains(res.Header.Get("Cache-Control"), "immutable") || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/css") {
		t.Fatalf("asset: %d %q %q", res.StatusCode, res.Header.Get("Cache-Control"), res.Header.Get("Content-Type"))
	}
	if res := c.get("/static/css/app.css"); res.StatusCode != 404 {
		t.Fatalf("unhashed asset path served: %d", res.StatusCode)
	}
}

func TestReadyzRefusesWrongMasterKey(t *testing.T) {
	app := newTestApp(t)
	if res := app.client().get("/readyz"); res.StatusCode != 200 {
		t.Fatalf("readyz: %d %s", res.StatusCode, res.body)
	}
	other, _ := secrets.GenerateKey()
	box, _ := secrets.NewBox(other)
	app.srv.box = box
	res := app.client().get("/readyz")
	if res.StatusCode != 503 || !strings.Contains(res.body, `"master_key":"failed"`) || strings.Contains(res.body, other.ID) {
		t.Fatalf("readyz with wrong key: %d %s", res.StatusCode, res.body)
	}
	// The cause is in the log, not in the public answer.
	if !strings.Contains(app.logs.String(), "does not match") {
		t.Fatal("readyz failure not logged with its cause")
	}
}

func TestAuditRowsForMutations(t *testing.T) {
	app := newTestApp(t)
	admin, me := app.login(db.RoleAdmin)
	_, victim := app.login(db.RoleViewer)
	steps := []struct {
		action string
		do     func() response
	}{
		{"user.create", func() response {
			return admin.postForm("/settings/users", url.Values{"email": {"n@example.com"}, "role": {"viewer"}, "new_password": {"audit test passphrase osprey 9082"}, "password": {testPassword}})
		}},
		{"user.role", func() response {
			return admin.postForm("/settings/users/"+itoa(victim.ID)+"/role", url.Values{"role": {"operator"}, "password": {testPassword}})
		}},
		{"user.disable", func() response { return admin.postForm("/settings/users/"+itoa(victim.ID)+"/disable", nil) }},
		{"user.enable", func() response { return admin.postForm("/settings/users/"+itoa(victim.ID)+"/enable", nil) }},
		{"user.password_reset", func() response {
			return admin.postForm("/settings/users/"+itoa(victim.ID)+"/password", url.Values{"new_password": {"another long password"}, "confirm_password": {"another long password"}, "password": {testPassword}})
		}},
		{"user.sign_out", func() response { return admin.postForm("/settings/users/"+itoa(victim.ID)+"/sign-out", nil) }},
		{"token.create", func() response {
			return admin.postForm("/settings/tokens", url.Values{"name": {"t"}, "scopes": {"admin"}, "password": {testPassword}})
		}},
		{"token.revoke", func() response {
			ts, _ := app.db.ListTokens(context.Background())
			return admin.postForm("/settings/tokens/"+itoa(ts[0].ID)+"/revoke", nil)
		}},
		{"user.password_change", func() response {
			return admin.postForm("/settings/account/password", url.Values{"current": {testPassword}, "password": {"my new long password"}, "confirm": {"my new long password"}})
		}},
		{"session.logout", func() response { return admin.postForm("/logout", nil) }},
	}
	for _, st := range steps {
		res := st.do()
		rows, _, err := app.db.ListAudit(context.Background(), db.AuditFilter{Limit: 1})
		if err != nil || len(rows) == 0 {
			t.Fatalf("%s: no audit row (%v)", st.action, err)
		}
		a := rows[0]
		if a.Action != st.action || a.RequestID != res.Header.Get("X-Request-Id") || a.IP != "127.0.0.1" || !strings.Contains(a.Actor, me.Email) {
			t.Errorf("%s: audit row %+v (request id %s)", st.action, a, res.Header.Get("X-Request-Id"))
		}
		if strings.Contains(string(a.Before)+string(a.After), "argon2") || strings.Contains(string(a.After), testPassword) {
			t.Errorf("%s: audit row leaks a password: %s %s", st.action, a.Before, a.After)
		}
	}
	if _, err := app.db.W.Exec("UPDATE audit_log SET actor = 'x'"); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Fatalf("audit log can be updated: %v", err)
	}
	if _, err := app.db.W.Exec("DELETE FROM audit_log"); err == nil {
		t.Fatal("audit log can be deleted")
	}
}

func TestAuditPageFiltersAndPaginates(t *testing.T) {
	app := newTestApp(t)
	c, _ := app.login(db.RoleOperator)
	for i := range 60 {
		app.db.InsertAudit(context.Background(), db.Audit{Actor: "cli", Action: "backup.create", Target: "file:" + itoa(int64(i))})
	}
	doc := c.get("/audit?action=backup.").doc(t)
	if n := doc.Find(`[data-testid="audit-row"]`).Length(); n != 50 {
		t.Fatalf("first page rows = %d, want 50", n)
	}
	next, ok := doc.Find(`[data-testid="audit-next"]`).Attr("href")
	if !ok {
		t.Fatal("no next link")
	}
	doc = c.get(next).doc(t)
	if n := doc.Find(`[data-testid="audit-row"]`).Length(); n != 10 {
		t.Fatalf("second page rows = %d, want 10", n)
	}
	if doc.Find(`[data-testid="audit-next"]`).Length() != 0 {
		t.Fatal("next link on the last page")
	}
	if doc := c.get("/audit?action=nothing.").doc(t); doc.Find(`[data-testid="audit-empty"]`).Length() != 1 {
		t.Fatal("no empty state for a filter without matches")
	}
	if res := c.get("/audit?cursor=abc"); res.StatusCode != 400 || !strings.Contains(res.body, "cursor") {
		t.Fatalf("bad cursor: %d", res.StatusCode)
	}
}

func TestAPIAuditPaginationAndScopes(t *testing.T) {
	app := newTestApp(t)
	admin := app.addToken("ops", "admin")
	for i := range 5 {
		app.db.InsertAudit(context.Background(), db.Audit{Actor: "cli", Action: "backup.create", Target: "file:" + itoa(int64(i))})
	}
	var page struct {
		Entries []struct {
			Action string `json:"action"`
			Target string `json:"target"`
		} `json:"entries"`
		NextCursor *string `json:"next_cursor"`
	}
	res := app.api("GET", "/api/v1/audit?limit=3&action=backup.", admin, nil)
	if err := json.Unmarshal([]byte(res.body), &page); err != nil || len(page.Entries) != 3 || page.NextCursor == nil || page.Entries[0].Target != "file:4" {
		t.Fatalf("page 1: %s", res.body)
	}
	res = app.api("GET", "/api/v1/audit?limit=3&action=backup.&cursor="+*page.NextCursor, admin, nil)
	page.NextCursor = nil
	if err := json.Unmarshal([]byte(res.body), &page); err != nil || len(page.Entries) != 2 || page.NextCursor != nil {
		t.Fatalf("page 2: %s", res.body)
	}
	if res := app.api("GET", "/api/v1/audit?limit=0", admin, nil); res.StatusCode != 400 || !strings.Contains(res.body, "limit must be") {
		t.Fatalf("bad limit: %d %s", res.StatusCode, res.body)
	}
	for _, h := range []string{"Basic abc", "Bearer", "Bearer tfd_wrong"} {
		req, _ := http.NewRequest("GET", app.url+"/api/v1/whoami", nil)
		req.Header.Set("Authorization", h)
		if res := app.client().do(req); res.StatusCode != 401 || !strings.Contains(res.body, `"code":"unauthorized"`) {
			t.Errorf("Authorization %q: %d %s", h, res.StatusCode, res.body)
		}
	}
}

// TestHSTSOnlyWhenConfigured: with Config.HSTS (an https public URL) every answer, pages, JSON,
// public ingest errors and 404s alike, carries Strict-Transport-Security for one year on this
// host only; without it none does, as a browser would otherwise pin https on a plain-http install.
func TestHSTSOnlyWhenConfigured(t *testing.T) {
	for _, hsts := range []bool{false, true} {
		app := newTestApp(t, func(c *Config) { c.HSTS = hsts })
		c, _ := app.login(db.RoleViewer)
		want := map[bool]string{false: "", true: "max-age=31536000"}[hsts]
		for _, path := range []string{"/", "/login", "/healthz", "/nope", "/api/v1/whoami", static.URL("css/app.css")} {
			if got := c.get(path).Header.Get("Strict-Transport-Security"); got != want {
				t.Errorf("HSTS %v: %s answered Strict-Transport-Security %q, want %q", hsts, path, got, want)
			}
		}
		res, err := http.Post(app.url+"/hooks/sandbox", "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if got := res.Header.Get("Strict-Transport-Security"); got != want || res.StatusCode != http.StatusUnauthorized {
			t.Errorf("HSTS %v: refused webhook answered %d with Strict-Transport-Security %q, want 401 and %q", hsts, res.StatusCode, got, want)
		}
	}
}
