package web

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
)

// sseFields parses one server-sent event as EventSource does (a line ends at CR, LF or CR LF)
// and returns its field names in order.
func sseFields(frame string) []string {
	var names []string
	for _, line := range regexp.MustCompile("\r\n|\r|\n").Split(frame, -1) {
		if line == "" || strings.HasPrefix(line, ":") {
			continue
		}
		name, _, _ := strings.Cut(line, ":")
		names = append(names, name)
	}
	return names
}

func TestSSEDataCannotStartAFieldOfItsOwn(t *testing.T) {
	for _, data := range []string{"plain", "a\rb", "a\r\nb", "a\nb", "x\revent: reload\rid: 99999999\r", "\n\n\r\r"} {
		var buf bytes.Buffer
		writeSSE(&buf, 42, "row", []byte(data))
		frame := buf.String()
		if !strings.HasSuffix(frame, "\n\n") || strings.Count(frame, "\n\n") != 1 {
			t.Errorf("%q: the frame is not one event: %q", data, frame)
		}
		names := sseFields(strings.TrimSuffix(frame, "\n\n"))
		if names[0] != "id" || names[1] != "event" {
			t.Errorf("%q: fields %v", data, names)
		}
		for _, n := range names[2:] {
			if n != "data" {
				t.Errorf("%q: the data produced a %q field: %q", data, n, frame)
			}
		}
	}
}

// rawFrame reads the next event of a stream as bytes, up to its blank line, skipping comments.
func rawFrame(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	var frame strings.Builder
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended: %v", err)
		}
		if line == "\n" {
			if s := frame.String(); s != "" && !strings.HasPrefix(s, "retry:") && !strings.HasPrefix(s, ":") {
				return s
			}
			frame.Reset()
			continue
		}
		frame.WriteString(line)
	}
}

// TestCallbackTextCannotInjectIntoTheLiveFeed: a carriage return in a callback's fields, sent by
// a plain link to the return URL, reaches the feed as data, never as an event or an id.
func TestCallbackTextCannotInjectIntoTheLiveFeed(t *testing.T) {
	app := newTestApp(t)
	viewer, _ := app.login(db.RoleViewer)
	st := viewer.stream(t, "/events/stream", "")
	r := bufio.NewReader(st.res.Body)
	res, err := http.Get(app.url + "/callbacks/sandbox/return?event=screen_loaded&screen=" + url.QueryEscape("x\revent: reload\rid: 99999999\r"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	frame := rawFrame(t, r)
	names := sseFields(frame)
	if len(names) < 3 || names[0] != "id" || names[1] != "event" || !strings.Contains(frame, "event: row") {
		t.Fatalf("frame fields %v: %q", names, frame)
	}
	for _, n := range names[2:] {
		if n != "data" {
			t.Fatalf("the callback's text made a %q field: %q", n, frame)
		}
	}
}

func TestStreamResumesFromTheNewestForAnIDFromTheFuture(t *testing.T) {
	app := newTestApp(t)
	secret := app.withSecret("production")
	viewer, _ := app.login(db.RoleViewer)
	st := viewer.stream(t, "/events/stream", "99999999")
	app.sendWebhook("production", secret, "after", `{"type":"after_the_reconnect"}`)
	if _, row := st.next(t); !strings.Contains(row, "after_the_reconnect") {
		t.Fatalf("row %s", row)
	}
}

func TestStreamSlotsArePerUserToo(t *testing.T) {
	app := newTestApp(t)
	greedy, u := app.login(db.RoleViewer)
	other, _ := app.login(db.RoleViewer)
	for range streamsPerUser {
		if !app.srv.streamSlots.take(u.ID) {
			t.Fatal("a slot was refused below the per-user limit")
		}
	}
	if res := greedy.get("/events/stream"); res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(res.body, "live streams open") {
		t.Fatalf("over the per-user limit: %d %s", res.StatusCode, res.body)
	}
	st := other.stream(t, "/events/stream", "") // another user still gets one
	st.res.Body.Close()
}

// TestRevokedAccessEndsOpenStreams: disabling a user, ending their sessions and logging out each
// end an open live stream within the recheck interval.
func TestRevokedAccessEndsOpenStreams(t *testing.T) {
	app := newTestApp(t, func(c *Config) { c.StreamRecheck = 20 * time.Millisecond })
	ctx := context.Background()
	revoke := map[string]func(c *client, u db.User){
		"disable": func(_ *client, u db.User) {
			yes := true
			if _, err := app.db.UpdateUser(ctx, u.ID, db.UserChange{Disabled: &yes}, db.Audit{Actor: "test", Action: "user.disable"}); err != nil {
				t.Fatal(err)
			}
		},
		"sign out everywhere": func(_ *client, u db.User) {
			if _, err := app.db.DeleteUserSessions(ctx, u.ID, db.Audit{Actor: "test", Action: "user.sign_out"}); err != nil {
				t.Fatal(err)
			}
		},
		"log out": func(c *client, _ db.User) {
			if res := c.postForm("/logout", url.Values{}); res.StatusCode != http.StatusSeeOther {
				t.Fatalf("logout: %d", res.StatusCode)
			}
		},
	}
	for name, fn := range revoke {
		t.Run(name, func(t *testing.T) {
			c, u := app.login(db.RoleViewer)
			st := c.stream(t, "/events/stream", "")
			r := bufio.NewReader(st.res.Body)
			fn(c, u)
			if frame := rawFrame(t, r); !strings.Contains(frame, "event: reload") {
				t.Fatalf("the stream went on: %q", frame)
			}
		})
	}
}
