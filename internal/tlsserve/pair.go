package tlsserve

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Pair is a certificate and private key read from two PEM files. GetCertificate serves the
// current pair; Reload replaces it only with a whole new pair: a missing file, a key that does
// not match or a certificate that does not parse keeps the previous pair serving.
type Pair struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]

	mu   sync.Mutex     // one reload at a time; guards seen
	seen [2]os.FileInfo // the files when last read (loaded or refused), to notice a change
}

// LoadPair reads the pair, refusing one that is missing, unreadable or does not match.
func LoadPair(certFile, keyFile string) (*Pair, error) {
	p := &Pair{certFile: certFile, keyFile: keyFile}
	if _, err := p.Reload(); err != nil {
		return nil, err
	}
	return p, nil
}

// GetCertificate is tls.Config's hook: the pair loaded last.
func (p *Pair) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return p.cur.Load(), nil
}

// Leaf is the certificate served now.
func (p *Pair) Leaf() *x509.Certificate { return p.cur.Load().Leaf }

// Reload reads both files again and serves the new pair if it is whole, returning its
// certificate; otherwise the previous pair keeps serving and the error says what to fix.
func (p *Pair) Reload() (*x509.Certificate, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	// Stamped before reading: a write landing after this is a change at the next check.
	p.seen = p.stat()
	cert, err := tls.LoadX509KeyPair(p.certFile, p.keyFile)
	if err != nil {
		return nil, describePairError(p.certFile, p.keyFile, err)
	}
	p.cur.Store(&cert)
	return cert.Leaf, nil
}

// changed reports whether either file differs from when it was last read: another size or
// modification time, or another file (a new one renamed into place, a symlink repointed, as
// certbot and Kubernetes do).
func (p *Pair) changed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.stat()
	for i, a := range p.seen {
		b := now[i]
		if (a == nil) != (b == nil) || a != nil && (!os.SameFile(a, b) || a.Size() != b.Size() || !a.ModTime().Equal(b.ModTime())) {
			return true
		}
	}
	return false
}

func (p *Pair) stat() [2]os.FileInfo {
	var st [2]os.FileInfo
	for i, name := range []string{p.certFile, p.keyFile} {
		st[i], _ = os.Stat(name) // follows symlinks: the file served, not the link
	}
	return st
}

// Watch reloads the pair when reload delivers (SIGHUP) and, every interval (0: never), when a
// file changed, until ctx ends. It logs every reload and every refused pair; a refused pair is
// logged once, not at every check, and the files are looked at again only once they change.
func (p *Pair) Watch(ctx context.Context, log *slog.Logger, interval time.Duration, reload <-chan os.Signal) {
	var tick <-chan time.Time
	if interval > 0 {
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		trigger := "file change"
		select {
		case <-ctx.Done():
			return
		case <-reload:
			trigger = "SIGHUP"
		case <-tick:
			if !p.changed() {
				continue
			}
		}
		prev := p.Leaf()
		leaf, err := p.Reload()
		if err != nil {
			log.Error("TLS certificate not reloaded; the previous one is still served", "trigger", trigger, "error", err.Error(),
				"serial", serial(prev), "not_after", prev.NotAfter)
			continue
		}
		log.Info("TLS certificate reloaded", "trigger", trigger, "cert", p.certFile, "subject", leaf.Subject.String(),
			"serial", serial(leaf), "previous_serial", serial(prev), "not_after", leaf.NotAfter)
		WarnValidity(log, leaf, time.Now())
	}
}

// WarnValidity logs a warning when leaf is not valid at now (expired or not yet valid), or
// expires soon (within a week, or a fifth of its lifetime for a short-lived one): clients would
// refuse it.
func WarnValidity(log *slog.Logger, leaf *x509.Certificate, now time.Time) {
	switch {
	case now.After(leaf.NotAfter):
		log.Warn(fmt.Sprintf("the TLS certificate expired at %s: browsers and Tensfer refuse it; install a renewed one", leaf.NotAfter.UTC().Format(time.RFC3339)),
			"subject", leaf.Subject.String(), "serial", serial(leaf))
	case now.Before(leaf.NotBefore):
		log.Warn(fmt.Sprintf("the TLS certificate is not valid before %s: check the clock of this machine and of the one that issued it", leaf.NotBefore.UTC().Format(time.RFC3339)),
			"subject", leaf.Subject.String(), "serial", serial(leaf))
	case leaf.NotAfter.Sub(now) < min(7*24*time.Hour, leaf.NotAfter.Sub(leaf.NotBefore)/5):
		log.Warn(fmt.Sprintf("the TLS certificate expires at %s; install a renewed one before then", leaf.NotAfter.UTC().Format(time.RFC3339)),
			"subject", leaf.Subject.String(), "serial", serial(leaf))
	}
}

// serial is a certificate's serial number in hex, as browsers and openssl show it.
func serial(c *x509.Certificate) string {
	if c == nil || c.SerialNumber == nil {
		return ""
	}
	return fmt.Sprintf("%X", c.SerialNumber)
}
