package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// checkListenAddr validates the shape of the listen address in the flag name (host:port, with a
// port number and a host that is empty, an IP address or a host name), so a mistyped address is
// refused with what a valid one looks like before anything is bound or created. example is a
// valid address for that flag.
func checkListenAddr(f *envFlags, name, example string) error {
	addr := f.fs.Lookup(name).Value.String()
	exHost, exPort, _ := net.SplitHostPort(example)
	if exHost != "" {
		example += ", or :" + exPort + " for every network interface"
	}
	host, port, err := net.SplitHostPort(addr)
	switch {
	case err == nil:
	case addr != "" && strings.Trim(addr, "0123456789") == "":
		return f.bad(name, "give host:port, not a port alone: :%s for every network interface, 127.0.0.1:%s for this machine only", addr, addr)
	case strings.Count(addr, ":") > 1 && !strings.HasPrefix(addr, "["):
		return f.bad(name, "write an IPv6 address in brackets before its port, e.g. [::1]:%s", exPort)
	case !strings.Contains(addr, ":") || strings.HasSuffix(addr, "]"):
		if a, err := netip.ParseAddr(strings.Trim(addr, "[]")); err == nil {
			return f.bad(name, "the port is missing; give host:port, e.g. %s", net.JoinHostPort(a.String(), exPort))
		}
		return f.bad(name, "must be host:port and the port is missing; e.g. %s", example)
	default:
		return f.bad(name, "must be host:port, e.g. %s", example)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		if port != "" && strings.Trim(port, "0123456789") == "" {
			return f.bad(name, "port %s is out of range: a port is a number from 1 to 65535 (0 picks a free one)", port)
		}
		return f.bad(name, "the port must be a number from 1 to 65535, e.g. %s", net.JoinHostPort(host, exPort))
	}
	if host != "" && !validHost(host) {
		return f.bad(name, "%q is not an IP address or a host name; give one of this machine's addresses with the port, e.g. %s", host, example)
	}
	return nil
}

// validHost reports whether host is an IP address (with an IPv6 zone, if any) or made of the
// letters, digits, hyphens and dots of a host name.
func validHost(host string) bool {
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	if len(host) > 253 || strings.HasPrefix(host, ".") || strings.Contains(host, "..") {
		return false
	}
	for _, r := range host {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// clash reports whether two valid listen addresses would take the same port, so the second bind
// would fail as if another program held it: the same port (not 0, which gives each listener a
// port of its own) on the same host, or with either on every network interface.
func clash(a, b string) bool {
	ha, pa, _ := net.SplitHostPort(a)
	hb, pb, _ := net.SplitHostPort(b)
	na, _ := strconv.Atoi(pa)
	nb, _ := strconv.Atoi(pb)
	return na != 0 && na == nb && (ha == hb || anyInterface(ha) || anyInterface(hb))
}

// anyInterface reports whether a listen address's host means every network interface: empty,
// 0.0.0.0 or ::.
func anyInterface(host string) bool {
	if host == "" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsUnspecified()
}

// listen binds the address of the flag name, with an error that gives the reason and the fix.
func (c serveConfig) listen(name, addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, listenError(c.flags, name, addr, err)
	}
	return ln, nil
}

// listenError says why the address of the flag name could not be bound and what to do, for each
// reason: a port in use (only then may another dashboard be the cause), a port below 1024
// without the privilege, an address that is not this machine's, a host name that does not
// resolve.
func listenError(f *envFlags, name, addr string, err error) error {
	host, port, _ := net.SplitHostPort(addr)
	n, _ := strconv.Atoi(port)
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		return f.bad(name, "port %s is already in use by another program (is another dashboard running? ss -ltnp 'sport = :%s' shows which); stop it, or choose another port with %s", port, port, f.ref(name))
	case errors.Is(err, syscall.EACCES) && n > 0 && n < 1024:
		return f.bad(name, "permission denied: only a privileged process may listen on a port below 1024; choose a port from 1024 up (e.g. :8080, with a reverse proxy in front for port %s), or give the dashboard the CAP_NET_BIND_SERVICE capability (AmbientCapabilities=CAP_NET_BIND_SERVICE under systemd, as the unit in packaging/systemd does; see docs/operations.md)", port)
	case errors.Is(err, syscall.EACCES):
		return f.bad(name, "permission denied by the system (a security policy such as SELinux, or a container's limits, forbids it); choose another port with %s", f.ref(name))
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return f.bad(name, "%s is not an address of this machine; give one of its own addresses (ip -brief address lists them), 127.0.0.1:%s for this machine only, or :%s for every network interface", host, port, port)
	case errors.As(err, &dnsErr):
		return f.bad(name, "host %s cannot be resolved (%v); give one of this machine's IP addresses, e.g. 127.0.0.1:%s", host, dnsErr.Err, port)
	}
	return f.bad(name, "cannot listen: %v", err)
}

