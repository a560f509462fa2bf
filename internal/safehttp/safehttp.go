// Package safehttp provides the HTTP client for URLs that users configure
// (base URLs to verify, webhook targets to replay to): it refuses private,
// loopback, link-local and other internal addresses, checked after DNS
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

// blockedPrefixes returns the refused ranges, most specific first so the
// metadata addresses are named as such rather than as link-local.
func blockedPrefixes() []blockedPrefix {
	p := func(s, reason string) blockedPrefix { return blockedPrefix{netip.MustParsePrefix(s), reason} }
	return []blockedPrefix{
		p("169.254.169.254/32", "cloud metadata address"),
		p("fd00:ec2::254/128", "cloud metadata address"),
		p("0.0.0.0/8", "unspecified address"),
		p("::/128", "unspecified address"),
		p("127.0.0.0/8", "loopback address"),
		p("::1/128", "loopback address"),
		p("10.0.0.0/8", "private address"),
		p("172.16.0.0/12", "private address"),
		p("192.168.0.0/16", "private address"),
		p("fc00::/7", "private address"),
		p("169.254.0.0/16", "link-local address"),
		p("fe80::/10", "link-local address"),
		p("100.64.0.0/10", "shared (CGNAT) address"),
		p("224.0.0.0/4", "multicast address"),
		p("ff00::/8", "multicast address"),
		p("192.0.0.0/24", "reserved address"),
		p("198.18.0.0/15", "reserved address"),
		p("240.0.0.0/4", "reserved address"),
	}
}

// CheckAddr reports why ip must not be dialled by the safe client, or nil
// if it may be. IPv4-mapped and NAT64/6to4-embedded IPv4 addresses are
// judged by the IPv4 address they carry. It is exported so a settings
// form can explain a refused URL before any request is made.
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
	for _, b := range blockedPrefixes() {
		if b.prefix.Contains(ip) {
			return &BlockedAddressError{Addr: ip, Reason: b.reason}
		}
	}
	return nil
}

// embeddedIPv4 extracts the IPv4 address carried by NAT64 (64:ff9b::/96)
// and 6to4 (2002::/16) addresses.
func embeddedIPv4(ip netip.Addr) (netip.Addr, bool) {
	if !ip.Is6() {
		return netip.Addr{}, false
	}
	b := ip.As16()
	switch {
	case netip.MustParsePrefix("64:ff9b::/96").Contains(ip):
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case netip.MustParsePrefix("2002::/16").Contains(ip):
		return netip.AddrFrom4([4]byte(b[2:6])), true
	}
	return netip.Addr{}, false
}

// safeControl returns the dialer hook that checks the resolved address
// just before connecting, so no DNS answer can sneak a private address in.
func safeControl(allowLoopback bool) func(network, address string, _ syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return fmt.Errorf("refusing to connect to %q: %w", address, err)
		}
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return fmt.Errorf("refusing to connect to %q: not an IP address", host)
		}
		return CheckAddr(ip, allowLoopback)
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
	dialer := &net.Dialer{
		Timeout:   timeout,
		KeepAlive: 30 * time.Second,
		Resolver:  opts.Resolver,
		Control:   safeControl(opts.AllowLoopback),
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
