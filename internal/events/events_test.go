package events

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/dbtest"
	"github.com/tensfer-golive/dashboard/internal/secrets"
	"github.com/tensfer-golive/dashboard/internal/tensfer"
	"github.com/tensfer-golive/dashboard/internal/validation"
)

type fixture struct {
	svc *Service
	db  *db.DB
	box *secrets.Box
	now time.Time
}

// newFixture runs the event pipeline over a real SQLite file in a temp dir, at a fixed clock;
// opts may adjust its config.
func newFixture(t *testing.T, opts ...func(*fixture, *Config)) *fixture {
	t.Helper()
	ctx := context.Background()
	d, err := dbtest.New(t).Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := secrets.GenerateKey()
	box, _ := secrets.NewBox(key)
	f := &fixture{db: d, box: box, now: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	cfg := Config{DB: d, Box: box, Now: func() time.Time { return f.now }}
	for _, o := range opts {
		o(f, &cfg)
	}
	f.svc, err = New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.svc.Close(); err != nil {
			t.Error(err)
		}
		d.Close()
	})
	return f
}

// addSecret stores a signing secret for env the way the environment service does, and drops the
// key cache as it would.
func (f *fixture) addSecret(t *testing.T, env string) []byte {
	t.Helper()
	secret, _ := tensfer.GenerateSecret()
	key, _ := tensfer.ParseSecret(secret)
	id := "whs_" + env
	sealed, err := f.box.Seal([]byte(secret), secrets.WebhookSecretContext(env, id))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.InsertWebhookSecret(context.Background(), db.WebhookSecret{ID: id, Env: env, Sealed: sealed, Fingerprint: f.box.Fingerprint(key)},
		db.Audit{Actor: "test", Action: "environment.webhook_secret_add"}); err != nil {
		t.Fatal(err)
	}
	f.svc.InvalidateSecrets()
	return key
}

func (f *fixture) delivery(env, id string, body string, key []byte) Delivery {
	h := http.Header{}
	if key != nil {
		tensfer.SignHeaders(h, id, f.now, []byte(body), key)
	}
	return Delivery{Env: env, Header: h, Body: []byte(body), Client: "192.0.2.1", IP: "192.0.2.1", RequestID: "req_test"}
}

func TestReceiveWebhook(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	key := f.addSecret(t, "production")
	other := f.addSecret(t, "sandbox")
	body := `{"id":"evt_1","type":"payment.cancelled","request_id":"req_abc","data":{"user_id":"u_7"}}`

	res, err := f.svc.ReceiveWebhook(ctx, f.delivery("production", "msg_1", body, key))
	if err != nil || res.ID == 0 || res.Duplicate {
		t.Fatalf("first delivery: %+v %v", res, err)
	}
	again, err := f.svc.ReceiveWebhook(ctx, f.delivery("production", "msg_1", body, key))
	if err != nil || !again.Duplicate || again.ID != res.ID {
		t.Fatalf("repeated webhook-id: %+v %v", again, err)
	}
	e, err := f.db.EventByID(ctx, res.ID)
	if err != nil || e.Type != "payment.cancelled" || e.RequestID != "req_abc" || e.UserID != "u_7" || !strings.Contains(string(e.Verification), "whs_production") {
		t.Fatalf("stored event: %+v %v", e, err)
	}

	refusals := []struct {
		name   string
		d      Delivery
		reason string
	}{
		{"signed with the other environment's secret", f.delivery("production", "msg_2", body, other), db.RejectNoMatchingSignature},
		{"unsigned", f.delivery("production", "msg_3", body, nil), db.RejectMissingHeader},
		{"not JSON", f.delivery("production", "msg_4", "not json", key), db.RejectMalformedJSON},
		{"unknown environment", f.delivery("staging", "msg_5", body, key), db.RejectUnknownEnvironment},
		{"too large", func() Delivery { d := f.delivery("production", "msg_6", body, key); d.TooLarge = true; return d }(), db.RejectBodyTooLarge},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.svc.ReceiveWebhook(ctx, tt.d)
			var rej *Rejection
			if !errors.As(err, &rej) || rej.Reason != tt.reason || rej.Message == "" {
				t.Fatalf("got %v, want a rejection for %s", err, tt.reason)
			}
			kept, _, err := f.db.ListRejected(ctx, "", 0, 1)
			if err != nil || len(kept) != 1 || kept[0].Reason != tt.reason || kept[0].RequestID != "req_test" {
				t.Fatalf("newest kept refusal: %+v %v", kept, err)
			}
		})
	}
	stored, _, _ := f.db.ListEvents(ctx, db.EventFilter{Limit: 10})
	if len(stored) != 1 {
		t.Fatalf("%d events stored, want only the verified one", len(stored))
	}
}