// checkDataDir refuses an existing data directory that every user of the machine may write to,
// as a master key file that others may read is refused: whoever can write the directory can
// replace the database or the master key in it. A missing directory is fine (it is created 0700).
// A directory its group may write to (as Kubernetes' fsGroup makes volumes) is logged as a
// warning when log is not nil.
func checkDataDir(dir string, log *slog.Logger) error {
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("data directory: %w", err)
	case !st.IsDir():
		return fmt.Errorf("data directory %s is not a directory; give --data a directory (it is created if missing)", dir)
	case st.Mode().Perm()&0o002 != 0:
		return fmt.Errorf("data directory %s is writable by every user (mode %04o), so anyone on this machine could replace its database or master key; run: chmod 700 %s", dir, st.Mode().Perm(), dir)
	case st.Mode().Perm()&0o020 != 0 && log != nil:
		log.Warn(fmt.Sprintf("data directory %s is writable by its group (mode %04o): every member of that group could replace its database or master key; unless that group is the dashboard's alone, run: chmod 700 %s", dir, st.Mode().Perm(), dir))
	}
	return nil
}

// settleAddr makes what start-up prints true to the address bound: the default public URL gets
// the port bound when --addr asked for port 0. An address on every network interface is a
// warning only while the public URL is the default made of 127.0.0.1 (nobody said the dashboard
// is meant to be reached from elsewhere): with --public-url or --domain set it is the normal
// public set-up (the container image's too) and is logged as information.
func (c *serveConfig) settleAddr(bound net.Addr, log *slog.Logger) {
	host, port, _ := net.SplitHostPort(c.addr)
	_, boundPort, _ := net.SplitHostPort(bound.String())
	if c.publicURLDefault && c.tls.domain == "" && port == "0" {
		c.publicURL.Host = net.JoinHostPort(c.publicURL.Hostname(), boundPort)
	}
	if !anyInterface(host) {
		return
	}
	if !c.localOnlyURL() {
		log.Info(fmt.Sprintf("listening on every network interface (%s) for the public URL %s", c.flags.setting("addr"), c.publicURL), "addr", bound.String())
		return
	}
	log.Warn(fmt.Sprintf("listening on every network interface (%s): anyone who can reach this machine on port %s reaches the dashboard; to keep it to this machine, set %s to 127.0.0.1:%s (in a container, publish the port on 127.0.0.1 instead, e.g. docker run -p 127.0.0.1:%s:%s)",
		c.flags.setting("addr"), boundPort, c.flags.ref("addr"), boundPort, boundPort, boundPort), "addr", bound.String())
	log.Warn(fmt.Sprintf("the public URL %s is the default made of %s and works in a browser on this machine only, yet the setup link and the webhook and callback URLs to register at Tensfer are made of it; set %s to the URL other machines reach the dashboard at",
		c.publicURL, c.flags.ref("addr"), c.flags.ref("public-url")), "public_url", c.publicURL.String())
}

// localOnlyURL reports whether the public URL is the default made of an address on every
// network interface, 127.0.0.1, which no other machine can use.
func (c serveConfig) localOnlyURL() bool {
	host, _, _ := net.SplitHostPort(c.addr)
	return c.publicURLDefault && c.tls.domain == "" && anyInterface(host)
}
