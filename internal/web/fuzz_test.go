package web

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tensfer-golive/dashboard/internal/tensfer"
)

// FuzzEventFilter feeds arbitrary query strings to the filter parser shared by the page, the
// stream, the export and the API: it must never panic, and whatever it accepts is in range.
func FuzzEventFilter(f *testing.F) {
	for _, s := range []string{"", "env=production&source=webhook", "limit=500&cursor=9", "since=2026-11-26T10:00&until=2026-11-27",
		"status=error&type=payment.cancelled", "limit=-1", "cursor=0", "env=%00", "since=2026-13-45"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		ef, _, err := eventFilter(q)
		if err != nil {
			var he *httpError
			if !asHTTPError(err, &he) || he.status != http.StatusBadRequest {
				t.Fatalf("filter error is not a 400: %v", err)
			}
			return
		}
		if ef.Limit < 0 || ef.Limit > 500 || ef.BeforeID < 0 || (ef.Env != "" && ef.Env != "sandbox" && ef.Env != "production") {
			t.Fatalf("accepted out-of-range filter %+v from %q", ef, raw)
		}
	})
}

func asHTTPError(err error, target **httpError) bool {
	he, ok := err.(*httpError)
	if ok {
		*target = he
	}
	return ok
}

// FuzzAPICallInput feeds arbitrary JSON to the API-call report validation: no panic, and an
// accepted report always has a known environment, an HTTP method and a path.
func FuzzAPICallInput(f *testing.F) {
	f.Add(`{"env":"production","method":"GET","path":"/v1/x","status":200}`)
	f.Add(`{"env":"sandbox","method":"post","path":"/","status":null,"timeout":true}`)
	f.Add(`{"env":"production","method":"GET","path":"/v1/x","status":99999999999}`)
	f.Fuzz(func(t *testing.T, body string) {
		var in apiCallInput
		dec := json.NewDecoder(strings.NewReader(body))
		dec.DisallowUnknownFields()
		if dec.Decode(&in) != nil {
			return
		}
		if len(in.validate()) > 0 {
			return
		}
		if (in.Env != "sandbox" && in.Env != "production") || !strings.HasPrefix(in.Path, "/") || in.Method == "" {
			t.Fatalf("accepted %+v", in)
		}
		_ = in.event(false, []byte(body))
	})
}

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
