package tensfer

import (
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestParseWebhookEvent(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		wantErr string
		check   func(t *testing.T, e WebhookEvent)
	}{
		{name: "payment.cancelled", body: `{"id":"evt_1","type":"payment.cancelled","created_at":"2025-01-02T15:04:05Z","request_id":"req_1",
			"data":{"payment_id":"pay_1","user_id":"usr_1","amount":1250,"currency":"GBP","cancelled_at":"2025-01-02T15:04:00Z","cancelled_by":"user","reason":null}}`,
			check: func(t *testing.T, e WebhookEvent) {
				if e.ID != "evt_1" || e.Type != EventPaymentCancelled || !e.Type.Known() || e.RequestID != "req_1" ||
					!e.CreatedAt.Equal(time.Date(2025, 1, 2, 15, 4, 5, 0, time.UTC)) || e.Extra != nil {
					t.Errorf("event = %+v", e)
				}
				var d PaymentCancelledData
				if err := e.DecodeData(&d); err != nil || d.PaymentID != "pay_1" || d.Amount != 1250 || d.Reason != nil {
					t.Errorf("data = %+v, %v", d, err)
				}
			}},
		{name: "unknown type and fields kept", body: `{"id":"evt_2","type":"account.balance_updated","api_version":"2025-09-01","livemode":false,"data":{"new":true}}`,
			check: func(t *testing.T, e WebhookEvent) {
				if e.Type != "account.balance_updated" || e.Type.Known() {
					t.Errorf("type = %q known=%v", e.Type, e.Type.Known())
				}
				if string(e.Extra["api_version"]) != `"2025-09-01"` || string(e.Extra["livemode"]) != "false" || string(e.Data) != `{"new":true}` {
					t.Errorf("extra = %v data = %s", e.Extra, e.Data)
				}
			}},
		{name: "nulls and odd created_at tolerated", body: `{"id":null,"type":"identity.profile_ready","request_id":null,"created_at":"yesterday","data":null}`,
			check: func(t *testing.T, e WebhookEvent) {
				if e.ID != "" || e.RequestID != "" || !e.CreatedAt.IsZero() || string(e.Data) != "null" {
					t.Errorf("event = %+v", e)
				}
			}},
		{name: "raw kept", body: ` {"type":"x.y" , "z":[1,2]} `, check: func(t *testing.T, e WebhookEvent) {
			if string(e.Raw) != ` {"type":"x.y" , "z":[1,2]} ` {
				t.Errorf("raw = %q", e.Raw)
			}
		}},
		{name: "array", body: `[{"type":"x"}]`, wantErr: "webhook body must be a JSON object"},
		{name: "string", body: `"payment.cancelled"`, wantErr: "webhook body must be a JSON object"},
		{name: "null", body: `null`, wantErr: "webhook body must be a JSON object"},
		{name: "number", body: `42`, wantErr: "webhook body must be a JSON object"},
		{name: "empty", body: ``, wantErr: "webhook body must be a JSON object"},
		{name: "invalid json", body: `{"type":`, wantErr: "webhook body is not valid JSON"},
		{name: "trailing garbage", body: `{"type":"a"} x`, wantErr: "not valid JSON"},
		{name: "invalid UTF-8", body: "{\"type\":\"a\xff\"}", wantErr: "webhook body is not valid UTF-8"},
		{name: "missing type", body: `{"id":"evt_1"}`, wantErr: "type is required"},
		{name: "type not a string", body: `{"type":7}`, wantErr: "type must be a string"},
		{name: "id too long", body: `{"type":"a","id":"` + strings.Repeat("x", 256) + `"}`, wantErr: "id must be at most 255 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := ParseWebhookEvent([]byte(tt.body))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseWebhookEvent: %v", err)
			}
			tt.check(t, e)
		})
	}
}

