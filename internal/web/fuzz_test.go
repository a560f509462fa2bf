package web

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tensfer-golive/dashboard/internal/tensfer"
)

// FuzzWebhookEndpoint sends arbitrary bodies and signature headers through the real handler: it
// never answers 5xx, and nothing is stored unless the delivery is validly signed.
func FuzzWebhookEndpoint(f *testing.F) {
	app := newTestApp(f)
	secret := app.withSecret("production")
	key, _ := tensfer.ParseSecret(secret)
	f.Add([]byte(`{"type":"payment.cancelled"}`), "msg_1", "1764151200", "v1,AAAA", false)
	f.Add([]byte(`not json`), "", "", "", true)
	f.Add([]byte(`{"type":1}`), "msg_2", "x", "v1,", true)
	handler := app.srv.Handler()
	count := func() (n int) {
		app.db.R.QueryRow("SELECT count(*) FROM events").Scan(&n)
		return n
	}
	f.Fuzz(func(t *testing.T, body []byte, id, ts, sig string, signIt bool) {
		before := count()
		req := httptest.NewRequest(http.MethodPost, "/hooks/production", bytes.NewReader(body))
		if signIt {
			tensfer.SignRequest(req, "fuzz_"+id, app.srv.now(), body, key)
		} else {
			req.Header.Set("webhook-id", id)
			req.Header.Set("webhook-timestamp", ts)
			req.Header.Set("webhook-signature", sig)
		}
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("status %d: %s", rec.Code, rec.Body.String())
		}
		if !signIt && count() != before {
			t.Fatal("an unsigned delivery was stored")
		}
	})
}

// FuzzCallbackEndpoint sends arbitrary beacons through the real handler: never a 5xx, and a
// stored beacon is always a callback of that environment.
func FuzzCallbackEndpoint(f *testing.F) {
	app := newTestApp(f, func(c *Config) { c.CallbackRate = RateLimit{Burst: 1 << 30, Every: time.Nanosecond} })
	f.Add([]byte(`{"event":"screen_loaded","event_id":"e1","user_id":"u"}`), "text/plain")
	f.Add([]byte(`{"event":"initialization_error","error":{"code":"x"}}`), "application/json")
	f.Add([]byte(`{"event":"\u00e9\u00e9","event_id":"`+strings.Repeat("\u00e9", 300)+`"}`), "application/json")
	f.Add([]byte(`a=b&c=d`), "application/x-www-form-urlencoded")
	handler := app.srv.Handler()
	f.Fuzz(func(t *testing.T, body []byte, ctype string) {
		req := httptest.NewRequest(http.MethodPost, "/callbacks/sandbox", bytes.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("status %d: %s", rec.Code, rec.Body.String())
		}
	})
}
