package events

import (
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/tensfer-golive/dashboard/internal/validation"
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
		ef, err := ParseFilter(q)
		if err != nil {
			var problem validation.Problem
			if !errors.As(err, &problem) {
				t.Fatalf("filter error is not a validation.Problem (a 400): %v", err)
			}
			return
		}
		if ef.Limit < 0 || ef.Limit > 500 || ef.BeforeID < 0 || (ef.Env != "" && ef.Env != "sandbox" && ef.Env != "production") {
			t.Fatalf("accepted out-of-range filter %+v from %q", ef, raw)
		}
	})
}

// FuzzAPICallInput feeds arbitrary JSON to the API-call report validation: no panic, and an
// accepted report always has a known environment, an HTTP method and a path.
func FuzzAPICallInput(f *testing.F) {
	f.Add(`{"env":"production","method":"GET","path":"/v1/x","status":200}`)
	f.Add(`{"env":"sandbox","method":"post","path":"/","status":null,"timeout":true}`)
	f.Add(`{"env":"production","method":"GET","path":"/v1/x","status":99999999999}`)
	f.Fuzz(func(t *testing.T, body string) {
		var in APICall
		dec := json.NewDecoder(strings.NewReader(body))
		dec.DisallowUnknownFields()
		if dec.Decode(&in) != nil {
			return
		}
		if len(in.Validate()) > 0 {
			return
		}
		if (in.Env != "sandbox" && in.Env != "production") || !strings.HasPrefix(in.Path, "/") || in.Method == "" {
			t.Fatalf("accepted %+v", in)
		}
		_ = in.event([]byte(body))
	})
}
