package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
)

// TestAuditPageShowsChangesFieldByField makes a role change, a password reset, a key change and
// a webhook secret rotation, and checks that the audit log shows each as "field: old → new",
// secrets by fingerprint or as "changed", no raw JSON in any cell, and the request id as a link
// to Lookup.
func TestAuditPageShowsChangesFieldByField(t *testing.T) {
	app := newTestApp(t)
	admin, _ := app.login(db.RoleAdmin)
	_, victim := app.login(db.RoleViewer)
	token := app.addToken("admin", auth.ScopeAdmin)

	roleRes := admin.postForm("/settings/users/"+itoa(victim.ID)+"/role", url.Values{"role": {"operator"}, "password": {testPassword}})
	if roleRes.StatusCode != http.StatusSeeOther {
		t.Fatalf("role change: %d %s", roleRes.StatusCode, roleRes.body)
	}
	const newPassword = "audit-canary heron 5512"
	if res := admin.postForm("/settings/users/"+itoa(victim.ID)+"/password", url.Values{"new_password": {newPassword}, "confirm_password": {newPassword}, "password": {testPassword}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("password reset: %d %s", res.StatusCode, res.body)
	}
	const key = "sk_sandbox_auditcanary_7731"
	if res := admin.postForm("/environments/sandbox/keys", url.Values{"kind": {"secret_key"}, "value": {key}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("key set: %d %s", res.StatusCode, res.body)
	}
	keys, err := app.db.ListEnvKeys(context.Background(), "sandbox")
	if err != nil || len(keys) == 0 {
		t.Fatalf("keys: %v %v", keys, err)
	}
	res := app.api(http.MethodPost, "/api/v1/environments/sandbox/webhook-secrets", token, nil)
	var gen struct{ ID, Secret string }
	if err := json.Unmarshal([]byte(res.body), &gen); err != nil || gen.Secret == "" {
		t.Fatalf("webhook secret: %d %s", res.StatusCode, res.body)
	}
	secrets, err := app.db.ListWebhookSecrets(context.Background(), "sandbox")
	if err != nil || len(secrets) == 0 {
		t.Fatalf("webhook secrets: %v %v", secrets, err)
	}

	page := admin.get("/audit")
	if page.StatusCode != http.StatusOK {
		t.Fatalf("audit page: %d", page.StatusCode)
	}
	doc := page.doc(t)
	changes := func(action string) []string {
		var out []string
		doc.Find(`[data-testid="audit-row"]`).Each(func(_ int, row *goquery.Selection) {
			if strings.Join(strings.Fields(row.Find(".audit-action").Text()), "") != action {
				return
			}
			row.Find(`[data-testid="change"]`).Each(func(_ int, c *goquery.Selection) {
				text := strings.Join(strings.Fields(c.Text()), " ")
				out = append(out, strings.TrimSuffix(text, " Copy"))
			})
		})
		return out
	}
	has := func(list []string, want string) bool {
		for _, s := range list {
			if s == want {
				return true
			}
		}
		return false
	}
	for _, tc := range []struct{ action, want string }{
		{"user.role", "role: viewer → operator"},
		{"user.password_reset", "password: changed"},
		{"environment.key_set", "secret_key: …" + keys[0].Last4 + " · fp " + keys[0].Fingerprint},
		{"environment.webhook_secret_add", "fingerprint: " + secrets[0].Fingerprint},
		{"environment.webhook_secret_add", "webhook_secret: " + gen.ID},
	} {
		if got := changes(tc.action); !has(got, tc.want) {
			t.Errorf("%s: changes %q, want %q among them", tc.action, got, tc.want)
		}
	}
	if n := doc.Find(`.change-secret`).Length(); n < 2 {
		t.Errorf("%d changes marked secret, want the key and the password", n)
	}
	table := doc.Find(`[data-testid="audit-table"]`)
	html, _ := table.Html()
	for _, bad := range []string{`{"`, `":`, key, newPassword, gen.Secret, strings.TrimPrefix(gen.Secret, "whsec_")} {
		if strings.Contains(table.Text(), bad) || strings.Contains(html, bad) {
			t.Errorf("the audit table shows %q", bad)
		}
	}
	reqID := roleRes.Header.Get("X-Request-Id")
	if doc.Find(`a[data-testid="audit-request-id"][href="/lookup?q=`+url.QueryEscape(reqID)+`"]`).Length() != 1 {
		t.Errorf("no lookup link for the role change's request id %s", reqID)
	}
}
