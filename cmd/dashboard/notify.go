package main

import (
	"fmt"
	"log/slog"
	"net"
	"time"
)

// notifier tells a service manager how start-up and shutdown go, with the systemd notify
// protocol (sd_notify): each message is one unixgram datagram of newline-separated VAR=value
// lines sent to the socket named by NOTIFY_SOCKET. A systemd unit with Type=notify counts the
// dashboard as started only once READY=1 arrives, which is sent when it really serves.
// With no socket configured every message is dropped.
type notifier struct {
	socket string // NOTIFY_SOCKET: an absolute path, or an abstract socket name starting with '@'
	log    *slog.Logger
}

// validNotifySocket reports whether NOTIFY_SOCKET names a socket this binary can send to. NB:
// systemd also knows vsock: addresses (for virtual machines); those are not supported here.
func validNotifySocket(s string) bool {
	return s == "" || len(s) > 1 && (s[0] == '/' || s[0] == '@')
}

// ready says that the dashboard serves at addr: the listener accepts, the setup link is printed
// and the demo, if any, is wired.
func (n notifier) ready(addr string) { n.send("READY=1\nSTATUS=serving on " + addr) }

// status describes what start-up is doing (shown by systemctl status).
func (n notifier) status(s string) { n.send("STATUS=" + s) }

// stopping says that shutdown has begun.
func (n notifier) stopping() { n.send("STOPPING=1\nSTATUS=shutting down") }

// send delivers state in one datagram. A failure is logged, not returned: the dashboard serves
// the same with or without a service manager listening, and systemd notices a missing READY=1
// by itself (its start-up timeout).
func (n notifier) send(state string) {
	if n.socket == "" {
		return
	}
	if err := sdNotify(n.socket, state); err != nil {
		n.log.Warn("notify service manager", "socket", n.socket, "error", err)
	}
}

// sdNotify sends state to the unixgram socket at addr.
func sdNotify(addr, state string) error {
	// NB: on Linux, Go maps a leading '@' of a unix socket name to the abstract namespace, which is
	// what systemd means by it.
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer conn.Close()
	// A receiver that has stopped reading must not hang start-up or shutdown.
	if err := conn.SetWriteDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return err
	}
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("send %q: %w", state, err)
	}
	return nil
}
