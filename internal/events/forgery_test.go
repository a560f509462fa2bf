package events

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/secrets"
	"github.com/tensfer-golive/dashboard/internal/tensfer"
)

// addBeaconKey stores a beacon key for env as the environment service does (rotating the current
// one when there is one), and returns its text.
func (f *fixture) addBeaconKey(t *testing.T, env string, overlap time.Duration) string {
	t.Helper()
	text := fmt.Sprintf("tbk_test-key-%s-%d", env, time.Now().UnixNano())
	id := fmt.Sprintf("bk_%d", time.Now().UnixNano())
	sealed, err := f.box.Seal([]byte(text), secrets.BeaconKeyContext(env, id))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.InsertBeaconKey(context.Background(), db.BeaconKey{ID: id, Env: env, Sealed: sealed}, overlap, db.Audit{Actor: "test", Action: "environment.beacon_key_create"}); err != nil {
		t.Fatal(err)
	}
	f.svc.InvalidateSecrets()
	return text
}

func beacon(event, user, token string) []byte {
	if token == "" {
		return fmt.Appendf(nil, `{"event":%q,"user_id":%q}`, event, user)
	}
	return fmt.Appendf(nil, `{"event":%q,"user_id":%q,"token":%q}`, event, user, token)
}

// TestBeaconTokens: a token verifies for its environment and user, before its expiry, with a
// current beacon key or one rotated within the overlap; anything else is stored unverified with
// the reason.
func TestBeaconTokens(t *testing.T) {
	f := newFixture(t)
	f.now = time.Now() // rotation is stamped by the database's (real) clock
	ctx := context.Background()
	if b, err := f.svc.ParseBeacon(ctx, "production", beacon("screen_loaded", "u1", MintBeaconToken("tbk_x", "production", "u1", f.now.Add(time.Hour)))); err != nil || b.Verified ||
		!strings.Contains(b.TokenError, "no beacon key") {
		t.Fatalf("before any key: %+v %v", b, err)
	}
	old := f.addBeaconKey(t, "production", 0)
	sandbox := f.addBeaconKey(t, "sandbox", 0)
	cur := f.addBeaconKey(t, "production", time.Hour) // rotation: old verifies for an hour more
	in := f.now.Add(time.Hour)
	tests := []struct {
		name, user, token, wantErr string
		later                      time.Duration // the clock moves this much before the check
	}{
		{name: "current key", user: "u1", token: MintBeaconToken(cur, "production", "u1", in)},
		{name: "rotated key within the overlap", user: "u1", token: MintBeaconToken(old, "production", "u1", in)},
		{name: "rotated key after the overlap", user: "u1", token: MintBeaconToken(old, "production", "u1", f.now.Add(3*time.Hour)), later: 2 * time.Hour, wantErr: "does not match"},
		{name: "another user's token", user: "u2", token: MintBeaconToken(cur, "production", "u1", in), wantErr: "does not match"},
		{name: "the sandbox key", user: "u1", token: MintBeaconToken(sandbox, "production", "u1", in), wantErr: "does not match"},
		{name: "a sandbox token", user: "u1", token: MintBeaconToken(cur, "sandbox", "u1", in), wantErr: "does not match"},
		{name: "expired", user: "u1", token: MintBeaconToken(cur, "production", "u1", f.now.Add(-2*time.Minute)), wantErr: "has expired"},
		{name: "expiry too far ahead", user: "u1", token: MintBeaconToken(cur, "production", "u1", f.now.Add(25*time.Hour)), wantErr: "more than 24h0m0s ahead"},
		{name: "no user id", user: "", token: MintBeaconToken(cur, "production", "", in), wantErr: "needs the beacon's user_id"},
		{name: "mac changed", user: "u1", token: MintBeaconToken(cur, "production", "u1", in)[:40] + "AAAA", wantErr: "mac is not"},
		{name: "expiry changed", user: "u1", token: strings.Replace(MintBeaconToken(cur, "production", "u1", in), fmt.Sprint(in.Unix()), fmt.Sprint(in.Unix()+60), 1), wantErr: "does not match"},
		{name: "not a token", user: "u1", token: "hello", wantErr: "is not in the form"},
		{name: "another version", user: "u1", token: "v2" + MintBeaconToken(cur, "production", "u1", in)[2:], wantErr: "is not in the form"},
		{name: "too long", user: "u1", token: strings.Repeat("v", 200), wantErr: "is too long"},
	}
	start := f.now
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.now = start.Add(tt.later)
			f.svc.InvalidateSecrets()
			b, err := f.svc.ParseBeacon(ctx, "production", beacon("screen_loaded", tt.user, tt.token))
			if err != nil {
				t.Fatal(err)
			}
			if b.Verified != (tt.wantErr == "") || !strings.Contains(b.TokenError, tt.wantErr) || (tt.wantErr != "" && b.TokenError == "") {
				t.Fatalf("verified %v, error %q; want error %q", b.Verified, b.TokenError, tt.wantErr)
			}
		})
	}
	f.now = start
	// A token that is not a string is a bad token, not a bad beacon.
	if b, err := f.svc.ParseBeacon(ctx, "production", []byte(`{"event":"x","user_id":"u1","token":7}`)); err != nil || b.Verified || b.TokenError != "beacon token must be a string" {
		t.Fatalf("numeric token: %+v %v", b, err)
	}
}

