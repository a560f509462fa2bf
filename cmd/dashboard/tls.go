package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/mail"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tensfer-golive/dashboard/internal/tlsserve"
)

// tlsConfig is how serve speaks TLS itself: with a certificate and key from files (reloaded on
// SIGHUP and when the files change), or with certificates obtained over ACME for a domain.
// Neither: plain http, for a reverse proxy in front.
type tlsConfig struct {
	certFile, keyFile string
	checkEvery        time.Duration // how often the files are looked at; 0: on SIGHUP only
	domain            string
	acmeCA            string
	acmeEmail         string
	acmeRoot          string // PEM file of a private CA's root, trusted when talking to it
	httpAddr          string // plain http: ACME's HTTP-01 and a redirect to https; "" for none
}

// on reports whether the dashboard terminates TLS itself.
func (c tlsConfig) on() bool { return c.certFile != "" || c.domain != "" }

// tlsFlags declares the TLS flags (one block, so other flags merge around it).
func tlsFlags(f *envFlags, c *tlsConfig, checkEvery *string) {
	f.string(&c.certFile, "tls-cert", "DASHBOARD_TLS_CERT", "", "serve https with this PEM certificate (chain, leaf first); reloaded on SIGHUP and when the file changes; needs --tls-key")
	f.string(&c.keyFile, "tls-key", "DASHBOARD_TLS_KEY", "", "PEM private key of --tls-cert")
	f.string(checkEvery, "tls-check-interval", "DASHBOARD_TLS_CHECK_INTERVAL", "5s", "how often --tls-cert and --tls-key are checked for a change (0: only on SIGHUP)")
	f.string(&c.domain, "domain", "DASHBOARD_DOMAIN", "", "obtain and renew a certificate for this domain over ACME and serve https (--addr defaults to :443, --http-addr to :80, --public-url to https://DOMAIN)")
	f.string(&c.acmeCA, "acme-ca", "DASHBOARD_ACME_CA", tlsserve.LetsEncrypt, "ACME directory URL of the CA that --domain asks (a company's step-ca: https://ca.example.internal/acme/acme/directory)")
	f.string(&c.acmeEmail, "acme-email", "DASHBOARD_ACME_EMAIL", "", "contact address given to the ACME CA for expiry and policy notices (optional)")
	f.string(&c.acmeRoot, "acme-ca-root", "DASHBOARD_ACME_CA_ROOT", "", "PEM file with the root certificate of a private ACME CA (step-ca's root_ca.crt), trusted besides the system's")
	f.string(&c.httpAddr, "http-addr", "DASHBOARD_HTTP_ADDR", "", `plain http address answering the ACME HTTP-01 challenge and redirecting to https (default :80 with --domain, none otherwise; "off" for none)`)
}

