package tlsserve

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// LetsEncrypt is the ACME directory used unless another CA is named.
const LetsEncrypt = autocert.DefaultACMEDirectory

// ACME configures automatic certificates for one domain.
type ACME struct {
	Domain       string
	DirectoryURL string         // the CA's ACME directory; LetsEncrypt when empty
	Email        string         // contact for the CA's expiry and policy mail; optional
	DataDir      string         // the store is <DataDir>/acme/<CA host>: account key and certificates
	Roots        *x509.CertPool // roots trusted when talking to the CA (a private CA's added); nil: the system's
	UserAgent    string
}

// Auto obtains and renews the domain's certificate over ACME (autocert: TLS-ALPN-01 on the TLS
// listener, HTTP-01 through HTTPHandler; renewal a third of the lifetime before expiry) and keeps
// it in the data directory, so a restart does not ask the CA again.
type Auto struct {
	cfg ACME
	dir string
	m   *autocert.Manager
}

// NewAuto prepares automatic certificates. It touches no file and no network: Prepare makes the
// store, Obtain asks the CA.
func NewAuto(cfg ACME) *Auto {
	if cfg.DirectoryURL == "" {
		cfg.DirectoryURL = LetsEncrypt
	}
	a := &Auto{cfg: cfg, dir: StoreDir(cfg.DataDir, cfg.DirectoryURL)}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.Roots != nil {
		transport.TLSClientConfig = &tls.Config{RootCAs: cfg.Roots, MinVersion: tls.VersionTLS12}
	}
	a.m = &autocert.Manager{
		// NB: naming a domain to obtain a certificate for is taken as accepting the CA's terms
		// of service (docs/operations.md says so), as Caddy and every autocert user do.
		Prompt:     autocert.AcceptTOS,
		Cache:      autocert.DirCache(a.dir),
		HostPolicy: autocert.HostWhitelist(cfg.Domain),
		Email:      cfg.Email,
		Client: &acme.Client{
			DirectoryURL: cfg.DirectoryURL,
			HTTPClient:   &http.Client{Transport: transport, Timeout: time.Minute},
			UserAgent:    cfg.UserAgent,
		},
	}
	return a
}

// StoreDir is where certificates from the CA at directoryURL are kept: one folder per CA, so
// moving from a test CA to the real one never serves the test CA's certificate from the store.
func StoreDir(dataDir, directoryURL string) string {
	name := "ca"
	if u, err := url.Parse(directoryURL); err == nil && u.Host != "" {
		name = strings.NewReplacer(":", "_", "/", "_").Replace(u.Host)
	}
	return filepath.Join(dataDir, "acme", name)
}

// Dir is the store: the account key (acme_account+key) and one file per certificate, named
// after the domain, each holding the private key and the chain (mode 0600).
func (a *Auto) Dir() string { return a.dir }

// Prepare creates the store, owner-only (0700), and checks that the dashboard can write there.
func (a *Auto) Prepare() error {
	if err := os.MkdirAll(a.dir, 0o700); err != nil {
		return fmt.Errorf("create the ACME certificate store: %w", err)
	}
	// Made earlier with wider modes (by hand, or an older version), both levels are narrowed.
	for _, d := range []string{filepath.Dir(a.dir), a.dir} {
		if err := os.Chmod(d, 0o700); err != nil {
			return fmt.Errorf("ACME certificate store: %w", err)
		}
	}
	f, err := os.CreateTemp(a.dir, ".write-check-*")
	if err != nil {
		return fmt.Errorf("ACME certificate store %s is not writable: %w", a.dir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// TLSConfig is Config with this domain's certificate and the TLS-ALPN-01 challenge.
func (a *Auto) TLSConfig() *tls.Config { return Config(a.GetCertificate, acme.ALPNProto) }

// GetCertificate is tls.Config's hook. A client that names no server (one that connects by IP
// address, such as a health check on loopback) gets the domain's certificate rather than a
// failed handshake.
func (a *Auto) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if hello.ServerName == "" {
		h := *hello
		h.ServerName = a.cfg.Domain
		hello = &h
	}
	return a.m.GetCertificate(hello)
}

// HTTPHandler answers ACME's HTTP-01 challenge and passes everything else to fallback.
func (a *Auto) HTTPHandler(fallback http.Handler) http.Handler {
	h := a.m.HTTPHandler(fallback)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// NB: autocert checks the challenge's Host header, port included, against the domain. A
		// CA asks on port 80, which the header leaves out; one asking on another port (a test
		// CA, a private CA configured so) names it, and is answered all the same.
		if host, _, err := net.SplitHostPort(r.Host); err == nil {
			r = r.Clone(r.Context())
			r.Host = host
		}
		h.ServeHTTP(w, r)
	})
}

