package safehttp

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestCheckAddr(t *testing.T) {
	tests := []struct {
		addr          string
		allowLoopback bool
		wantReason    string // "" means allowed
	}{
		{"10.0.0.1", false, "private address"},
		{"172.16.5.4", false, "private address"},
		{"172.31.255.255", false, "private address"},
		{"192.168.1.1", false, "private address"},
		{"fd12:3456::1", false, "private address"},
		{"169.254.1.1", false, "link-local address"},
		{"fe80::1", false, "link-local address"},
		{"fe80::1%eth0", false, "link-local address"},
		{"169.254.169.254", false, "cloud metadata address"},
		{"fd00:ec2::254", false, "cloud metadata address"},
		{"100.64.0.1", false, "shared (CGNAT) address"},
		{"100.127.255.254", false, "shared (CGNAT) address"},
		{"0.0.0.0", false, "unspecified address"},
		{"::", false, "unspecified address"},
		{"224.0.0.251", false, "multicast address"},
		{"ff02::1", false, "multicast address"},
		{"255.255.255.255", false, "reserved address"},
		{"127.0.0.1", false, "loopback address"},
		{"127.1.2.3", false, "loopback address"},
		{"::1", false, "loopback address"},
		{"::ffff:10.0.0.1", false, "private address"},
		{"::ffff:127.0.0.1", false, "loopback address"},
		{"64:ff9b::a00:1", false, "private address embedded in IPv6"},
		{"2002:a9fe:a9fe::1", false, "cloud metadata address embedded in IPv6"},
		// AllowLoopback opens loopback only.
		{"127.0.0.1", true, ""},
		{"127.1.2.3", true, ""},
		{"::1", true, ""},
		{"::ffff:127.0.0.1", true, ""},
		{"10.0.0.1", true, "private address"},
		{"169.254.169.254", true, "cloud metadata address"},
		{"0.0.0.0", true, "unspecified address"},
		// Public addresses are allowed (checked only, never dialled).
		{"8.8.8.8", false, ""},
		{"172.32.0.1", false, ""},
		{"100.128.0.1", false, ""},
		{"2606:4700::1111", false, ""},

		// Issue 18: every special-purpose range of IANA's registries, IPv4 and IPv6, and the
		// forms that carry an IPv4 address inside IPv6.
		{"192.0.2.10", false, "documentation address"},
		{"198.51.100.7", false, "documentation address"},
		{"203.0.113.255", false, "documentation address"},
		{"2001:db8::1", false, "documentation address"},
		{"3fff:1::1", false, "documentation address"},
		{"198.18.0.1", false, "benchmarking address"},
		{"198.19.255.254", false, "benchmarking address"},
		{"2001:2::1", false, "benchmarking address"},
		{"100.64.0.0", false, "shared (CGNAT) address"},
		{"239.255.255.250", false, "multicast address"},
		{"ff05::2", false, "multicast address"},
		{"240.0.0.1", false, "reserved address"},
		{"250.1.2.3", false, "reserved address"},
		{"0.1.2.3", false, "unspecified address"},
		{"192.0.0.8", false, "protocol assignment (IETF) address"},
		{"192.31.196.1", false, "DNS sink (AS112) address"},
		{"192.52.193.1", false, "multicast tunnel (AMT) address"},
		{"192.88.99.1", false, "deprecated 6to4 relay address"},
		{"192.175.48.1", false, "DNS sink (AS112) address"},
		{"2620:4f:8000::1", false, "DNS sink (AS112) address"},
		{"::ffff:192.0.2.1", false, "documentation address"},
		{"::ffff:198.18.0.1", false, "benchmarking address"},
		{"::ffff:0:192.0.2.1", false, "translated IPv4 address"},
		{"::ffff:0:8.8.8.8", false, "translated IPv4 address"},
		{"::127.0.0.1", false, "deprecated IPv4-compatible address"},
		{"::8.8.8.8", false, "deprecated IPv4-compatible address"},
		{"64:ff9b::192.0.2.1", false, "documentation address embedded in IPv6"},
		{"64:ff9b::127.0.0.1", false, "loopback address embedded in IPv6"},
		{"64:ff9b::100.64.0.1", false, "shared (CGNAT) address embedded in IPv6"},
		{"64:ff9b:1::a00:1", false, "local-use NAT64 address"},
		{"2002:c000:0201::1", false, "documentation address embedded in IPv6"},
		{"2002:7f00:0001::1", false, "loopback address embedded in IPv6"},
		{"2002:c612:0001::1", false, "benchmarking address embedded in IPv6"},
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", false, "Teredo address"},
		{"2001::1", false, "Teredo address"},
		{"2001:10::1", false, "protocol assignment (IETF) address"},
		{"100::1", false, "discard-only address"},
		{"fec0::1", false, "deprecated site-local address"},
		{"5f00::1", false, "segment routing address"},
		{"64:ff9b::192.0.2.1", true, "documentation address embedded in IPv6"},

		// Public addresses, also inside NAT64 and 6to4, stay reachable.
		{"64:ff9b::808:808", false, ""},
		{"2002:808:808::1", false, ""},
		{"192.0.3.1", false, ""},
		{"198.20.0.1", false, ""},
		{"2001:4860:4860::8888", false, ""},
	}
	for _, tt := range tests {
		err := CheckAddr(netip.MustParseAddr(tt.addr), tt.allowLoopback)
		if tt.wantReason == "" {
			if err != nil {
				t.Errorf("CheckAddr(%s, %v) = %v, want allowed", tt.addr, tt.allowLoopback, err)
			}
			continue
		}
		be, ok := errors.AsType[*BlockedAddressError](err)
		if !ok || be.Reason != tt.wantReason {
			t.Errorf("CheckAddr(%s, %v) = %v, want reason %q", tt.addr, tt.allowLoopback, err, tt.wantReason)
		}
	}
	if CheckAddr(netip.Addr{}, true) == nil {
		t.Error("the zero address was allowed")
	}
}