// check validates the TLS flags after parsing and fills in the defaults that depend on them;
// addr is --addr, which becomes :443 with --domain unless it was given.
func (c *tlsConfig) check(f *envFlags, addr *string, checkEvery string, demo bool) []error {
	var errs []error
	c.domain = strings.ToLower(strings.TrimSuffix(c.domain, "."))
	switch {
	case c.certFile != "" && c.domain != "":
		errs = append(errs, fmt.Errorf("%s and %s exclude each other: serve your own certificate, or let %[2]s obtain one over ACME", f.ref("tls-cert"), f.ref("domain")))
	case (c.certFile == "") != (c.keyFile == ""):
		errs = append(errs, fmt.Errorf("%s and %s go together: give both files, or neither", f.ref("tls-cert"), f.ref("tls-key")))
	}
	if c.domain != "" {
		if err := tlsserve.ValidDomain(c.domain); err != nil {
			errs = append(errs, f.bad("domain", "%s", strings.TrimPrefix(err.Error(), strconv.Quote(c.domain)+" ")))
		}
		if !f.given("addr") {
			*addr = ":443"
		}
		if !f.given("http-addr") {
			c.httpAddr = ":80"
		}
		if u, err := url.Parse(c.acmeCA); err != nil || u.Scheme != "https" || u.Host == "" {
			errs = append(errs, f.bad("acme-ca", "must be the https URL of an ACME directory, such as %s", tlsserve.LetsEncrypt))
		}
		if c.acmeEmail != "" {
			if a, err := mail.ParseAddress(c.acmeEmail); err != nil || a.Address != c.acmeEmail {
				errs = append(errs, f.bad("acme-email", "must be a plain email address such as ops@example.com"))
			}
		}
	} else {
		for _, name := range []string{"acme-ca", "acme-email", "acme-ca-root"} {
			if f.given(name) {
				errs = append(errs, fmt.Errorf("%s is for certificates over ACME: give %s too, or leave it out", f.ref(name), f.ref("domain")))
			}
		}
	}
	if c.httpAddr == "off" {
		c.httpAddr = ""
	}
	if c.httpAddr != "" {
		if !c.on() {
			errs = append(errs, fmt.Errorf("%s redirects to https: it needs %s or %s", f.ref("http-addr"), f.ref("tls-cert"), f.ref("domain")))
		} else if err := checkListenAddr(f, "http-addr", ":80"); err != nil {
			errs = append(errs, fmt.Errorf(`%w (or "off" for no plain http)`, err))
		} else if clash(c.httpAddr, *addr) {
			errs = append(errs, f.bad("http-addr", "takes the port of %s: plain http and https need a port each", f.setting("addr")))
		}
	}
	if d, err := time.ParseDuration(checkEvery); err != nil || d != 0 && d < 10*time.Millisecond {
		errs = append(errs, f.bad("tls-check-interval", "must be a duration such as 5s (or 0 to reload on SIGHUP only)"))
	} else {
		c.checkEvery = d
	}
	if f.given("tls-check-interval") && c.certFile == "" {
		errs = append(errs, fmt.Errorf("%s is for %s: give the certificate files too, or leave it out", f.ref("tls-check-interval"), f.ref("tls-cert")))
	}
	if demo && c.on() {
		errs = append(errs, fmt.Errorf("%s serves plain http on loopback: leave out %s and %s", f.ref("demo"), f.ref("tls-cert"), f.ref("domain")))
	}
	return errs
}

// defaultPublicURL is --public-url when it is not given: https://DOMAIN with --domain, else
// http:// or https:// (with --tls-cert) and host, the address served.
func (c tlsConfig) defaultPublicURL(host string) string {
	switch {
	case c.domain != "":
		return "https://" + c.domain
	case c.on():
		return "https://" + host
	}
	return "http://" + host
}

// checkPublicURL refuses a public URL that cannot reach a dashboard serving TLS itself.
func (c tlsConfig) checkPublicURL(f *envFlags, u *url.URL) error {
	switch {
	case u == nil || !c.on():
		return nil
	case u.Scheme != "https":
		return f.bad("public-url", "must use https: the dashboard serves TLS itself (%s or %s)", f.ref("tls-cert"), f.ref("domain"))
	case c.domain != "" && !strings.EqualFold(u.Hostname(), c.domain):
		return f.bad("public-url", "names another host than %s: the certificate covers %s only", f.setting("domain"), c.domain)
	}
	return nil
}

// tlsServing is the TLS side of a running server; nil when it serves plain http.
type tlsServing struct {
	cfg     tlsConfig
	pair    *tlsserve.Pair // own certificate files
	auto    *tlsserve.Auto // ACME
	hup     chan os.Signal
	httpSrv *http.Server // --http-addr
}

// loadTLS reads the certificate pair, or the private CA's root for ACME. It creates nothing, so
// a wrong path or a key that does not match is refused before the data directory is touched.
func loadTLS(cfg serveConfig, log *slog.Logger) (*tlsServing, error) {
	c := cfg.tls
	if !c.on() {
		return nil, nil
	}
	t := &tlsServing{cfg: c}
	if c.certFile != "" {
		pair, err := tlsserve.LoadPair(c.certFile, c.keyFile)
		if err != nil {
			return nil, err
		}
		t.pair = pair
		leaf := pair.Leaf()
		tlsserve.WarnValidity(log, leaf, time.Now())
		if err := leaf.VerifyHostname(cfg.publicURL.Hostname()); err != nil {
			log.Warn(fmt.Sprintf("the TLS certificate does not cover %s, the host of --public-url: browsers and Tensfer will refuse it", cfg.publicURL.Hostname()),
				"cert", c.certFile, "names", strings.Join(leaf.DNSNames, ","))
		}
		return t, nil
	}
	var roots *x509.CertPool
	if c.acmeRoot != "" {
		var err error
		if roots, err = tlsserve.LoadRoots(c.acmeRoot); err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.flags.ref("acme-ca-root"), err)
		}
	}
	t.auto = tlsserve.NewAuto(tlsserve.ACME{Domain: c.domain, DirectoryURL: c.acmeCA, Email: c.acmeEmail, DataDir: cfg.dataDir,
		Roots: roots, UserAgent: "tensfer-golive-dashboard/" + version()})
	return t, nil
}

