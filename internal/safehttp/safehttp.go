// Package safehttp provides the HTTP client for URLs that users configure
// (base URLs to verify, webhook targets to replay to, alert channels): it
// refuses private, loopback, link-local, every other special-purpose address
// of IANA's registries and the host's own addresses, checked after DNS
// resolution just before connecting, follows no redirects and bounds time
// and body size, so a configured URL cannot make the dashboard reach into
// the network it runs in.
//
// It uses only the standard library and imports no other internal package,
// so the Tensfer client's callers and the webhook-replay code can share it
// without depending on each other.
package safehttp

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"syscall"
	"time"
)

// Options configures NewClient.
type Options struct {
	// AllowLoopback permits 127.0.0.0/8 and ::1 (and nothing else that is
	// otherwise blocked), for tests and the demo's local simulator.
	AllowLoopback bool
	// Timeout bounds a whole request including reading the body; zero means
	// 10 seconds.
	Timeout time.Duration
	// MaxBodyBytes bounds every response body: reading past it fails with
	// ErrBodyTooLarge. Zero means 1 MiB; negative means no bound.
	MaxBodyBytes int64
	// Resolver resolves host names; nil means net.DefaultResolver. The
	// address check runs on the resolved IP whichever resolver is used.
	Resolver *net.Resolver
	// InterfaceAddrs lists the host's own addresses, which are refused at
	// connect time (loopback ones aside when AllowLoopback is set); nil
	// means net.InterfaceAddrs. Tests pass their own.
	InterfaceAddrs func() ([]net.Addr, error)
	// Now is the clock of the addresses' cache; nil means time.Now.
	Now func() time.Time
}

// ErrBodyTooLarge is returned when a response body exceeds its bound.
var ErrBodyTooLarge = errors.New("response body too large")

// bodyTooLargeError is how a bound on a body fails: it names the bound and
// is both ErrBodyTooLarge and an *http.MaxBytesError, so code that takes
// any *http.Client without importing this package (the Tensfer client) can
// still tell an oversized body from a broken connection.
type bodyTooLargeError struct{ limit int64 }

func (e *bodyTooLargeError) Error() string {
	return fmt.Sprintf("%v: over %d bytes", ErrBodyTooLarge, e.limit)
}

func (e *bodyTooLargeError) Unwrap() []error {
	return []error{ErrBodyTooLarge, &http.MaxBytesError{Limit: e.limit}}
}

// BlockedAddressError is returned when the safe client refuses to connect
// to an address, e.g. "refusing to connect to 10.0.0.1: private address".
type BlockedAddressError struct {
	Addr   netip.Addr
	Reason string
}

// Error says which address was refused and why.
func (e *BlockedAddressError) Error() string {
	return fmt.Sprintf("refusing to connect to %s: %s", e.Addr, e.Reason)
}

// blockedPrefix is an address range the safe client never dials.
type blockedPrefix struct {
	prefix netip.Prefix
	reason string
}