// mustBeBlocked fails the test before any dial if the address would be
// allowed: a refused dial must never be our only protection against
// sending traffic off the machine.
func mustBeBlocked(t *testing.T, host string, allowLoopback bool) {
	t.Helper()
	if CheckAddr(netip.MustParseAddr(host), allowLoopback) == nil {
		t.Fatalf("precondition: %s is allowed; not dialling it", host)
	}
}

func TestSafeClientRefusesBlockedAddresses(t *testing.T) {
	tests := []struct {
		host, wantMsg string
	}{
		{"10.0.0.1", "refusing to connect to 10.0.0.1: private address"},
		{"192.168.0.10", "refusing to connect to 192.168.0.10: private address"},
		{"172.20.0.1", "refusing to connect to 172.20.0.1: private address"},
		{"169.254.169.254", "refusing to connect to 169.254.169.254: cloud metadata address"},
		{"169.254.10.10", "refusing to connect to 169.254.10.10: link-local address"},
		{"100.64.1.1", "refusing to connect to 100.64.1.1: shared (CGNAT) address"},
		{"0.0.0.0", "refusing to connect to 0.0.0.0: unspecified address"},
		{"127.0.0.1", "refusing to connect to 127.0.0.1: loopback address"},
		{"224.0.0.1", "refusing to connect to 224.0.0.1: multicast address"},
		{"fd00:ec2::254", "refusing to connect to fd00:ec2::254: cloud metadata address"},
		{"fc00::5", "refusing to connect to fc00::5: private address"},
		{"fe80::5", "refusing to connect to fe80::5: link-local address"},
		{"::1", "refusing to connect to ::1: loopback address"},
	}
	c := NewClient(Options{Timeout: 2 * time.Second})
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			mustBeBlocked(t, tt.host, false)
			u := "http://" + net.JoinHostPort(tt.host, "80") + "/"
			_, err := c.Get(u)
			if errors.Is(err, syscall.EAFNOSUPPORT) {
				t.Skipf("no IPv6 sockets here: %v", err)
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("Get(%s) err = %v, want %q", u, err, tt.wantMsg)
			}
			if _, ok := errors.AsType[*BlockedAddressError](err); !ok {
				t.Errorf("err = %v, want a *BlockedAddressError in the chain", err)
			}
		})
	}
}

