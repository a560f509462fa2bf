package events

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
)

// ev is an event for the timeline tests: id, request_id, source and env, received at t0+ms.
func ev(id int64, requestID, source, env string, ms int, status int, isError bool) db.Event {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	return db.Event{ID: id, ReceivedAt: t0.Add(time.Duration(ms) * time.Millisecond),
		EventInput: db.EventInput{RequestID: requestID, Source: source, Env: env, Type: source + "_type", Status: status, IsError: isError}}
}

// shape is a timeline as a line of text: request_id, then the step ids in order, then envs,
// counts by source and errors, so a table can say what it wants in one string.
func shape(t Timeline) string {
	ids := make([]string, len(t.Steps))
	for i, s := range t.Steps {
		ids[i] = fmt.Sprint(s.ID)
	}
	return fmt.Sprintf("%s:%s envs=%s api=%d cb=%d wh=%d errors=%d span=%v", t.RequestID, strings.Join(ids, ","),
		strings.Join(t.Envs, "+"), t.BySource[db.SourceAPI], t.BySource[db.SourceCallback], t.BySource[db.SourceWebhook], t.Errors, t.Span())
}

func TestTimelines(t *testing.T) {
	const api, cb, wh = db.SourceAPI, db.SourceCallback, db.SourceWebhook
	for _, tc := range []struct {
		name string
		in   []db.Event
		want []string
	}{
		{"nothing", nil, nil},
		{"one request: steps oldest first whatever the order given", []db.Event{
			ev(3, "req_a", wh, "sandbox", 3000, 0, false),
			ev(1, "req_a", api, "sandbox", 0, 201, false),
			ev(2, "req_a", cb, "sandbox", 1200, 0, false),
		}, []string{"req_a:1,2,3 envs=sandbox api=1 cb=1 wh=1 errors=0 span=3s"}},
		{"same time: by id", []db.Event{
			ev(9, "req_a", cb, "sandbox", 5, 0, false),
			ev(8, "req_a", api, "sandbox", 5, 200, false),
		}, []string{"req_a:8,9 envs=sandbox api=1 cb=1 wh=0 errors=0 span=0s"}},
		{"timelines ordered by their first step, interleaved", []db.Event{
			ev(1, "req_late", api, "production", 100, 200, false),
			ev(2, "req_early", api, "production", 50, 200, false),
			ev(3, "req_late", wh, "production", 400, 0, false),
			ev(4, "req_early", cb, "production", 500, 0, false),
		}, []string{
			"req_early:2,4 envs=production api=1 cb=1 wh=0 errors=0 span=450ms",
			"req_late:1,3 envs=production api=1 cb=0 wh=1 errors=0 span=300ms",
		}},
		{"no request_id: each event alone, in time order among the others", []db.Event{
			ev(5, "", cb, "sandbox", 300, 0, false),
			ev(6, "req_a", api, "sandbox", 100, 200, false),
			ev(7, "", cb, "sandbox", 200, 0, true),
		}, []string{
			"req_a:6 envs=sandbox api=1 cb=0 wh=0 errors=0 span=0s",
			":7 envs=sandbox api=0 cb=1 wh=0 errors=1 span=0s",
			":5 envs=sandbox api=0 cb=1 wh=0 errors=0 span=0s",
		}},
		{"mixed envs stay one timeline, envs in the order seen", []db.Event{
			ev(2, "req_m", wh, "sandbox", 20, 0, false),
			ev(1, "req_m", api, "production", 10, 200, false),
			ev(3, "req_m", cb, "production", 30, 0, false),
		}, []string{"req_m:1,2,3 envs=production+sandbox api=1 cb=1 wh=1 errors=0 span=20ms"}},
		{"errors: 5xx, 4xx, timeout and an initialization error; 2xx and webhooks are not", []db.Event{
			ev(1, "req_e", api, "production", 0, 500, true),
			ev(2, "req_e", api, "production", 1, 404, false),
			ev(3, "req_e", api, "production", 2, 0, true),
			ev(4, "req_e", cb, "production", 3, 0, true),
			ev(5, "req_e", api, "production", 4, 200, false),
			ev(6, "req_e", wh, "production", 5, 0, false),
		}, []string{"req_e:1,2,3,4,5,6 envs=production api=4 cb=1 wh=1 errors=4 span=5ms"}},
		{"an event given twice counts once", []db.Event{
			ev(4, "req_d", api, "sandbox", 0, 200, false),
			ev(4, "req_d", api, "sandbox", 0, 200, false),
		}, []string{"req_d:4 envs=sandbox api=1 cb=0 wh=0 errors=0 span=0s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, tl := range Timelines(tc.in) {
				got = append(got, shape(tl))
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}