func TestSigningKeysFollowRetirementAtOnce(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	key := f.addSecret(t, "production")
	if _, err := f.svc.ReceiveWebhook(ctx, f.delivery("production", "msg_1", `{"type":"x"}`, key)); err != nil {
		t.Fatal(err)
	}
	if err := f.db.RetireWebhookSecret(ctx, "production", "whs_production", db.Audit{Actor: "test", Action: "retire"}); err != nil {
		t.Fatal(err)
	}
	f.svc.InvalidateSecrets()
	_, err := f.svc.ReceiveWebhook(ctx, f.delivery("production", "msg_2", `{"type":"x"}`, key))
	if !errors.As(err, new(*Rejection)) {
		t.Fatalf("a retired secret still verifies: %v", err)
	}
}

func TestTestEventGoesThroughTheRealPipeline(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if _, err := f.svc.SendTestEvent(ctx, "sandbox", "ana@example.com", Delivery{}); !errors.As(err, new(validation.Problem)) {
		t.Fatalf("without a secret: %v, want a problem saying to add one", err)
	}
	f.addSecret(t, "sandbox")
	out, err := f.svc.SendTestEvent(ctx, "sandbox", "ana@example.com", Delivery{Client: "c", IP: "192.0.2.9"})
	if err != nil || out.Refused != nil || out.Result.ID == 0 {
		t.Fatalf("test event: %+v %v", out, err)
	}
	evs, _, err := f.svc.Lookup(ctx, out.RequestID)
	if err != nil || len(evs) != 1 || evs[0].Type != TestEventType || evs[0].Source != db.SourceWebhook {
		t.Fatalf("lookup of the test event's request_id: %+v %v", evs, err)
	}
	id, err := f.svc.Reverify(ctx, evs[0])
	if err != nil || id != "whs_sandbox" {
		t.Fatalf("reverify: %q %v", id, err)
	}
	facts, err := f.svc.GoLiveFacts(ctx)
	if err != nil || facts.ProdWebhookVerified {
		t.Fatalf("a sandbox test event counts as a production webhook: %+v %v", facts, err)
	}
}

func TestAPICallsAndTheDashboardsOwnCalls(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	st := 503
	if _, err := f.svc.RecordAPICall(ctx, APICall{Env: "production", Method: "get", Path: "/v1/payments", Status: &st, RequestID: "req_5xx"}); err != nil {
		t.Fatal(err)
	}
	_, err := f.svc.RecordAPICall(ctx, APICall{Env: "prod", Method: "FETCH", Path: "v1"})
	var errs validation.Errors
	if !errors.As(err, &errs) || !errs.Has("env") || !errs.Has("method") || !errs.Has("path") || !errs.Has("status") {
		t.Fatalf("invalid report: %v", err)
	}
	f.svc.ObserveTensferCall(ctx, tensfer.Call{Env: tensfer.Production, Method: "GET", Path: "/v1/keys/check", Status: 200, RequestID: "req_own"})
	f.svc.ObserveTensferCall(ctx, tensfer.Call{Env: tensfer.Production, Method: "GET", Path: "/v1/keys/check", Err: &tensfer.Error{Kind: tensfer.KindCanceled, Message: "canceled"}, RequestID: "req_cancelled"})
	for q, want := range map[string]int{"req_5xx": 1, "req_own": 1, "req_cancelled": 0} {
		n := 0
		err := f.svc.EachByRequestID(ctx, q, LookupLimit, func(db.Event) error { n++; return nil })
		if err != nil || n != want {
			t.Errorf("%s: %d events, %v; want %d", q, n, err, want)
		}
	}
	sig, err := f.svc.Signals(ctx, time.Now().Add(-time.Hour)) // the writer stamps received_at from the real clock
	if err != nil || sig["production"].APIErrors != 1 {
		t.Fatalf("signals: %+v %v", sig, err)
	}
}
