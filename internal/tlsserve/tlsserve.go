// Package tlsserve gives the dashboard its certificates when it speaks TLS itself: a certificate
// and key read from files and reloaded when they change (Pair), or certificates obtained and
// renewed over ACME with golang.org/x/crypto/acme/autocert (Auto); and the plain-http side that
// answers ACME's HTTP-01 challenge and redirects everything else to https (Redirect). It imports
// nothing of the module: cmd/dashboard wires it to the flags and the web server.
package tlsserve

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// Config is the TLS configuration of the dashboard's listener: Go's defaults (TLS 1.2 and up,
// its cipher suites and curves), HTTP/2 then HTTP/1.1, certificates from getCert. protos adds
// ALPN protocols after those (ACME's acme-tls/1).
func Config(getCert func(*tls.ClientHelloInfo) (*tls.Certificate, error), protos ...string) *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: getCert,
		NextProtos:     append([]string{"h2", "http/1.1"}, protos...),
	}
}

// LoadRoots returns the system's trusted roots plus the certificates in the PEM file at path:
// the root of a private CA (a company's step-ca) that the ACME client must trust.
func LoadRoots(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	n := 0
	for rest := b; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: certificate %d: %w", path, n+1, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("%s holds no PEM certificate (-----BEGIN CERTIFICATE-----); give the CA's root certificate, e.g. step-ca's root_ca.crt", path)
	}
	return pool, nil
}

// Redirect answers plain http. GET and HEAD are sent (308) to the same path and query under base,
// the public https URL (never a host taken from the request, so it cannot be turned into an open
// redirect); anything else is refused with 400, since its body has already crossed the network
// in the clear and must not be accepted as if it had not.
func Redirect(base *url.URL) http.Handler {
	root := strings.TrimRight(base.String(), "/")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		target := root + r.URL.RequestURI()
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("Connection", "close")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, "this dashboard answers over https only: send the request to %s\n", target)
			return
		}
		http.Redirect(w, r, target, http.StatusPermanentRedirect)
	})
}

// describePairError adds what to do to the error of reading a certificate and key pair.
func describePairError(certFile, keyFile string, err error) error {
	msg := err.Error()
	switch {
	case errors.Is(err, os.ErrNotExist), errors.Is(err, os.ErrPermission):
		return fmt.Errorf("TLS certificate %s / key %s: %w (both files must exist and be readable by the dashboard's user)", certFile, keyFile, err)
	case strings.Contains(msg, "does not match"):
		return fmt.Errorf("TLS certificate %s and key %s do not match: %w (the key must be the one the certificate was issued for)", certFile, keyFile, err)
	case strings.Contains(msg, "PEM"):
		return fmt.Errorf("TLS certificate %s / key %s: %w (the certificate file holds PEM CERTIFICATE blocks, leaf first; the key file one PEM PRIVATE KEY)", certFile, keyFile, err)
	}
	return fmt.Errorf("TLS certificate %s / key %s: %w", certFile, keyFile, err)
}
