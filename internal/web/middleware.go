package web

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/a-h/templ"

	"github.com/tensfer-golive/dashboard/internal/auth"
)

type ctxKey int

const (
	ctxRequest ctxKey = iota
	ctxUser
	ctxToken
	ctxNonce
)

// requestID gives every request an id, in the X-Request-Id answer header and in every log line
// and error body, so a person can quote it. Ids are a random per-process prefix and a counter:
// unique and cheap (they identify, they do not authorise, so they need not be unguessable).
func (s *Server) requestID(next http.Handler) http.Handler {
	prefix := auth.RandomID(5)[:6]
	var n atomic.Uint64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b [20]byte
		id := append(append(b[:0], "req_"...), prefix...)
		c := strconv.AppendUint(nil, n.Add(1), 36)
		for range 10 - len(c) {
			id = append(id, '0')
		}
		info := &requestInfo{id: string(append(id, c...)), secure: s.sessions.secure}
		w.Header()["X-Request-Id"] = []string{info.id}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxRequest, info)))
	})
}

// requestKind says what a route serves, which decides how its errors are answered and logged.
// Each route group sets it (kindOf); the outermost middleware reads it after the handler ran.
type requestKind uint8

const (
	kindPage   requestKind = iota // HTML pages: errors are pages
	kindAPI                       // JSON: errors are {"error":{..}}
	kindIngest                    // public ingest: JSON errors, raw bodies, accepted ones logged at debug
)

// requestInfo is what the outer middleware knows about a request: its id, and the kind the
// matched route group set.
type requestInfo struct {
	id      string
	kind    requestKind
	quiet   bool          // a hot read: logged at debug when it succeeds
	counted bool          // public input refused and counted instead of stored: logged at debug, whatever the status
	rawBody io.ReadCloser // the body before limitBody, for the few routes that take large uploads
	secure  bool          // the public URL is https: every cookie is Secure
	authed  bool          // a signed-in user or a valid API token made the request
	failure string        // why the request failed (fail), for its access-log line
}

func infoFrom(ctx context.Context) *requestInfo {
	if info, ok := ctx.Value(ctxRequest).(*requestInfo); ok {
		return info
	}
	return &requestInfo{}
}

func requestIDFrom(ctx context.Context) string { return infoFrom(ctx).id }

// quiet marks a hot read (a decision) whose successful answers are logged at debug, as accepted
// ingest is: apps ask thousands of times a second, and each line would cost more than the answer.
func quiet(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		infoFrom(r.Context()).quiet = true
		next.ServeHTTP(w, r)
	})
}

// kindOf marks the requests of a route group as kind k.
func kindOf(k requestKind) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			infoFrom(r.Context()).kind = k
			next.ServeHTTP(w, r)
		})
	}
}

// recoverer turns a panic into a logged 500 with the request id instead of a dropped connection.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic", "request_id", requestIDFrom(r.Context()), "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				s.fail(w, r, fmt.Errorf("panic: %v", v))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach Flush and deadlines (needed by streaming answers).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// accessLog writes one line per request. It logs the path without the query string, which may
// carry one-time links or filters with personal data. Accepted public ingest (webhooks,
// callbacks, API-call reports) is logged at debug: each is stored as an event already, and at
// thousands a second the duplicate line costs throughput. So is public input refused and counted
// rather than stored (a flood must not fill the log; the counts are on the Overview and
// /readyz, and the event pipeline logs a summary at most once a minute). Other refusals and
// everything else are info.
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		info := infoFrom(r.Context())
		level := slog.LevelInfo
		switch {
		case info.counted || sw.status < 400 && (info.kind == kindIngest || info.quiet):
			level = slog.LevelDebug
		case sw.status >= 400 && !info.authed:
			// A refusal anyone can repeat: logged line by line a few times a minute per kind,
			// then counted into one summary line.
			ok, due := s.refusals.allow(refusalKeyOf(r, sw.status), s.now())
			s.logRefusalSummary(due)
			if !ok {
				level = slog.LevelDebug
			}
		}
		if !s.log.Enabled(r.Context(), level) {
			return // the line's fields (the client address among them) are not worth working out
		}
		attrs := []slog.Attr{slog.String("request_id", info.id),
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", sw.status), slog.Int64("bytes", sw.bytes),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
			slog.String("ip", s.clientIP(r))}
		if info.failure != "" {
			attrs = append(attrs, slog.String("error", info.failure))
		}
		s.log.LogAttrs(r.Context(), level, "http", attrs...)
	})
}

