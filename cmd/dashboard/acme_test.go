package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/letsencrypt/pebble/v2/ca"
	pebbledb "github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"
)

// testDomain is the name the dashboard asks the test CA for; the test's DNS server resolves it
// to 127.0.0.1 for the CA's validation (autocert takes no single-label name such as localhost).
const testDomain = "dashboard.pebble.test"

// serveTestDNS answers the CA's lookups over TCP on loopback: testDomain is 127.0.0.1 (no
// IPv6), any other name does not exist. It returns the server's address.
func serveTestDNS(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{Listener: ln, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		for _, question := range q.Question {
			if !strings.EqualFold(question.Name, testDomain+".") {
				m.Rcode = dns.RcodeNameError
				continue
			}
			if question.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{
					Hdr: dns.RR_Header{Name: question.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
					A:   net.IPv4(127, 0, 0, 1),
				})
			}
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return ln.Addr().String()
}

// testCA is Pebble, Let's Encrypt's ACME test server, run in-process: its directory is served
// over https on loopback at once, but answers only once start has told its validation authority
// where the dashboard listens (ports known only after the dashboard is up).
type testCA struct {
	directory string // the ACME directory URL, for --acme-ca
	rootFile  string // the https server's certificate, for --acme-ca-root
	logs      *lockedBuffer
	ready     chan struct{}
	handler   atomic.Pointer[http.Handler]
	ca        *ca.CAImpl
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	// No random sleeps before validating, no nonces refused at random: the CA does each step
	// once, when asked.
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	c := &testCA{logs: &lockedBuffer{}, ready: make(chan struct{})}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-c.ready:
			(*c.handler.Load()).ServeHTTP(w, r)
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	c.directory = srv.URL + wfe.DirectoryPath
	c.rootFile = filepath.Join(t.TempDir(), "acme-ca-root.pem")
	if err := os.WriteFile(c.rootFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return c
}

// start builds Pebble with its validation authority checking HTTP-01 at httpPort and
// TLS-ALPN-01 at tlsPort of whatever dnsAddr resolves, and opens the directory.
func (c *testCA) start(httpPort, tlsPort int, dnsAddr string) {
	logger := log.New(c.logs, "pebble ", 0)
	store := pebbledb.NewMemoryStore()
	c.ca = ca.New(logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{"default": {Description: "test"}})
	v := va.New(logger, httpPort, tlsPort, false, dnsAddr, store)
	front := wfe.New(logger, store, v, c.ca, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	h := front.Handler()
	c.handler.Store(&h)
	close(c.ready)
}

// roots trusts the CA's root, as a browser trusts Let's Encrypt's.
func (c *testCA) roots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(c.ca.GetRootCert(0).Cert)
	return pool
}

// port is the port of a host:port address.
func port(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// refusingTLSPort is a port that takes connections and closes them at once: a TLS-ALPN-01
// validation there fails, as when a firewall lets only port 80 through.
func refusingTLSPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conn.Close()
		}
	}()
	return port(t, ln.Addr().String())
}

