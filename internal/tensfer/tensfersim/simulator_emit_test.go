package tensfersim

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tensfer-golive/dashboard/internal/tensfer"
)

// receiver is a webhook endpoint that verifies every delivery with
// Verify and answers with the scripted statuses (0 drops the connection).
type receiver struct {
	keys     [][]byte
	statuses []int

	mu       sync.Mutex
	ids      []string
	matched  []int
	verified []error
	bodies   [][]byte
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	m, err := tensfer.Verify(rc.keys, r.Header, body, time.Now(), 0)
	rc.mu.Lock()
	n := len(rc.ids)
	rc.ids = append(rc.ids, r.Header.Get(tensfer.HeaderWebhookID))
	rc.matched = append(rc.matched, m)
	rc.verified = append(rc.verified, err)
	rc.bodies = append(rc.bodies, body)
	rc.mu.Unlock()
	status := rc.statuses[min(n, len(rc.statuses)-1)]
	switch {
	case status == 0:
		panic(http.ErrAbortHandler)
	case status >= 300 && status < 400:
		http.Redirect(w, r, "/elsewhere", status)
	default:
		w.WriteHeader(status)
		_, _ = io.WriteString(w, "status "+http.StatusText(status))
	}
}

func TestEmitWebhookRetriesUntilAccepted(t *testing.T) {
	oldKey, newKey := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	tests := []struct {
		name         string
		statuses     []int
		signWith     [][]byte
		receiverKeys [][]byte
		maxAttempts  int
		wantAttempts int
		wantErr      string
		wantSleeps   []time.Duration
		wantMatched  int
	}{
		{name: "500 twice then 200", statuses: []int{500, 500, 200}, signWith: [][]byte{newKey}, receiverKeys: [][]byte{newKey},
			wantAttempts: 3, wantSleeps: []time.Duration{time.Second, 2 * time.Second}},
		{name: "connection dropped then 204", statuses: []int{0, 204}, signWith: [][]byte{newKey}, receiverKeys: [][]byte{newKey},
			wantAttempts: 2, wantSleeps: []time.Duration{time.Second}},
		{name: "redirect is a failure", statuses: []int{302, 200}, signWith: [][]byte{newKey}, receiverKeys: [][]byte{newKey},
			wantAttempts: 2, wantSleeps: []time.Duration{time.Second}},
		{name: "401 is retried like any non-2xx", statuses: []int{401, 202}, signWith: [][]byte{newKey}, receiverKeys: [][]byte{newKey},
			wantAttempts: 2, wantSleeps: []time.Duration{time.Second}},
		{name: "gives up", statuses: []int{503}, signWith: [][]byte{newKey}, receiverKeys: [][]byte{newKey}, maxAttempts: 4,
			wantAttempts: 4, wantErr: "gave up after 4 attempts: receiver answered 503", wantSleeps: []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}},
		{name: "rotation: signed with old and new, receiver has new", statuses: []int{200}, signWith: [][]byte{oldKey, newKey},
			receiverKeys: [][]byte{newKey}, wantAttempts: 1},
		{name: "rotation: receiver has both", statuses: []int{200}, signWith: [][]byte{newKey},
			receiverKeys: [][]byte{oldKey, newKey}, wantAttempts: 1, wantMatched: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := &receiver{keys: tt.receiverKeys, statuses: tt.statuses}
			srv := httptest.NewServer(rc)
			t.Cleanup(srv.Close)
			rec := &recorder{}
			sim := New(Config{Seed: 1, Sleep: rec.sleep, WebhookMaxAttempts: tt.maxAttempts})
			ev := RandomWebhook(sim.rng, tensfer.Sandbox, time.Now())
			attempts, err := sim.EmitWebhook(t.Context(), srv.URL+"/hooks/sandbox", tt.signWith, ev)
			if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if len(attempts) != tt.wantAttempts {
				t.Fatalf("attempts = %+v, want %d", attempts, tt.wantAttempts)
			}
			for i, a := range attempts {
				last := i == len(attempts)-1
				if a.Number != i+1 || (a.Err == nil) != (last && tt.wantErr == "") {
					t.Errorf("attempt %d = %+v", i+1, a)
				}
			}
			if s := rec.Sleeps(); len(s) != len(tt.wantSleeps) || (len(s) > 0 && s[len(s)-1] != tt.wantSleeps[len(s)-1]) {
				t.Errorf("sleeps = %v, want %v", s, tt.wantSleeps)
			}
			rc.mu.Lock()
			defer rc.mu.Unlock()
			for i := range rc.ids {
				if rc.ids[i] != ev.ID {
					t.Errorf("delivery %d webhook-id = %q, want the event id %q on every attempt", i, rc.ids[i], ev.ID)
				}
				if rc.verified[i] != nil || rc.matched[i] != tt.wantMatched {
					t.Errorf("delivery %d: Verify = %d, %v; want key %d", i, rc.matched[i], rc.verified[i], tt.wantMatched)
				}
				got, err := tensfer.ParseWebhookEvent(rc.bodies[i])
				if err != nil || got.ID != ev.ID || got.Type != ev.Type || got.RequestID != ev.RequestID {
					t.Errorf("delivery %d body = %+v, %v", i, got, err)
				}
			}
		})
	}
}