func TestWebhookEventRoundTrip(t *testing.T) {
	in := `{"id":"evt_2","type":"consent.expiring_soon","created_at":"2025-01-02T15:04:05Z","request_id":"req_9","data":{"a":1},"extra":{"b":[true]}}`
	e, err := ParseWebhookEvent([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var a, b map[string]any
	_ = json.Unmarshal([]byte(in), &a)
	_ = json.Unmarshal(out, &b)
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if string(ja) != string(jb) {
		t.Errorf("round trip lost something:\n in  %s\n out %s", ja, jb)
	}
}

func TestParseCallbackEvent(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		wantErr   string
		wantField string
		check     func(t *testing.T, e CallbackEvent)
	}{
		{name: "initialization_error", body: `{"event":"initialization_error","event_id":"cb_1","session_id":"sess_1","user_id":"usr_1",
			"request_id":"req_1","screen":"consent","error":{"code":"INVALID_CLIENT_TOKEN","message":"bad token","http_status":401},"occurred_at":"2025-01-02T15:04:05.123Z"}`,
			check: func(t *testing.T, e CallbackEvent) {
				if e.Event != CallbackInitializationError || !e.Event.Known() || e.SessionID != "sess_1" || e.RequestID != "req_1" ||
					e.Error == nil || e.Error.Code != "INVALID_CLIENT_TOKEN" || e.OccurredAt.Nanosecond() != 123e6 {
					t.Errorf("event = %+v", e)
				}
				if string(e.Extra["error.http_status"]) != "401" {
					t.Errorf("unknown error member lost: %v", e.Extra)
				}
			}},
		{name: "screen_loaded minimal", body: `{"event":"screen_loaded"}`, check: func(t *testing.T, e CallbackEvent) {
			if e.Event != CallbackScreenLoaded || e.Error != nil || !e.OccurredAt.IsZero() {
				t.Errorf("event = %+v", e)
			}
		}},
		{name: "unknown event and fields kept", body: `{"event":"handoff","accounts":3,"sdk":{"v":"2"}}`, check: func(t *testing.T, e CallbackEvent) {
			if e.Event.Known() || string(e.Extra["accounts"]) != "3" || string(e.Extra["sdk"]) != `{"v":"2"}` {
				t.Errorf("event = %+v", e)
			}
		}},
		{name: "error as string", body: `{"event":"initialization_error","error":"boom"}`, check: func(t *testing.T, e CallbackEvent) {
			if e.Error == nil || e.Error.Message != "boom" {
				t.Errorf("error = %+v", e.Error)
			}
		}},
		{name: "error null", body: `{"event":"screen_loaded","error":null}`, check: func(t *testing.T, e CallbackEvent) {
			if e.Error != nil {
				t.Errorf("error = %+v, want nil", e.Error)
			}
		}},
		{name: "not an object", body: `["screen_loaded"]`, wantErr: "callback body must be a JSON object"},
		{name: "invalid UTF-8", body: "{\"event\":\"screen_loaded\",\"screen\":\"\xfe\"}", wantErr: "callback body is not valid UTF-8"},
		{name: "missing event", body: `{"session_id":"s"}`, wantErr: "event is required", wantField: "event"},
		{name: "empty event", body: `{"event":""}`, wantErr: "event is required", wantField: "event"},
		{name: "event with spaces", body: `{"event":"Screen Loaded"}`, wantErr: "event must contain only", wantField: "event"},
		{name: "event too long", body: `{"event":"` + strings.Repeat("a", 129) + `"}`, wantErr: "event must be at most 128 characters", wantField: "event"},
		{name: "session_id too long", body: `{"event":"screen_loaded","session_id":"` + strings.Repeat("s", 256) + `"}`,
			wantErr: "session_id must be at most 255 characters", wantField: "session_id"},
		{name: "screen not string", body: `{"event":"screen_loaded","screen":1}`, wantErr: "screen must be a string", wantField: "screen"},
		{name: "error wrong type", body: `{"event":"initialization_error","error":5}`, wantErr: "error must be an object", wantField: "error"},
		{name: "error message too long", body: `{"event":"initialization_error","error":{"message":"` + strings.Repeat("m", 2049) + `"}}`,
			wantErr: "error.message must be a string of at most 2048", wantField: "error.message"},
		{name: "bad occurred_at", body: `{"event":"screen_loaded","occurred_at":"2025-01-02 15:04"}`, wantErr: "occurred_at must be an RFC 3339 time", wantField: "occurred_at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := ParseCallbackEvent([]byte(tt.body))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				if fe, ok := errors.AsType[*FieldError](err); tt.wantField != "" && (!ok || fe.Field != tt.wantField) {
					t.Errorf("err = %#v, want FieldError for %q", err, tt.wantField)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseCallbackEvent: %v", err)
			}
			tt.check(t, e)
		})
	}
}

