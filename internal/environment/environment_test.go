package environment

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/dbtest"
	"github.com/tensfer-golive/dashboard/internal/secrets"
	"github.com/tensfer-golive/dashboard/internal/validation"
)

// newService opens a real SQLite file in a temp dir and returns a Service over it, and a counter
// of SecretsChanged calls.
func newService(t *testing.T, allowLoopback bool) (*Service, *db.DB, *int) {
	t.Helper()
	d, err := dbtest.New(t).Open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	key, err := secrets.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	box, err := secrets.NewBox(key)
	if err != nil {
		t.Fatal(err)
	}
	changed := 0
	return New(Config{DB: d, Box: box, AllowLoopbackURLs: allowLoopback, SecretsChanged: func() { changed++ }}), d, &changed
}

func ptr[T any](v T) *T { return &v }

var audit = db.Audit{Actor: "test", Action: "environment.update"}

func TestUpdateStoresNothingWhenAFieldIsInvalid(t *testing.T) {
	s, d, _ := newService(t, false)
	ctx := context.Background()
	in := Input{BaseURL: ptr("https://api.tensfer.example"), CallbackURL: ptr("http://app.example.com/back"),
		Keys: map[string]string{db.KeySecret: "sk_live_1234567890"}}
	_, err := s.Update(ctx, "production", in, audit)
	var errs validation.Errors
	if !errors.As(err, &errs) || !strings.Contains(errs["callback_url"], "https in production") || len(errs) != 1 {
		t.Fatalf("Update = %v, want one field error on callback_url", err)
	}
	st, _ := s.Load(ctx, "production")
	keys, _ := d.ListEnvKeys(ctx, "")
	if st.Env.BaseURL != "" || st.Env.Version != 1 || len(keys) != 0 {
		t.Fatalf("a refused change stored something: %+v, %d keys", st.Env, len(keys))
	}
	if _, err := s.Update(ctx, "production", Input{}, audit); !errors.Is(err, ErrNothingToChange) {
		t.Fatalf("empty input: %v", err)
	}
	if _, err := s.Update(ctx, "staging", in, audit); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("unknown environment: %v", err)
	}
}

// Saving the values already set (a form submitted untouched) writes nothing: no new version, no
// audit row; a real change after it is stored and audited as usual.
func TestUpdateWithTheSameValuesWritesNothing(t *testing.T) {
	s, d, _ := newService(t, false)
	ctx := context.Background()
	auditRows := func() int {
		t.Helper()
		var n int
		if err := d.R.QueryRow("SELECT count(*) FROM audit_log").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	in := Input{BaseURL: ptr("https://api.tensfer.example"), CallbackURL: ptr("https://app.example.com/back"),
		AllowedOrigins: ptr([]string{"https://app.example.com", "https://b.example.com"})}
	if _, err := s.Update(ctx, "production", in, audit); err != nil {
		t.Fatal(err)
	}
	st, _ := s.Load(ctx, "production")
	rows := auditRows()
	for _, tc := range []struct {
		name string
		in   Input
	}{
		{"every field the same", in},
		{"one field the same", Input{BaseURL: ptr("https://api.tensfer.example")}},
		{"origins the same", Input{AllowedOrigins: ptr([]string{"https://app.example.com", "https://b.example.com"})}},
	} {
		if _, err := s.Update(ctx, "production", tc.in, audit); !errors.Is(err, ErrUnchanged) {
			t.Errorf("%s: Update = %v, want ErrUnchanged", tc.name, err)
		}
		if got, _ := s.Load(ctx, "production"); got.Env.Version != st.Env.Version || auditRows() != rows {
			t.Errorf("%s: version %d → %d, audit rows %d → %d", tc.name, st.Env.Version, got.Env.Version, rows, auditRows())
		}
	}
	// Reordered origins are a change (the order is kept and shown).
	if _, err := s.Update(ctx, "production", Input{AllowedOrigins: ptr([]string{"https://b.example.com", "https://app.example.com"})}, audit); err != nil {
		t.Fatalf("reordered origins: %v", err)
	}
	if got, _ := s.Load(ctx, "production"); got.Env.Version != st.Env.Version+1 || auditRows() != rows+1 {
		t.Errorf("a real change: version %d, %d audit rows", got.Env.Version, auditRows())
	}
}

// URLs are taken as typed or refused: characters url.Parse would quietly percent-encode (and so
// store something else) and addresses the outbound client refuses anyway are errors that say so.
func TestURLsRefuseOddCharactersAndInternalAddresses(t *testing.T) {
	s, _, _ := newService(t, true)
	for _, tc := range []struct {
		url, want string // want: text of the error, "" when the URL is fine
	}{
		{"https://api.tensfer.example/v1", ""},
		{"https://api.tensfer.example/a%3Cb%3E", ""},
		{"https://münchen.example/", ""},
		{"http://127.0.0.1:9000", ""},
		{"https://a.example/<script>alert(1)</script>", "percent-encode"},
		{"https://a.example/a b", "percent-encode"},
		{"https://a.example/\"x\"", "percent-encode"},
		{"https://a.example/\\..\\", "percent-encode"},
		{"https://a.example/\x00", "percent-encode"},
		{"https://a.example/\xff", "percent-encode"},
		{"https://169.254.169.254/latest/meta-data", "internal address"},
		{"https://10.0.0.8/", "internal address"},
		{"https://[fd00::1]/", "internal address"},
		{"https://0.0.0.0/", "internal address"},
		{"https://100.64.0.1/", "internal address"}, // shared address space: the outbound client refuses it too
	} {
		_, errs, err := s.Validate(context.Background(), "production", Input{ReplayURL: ptr(tc.url)})
		if err != nil {
			t.Fatal(err)
		}
		if got := errs["replay_url"]; tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
			t.Errorf("%q: %q, want an error saying %q", tc.url, got, tc.want)
		}
	}
}