// blocked lists the refused ranges, most specific first so the metadata
// addresses are named as such rather than as link-local. It covers every
// entry of IANA's IPv4 and IPv6 special-purpose address registries that is
// not globally reachable, and a few more that no configured URL has reason
// to reach (documentation, benchmarking, multicast, deprecated forms). An
// IPv6 address that carries an IPv4 one (mapped, NAT64, 6to4) is judged by
// that IPv4 address too (embeddedIPv4).
var blocked = func() []blockedPrefix {
	p := func(s, reason string) blockedPrefix { return blockedPrefix{netip.MustParsePrefix(s), reason} }
	return []blockedPrefix{
		p("169.254.169.254/32", "cloud metadata address"),
		p("fd00:ec2::254/128", "cloud metadata address"),
		// IPv4 (RFC 6890 and the registry's later entries).
		p("0.0.0.0/8", "unspecified address"),
		p("127.0.0.0/8", "loopback address"),
		p("10.0.0.0/8", "private address"),
		p("172.16.0.0/12", "private address"),
		p("192.168.0.0/16", "private address"),
		p("169.254.0.0/16", "link-local address"),
		p("100.64.0.0/10", "shared (CGNAT) address"),
		p("192.0.0.0/24", "protocol assignment (IETF) address"),
		p("192.0.2.0/24", "documentation address"),
		p("198.51.100.0/24", "documentation address"),
		p("203.0.113.0/24", "documentation address"),
		p("198.18.0.0/15", "benchmarking address"),
		p("192.31.196.0/24", "DNS sink (AS112) address"),
		p("192.175.48.0/24", "DNS sink (AS112) address"),
		p("192.52.193.0/24", "multicast tunnel (AMT) address"),
		p("192.88.99.0/24", "deprecated 6to4 relay address"),
		p("224.0.0.0/4", "multicast address"),
		p("240.0.0.0/4", "reserved address"), // 255.255.255.255 (broadcast) included
		// IPv6 (RFC 6890, RFC 9637 and the registry's later entries).
		p("::/128", "unspecified address"),
		p("::1/128", "loopback address"),
		p("::/96", "deprecated IPv4-compatible address"),
		p("::ffff:0:0:0/96", "translated IPv4 address"),
		p("64:ff9b:1::/48", "local-use NAT64 address"),
		p("100::/64", "discard-only address"),
		p("100:0:0:1::/64", "dummy address"),
		p("2001::/32", "Teredo address"),
		p("2001:2::/48", "benchmarking address"),
		p("2001:db8::/32", "documentation address"),
		p("3fff::/20", "documentation address"),
		p("2001::/23", "protocol assignment (IETF) address"),
		p("2620:4f:8000::/48", "DNS sink (AS112) address"),
		p("5f00::/16", "segment routing address"),
		p("fc00::/7", "private address"),
		p("fe80::/10", "link-local address"),
		p("fec0::/10", "deprecated site-local address"),
		p("ff00::/8", "multicast address"),
	}
}()

// CheckAddr reports why ip must not be dialled by the safe client, or nil
// if it may be. IPv4-mapped and NAT64/6to4-embedded IPv4 addresses are
// judged by the IPv4 address they carry. It is exported so a settings
// form can explain a refused URL before any request is made; the host's own
// addresses are refused at connect time only (Options.InterfaceAddrs).
func CheckAddr(ip netip.Addr, allowLoopback bool) error {
	if !ip.IsValid() {
		return errors.New("refusing to connect: invalid address")
	}
	ip = ip.WithZone("").Unmap()
	if v4, ok := embeddedIPv4(ip); ok {
		if err := CheckAddr(v4, allowLoopback); err != nil {
			return &BlockedAddressError{Addr: ip, Reason: err.(*BlockedAddressError).Reason + " embedded in IPv6"}
		}
	}
	if allowLoopback && ip.IsLoopback() {
		return nil
	}
	for _, b := range blocked {
		if b.prefix.Contains(ip) {
			return &BlockedAddressError{Addr: ip, Reason: b.reason}
		}
	}
	return nil
}

var (
	nat64Prefix = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour   = netip.MustParsePrefix("2002::/16")
)

// embeddedIPv4 extracts the IPv4 address carried by NAT64 (64:ff9b::/96)
// and 6to4 (2002::/16) addresses. Teredo, the IPv4-compatible and the
// IPv4-translated forms are refused whole.
func embeddedIPv4(ip netip.Addr) (netip.Addr, bool) {
	if !ip.Is6() {
		return netip.Addr{}, false
	}
	b := ip.As16()
	switch {
	case nat64Prefix.Contains(ip):
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case sixToFour.Contains(ip):
		return netip.AddrFrom4([4]byte(b[2:6])), true
	}
	return netip.Addr{}, false
}

// hostAddrsTTL is how long the host's own addresses are reused before they
// are listed again: an address added to an interface is refused within it.
const hostAddrsTTL = 5 * time.Second

// hostAddrs is the host's own interface addresses, listed at dial time and
// kept for hostAddrsTTL, so a URL pointing at this host's public address
// (where the dashboard itself or a neighbour listens) is refused like
// loopback.
type hostAddrs struct {
	list func() ([]net.Addr, error)
	now  func() time.Time

	mu    sync.Mutex
	at    time.Time
	addrs map[netip.Addr]struct{}
	err   error
}

