package main

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// notifyListener is the service manager's end of NOTIFY_SOCKET, as systemd holds it for a
// Type=notify unit: a unixgram socket whose datagrams arrive on msgs.
type notifyListener struct {
	socket string
	msgs   chan string
}

// listenNotify listens on a unixgram socket in a temporary directory; the test's end closes it.
func listenNotify(t *testing.T) *notifyListener {
	t.Helper()
	socket := filepath.Join(t.TempDir(), "notify")
	if len(socket) > 100 { // beyond sun_path: fall back to an abstract socket
		socket = fmt.Sprintf("@dashboard-test-%d", time.Now().UnixNano())
	}
	return listenNotifyAt(t, socket)
}

func listenNotifyAt(t *testing.T, socket string) *notifyListener {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: socket, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	n := &notifyListener{socket: socket, msgs: make(chan string, 64)}
	closed := make(chan struct{})
	t.Cleanup(func() {
		close(closed)
		conn.Close()
	})
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				return
			}
			select {
			case n.msgs <- string(buf[:k]):
			case <-closed:
				return
			}
		}
	}()
	return n
}

// notifyDeadline bounds every wait for a notification; generous, as the race detector on a
// shared two-core machine is slow.
const notifyDeadline = 60 * time.Second

// await returns the fields of the first datagram that holds the line want (such as "READY=1"),
// failing the test if exited closes first or nothing comes before the deadline. logs is shown on
// failure.
func (n *notifyListener) await(t *testing.T, want string, exited <-chan struct{}, logs fmt.Stringer) map[string]string {
	t.Helper()
	key, value, _ := strings.Cut(want, "=")
	deadline := time.After(notifyDeadline)
	for {
		select {
		case msg := <-n.msgs:
			if fields := notifyFields(msg); fields[key] == value {
				return fields
			}
		case <-exited:
			t.Fatalf("the dashboard exited before notifying %s:\n%s", want, logs)
		case <-deadline:
			t.Fatalf("no %s notification within %s:\n%s", want, notifyDeadline, logs)
		}
	}
}

// notifyFields parses a notify datagram: newline-separated VAR=value lines.
func notifyFields(msg string) map[string]string {
	fields := map[string]string{}
	for _, line := range strings.Split(msg, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			fields[k] = v
		}
	}
	return fields
}

// servingAddr is the address in READY's STATUS=serving on ADDR[ over https...].
func servingAddr(t *testing.T, fields map[string]string) string {
	t.Helper()
	rest, ok := strings.CutPrefix(fields["STATUS"], "serving on ")
	if !ok {
		t.Fatalf("READY=1 without STATUS=serving on ADDR: %q", fields)
	}
	addr, _, _ := strings.Cut(rest, " ")
	return addr
}

func TestNotifySendsToPathAndAbstractSockets(t *testing.T) {
	for _, socket := range []string{"", "@dashboard-notify-test-" + fmt.Sprint(time.Now().UnixNano())} {
		var n *notifyListener
		if socket == "" {
			n = listenNotify(t)
		} else {
			n = listenNotifyAt(t, socket)
		}
		logs := &lockedBuffer{}
		nt := notifier{socket: n.socket, log: newLogger(logs, "json", "info")}
		nt.ready("127.0.0.1:1234")
		nt.stopping()
		never := make(chan struct{})
		if f := n.await(t, "READY=1", never, logs); f["STATUS"] != "serving on 127.0.0.1:1234" {
			t.Errorf("%s: READY datagram %q", n.socket, f)
		}
		if f := n.await(t, "STOPPING=1", never, logs); len(f) != 2 {
			t.Errorf("%s: STOPPING datagram %q", n.socket, f)
		}
		if logs.String() != "" {
			t.Errorf("%s: notifier logged %s", n.socket, logs)
		}
	}
}

func TestNotifyWithoutListenerLogsAndCarriesOn(t *testing.T) {
	logs := &lockedBuffer{}
	nt := notifier{socket: filepath.Join(t.TempDir(), "nobody"), log: newLogger(logs, "json", "info")}
	nt.ready("127.0.0.1:1234") // must not panic or block
	if !strings.Contains(logs.String(), `"msg":"notify service manager"`) {
		t.Fatalf("a failed notification was not logged: %s", logs)
	}
	notifier{}.ready("x") // no socket: nothing to do
}

func TestNotifySocketIsValidated(t *testing.T) {
	for _, tt := range []struct {
		socket string
		ok     bool
	}{
		{"", true}, {"/run/systemd/notify", true}, {"@abstract", true},
		{"relative/path", false}, {"@", false}, {"vsock:2:1234", false},
	} {
		_, err := parseServe(nil, &lockedBuffer{}, func(k string) string {
			if k == "NOTIFY_SOCKET" {
				return tt.socket
			}
			return ""
		})
		if ok := err == nil; ok != tt.ok {
			t.Errorf("NOTIFY_SOCKET=%q: %v", tt.socket, err)
		} else if !ok && !strings.Contains(err.Error(), "NOTIFY_SOCKET") {
			t.Errorf("NOTIFY_SOCKET=%q: error does not name the variable: %v", tt.socket, err)
		}
	}
}