// Security headers. Every answer gets the fixed set, with a CSP that allows nothing (right for
// JSON and redirects); HTML pages get a CSP with a fresh nonce instead (pageCSP). The values are
// built once, so the hot ingest path pays for a few map writes and nothing else.
var (
	hdrNosniff     = []string{"nosniff"}
	hdrDeny        = []string{"DENY"}
	hdrReferrer    = []string{"same-origin"}
	hdrCOOP        = []string{"same-origin"}
	hdrPermissions = []string{"camera=(), microphone=(), geolocation=(), payment=()"}
	hdrNoneCSP     = []string{"default-src 'none'; frame-ancestors 'none'; base-uri 'none'"}
	// One year, this host only: includeSubDomains or preload would bind names this dashboard
	// does not own, so they are left to the operator's proxy.
	hdrHSTS = []string{"max-age=31536000"}
)

// securityHeaders sets the hardening headers on every answer.
func (s *Server) securityHeaders(next http.Handler) http.Handler {
	hsts := s.cfg.HSTS
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Security-Policy"] = hdrNoneCSP
		h["X-Content-Type-Options"] = hdrNosniff
		h["X-Frame-Options"] = hdrDeny
		h["Referrer-Policy"] = hdrReferrer
		h["Cross-Origin-Opener-Policy"] = hdrCOOP
		h["Permissions-Policy"] = hdrPermissions
		if hsts {
			h["Strict-Transport-Security"] = hdrHSTS
		}
		next.ServeHTTP(w, r)
	})
}

// pageCSP gives an HTML answer its nonce-based CSP: scripts run only with this answer's nonce,
// styles and everything else only from our origin.
func (s *Server) pageCSP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, withNonce(w, r))
	})
}

// withNonce sets the page CSP with a fresh nonce (once per request) and returns the request
// carrying it for templ.
func withNonce(w http.ResponseWriter, r *http.Request) *http.Request {
	if templ.GetNonce(r.Context()) != "" {
		return r
	}
	nonce := auth.RandomID(16)
	w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+nonce+"'; style-src 'self'; img-src 'self' data:; "+
		"connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	return r.WithContext(templ.WithNonce(r.Context(), nonce))
}

// limitBody caps every request body; routes that need less set their own smaller cap.
func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			infoFrom(r.Context()).rawBody = r.Body
			r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		}
		next.ServeHTTP(w, r)
	})
}

// allowLargeBody lifts the default body limit of this request to limit bytes (file uploads).
func allowLargeBody(w http.ResponseWriter, r *http.Request, limit int64) {
	if raw := infoFrom(r.Context()).rawBody; raw != nil {
		r.Body = http.MaxBytesReader(w, raw, limit)
	}
}

// crossOrigin refuses state-changing requests a browser sends from another origin (CSRF), using
// the Fetch metadata the browser attaches (net/http's CrossOriginProtection).
func (s *Server) crossOrigin(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, errForbidden("this request came from another site and was refused (cross-origin request protection); reload the page and try again"))
	}))
	return cop.Handler(next)
}

// clientIP is the address a request came from. X-Forwarded-For is believed only when the direct
// peer is a configured trusted proxy; then the right-most address that is not itself a trusted
// proxy is the client.
func (s *Server) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || !s.trusted(peer) {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		if !s.trusted(a) {
			return a.Unmap().String()
		}
	}
	return host
}

func (s *Server) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientKey is what per-client rate limits count by: the client's address, or for IPv6 its /64,
// since one host is routinely given a whole /64 and could otherwise rotate addresses freely.
func (s *Server) clientKey(r *http.Request) string {
	ip := s.clientIP(r)
	a, err := netip.ParseAddr(ip)
	if err != nil || a.Is4() || a.Is4In6() {
		return ip
	}
	p, err := a.Prefix(64)
	if err != nil {
		return ip
	}
	return p.String()
}