// TestOnlyVerifiedBeaconsCountAndForgedOnesCannotStarveThem: unsigned init errors from many
// senders spend their own budget and never count; verified beacons are stored past that flood,
// each user counted once however many beacons it sends; the token is not stored.
func TestOnlyVerifiedBeaconsCountAndForgedOnesCannotStarveThem(t *testing.T) {
	f := newFixture(t, fixedBudget)
	ctx := context.Background()
	key := f.addBeaconKey(t, "production", 0)
	since := time.Now().Add(-time.Second) // the writer stamps received_at with the real clock
	refused := 0
	for i := range 200 {
		_, err := f.svc.ReceiveCallback(ctx, "production", beacon("initialization_error", fmt.Sprintf("forged-%d", i), "v1.1.forged"), nil, fmt.Sprintf("203.0.113.%d", i%250))
		var r *Refusal
		if errors.As(err, &r) && r.Reason == RefusedQuota {
			refused++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if refused == 0 {
		t.Fatal("the unsigned flood never reached its budget")
	}
	for i := range 14 { // genuine users: each a screen, five an init error too (19 rows, within the burst of 20)
		user := fmt.Sprintf("user-%d", i)
		tok := MintBeaconToken(key, "production", user, f.now.Add(time.Hour))
		for _, ev := range []string{"initialization_error", "screen_loaded"} {
			if i >= 5 && ev == "initialization_error" {
				continue
			}
			if _, err := f.svc.ReceiveCallback(ctx, "production", beacon(ev, user, tok), nil, "198.51.100.1"); err != nil {
				t.Fatalf("verified beacon of %s after the flood: %v", user, err)
			}
		}
	}
	figs, err := f.svc.GuardrailFigures(ctx, since, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if got := figs["init_errors"]; got != (db.SignalCount{Bad: 5, Total: 14}) {
		t.Fatalf("init_errors = %+v, want 5 of 14 verified users", got)
	}
	var withToken int
	f.db.R.QueryRow(`SELECT count(*) FROM events WHERE payload LIKE '%token%'`).Scan(&withToken)
	if withToken != 0 {
		t.Fatalf("%d stored beacons keep their token", withToken)
	}
}

// TestAVerifiedUserCannotSpendEveryonesBudget: one user's valid token (an attacker can be a user
// of the integrator's app) is limited per user; another user's beacons still go through.
func TestAVerifiedUserCannotSpendEveryonesBudget(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	key := f.addBeaconKey(t, "production", 0)
	tok := MintBeaconToken(key, "production", "noisy", f.now.Add(time.Hour))
	limited := 0
	for i := range 100 {
		if _, err := f.svc.ReceiveCallback(ctx, "production", beacon("initialization_error", "noisy", tok), nil, fmt.Sprint(i)); err != nil {
			var r *Refusal
			if !errors.As(err, &r) || r.Reason != RefusedRateLimited {
				t.Fatal(err)
			}
			limited++
		}
	}
	if limited != 40 {
		t.Fatalf("%d of one user's 100 beacons at once refused, want 40 (a burst of 60)", limited)
	}
	other := MintBeaconToken(key, "production", "quiet", f.now.Add(time.Hour))
	if _, err := f.svc.ReceiveCallback(ctx, "production", beacon("initialization_error", "quiet", other), nil, "0"); err != nil {
		t.Fatalf("another user's beacon: %v", err)
	}
}

// TestRejectedWebhooksCountOnlyValidSignatures: a refusal counts toward the guardrail only when
// its signature verified with a secret of production (active, or retired lately) and it was
// refused for another reason, once per webhook-id; unsigned, badly signed and sandbox-signed
// deliveries never count, from whatever address.
func TestRejectedWebhooksCountOnlyValidSignatures(t *testing.T) {
	f := newFixture(t)
	f.now = time.Now() // retirement is stamped by the database's (real) clock
	ctx := context.Background()
	prod := f.addSecret(t, "production")
	sandbox := f.addSecret(t, "sandbox")
	since := time.Now().Add(-time.Second)
	send := func(env, id, body string, key []byte, at time.Time, addr string) error {
		h := http.Header{}
		tensfer.SignHeaders(h, id, at, []byte(body), key)
		_, err := f.svc.ReceiveWebhook(ctx, Delivery{Env: env, Header: h, Body: []byte(body), Client: addr, IP: addr})
		return err
	}
	// The sender delivered valid webhooks to both environments before.
	if send("production", "ok-1", `{"type":"x"}`, prod, f.now, "203.0.113.7") != nil || send("sandbox", "ok-2", `{"type":"x"}`, sandbox, f.now, "198.51.100.9") != nil {
		t.Fatal("valid webhooks refused")
	}
	never := []struct{ name, addr string }{{"unsigned", "203.0.113.7"}, {"badly signed", "203.0.113.7"}, {"sandbox-signed", "198.51.100.9"}}
	for _, n := range never {
		for i := range 20 {
			h := http.Header{}
			switch n.name {
			case "badly signed":
				tensfer.SignHeaders(h, fmt.Sprint("bad-", i), f.now, []byte(`{}`), []byte("not the secret at all, 32 bytes!"))
			case "sandbox-signed":
				tensfer.SignHeaders(h, fmt.Sprint("sb-", i), f.now, []byte(`{}`), sandbox)
			}
			if _, err := f.svc.ReceiveWebhook(ctx, Delivery{Env: "production", Header: h, Body: []byte(`{}`), Client: n.addr, IP: n.addr}); err == nil {
				t.Fatalf("%s delivery accepted", n.name)
			}
		}
	}
	figs, _ := f.svc.GuardrailFigures(ctx, since, time.Time{})
	if got := figs["rejected_webhooks"]; got != (db.SignalCount{Bad: 0, Total: 1}) {
		t.Fatalf("after unsigned, badly signed and sandbox-signed refusals: %+v, want none counted", got)
	}
	// Refusals that only a holder of production's secret can make count, each webhook-id once.
	for range 3 { // one delivery out of tolerance, replayed
		if err := send("production", "late-1", `{"type":"x"}`, prod, f.now.Add(-time.Hour), "203.0.113.8"); err == nil {
			t.Fatal("a late delivery was accepted")
		}
	}
	if err := send("production", "malformed-1", `[not json`, prod, f.now, "203.0.113.8"); err == nil {
		t.Fatal("a malformed body was accepted")
	}
	if err := f.db.RetireWebhookSecret(ctx, "production", "whs_production", db.Audit{Actor: "test", Action: "environment.webhook_secret_retire"}); err != nil {
		t.Fatal(err)
	}
	f.svc.InvalidateSecrets()
	var rej *Rejection
	if err := send("production", "retired-1", `{"type":"x"}`, prod, f.now, "203.0.113.8"); !errors.As(err, &rej) || rej.Reason != db.RejectRetiredSecret {
		t.Fatalf("a delivery signed with a retired secret: %v", err)
	}
	figs, _ = f.svc.GuardrailFigures(ctx, since, time.Time{})
	if got := figs["rejected_webhooks"]; got != (db.SignalCount{Bad: 3, Total: 4}) {
		t.Fatalf("rejected_webhooks = %+v, want the late, malformed and retired-secret ones once each, of 4", got)
	}
	// A week after retirement, the old secret no longer vouches for anything.
	f.now = f.now.Add(RetiredSecretGrace + time.Hour)
	f.svc.InvalidateSecrets()
	if err := send("production", "retired-2", `{"type":"x"}`, prod, f.now, "203.0.113.8"); !errors.As(err, &rej) || rej.Reason == db.RejectRetiredSecret {
		t.Fatalf("a long-retired secret: %v", err)
	}
}

// TestVerifyFailuresCountOnlyKeysThatTensferRefused: an unreachable or failing base URL is a
// configuration error and counts neither as a failure nor as a verification.
func TestVerifyFailuresCountOnlyKeysThatTensferRefused(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	since := time.Now().Add(-time.Second)
	record := func(outcomes ...string) {
		for _, o := range outcomes {
			if err := f.db.RecordVerification(ctx, "production", db.Verification{Outcome: o}, db.Audit{Actor: "test", Action: "environment.verify"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	record("unreachable", "unreachable", "error", "ok")
	figs, _ := f.svc.GuardrailFigures(ctx, since, time.Time{})
	if got := figs["verify_failures"]; got != (db.SignalCount{Bad: 0, Total: 1}) {
		t.Fatalf("after unreachable and failing base URLs: %+v, want no failure of 1", got)
	}
	record("wrong_key", "wrong_environment")
	figs, _ = f.svc.GuardrailFigures(ctx, since, time.Time{})
	if got := figs["verify_failures"]; got != (db.SignalCount{Bad: 2, Total: 3}) {
		t.Fatalf("after refused keys: %+v, want 2 of 3", got)
	}
}

// TestBeaconTokenExamplesInTheDocs runs the Node and Python minting examples of docs/tensfer.md
// and checks that the Go verifier accepts what they mint (and that they mint what Go mints).
func TestBeaconTokenExamplesInTheDocs(t *testing.T) {
	doc, err := os.ReadFile("../../docs/tensfer.md")
	if err != nil {
		t.Fatal(err)
	}
	section := string(doc[strings.Index(string(doc), "#### Beacon tokens"):])
	block := func(lang string) string {
		_, rest, ok := strings.Cut(section, "```"+lang+"\n")
		code, _, ok2 := strings.Cut(rest, "```")
		if !ok || !ok2 {
			t.Fatalf("no %s example under Beacon tokens in docs/tensfer.md", lang)
		}
		return code
	}
	const key, env, user = "tbk_example-key", "production", "usr_42 ü.x"
	expiry := time.Now().Add(time.Hour).Truncate(time.Second)
	want := MintBeaconToken(key, env, user, expiry)
	runs := []struct{ lang, bin, arg, call string }{
		{"js", "node", "-e", fmt.Sprintf("\nprocess.stdout.write(mintBeaconToken(%q, %q, %q, %d));", key, env, user, expiry.Unix())},
		{"python", "python3", "-c", fmt.Sprintf("\nprint(mint_beacon_token(%q, %q, %q, %d), end='')", key, env, user, expiry.Unix())},
	}
	for _, r := range runs {
		t.Run(r.lang, func(t *testing.T) {
			bin, err := exec.LookPath(r.bin)
			if err != nil {
				t.Skipf("%s is not installed", r.bin)
			}
			out, err := exec.Command(bin, r.arg, block(r.lang)+r.call).CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v: %s", r.bin, err, out)
			}
			if string(out) != want {
				t.Fatalf("%s minted %q, Go mints %q", r.lang, out, want)
			}
			if _, _, err := checkBeaconToken([][]byte{[]byte(key)}, env, user, string(out), time.Now()); err != nil {
				t.Fatalf("the verifier refuses the %s token: %v", r.lang, err)
			}
		})
	}
}