func TestCallbackEventRoundTrip(t *testing.T) {
	in := `{"event":"initialization_error","session_id":"sess_1","error":{"code":"X","message":"m","extra":1},"occurred_at":"2025-01-02T15:04:05Z","k":"v"}`
	e, err := ParseCallbackEvent([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(e)
	again, err := ParseCallbackEvent(out)
	if err != nil {
		t.Fatalf("re-parse %s: %v", out, err)
	}
	if again.SessionID != "sess_1" || again.Error.Code != "X" || string(again.Extra["error.extra"]) != "1" ||
		string(again.Extra["k"]) != `"v"` || !again.OccurredAt.Equal(e.OccurredAt) {
		t.Errorf("round trip = %+v from %s", again, out)
	}
}

func TestParseCallbackQuery(t *testing.T) {
	tests := []struct {
		query   string
		wantErr string
		check   func(t *testing.T, e CallbackEvent)
	}{
		{query: "event=accounts_connected&session_id=sess_1&user_id=usr_1&state=xyz", check: func(t *testing.T, e CallbackEvent) {
			if e.Event != CallbackAccountsConnected || e.SessionID != "sess_1" || string(e.Extra["state"]) != `"xyz"` {
				t.Errorf("event = %+v", e)
			}
			var raw map[string]string
			if json.Unmarshal(e.Raw, &raw) != nil || raw["state"] != "xyz" {
				t.Errorf("raw = %s", e.Raw)
			}
		}},
		{query: "event=initialization_error&error_code=SESSION_EXPIRED&error_message=expired", check: func(t *testing.T, e CallbackEvent) {
			if e.Error == nil || e.Error.Code != "SESSION_EXPIRED" || e.Error.Message != "expired" {
				t.Errorf("error = %+v", e.Error)
			}
		}},
		{query: "session_id=sess_1", wantErr: "event is required"},
		{query: "event=screen_loaded&occurred_at=now", wantErr: "occurred_at must be an RFC 3339 time"},
	}
	for _, tt := range tests {
		q, _ := url.ParseQuery(tt.query)
		e, err := ParseCallbackQuery(q)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseCallbackQuery(%s) err = %v, want %q", tt.query, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("ParseCallbackQuery(%s): %v", tt.query, err)
		}
		tt.check(t, e)
	}
}

func FuzzParseWebhookEvent(f *testing.F) {
	for _, s := range []string{`{"id":"evt_1","type":"payment.cancelled","data":{}}`, `[]`, `null`, `{"type":1}`, `{"type":"a","data":[1]}`, ` {"type":"\u00e9"} `} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := ParseWebhookEvent(body)
		if err != nil {
			return
		}
		if e.Type == "" || string(e.Raw) != string(body) {
			t.Fatalf("accepted event without type or with altered raw: %+v", e)
		}
		out, err := json.Marshal(e)
		if err != nil {
			t.Fatalf("marshal accepted event: %v", err)
		}
		again, err := ParseWebhookEvent(out)
		if err != nil {
			t.Fatalf("re-parse %s: %v", out, err)
		}
		if again.ID != e.ID || again.Type != e.Type || again.RequestID != e.RequestID || len(again.Extra) != len(e.Extra) {
			t.Fatalf("round trip changed the event: %+v vs %+v", again, e)
		}
	})
}

func FuzzParseCallbackEvent(f *testing.F) {
	for _, s := range []string{`{"event":"screen_loaded"}`, `{"event":"initialization_error","error":{"code":"X"}}`, `{"event":""}`, `{}`, `{"event":"a","error":"s","occurred_at":"2025-01-02T15:04:05Z"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := ParseCallbackEvent(body)
		if err != nil {
			return
		}
		if verr := e.Validate(); verr != nil {
			t.Fatalf("accepted event fails Validate: %v", verr)
		}
		out, err := json.Marshal(e)
		if err != nil {
			t.Fatalf("marshal accepted event: %v", err)
		}
		again, err := ParseCallbackEvent(out)
		if err != nil {
			t.Fatalf("re-parse %s: %v", out, err)
		}
		if again.Event != e.Event || again.SessionID != e.SessionID || again.RequestID != e.RequestID || !again.OccurredAt.Equal(e.OccurredAt) {
			t.Fatalf("round trip changed the event: %+v vs %+v", again, e)
		}
	})
}