func TestEmitWebhookStopsWhenContextDone(t *testing.T) {
	rc := &receiver{keys: [][]byte{{1}}, statuses: []int{500}}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(t.Context())
	sim := New(Config{Seed: 1, Sleep: func(ctx context.Context, _ time.Duration) error {
		cancel()
		return ctx.Err()
	}})
	attempts, err := sim.EmitWebhook(ctx, srv.URL, [][]byte{{1}}, tensfer.WebhookEvent{ID: "evt_1", Type: "x"})
	if err == nil || len(attempts) != 1 || !strings.Contains(err.Error(), "stopped after 1 attempts") {
		t.Fatalf("attempts = %d, err = %v; want to stop after the first", len(attempts), err)
	}
}

func TestEmitWebhookRejectsBadInput(t *testing.T) {
	sim := New(Config{Seed: 1})
	tests := []struct {
		target  string
		keys    [][]byte
		wantErr string
	}{
		{"ftp://127.0.0.1/", [][]byte{{1}}, "must be an absolute http(s) URL"},
		{"/hooks/sandbox", [][]byte{{1}}, "must be an absolute http(s) URL"},
		{"http://127.0.0.1:1/", nil, "no signing key"},
	}
	for _, tt := range tests {
		attempts, err := sim.EmitWebhook(t.Context(), tt.target, tt.keys, tensfer.WebhookEvent{Type: "x"})
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) || len(attempts) != 0 {
			t.Errorf("EmitWebhook(%q) = %d attempts, %v; want %q without attempts", tt.target, len(attempts), err, tt.wantErr)
		}
	}
}

func TestEmitCallback(t *testing.T) {
	tests := []struct {
		name    string
		status  int
		wantErr string
	}{
		{"accepted", http.StatusAccepted, ""},
		{"rejected", http.StatusBadRequest, "receiver answered 400"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got *http.Request
			var body []byte
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				got = r.Clone(context.Background())
				body, _ = io.ReadAll(r.Body)
				w.WriteHeader(tt.status)
			}))
			t.Cleanup(srv.Close)
			sim := New(Config{Seed: 3, CallbackOrigin: "https://app.example"})
			ev := tensfer.CallbackEvent{Event: tensfer.CallbackInitializationError, SessionID: "sess_1", Error: &tensfer.CallbackError{Code: "NETWORK_ERROR"}}
			a, err := sim.EmitCallback(t.Context(), srv.URL+"/callbacks/sandbox", ev)
			if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if a.Status != tt.status || a.Number != 1 {
				t.Errorf("attempt = %+v", a)
			}
			if got.Method != "POST" || got.Header.Get("Origin") != "https://app.example" || got.Header.Get("Content-Type") != "application/json" {
				t.Errorf("request = %s origin %q type %q", got.Method, got.Header.Get("Origin"), got.Header.Get("Content-Type"))
			}
			parsed, err := tensfer.ParseCallbackEvent(body)
			if err != nil || parsed.Event != ev.Event || parsed.SessionID != "sess_1" || parsed.Error.Code != "NETWORK_ERROR" {
				t.Errorf("body %s parsed = %+v, %v", body, parsed, err)
			}
		})
	}
}