func TestSafeControlChecksResolvedAddress(t *testing.T) {
	// The hook sees the address after resolution; call it directly as the
	// dialer would, with no socket.
	tests := []struct {
		network, address string
		allowLoopback    bool
		wantErr          string
	}{
		{"tcp6", "[fd00:ec2::254]:80", false, "cloud metadata address"},
		{"tcp4", "127.0.0.1:8080", true, ""},
		{"tcp4", "127.0.0.1:8080", false, "loopback address"},
		{"tcp4", "no-port", false, "refusing to connect"},
		{"tcp4", "example.com:80", false, "not an IP address"},
	}
	for _, tt := range tests {
		err := safeControl(tt.allowLoopback, nil)(tt.network, tt.address, nil)
		if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("control(%s, %s) = %v, want %q", tt.network, tt.address, err, tt.wantErr)
		}
	}
}

// fakeDNS answers every A query with ip and every other query with no
// records, on a loopback UDP socket.
func fakeDNS(t *testing.T, ip netip.Addr) *net.Resolver {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			q := buf[:n]
			if len(q) < 12 {
				continue
			}
			end := 12
			for end < len(q) && q[end] != 0 {
				end += int(q[end]) + 1
			}
			end += 5 // zero label, qtype, qclass
			if end > len(q) {
				continue
			}
			qtype := binary.BigEndian.Uint16(q[end-4 : end-2])
			resp := append([]byte{}, q[:2]...)
			resp = append(resp, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0)
			resp = append(resp, q[12:end]...)
			if qtype == 1 {
				resp[7] = 1
				a := ip.As4()
				resp = append(resp, 0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4)
				resp = append(resp, a[:]...)
			}
			_, _ = pc.WriteTo(resp, from)
		}
	}()
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", pc.LocalAddr().String())
	}}
}

func TestSafeClientRefusesNamesResolvingToBlockedAddresses(t *testing.T) {
	tests := []struct {
		name     string
		url      string
		resolver func(t *testing.T) *net.Resolver
		wantMsg  string
	}{
		{"localhost without AllowLoopback", "http://localhost:1/", func(*testing.T) *net.Resolver { return nil }, "loopback address"},
		{"DNS answer is private", "http://internal.example.test:80/", func(t *testing.T) *net.Resolver {
			mustBeBlocked(t, "10.9.8.7", false)
			return fakeDNS(t, netip.MustParseAddr("10.9.8.7"))
		}, "refusing to connect to 10.9.8.7: private address"},
		{"DNS answer is metadata", "http://metadata.example.test:80/", func(t *testing.T) *net.Resolver {
			mustBeBlocked(t, "169.254.169.254", false)
			return fakeDNS(t, netip.MustParseAddr("169.254.169.254"))
		}, "refusing to connect to 169.254.169.254: cloud metadata address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewClient(Options{Resolver: tt.resolver(t), Timeout: 2 * time.Second})
			_, err := c.Get(tt.url)
			if err == nil || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("Get(%s) err = %v, want %q", tt.url, err, tt.wantMsg)
			}
		})
	}
}

func TestSafeClientLoopbackOnlyWithOption(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	tests := []struct {
		allow   bool
		wantErr string
	}{
		{false, "loopback address"},
		{true, ""},
	}
	for _, tt := range tests {
		before := hits.Load()
		res, err := NewClient(Options{AllowLoopback: tt.allow}).Get(srv.URL)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || hits.Load() != before {
				t.Errorf("AllowLoopback=%v: err = %v, hits %d→%d; want refused before connecting", tt.allow, err, before, hits.Load())
			}
			continue
		}
		if err != nil {
			t.Fatalf("AllowLoopback=%v: %v", tt.allow, err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if string(body) != "ok" || hits.Load() != before+1 {
			t.Errorf("body = %q, hits = %d", body, hits.Load())
		}
	}
}

func TestSafeClientDoesNotFollowRedirects(t *testing.T) {
	var targetHits atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/start", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/target", http.StatusFound)
	})
	mux.HandleFunc("/target", func(w http.ResponseWriter, r *http.Request) { targetHits.Add(1) })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	res, err := NewClient(Options{AllowLoopback: true}).Get(srv.URL + "/start")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusFound || res.Header.Get("Location") != "/target" || targetHits.Load() != 0 {
		t.Errorf("status %d location %q target hits %d; want the 302 itself and no follow", res.StatusCode, res.Header.Get("Location"), targetHits.Load())
	}
}