// TestACMEObtainsAndStoresACertificate runs the dashboard with --domain against Pebble in
// process: it obtains a certificate issued by Pebble's intermediate (over TLS-ALPN-01 on its
// https port, or over HTTP-01 on its plain-http port when the https port is out of the CA's
// reach), serves https with it over HTTP/2 with HSTS, keeps it (and its ACME account key)
// owner-only under the data directory, serves it again after a restart without asking the CA,
// and redirects plain http to the public https URL.
func TestACMEObtainsAndStoresACertificate(t *testing.T) {
	if testing.Short() {
		t.Skip("runs an ACME CA in process; skipped with -short")
	}
	for _, tt := range []struct {
		name    string
		tlsALPN bool // the CA reaches the https port
	}{
		{"TLS-ALPN-01 on the https port", true},
		{"HTTP-01 when the https port is out of reach", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dnsAddr := serveTestDNS(t)
			testCA := newTestCA(t)
			dir := t.TempDir()
			args := []string{"--domain", testDomain, "--addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
				"--acme-ca", testCA.directory, "--acme-ca-root", testCA.rootFile, "--acme-email", "ops@example.com"}
			ctx, cancel := context.WithCancel(context.Background())
			s := runServe(t, ctx, cancel, dir, args...)
			status := s.notify.await(t, "READY=1", s.exited, s.stderr)["STATUS"]
			m := regexp.MustCompile(`^serving on (\S+) over https, redirecting http on (\S+)$`).FindStringSubmatch(status)
			if m == nil {
				t.Fatalf("READY=1 with STATUS=%q, want the https and http addresses", status)
			}
			s.addr = m[1]
			httpAddr := m[2]
			tlsPort := port(t, s.addr)
			if !tt.tlsALPN {
				tlsPort = refusingTLSPort(t)
			}
			testCA.start(port(t, httpAddr), tlsPort, dnsAddr)
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("the test CA's log:\n%s", testCA.logs)
				}
			})

			roots := testCA.roots()
			awaitCertificate(t, s, roots)
			client := &http.Client{Transport: &http.Transport{
				TLSClientConfig:   &tls.Config{RootCAs: roots, ServerName: testDomain},
				ForceAttemptHTTP2: true,
			}}
			res, err := client.Get("https://" + s.addr + "/healthz")
			if err != nil {
				t.Fatalf("https GET /healthz with the CA's root trusted: %v\n%s", err, s.stderr)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK || res.ProtoMajor != 2 || res.Header.Get("Strict-Transport-Security") != "max-age=31536000" {
				t.Fatalf("https GET /healthz: %d over %s with HSTS %q, want 200 over HTTP/2 with max-age=31536000",
					res.StatusCode, res.Proto, res.Header.Get("Strict-Transport-Security"))
			}
			leaf := res.TLS.PeerCertificates[0]
			intermediate := testCA.ca.GetIntermediateCert(0).Cert
			if leaf.Issuer.String() != intermediate.Subject.String() || leaf.CheckSignatureFrom(intermediate) != nil {
				t.Fatalf("served certificate issued by %q, want Pebble's intermediate %q", leaf.Issuer, intermediate.Subject)
			}
			if len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != testDomain {
				t.Fatalf("served certificate for %q, want %s", leaf.DNSNames, testDomain)
			}
			// autocert tries TLS-ALPN-01 first and HTTP-01 only when that fails.
			askedHTTP := strings.Contains(testCA.logs.String(), "Attempting to validate w/ HTTP: http://"+testDomain+":")
			if askedHTTP != !tt.tlsALPN {
				t.Errorf("the CA validated over HTTP-01: %v, want %v:\n%s", askedHTTP, !tt.tlsALPN, testCA.logs)
			}

			// A client that names no server (a health check by IP address) gets the same certificate.
			conn, err := tls.Dial("tcp", s.addr, &tls.Config{InsecureSkipVerify: true})
			if err != nil {
				t.Fatalf("handshake without a server name: %v", err)
			}
			if got := conn.ConnectionState().PeerCertificates[0]; !got.Equal(leaf) {
				t.Errorf("without a server name the certificate for %q was served, want the domain's", got.DNSNames)
			}
			conn.Close()

			// Kept owner-only in the data directory, one folder per CA.
			store := filepath.Join(dir, "acme", strings.ReplaceAll(strings.TrimPrefix(strings.TrimSuffix(testCA.directory, wfe.DirectoryPath), "https://"), ":", "_"))
			for _, p := range []string{filepath.Join(dir, "acme"), store} {
				if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o700 {
					t.Fatalf("%s: %v, want a directory with mode 0700", p, err)
				}
			}
			stored, err := os.ReadFile(filepath.Join(store, testDomain))
			if err != nil {
				t.Fatalf("certificate not stored in the data directory: %v", err)
			}
			if !strings.Contains(string(stored), "PRIVATE KEY") || !strings.Contains(string(stored), "CERTIFICATE") {
				t.Fatalf("stored file holds no key and chain:\n%s", stored)
			}
			for _, name := range []string{testDomain, "acme_account+key"} {
				if st, err := os.Stat(filepath.Join(store, name)); err != nil || st.Mode().Perm() != 0o600 {
					t.Errorf("%s: %v, want a file with mode 0600", name, err)
				}
			}

			// Plain http: GET and HEAD go to the public https URL, never to a host from the request;
			// anything else is refused, its body having crossed the network in the clear.
			noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			req, _ := http.NewRequest(http.MethodGet, "http://"+httpAddr+"/events?env=production", nil)
			req.Host = "evil.example.com"
			res, err = noFollow.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if want := "https://" + testDomain + "/events?env=production"; res.StatusCode != http.StatusPermanentRedirect || res.Header.Get("Location") != want {
				t.Fatalf("plain http GET: %d to %q, want 308 to %s", res.StatusCode, res.Header.Get("Location"), want)
			}
			res, err = noFollow.Post("http://"+httpAddr+"/hooks/production", "application/json", strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "https://"+testDomain+"/hooks/production") {
				t.Fatalf("plain http POST: %d %q, want 400 naming the https URL", res.StatusCode, body)
			}
			stopClean(t, s)

			// A restart serves the stored certificate: no new order (a new one has a new serial).
			orders := strings.Count(testCA.logs.String(), "Issued certificate serial")
			again := startServing(t, dir, args...)
			if _, err := servedSerialFor(again.addr, roots); err != nil {
				t.Fatalf("after a restart: %v\n%s", err, again.stderr)
			}
			got, err := servedSerialFor(again.addr, roots)
			if err != nil || got != leaf.SerialNumber.Text(16) {
				t.Fatalf("after a restart serving serial %s (%v), want the stored %s", got, err, leaf.SerialNumber.Text(16))
			}
			if now := strings.Count(testCA.logs.String(), "Issued certificate serial"); now != orders {
				t.Fatalf("the restart asked the CA for another certificate (%d issued, then %d)", orders, now)
			}
			if err := again.stop(t); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// servedSerialFor handshakes with addr for testDomain and returns the served serial in
// lower-case hex.
func servedSerialFor(addr string, roots *x509.CertPool) (string, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: notifyDeadline}, "tcp", addr, &tls.Config{RootCAs: roots, ServerName: testDomain})
	if err != nil {
		return "", err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.Text(16), nil
}