func TestLoopbackURLsOnlyWhenAllowed(t *testing.T) {
	for _, allow := range []bool{false, true} {
		s, _, _ := newService(t, allow)
		_, errs, err := s.Validate(context.Background(), "production", Input{BaseURL: ptr("http://127.0.0.1:9000")})
		if err != nil {
			t.Fatal(err)
		}
		if errs.Has("base_url") == allow {
			t.Errorf("allow loopback %v: errors %v", allow, errs)
		}
	}
}

func TestKeysAreSealedPerEnvironmentAndRevealedWithAudit(t *testing.T) {
	s, d, _ := newService(t, false)
	ctx := context.Background()
	change, err := s.Update(ctx, "production", Input{Keys: map[string]string{db.KeySecret: "sk_live_1234567890"}}, audit)
	if err != nil {
		t.Fatal(err)
	}
	if len(change.Keys) != 1 || change.Keys[0].Last4 != "7890" || strings.Contains(change.Keys[0].Sealed, "sk_live") {
		t.Fatalf("change keys: %+v", change.Keys)
	}
	st, _ := s.Load(ctx, "production")
	k, ok := st.Active(db.KeySecret)
	if !ok {
		t.Fatal("no active secret key")
	}
	if _, _, err := s.RevealKey(ctx, "production", k.ID, " ", audit); !errors.As(err, new(validation.Problem)) {
		t.Fatalf("reveal without a reason: %v", err)
	}
	if _, _, err := s.RevealKey(ctx, "sandbox", k.ID, "support ticket 42", audit); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("reveal through the other environment: %v", err)
	}
	entries, _, _ := d.ListAudit(ctx, db.AuditFilter{Limit: 50})
	before := len(entries)
	_, value, err := s.RevealKey(ctx, "production", k.ID, "support ticket 42", db.Audit{Actor: "test", Action: "environment.key_reveal"})
	if err != nil || value != "sk_live_1234567890" {
		t.Fatalf("reveal = %q, %v", value, err)
	}
	entries, _, _ = d.ListAudit(ctx, db.AuditFilter{Limit: 50})
	if len(entries) != before+1 || !strings.Contains(string(entries[0].After), "support ticket 42") || strings.Contains(string(entries[0].After), "sk_live") {
		t.Fatalf("reveal audit: %d rows, newest %s", len(entries), entries[0].After)
	}
	cfg, err := s.AppConfig(st, false)
	if err != nil || cfg.SecretKey != nil {
		t.Fatalf("config without secrets:read carries the secret key: %+v %v", cfg, err)
	}
	if cfg, _ = s.AppConfig(st, true); cfg.SecretKey == nil || *cfg.SecretKey != "sk_live_1234567890" {
		t.Fatalf("config with secrets:read: %+v", cfg)
	}
}

func TestWebhookSecretsTellTheCacheAndRefuseDuplicates(t *testing.T) {
	s, _, changed := newService(t, false)
	ctx := context.Background()
	sec, generated, err := s.AddWebhookSecret(ctx, "production", "", 24*time.Hour, audit)
	if err != nil || !strings.HasPrefix(generated, "whsec_") || sec.ExpiresAt.IsZero() || *changed != 1 {
		t.Fatalf("generate: %+v %q %v (changed %d)", sec, generated, err, *changed)
	}
	if _, _, err := s.AddWebhookSecret(ctx, "production", generated, 0, audit); !errors.As(err, new(validation.Problem)) {
		t.Fatalf("the same secret twice: %v", err)
	}
	if _, _, err := s.AddWebhookSecret(ctx, "production", "whsec_not base64!", 0, audit); !errors.As(err, new(validation.Problem)) {
		t.Fatalf("a malformed secret: %v", err)
	}
	if err := s.RetireWebhookSecret(ctx, "production", sec.ID, audit); err != nil {
		t.Fatal(err)
	}
	if err := s.RetireWebhookSecret(ctx, "production", sec.ID, audit); !errors.Is(err, db.ErrNotFound) {
		t.Fatalf("retire twice: %v", err)
	}
	if *changed < 3 {
		t.Fatalf("SecretsChanged called %d times; every add and retire must drop the key cache", *changed)
	}
}

func TestOriginAllowed(t *testing.T) {
	s, _, _ := newService(t, false)
	ctx := context.Background()
	if _, err := s.Update(ctx, "sandbox", Input{AllowedOrigins: &[]string{"https://App.Example.com:443", "http://localhost:3000"}}, audit); err != nil {
		t.Fatal(err)
	}
	for origin, want := range map[string]bool{"https://app.example.com": true, "HTTP://LOCALHOST:3000": true, "https://evil.example": false, "null": false} {
		if got, err := s.OriginAllowed(ctx, "sandbox", origin); err != nil || got != want {
			t.Errorf("OriginAllowed(%q) = %v, %v; want %v", origin, got, err, want)
		}
	}
}
