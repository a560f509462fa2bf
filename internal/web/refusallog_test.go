package web

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestRefusalsAnyoneCanRepeatDoNotFloodTheLog: floods of refusals that need no credentials (bodies
// announced and cut short, unsigned webhooks, unknown paths, unknown tokens, wrong passwords)
// write at most refusalLinesPerMinute lines of each kind a minute, and the rest arrive as one
// summary line with their count once the minute is over. A signed-in user's refusals are still
// logged one by one.
func TestRefusalsAnyoneCanRepeatDoNotFloodTheLog(t *testing.T) {
	app := newTestApp(t)
	var clock atomic.Int64
	start := time.Date(2026, 12, 7, 10, 0, 5, 0, time.UTC)
	clock.Store(start.UnixNano())
	app.srv.now = func() time.Time { return time.Unix(0, clock.Load()) }
	addr := strings.TrimPrefix(app.url, "http://")
	const n = 60
	floods := []struct {
		name string
		send func(i int)
	}{
		{"bodies cut short", func(i int) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(c, "POST /hooks/production HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{\"a\":", addr)
			c.(*net.TCPConn).CloseWrite()
			bufio.NewReader(c).ReadString('\n') // the server has answered (or closed): the request is over
			c.Close()
		}},
		{"unsigned webhooks", func(i int) { app.api("POST", "/hooks/production", "", strings.NewReader(`{"type":"x"}`)) }},
		{"unknown paths", func(i int) { app.api("GET", fmt.Sprintf("/wp-admin/%d.php", i), "", nil) }},
		{"unknown tokens", func(i int) { app.api("GET", "/api/v1/events", fmt.Sprintf("tdb_nope%d", i), nil) }},
		{"wrong passwords", func(i int) {
			app.client().postForm("/login", url.Values{"email": {fmt.Sprintf("x%d@example.com", i)}, "password": {"wrong password here"}})
		}},
	}
	before := strings.Count(app.logs.String(), "\n")
	for _, f := range floods {
		for i := range n {
			f.send(i)
		}
	}
	lines := strings.Split(app.logs.String(), "\n")[before:]
	var logged int
	kinds := map[string]int{}
	for _, l := range lines {
		var rec struct {
			Msg    string `json:"msg"`
			Status int    `json:"status"`
			Path   string `json:"path"`
			Method string `json:"method"`
		}
		if json.Unmarshal([]byte(l), &rec) != nil || rec.Msg != "http" && rec.Msg != "request failed" {
			continue
		}
		logged++
		kinds[rec.Msg]++
	}
	total := n * len(floods)
	// Five kinds of refusal (a login flood answers 401 then 429: six), five lines each at most.
	if logged > 6*refusalLinesPerMinute {
		t.Fatalf("%d refusals wrote %d lines (%v); want at most %d", total, logged, kinds, 6*refusalLinesPerMinute)
	}
	if logged < len(floods) {
		t.Fatalf("only %d lines for %d kinds of refusal: the first of each minute must still be logged", logged, len(floods))
	}
	// The minute ends: one summary line counts what was not logged.
	clock.Store(start.Add(time.Minute).UnixNano())
	app.srv.logRefusalSummary(app.srv.refusals.flush(app.srv.now()))
	var summary struct {
		Refused int    `json:"refused"`
		Counts  string `json:"counts"`
	}
	for _, l := range strings.Split(app.logs.String(), "\n") {
		if strings.Contains(l, "refused requests from unauthenticated clients") {
			if err := json.Unmarshal([]byte(l), &summary); err != nil {
				t.Fatal(err)
			}
		}
	}
	if summary.Refused != total-logged || !strings.Contains(summary.Counts, "POST /hooks/{env} ") || !strings.Contains(summary.Counts, "GET (no route) 404=") {
		t.Fatalf("summary %+v; want %d refused, by route and status", summary, total-logged)
	}
	if again := app.srv.refusals.flush(app.srv.now()); again != nil {
		t.Fatalf("a second flush in the same minute reported %v", again)
	}

	// A signed-in user's refusals are theirs, and each is logged.
	viewer, _ := app.login("viewer")
	mark := strings.Count(app.logs.String(), "\n")
	for range 2 * refusalLinesPerMinute {
		viewer.get("/settings/users") // a viewer is refused: 403
	}
	if got := strings.Count(strings.Join(strings.Split(app.logs.String(), "\n")[mark:], "\n"), `"status":403`); got < 2*refusalLinesPerMinute {
		t.Fatalf("a signed-in user's %d refusals wrote %d lines", 2*refusalLinesPerMinute, got)
	}
}
