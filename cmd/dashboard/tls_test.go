package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testCert is a self-signed certificate made in the test, for localhost and 127.0.0.1.
type testCert struct {
	cert        *x509.Certificate
	key         *ecdsa.PrivateKey
	certPEM     []byte
	keyPEM      []byte
	serialInHex string
}

// newTestCert makes a self-signed certificate with serial, under key (a new one when nil).
func newTestCert(t *testing.T, serial int64, key *ecdsa.PrivateKey) testCert {
	t.Helper()
	if key == nil {
		var err error
		if key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			t.Fatal(err)
		}
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: fmt.Sprintf("dashboard test %d", serial)},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return testCert{
		cert:        cert,
		key:         key,
		certPEM:     pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:      pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		serialInHex: fmt.Sprintf("%X", serial),
	}
}

// replaceFile puts content at path as certbot and Kubernetes do: written beside it, then
// renamed over it, so a reader sees the old file or the new one, never half of one.
func replaceFile(t *testing.T, path string, content []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, content, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// writePair writes c's certificate and key into dir and returns their paths.
func writePair(t *testing.T, dir string, c testCert) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	replaceFile(t, certFile, c.certPEM)
	replaceFile(t, keyFile, c.keyPEM)
	return certFile, keyFile
}

// trusting is a certificate pool holding the given self-signed certificates.
func trusting(certs ...testCert) *x509.CertPool {
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c.cert)
	}
	return pool
}

// servedSerial makes a fresh TLS handshake with addr (no session resumed) as a client trusting
// roots and returns the serial of the certificate served, in hex.
func servedSerial(addr string, roots *x509.CertPool) (string, error) {
	d := &net.Dialer{Timeout: notifyDeadline}
	conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{RootCAs: roots, ServerName: "localhost"})
	if err != nil {
		return "", err
	}
	defer conn.Close()
	return fmt.Sprintf("%X", conn.ConnectionState().PeerCertificates[0].SerialNumber), nil
}

// awaitSerial makes handshake after handshake until addr serves the certificate with serial,
// failing after notifyDeadline: it waits for the dashboard to notice a change, not for a time.
func awaitSerial(t *testing.T, s *served, roots *x509.CertPool, serial string) {
	t.Helper()
	awaitHandshake(t, s, "the certificate with serial "+serial, func() error {
		got, err := servedSerial(s.addr, roots)
		if err == nil && got != serial {
			err = fmt.Errorf("still serving serial %s", got)
		}
		return err
	})
}

// awaitCertificate makes handshake after handshake until addr serves a certificate that roots
// verify (the one obtained over ACME).
func awaitCertificate(t *testing.T, s *served, roots *x509.CertPool) {
	t.Helper()
	awaitHandshake(t, s, "a certificate the CA signed", func() error {
		_, err := servedSerialFor(s.addr, roots)
		return err
	})
}

// awaitHandshake retries handshake until it succeeds, failing after notifyDeadline.
func awaitHandshake(t *testing.T, s *served, what string, handshake func() error) {
	t.Helper()
	deadline := time.Now().Add(notifyDeadline)
	for {
		err := handshake()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is not served after %s: %v\n%s", what, notifyDeadline, err, s.stderr)
		}
		time.Sleep(time.Millisecond)
	}
}

// awaitLog waits until the logs hold at least n lines containing text.
func awaitLog(t *testing.T, s *served, text string, n int) {
	t.Helper()
	deadline := time.Now().Add(notifyDeadline)
	for strings.Count(s.stderr.String(), text) < n {
		if time.Now().After(deadline) {
			t.Fatalf("no %d log lines with %s within %s:\n%s", n, text, notifyDeadline, s.stderr)
		}
		time.Sleep(time.Millisecond)
	}
}

// httpsClient trusts roots and speaks HTTP/2 when the server offers it.
func httpsClient(roots *x509.CertPool) *http.Client {
	return &http.Client{
		Timeout: notifyDeadline,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: roots},
			ForceAttemptHTTP2: true,
		},
	}
}

// stopClean stops s and fails the test if it logged a warning or an error while running.
func stopClean(t *testing.T, s *served) {
	t.Helper()
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
	if p := logProblems(s.stderr.String()); len(p) > 0 {
		t.Errorf("logged problems: %q", p)
	}
}