func TestSafeClientNoProxy(t *testing.T) {
	c := NewClient(Options{})
	lt, ok := c.Transport.(*limitTransport)
	if !ok {
		t.Fatalf("transport = %T", c.Transport)
	}
	tr, ok := lt.next.(*http.Transport)
	if !ok || tr.Proxy != nil {
		t.Errorf("transport %T has a proxy function; want none so HTTP(S)_PROXY cannot reroute requests", lt.next)
	}
}

func TestSafeClientBodyLimit(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, strings.Repeat("x", 2000))
	}))
	t.Cleanup(srv.Close)
	tests := []struct {
		max     int64
		wantErr bool
	}{
		{1000, true},
		{1999, true},
		{2000, false},
		{-1, false},
	}
	for _, tt := range tests {
		res, err := NewClient(Options{AllowLoopback: true, MaxBodyBytes: tt.max}).Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if tt.wantErr {
			if !errors.Is(err, ErrBodyTooLarge) || int64(len(body)) != tt.max {
				t.Errorf("max %d: read %d bytes, err %v; want exactly max bytes then ErrBodyTooLarge", tt.max, len(body), err)
			}
			// The Tensfer client, which does not import this package,
			// recognises the bound by the standard library's error.
			if mbe, ok := errors.AsType[*http.MaxBytesError](err); !ok || mbe.Limit != tt.max || !strings.Contains(err.Error(), fmt.Sprintf("over %d bytes", tt.max)) {
				t.Errorf("max %d: err %v, want an *http.MaxBytesError naming the bound", tt.max, err)
			}
			continue
		}
		if err != nil || len(body) != 2000 {
			t.Errorf("max %d: read %d bytes, err %v", tt.max, len(body), err)
		}
	}
}

func TestReadLimited(t *testing.T) {
	tests := []struct {
		in      string
		max     int64
		wantErr bool
	}{
		{"", 0, false},
		{"abc", 3, false},
		{"abcd", 3, true},
		{"abc", 10, false},
	}
	for _, tt := range tests {
		got, err := ReadLimited(strings.NewReader(tt.in), tt.max)
		if tt.wantErr != errors.Is(err, ErrBodyTooLarge) || (!tt.wantErr && string(got) != tt.in) {
			t.Errorf("ReadLimited(%q, %d) = %q, %v", tt.in, tt.max, got, err)
		}
		if mbe, ok := errors.AsType[*http.MaxBytesError](err); tt.wantErr && (!ok || mbe.Limit != tt.max) {
			t.Errorf("ReadLimited(%q, %d) err = %v, want an *http.MaxBytesError with the limit", tt.in, tt.max, err)
		}
	}
}