// configure gives srv its TLS configuration and, for ACME, makes the certificate store in the
// data directory (0700). With certificate files it starts taking SIGHUP (until release), so a
// SIGHUP after READY=1 reloads and never ends the process.
func (t *tlsServing) configure(srv *http.Server) error {
	if t == nil {
		return nil
	}
	if t.pair != nil {
		srv.TLSConfig = tlsserve.Config(t.pair.GetCertificate)
		t.hup = make(chan os.Signal, 1)
		signal.Notify(t.hup, syscall.SIGHUP)
		return nil
	}
	if err := t.auto.Prepare(); err != nil {
		return err
	}
	srv.TLSConfig = t.auto.TLSConfig()
	return nil
}

// listenHTTP opens --http-addr, if any: the ACME HTTP-01 challenge, and a redirect to the public
// URL for everything else.
func (t *tlsServing) listenHTTP(cfg serveConfig, log *slog.Logger) (net.Listener, error) {
	if t == nil || t.cfg.httpAddr == "" {
		return nil, nil
	}
	ln, err := cfg.listen("http-addr", t.cfg.httpAddr)
	if err != nil {
		return nil, fmt.Errorf(`%w (or set %s to "off" for no plain http)`, err, cfg.flags.ref("http-addr"))
	}
	h := tlsserve.Redirect(cfg.publicURL)
	if t.auto != nil {
		h = t.auto.HTTPHandler(h)
	}
	t.httpSrv = &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       30 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          serverErrorLog(log),
	}
	return ln, nil
}

// run keeps the certificate current until ctx ends: reloads of the files, or obtaining and
// watching the ACME certificate.
func (t *tlsServing) run(ctx context.Context, log *slog.Logger) {
	switch {
	case t == nil:
	case t.pair != nil:
		t.pair.Watch(ctx, log, t.cfg.checkEvery, t.hup)
	default:
		t.auto.Obtain(ctx, log)
	}
}

// release stops taking SIGHUP: once serve returns, it ends the process again.
func (t *tlsServing) release() {
	if t != nil && t.hup != nil {
		signal.Stop(t.hup)
	}
}

// shutdown stops the plain-http side.
func (t *tlsServing) shutdown(ctx context.Context) error {
	if t != nil && t.httpSrv != nil {
		return t.httpSrv.Shutdown(ctx)
	}
	return nil
}

// describe is how serve says what it serves, after "serving on ".
func (t *tlsServing) describe(addr string, httpLn net.Listener) string {
	switch {
	case t == nil:
		return addr
	case httpLn != nil:
		return addr + " over https, redirecting http on " + httpLn.Addr().String()
	}
	return addr + " over https"
}

// serveOn serves srv on ln: over TLS when srv has a TLS configuration.
func serveOn(srv *http.Server, ln net.Listener) error {
	var err error
	if srv.TLSConfig != nil {
		err = srv.ServeTLS(ln, "", "")
	} else {
		err = srv.Serve(ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// serverErrorLog is http.Server's error log: warnings, but failed TLS handshakes (scanners, a
// client that does not trust the certificate, plain http sent to the https port) at debug, as
// anything on the internet makes them all day.
func serverErrorLog(l *slog.Logger) *log.Logger {
	return log.New(errorLogWriter{l}, "", 0)
}

type errorLogWriter struct{ log *slog.Logger }

func (w errorLogWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSuffix(string(p), "\n")
	level := slog.LevelWarn
	if strings.HasPrefix(msg, "http: TLS handshake error") {
		level = slog.LevelDebug
	}
	w.log.Log(context.Background(), level, msg)
	return len(p), nil
}