// TestServesHTTPSWithItsOwnCertificate: with --tls-cert/--tls-key the dashboard serves https
// with that certificate, over HTTP/2, with HSTS and a https public URL; it refuses TLS below
// 1.2, plain http sent to its port gets 400, and none of that is logged as a problem.
func TestServesHTTPSWithItsOwnCertificate(t *testing.T) {
	c := newTestCert(t, 1001, nil)
	certFile, keyFile := writePair(t, t.TempDir(), c)
	s := startServing(t, t.TempDir(), "--tls-cert", certFile, "--tls-key", keyFile)

	res, err := httpsClient(trusting(c)).Get("https://" + s.addr + "/healthz")
	if err != nil {
		t.Fatalf("https GET /healthz: %v\n%s", err, s.stderr)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.ProtoMajor != 2 {
		t.Fatalf("https GET /healthz: %d over %s, want 200 over HTTP/2", res.StatusCode, res.Proto)
	}
	if got := res.Header.Get("Strict-Transport-Security"); got != "max-age=31536000" {
		t.Errorf("Strict-Transport-Security %q, want max-age=31536000", got)
	}
	if got := res.TLS.PeerCertificates[0].SerialNumber.Int64(); got != 1001 {
		t.Errorf("served serial %d, want the configured certificate's 1001", got)
	}
	if !strings.Contains(s.stderr.String(), `"public_url":"https://127.0.0.1:`) {
		t.Errorf("public URL is not https by default under --tls-cert:\n%s", s.stderr)
	}

	old := &tls.Config{RootCAs: trusting(c), ServerName: "localhost", MaxVersion: tls.VersionTLS11}
	if conn, err := tls.Dial("tcp", s.addr, old); err == nil {
		conn.Close()
		t.Error("a TLS 1.1 handshake succeeded; the minimum is TLS 1.2")
	}

	plain, err := http.Get("http://" + s.addr + "/healthz")
	if err != nil {
		t.Fatalf("plain http to the https port: %v", err)
	}
	plain.Body.Close()
	if plain.StatusCode != http.StatusBadRequest {
		t.Errorf("plain http to the https port answered %d, want 400", plain.StatusCode)
	}
	stopClean(t, s)
}

// TestCertificateSwapIsPickedUpWithoutRestart replaces the certificate on disk under a running
// dashboard and waits for handshakes to show the new serial: on SIGHUP (with file checks off, so
// nothing else can have reloaded it) and on the file change alone.
func TestCertificateSwapIsPickedUpWithoutRestart(t *testing.T) {
	for _, tt := range []struct {
		name     string
		interval string
		hup      bool
		trigger  string
	}{
		{"SIGHUP", "0", true, `"trigger":"SIGHUP"`},
		{"file change", "20ms", false, `"trigger":"file change"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			first := newTestCert(t, 2001, nil)
			// The same key with a new certificate: replacing the one file is the whole change.
			second := newTestCert(t, 2002, first.key)
			certFile, keyFile := writePair(t, t.TempDir(), first)
			s := startServing(t, t.TempDir(), "--tls-cert", certFile, "--tls-key", keyFile, "--tls-check-interval", tt.interval)
			roots := trusting(first, second)
			awaitSerial(t, s, roots, first.serialInHex)

			replaceFile(t, certFile, second.certPEM)
			if tt.hup {
				if got, err := servedSerial(s.addr, roots); err != nil || got != first.serialInHex {
					t.Fatalf("with file checks off, serial %s (%v) before SIGHUP, want still %s", got, err, first.serialInHex)
				}
				if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
					t.Fatal(err)
				}
			}
			awaitSerial(t, s, roots, second.serialInHex)
			awaitLog(t, s, tt.trigger, 1)
			if !strings.Contains(s.stderr.String(), `"previous_serial":"7D1"`) {
				t.Errorf("the reload's log line does not name the previous serial:\n%s", s.stderr)
			}
			stopClean(t, s)
		})
	}
}

// TestBrokenReplacementKeepsTheOldCertificate breaks the files under a running dashboard in
// several ways, each noticed (an error naming the problem is logged) and each leaving the old
// certificate served; a whole new pair then replaces it.
func TestBrokenReplacementKeepsTheOldCertificate(t *testing.T) {
	first := newTestCert(t, 3001, nil)
	other := newTestCert(t, 3002, nil)
	fixed := newTestCert(t, 3003, nil)
	certFile, keyFile := writePair(t, t.TempDir(), first)
	s := startServing(t, t.TempDir(), "--tls-cert", certFile, "--tls-key", keyFile, "--tls-check-interval", "20ms")
	roots := trusting(first, other, fixed)
	awaitSerial(t, s, roots, first.serialInHex)

	const refused = "TLS certificate not reloaded; the previous one is still served"
	for i, tt := range []struct {
		name   string
		break_ func()
		hup    bool
		want   string
	}{
		{"a certificate whose key is not the key file", func() { replaceFile(t, certFile, other.certPEM) }, false, "do not match"},
		{"a certificate file that is not PEM", func() { replaceFile(t, certFile, []byte("not a certificate")) }, false, "PEM"},
		{"the key file removed", func() {
			replaceFile(t, certFile, first.certPEM)
			if err := os.Remove(keyFile); err != nil {
				t.Fatal(err)
			}
		}, false, "no such file"},
		{"SIGHUP with the key still missing", func() {}, true, "no such file"},
	} {
		tt.break_()
		if tt.hup {
			if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
		}
		awaitLog(t, s, refused, i+1)
		lines := strings.Split(strings.TrimSpace(s.stderr.String()), "\n")
		var last string
		for _, l := range lines {
			if strings.Contains(l, refused) {
				last = l
			}
		}
		if !strings.Contains(last, tt.want) || !strings.Contains(last, `"level":"ERROR"`) {
			t.Errorf("%s: logged %s, want an error mentioning %q", tt.name, last, tt.want)
		}
		if got, err := servedSerial(s.addr, roots); err != nil || got != first.serialInHex {
			t.Fatalf("%s: serving serial %s (%v), want the previous %s", tt.name, got, err, first.serialInHex)
		}
	}
	replaceFile(t, keyFile, fixed.keyPEM)
	replaceFile(t, certFile, fixed.certPEM)
	awaitSerial(t, s, roots, fixed.serialInHex)
	if err := s.stop(t); err != nil {
		t.Fatal(err)
	}
}

// TestTLSFlagErrors: every mistake in the TLS flags is refused with a message naming the flag
// and what to do, before anything is created (the data directory stays absent).
func TestTLSFlagErrors(t *testing.T) {
	files := t.TempDir()
	good := newTestCert(t, 4001, nil)
	certFile, keyFile := writePair(t, files, good)
	other := newTestCert(t, 4002, nil)
	otherKey := filepath.Join(files, "other-key.pem")
	if err := os.WriteFile(otherKey, other.keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	notPEM := filepath.Join(files, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(files, "missing.pem")
	for _, tt := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"certificate without key", nil, []string{"--tls-cert", certFile}, "--tls-cert and --tls-key go together"},
		{"key without certificate", nil, []string{"--tls-key", keyFile}, "--tls-cert and --tls-key go together"},
		{"certificate from env without key", map[string]string{"DASHBOARD_TLS_CERT": certFile}, nil, "DASHBOARD_TLS_CERT and --tls-key go together"},
		{"domain and certificate", nil, []string{"--domain", "dash.example.com", "--tls-cert", certFile, "--tls-key", keyFile}, "--tls-cert and --domain exclude each other"},
		{"domain with scheme", nil, []string{"--domain", "https://dash.example.com"}, "must be a DNS name such as dashboard.example.com"},
		{"domain with port", nil, []string{"--domain", "dash.example.com:443"}, "no scheme, port, path"},
		{"wildcard domain", nil, []string{"--domain", "*.example.com"}, "wildcard"},
		{"IP address as domain", nil, []string{"--domain", "192.0.2.10"}, "IP address"},
		{"single-label domain", nil, []string{"--domain", "dashboard"}, "fully qualified"},
		{"domain label with underscore", nil, []string{"--domain", "dash_board.example.com"}, `'_' is not a letter, digit or hyphen`},
		{"domain label starting with a hyphen", nil, []string{"--domain", "-dash.example.com"}, "not starting or ending with a hyphen"},
		{"ACME CA over http", nil, []string{"--domain", "dash.example.com", "--acme-ca", "http://ca.example.com/directory"}, "--acme-ca \"http://ca.example.com/directory\": must be the https URL"},
		{"bad ACME email", nil, []string{"--domain", "dash.example.com", "--acme-email", "ops at example"}, "--acme-email"},
		{"ACME CA without domain", nil, []string{"--acme-ca", "https://ca.example.com/directory"}, "--acme-ca is for certificates over ACME: give --domain too"},
		{"ACME root without domain", map[string]string{"DASHBOARD_ACME_CA_ROOT": certFile}, nil, "DASHBOARD_ACME_CA_ROOT is for certificates over ACME: give --domain too"},
		{"http address without TLS", nil, []string{"--http-addr", ":8081"}, "--http-addr redirects to https: it needs --tls-cert or --domain"},
		{"bad http address", nil, []string{"--domain", "dash.example.com", "--http-addr", "eighty"}, `--http-addr "eighty": must be host:port and the port is missing; e.g. :80 (or "off" for no plain http)`},
		{"http address is the https one", nil, []string{"--domain", "dash.example.com", "--addr", ":8443", "--http-addr", ":8443"}, "plain http and https need a port each"},
		{"http address on the https port", map[string]string{"DASHBOARD_ADDR": "10.0.0.5:8443"}, []string{"--domain", "dash.example.com", "--http-addr", ":8443"}, `--http-addr ":8443": takes the port of DASHBOARD_ADDR="10.0.0.5:8443": plain http and https need a port each`},
		{"http public URL with TLS", nil, []string{"--tls-cert", certFile, "--tls-key", keyFile, "--public-url", "http://dash.example.com"}, `--public-url "http://dash.example.com": must use https: the dashboard serves TLS itself (--tls-cert or --domain)`},
		{"public URL of another host than the domain", nil, []string{"--domain", "dash.example.com", "--public-url", "https://other.example.com"}, `names another host than --domain "dash.example.com"`},
		{"bad check interval", nil, []string{"--tls-cert", certFile, "--tls-key", keyFile, "--tls-check-interval", "often"}, "--tls-check-interval \"often\""},
		{"check interval without certificate", nil, []string{"--tls-check-interval", "1s"}, "--tls-check-interval is for --tls-cert"},
		{"demo with TLS", nil, []string{"--demo", "--domain", "dash.example.com"}, "--demo serves plain http"},
		{"missing certificate file", nil, []string{"--tls-cert", missing, "--tls-key", keyFile}, "no such file or directory (both files must exist and be readable"},
		{"key of another certificate", nil, []string{"--tls-cert", certFile, "--tls-key", otherKey}, "do not match: tls: private key does not match public key (the key must be the one the certificate was issued for)"},
		{"certificate given as key", nil, []string{"--tls-cert", certFile, "--tls-key", certFile}, "the key file one PEM PRIVATE KEY"},
		{"ACME root missing", nil, []string{"--domain", "dash.example.com", "--acme-ca-root", missing}, "--acme-ca-root: open " + missing},
		{"ACME root not PEM", nil, []string{"--domain", "dash.example.com", "--acme-ca-root", notPEM}, "holds no PEM certificate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			_, _, err := cli(t, tt.env, "", append([]string{"serve", "--data", dir}, tt.args...)...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tt.want)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a refused start created the data directory: %v", err)
			}
		})
	}
}

// TestTLSDefaults: --domain moves --addr to :443, --http-addr to :80 and --public-url to
// https://DOMAIN unless they are given (by flag or environment); --tls-cert makes the default
// public URL https; "off" turns the plain-http side off.
func TestTLSDefaults(t *testing.T) {
	c := newTestCert(t, 5001, nil)
	certFile, keyFile := writePair(t, t.TempDir(), c)
	for _, tt := range []struct {
		name                      string
		env                       map[string]string
		args                      []string
		addr, httpAddr, publicURL string
	}{
		{"plain", nil, nil, "127.0.0.1:8080", "", "http://127.0.0.1:8080"},
		{"domain", nil, []string{"--domain", "Dash.Example.com."}, ":443", ":80", "https://dash.example.com"},
		{"domain with addresses given", nil, []string{"--domain", "dash.example.com", "--addr", "10.0.0.5:8443", "--http-addr", "10.0.0.5:8080"}, "10.0.0.5:8443", "10.0.0.5:8080", "https://dash.example.com"},
		{"domain with addresses from env", map[string]string{"DASHBOARD_DOMAIN": "dash.example.com", "DASHBOARD_ADDR": ":8443", "DASHBOARD_HTTP_ADDR": "off"}, nil, ":8443", "", "https://dash.example.com"},
		{"domain with its public URL", nil, []string{"--domain", "dash.example.com", "--public-url", "https://dash.example.com:8443"}, ":443", ":80", "https://dash.example.com:8443"},
		{"certificate files", nil, []string{"--tls-cert", certFile, "--tls-key", keyFile, "--addr", ":8443"}, ":8443", "", "https://127.0.0.1:8443"},
		{"certificate files and a redirect", nil, []string{"--tls-cert", certFile, "--tls-key", keyFile, "--http-addr", "127.0.0.1:8081", "--public-url", "https://localhost"}, "127.0.0.1:8080", "127.0.0.1:8081", "https://localhost"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := tt.env
			cfg, err := parseServe(tt.args, io.Discard, func(k string) string { return env[k] })
			if err != nil {
				t.Fatal(err)
			}
			if cfg.addr != tt.addr || cfg.tls.httpAddr != tt.httpAddr || cfg.publicURL.String() != tt.publicURL {
				t.Fatalf("addr %q, http-addr %q, public URL %q; want %q, %q, %q", cfg.addr, cfg.tls.httpAddr, cfg.publicURL, tt.addr, tt.httpAddr, tt.publicURL)
			}
		})
	}
}