// TestSafeClientRefusesTheHostsOwnAddresses: an address of one of the host's interfaces is
// refused at connect time like loopback, whatever range it is in (here a public one, so that
// only this check can refuse it), and the list follows the interfaces within hostAddrsTTL.
// Loopback stays allowed with AllowLoopback (the demo's simulator and the tests).
func TestSafeClientRefusesTheHostsOwnAddresses(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	var ifaces atomic.Value
	ifaces.Store([]net.Addr{&net.IPNet{IP: net.ParseIP("127.0.0.1"), Mask: net.CIDRMask(8, 32)},
		&net.IPNet{IP: net.ParseIP("8.8.4.4"), Mask: net.CIDRMask(24, 32)},
		&net.IPAddr{IP: net.ParseIP("2606:4700::6810:84e5")}})
	listed := atomic.Int32{}
	opts := func(allow bool) Options {
		return Options{AllowLoopback: allow, Now: func() time.Time { return time.Unix(0, now.Load()) },
			InterfaceAddrs: func() ([]net.Addr, error) { listed.Add(1); return ifaces.Load().([]net.Addr), nil }}
	}
	for _, tt := range []struct {
		address string
		allow   bool
		want    string
	}{
		{"8.8.4.4:443", false, "refusing to connect to 8.8.4.4: one of this host's own addresses"},
		{"8.8.4.4:443", true, "one of this host's own addresses"},
		{"[::ffff:8.8.4.4]:443", false, "one of this host's own addresses"},
		{"[2606:4700::6810:84e5]:443", false, "one of this host's own addresses"},
		{"[64:ff9b::808:404]:443", false, ""}, // NAT64 reaches the address elsewhere, not here
		{"127.0.0.1:8080", true, ""},
		{"127.0.0.1:8080", false, "loopback address"},
		{"8.8.8.8:443", false, ""},
	} {
		err := safeControl(tt.allow, &hostAddrs{list: opts(tt.allow).InterfaceAddrs, now: opts(tt.allow).Now})("tcp", tt.address, nil)
		if (tt.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.want) {
			t.Errorf("control(%s, loopback allowed %v) = %v, want %q", tt.address, tt.allow, err, tt.want)
		}
	}

	// Through a client: refused before any packet, then an address added to an interface is
	// refused once the cache ages, and one removed is allowed again.
	c := NewClient(opts(false))
	if _, err := c.Get("http://8.8.4.4:1/"); err == nil || !strings.Contains(err.Error(), "one of this host's own addresses") {
		t.Fatalf("Get to the host's own address: %v", err)
	}
	host := &hostAddrs{list: opts(false).InterfaceAddrs, now: opts(false).Now}
	ctl := safeControl(false, host)
	if err := ctl("tcp", "1.1.1.1:443", nil); err != nil {
		t.Fatal(err)
	}
	before := listed.Load()
	ifaces.Store([]net.Addr{&net.IPNet{IP: net.ParseIP("1.1.1.1"), Mask: net.CIDRMask(32, 32)}})
	if err := ctl("tcp", "1.1.1.1:443", nil); err != nil || listed.Load() != before {
		t.Fatalf("within the cache's life: %v, listed %d more times", err, listed.Load()-before)
	}
	now.Add(int64(hostAddrsTTL))
	if err := ctl("tcp", "1.1.1.1:443", nil); err == nil {
		t.Fatal("an address added to an interface is still allowed after the cache aged")
	}
	if err := ctl("tcp", "8.8.4.4:443", nil); err != nil {
		t.Fatalf("an address no longer on an interface: %v", err)
	}

	// Interfaces that cannot be listed refuse every call rather than letting one through.
	broken := safeControl(false, &hostAddrs{list: func() ([]net.Addr, error) { return nil, errors.New("netlink: permission denied") }, now: time.Now})
	if err := broken("tcp", "8.8.8.8:443", nil); err == nil || !strings.Contains(err.Error(), "cannot list this host's addresses") {
		t.Fatalf("interfaces not listed: %v", err)
	}
}

// TestSafeClientRefusesTheRealHostsAddresses dials each real non-loopback interface address of
// this machine through a listener on it, with AllowLoopback set as the demo does: none is reached.
func TestSafeClientRefusesTheRealHostsAddresses(t *testing.T) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	tried := 0
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		ip, _ := netip.AddrFromSlice(n.IP)
		if !ok || ip.Unmap().IsLoopback() || ip.Unmap().IsLinkLocalUnicast() {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(ip.Unmap().String(), "0"))
		if err != nil {
			continue
		}
		var hits atomic.Int32
		srv := &http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) })}
		go srv.Serve(ln)
		_, err = NewClient(Options{AllowLoopback: true, Timeout: 2 * time.Second}).Get("http://" + ln.Addr().String() + "/")
		srv.Close()
		if err == nil || hits.Load() != 0 {
			t.Errorf("the host's own %s was reached: %v", ln.Addr(), err)
		}
		tried++
	}
	if tried == 0 {
		t.Skip("no non-loopback interface address to listen on")
	}
}