// own reports whether ip is one of this host's addresses. NB: when the
// interfaces cannot be listed every address counts as the host's own: a
// refused call is better than an unchecked one.
func (h *hostAddrs) own(ip netip.Addr) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if now := h.now(); h.at.IsZero() || now.Sub(h.at) >= hostAddrsTTL || now.Before(h.at) {
		h.at, h.addrs, h.err = now, map[netip.Addr]struct{}{}, nil
		list, err := h.list()
		if err != nil {
			h.err = fmt.Errorf("cannot list this host's addresses: %w", err)
		}
		for _, a := range list {
			var raw net.IP
			switch v := a.(type) {
			case *net.IPNet:
				raw = v.IP
			case *net.IPAddr:
				raw = v.IP
			}
			if addr, ok := netip.AddrFromSlice(raw); ok {
				h.addrs[addr.Unmap()] = struct{}{}
			}
		}
	}
	if h.err != nil {
		return true, h.err
	}
	_, ok := h.addrs[ip.WithZone("").Unmap()]
	return ok, nil
}

// safeControl returns the dialer hook that checks the resolved address
// just before connecting, so no DNS answer can sneak a private address in,
// nor one of the host's own (host; nil skips that check).
func safeControl(allowLoopback bool, host *hostAddrs) func(network, address string, _ syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		h, _, err := net.SplitHostPort(address)
		if err != nil {
			return fmt.Errorf("refusing to connect to %q: %w", address, err)
		}
		ip, err := netip.ParseAddr(h)
		if err != nil {
			return fmt.Errorf("refusing to connect to %q: not an IP address", h)
		}
		if err := CheckAddr(ip, allowLoopback); err != nil {
			return err
		}
		if host == nil || allowLoopback && ip.Unmap().IsLoopback() {
			return nil
		}
		if own, err := host.own(ip); err != nil {
			return fmt.Errorf("refusing to connect to %s: %w", ip, err)
		} else if own {
			return &BlockedAddressError{Addr: ip.WithZone("").Unmap(), Reason: "one of this host's own addresses"}
		}
		return nil
	}
}

// NewClient returns an HTTP client for URLs that users configure
// (webhook targets, base URLs to verify): it dials only public addresses
// (checked after DNS resolution, at connect time), uses no proxy, follows
// no redirects (the 3xx response is returned as is) and bounds time and
// body size.
func NewClient(opts Options) *http.Client {
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	maxBody := opts.MaxBodyBytes
	if maxBody == 0 {
		maxBody = 1 << 20
	}
	host := &hostAddrs{list: opts.InterfaceAddrs, now: opts.Now}
	if host.list == nil {
		host.list = net.InterfaceAddrs
	}
	if host.now == nil {
		host.now = time.Now
	}
	dialer := &net.Dialer{
		Timeout:   timeout,
		KeepAlive: 30 * time.Second,
		Resolver:  opts.Resolver,
		Control:   safeControl(opts.AllowLoopback, host),
	}
	var rt http.RoundTripper = &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		ExpectContinueTimeout: time.Second,
	}
	if maxBody > 0 {
		rt = &limitTransport{next: rt, max: maxBody}
	}
	return &http.Client{
		Transport: rt,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// limitTransport bounds every response body it returns.
type limitTransport struct {
	next http.RoundTripper
	max  int64
}

func (t *limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	res.Body = &limitedBody{rc: res.Body, limit: t.max, left: t.max}
	return res, nil
}

// limitedBody fails with ErrBodyTooLarge once more than its bound is read.
type limitedBody struct {
	rc    io.ReadCloser
	limit int64
	left  int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, &bodyTooLargeError{limit: b.limit}
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n + int(b.left), &bodyTooLargeError{limit: b.limit}
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// ReadLimited reads all of r, failing with ErrBodyTooLarge (naming the
// limit) when it holds more than max bytes or a bound below r trips first.
func ReadLimited(r io.Reader, max int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, &bodyTooLargeError{limit: max}
	}
	return data, nil
}