// Obtain gets the certificate at once (from the store, or else from the CA) instead of at the
// first visitor's handshake, then looks again every hour, until ctx ends. It logs when a
// certificate is ready or renewed and, with what to check, when the CA refused; a failure is
// retried after a minute, then less and less often (at most hourly, within the CA's limits).
func (a *Auto) Obtain(ctx context.Context, log *slog.Logger) {
	log = log.With("domain", a.cfg.Domain, "acme_ca", a.cfg.DirectoryURL)
	log.Info("obtaining the TLS certificate over ACME", "store", a.dir)
	// A hello like a current browser's, so the certificate made is the ECDSA one they get.
	hello := &tls.ClientHelloInfo{
		ServerName:        a.cfg.Domain,
		SignatureSchemes:  []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256},
		SupportedCurves:   []tls.CurveID{tls.CurveP256},
		CipherSuites:      []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256},
		SupportedVersions: []uint16{tls.VersionTLS13, tls.VersionTLS12},
	}
	const firstRetry = time.Minute
	retry := firstRetry
	var last *x509.Certificate
	for {
		wait := time.Hour
		leaf, err := a.fetch(ctx, hello)
		if ctx.Err() != nil {
			return
		}
		switch {
		case err != nil:
			log.Error(fmt.Sprintf("no TLS certificate for %s yet; retrying in %s", a.cfg.Domain, retry), "error", err.Error(),
				"hint", "check that "+a.cfg.Domain+" resolves to this server and that the CA reaches it on port 443 (TLS-ALPN-01) or port 80 (HTTP-01)")
			wait, retry = retry, min(2*retry, time.Hour)
		case last == nil || leaf.SerialNumber.Cmp(last.SerialNumber) != 0:
			msg := "TLS certificate ready"
			if last != nil {
				msg = "TLS certificate renewed"
			}
			log.Info(msg, "issuer", leaf.Issuer.String(), "serial", serial(leaf), "not_after", leaf.NotAfter)
			last, retry = leaf, firstRetry
		case time.Now().After(leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) * 3 / 4)):
			// autocert renews a third of the lifetime before expiry and says nothing when it fails.
			log.Warn(fmt.Sprintf("the TLS certificate for %s expires at %s and has not been renewed yet", a.cfg.Domain, leaf.NotAfter.UTC().Format(time.RFC3339)),
				"serial", serial(leaf), "hint", "check that "+a.cfg.Domain+" resolves to this server and that the CA reaches it on port 443 or 80")
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// fetch asks autocert for the certificate, returning early when ctx ends. NB: autocert gives
// an issuance up to 5 minutes, whatever ctx says; one running at shutdown finishes (or fails)
// on its own.
func (a *Auto) fetch(ctx context.Context, hello *tls.ClientHelloInfo) (*x509.Certificate, error) {
	type result struct {
		cert *tls.Certificate
		err  error
	}
	done := make(chan result, 1)
	go func() {
		c, err := a.m.GetCertificate(hello)
		done <- result{c, err}
	}()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case r := <-done:
		if r.err != nil {
			return nil, r.err
		}
		if r.cert.Leaf == nil {
			return nil, errors.New("autocert returned a certificate without its leaf")
		}
		return r.cert.Leaf, nil
	}
}

// ValidDomain checks a name given for ACME: a DNS name of at least two labels (autocert serves
// no single-label name), letters, digits and hyphens, no scheme, port, path or wildcard.
func ValidDomain(d string) error {
	if d == "" || len(d) > 253 || strings.Contains(d, "://") || strings.ContainsAny(d, ":/*@ ") || net.ParseIP(d) != nil {
		return fmt.Errorf("%q must be a DNS name such as dashboard.example.com: no scheme, port, path, wildcard or IP address", d)
	}
	labels := strings.Split(d, ".")
	if len(labels) < 2 {
		return fmt.Errorf("%q must be a fully qualified name such as dashboard.example.com", d)
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("%q is not a valid DNS name: each dot-separated label is 1 to 63 letters, digits or hyphens, not starting or ending with a hyphen", d)
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("%q is not a valid DNS name: %q is not a letter, digit or hyphen (write an internationalised name in its xn-- form)", d, c)
			}
		}
	}
	return nil
}
