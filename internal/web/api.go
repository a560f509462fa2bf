package web

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
)

func tokenFrom(ctx context.Context) (db.Token, bool) {
	t, ok := ctx.Value(ctxToken).(db.Token)
	return t, ok
}

// bearerChallenge is the WWW-Authenticate challenge of a 401 or 403 from the API (RFC 6750).
const bearerChallenge = `Bearer realm="tensfer-dashboard"`

// refuseToken answers 401 with the Bearer challenge; code is RFC 6750's error code
// (invalid_request, invalid_token), or "" when the request carried no bearer token at all.
func (s *Server) refuseToken(w http.ResponseWriter, r *http.Request, code, msg string) {
	challenge := bearerChallenge
	if code != "" {
		challenge += `, error="` + code + `"`
	}
	w.Header().Set("WWW-Authenticate", challenge)
	s.fail(w, r, errUnauthorized(msg))
}

// errScope is the 403 for a token that lacks scope, with the Bearer challenge naming it.
func errScope(w http.ResponseWriter, t db.Token, scope, msg string) error {
	w.Header().Set("WWW-Authenticate", bearerChallenge+`, error="insufficient_scope", scope="`+scope+`"`)
	return &httpError{status: http.StatusForbidden, code: "insufficient_scope", msg: msg + "; this token has: " + strings.Join(t.Scopes, ", ")}
}

// apiToken authenticates a JSON API request by its bearer token. It never looks at cookies.
func (s *Server) apiToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		scheme, secret, ok := strings.Cut(h, " ")
		if h == "" {
			s.refuseToken(w, r, "", "missing Authorization header; send Authorization: Bearer <token> (create tokens under Settings → API tokens)")
			return
		}
		if !strings.EqualFold(scheme, "Bearer") {
			s.refuseToken(w, r, "", "Authorization header must be \"Bearer <token>\"")
			return
		}
		if !ok || strings.TrimSpace(secret) == "" {
			s.refuseToken(w, r, "invalid_request", "Authorization header must be \"Bearer <token>\"")
			return
		}
		t, err := s.tokens.lookup(r.Context(), s.db, strings.TrimSpace(secret), s.now())
		if errors.Is(err, db.ErrNotFound) {
			s.refuseToken(w, r, "invalid_token", "token is not valid: it is unknown, expired or revoked; create a new one under Settings → API tokens")
			return
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
		// Record use at most once a minute per token, so API traffic is not a stream of writes.
		if s.tokenUse.Due(t.ID, s.now()) {
			if err := s.accounts.TouchToken(r.Context(), t.ID); err != nil {
				s.log.Warn("cannot record token use", "token_id", t.ID, "error", err)
			}
		}
		infoFrom(r.Context()).authed = true
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxToken, t)))
	})
}

// requireScope lets an API request through only if its token carries the scope (or one that
// implies it).
func (s *Server) requireScope(scope string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			t, _ := tokenFrom(r.Context())
			if !auth.HasScope(t.Scopes, scope) {
				s.fail(w, r, errScope(w, t, scope, "this token lacks the "+scope+" scope"))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func (s *Server) apiNotFound(w http.ResponseWriter, r *http.Request) error {
	return errNotFound("no API endpoint at " + r.URL.Path + "; see docs/openapi.yaml")
}

type tokenJSON struct {
	ID        int64    `json:"id"`
	Name      string   `json:"name"`
	Prefix    string   `json:"prefix"`
	Scopes    []string `json:"scopes"`
	CreatedAt string   `json:"created_at"`
	ExpiresAt *string  `json:"expires_at"` // null: never
}

// showWhoami tells a token who it is: handy to check a deployment's token and its scopes.
func (s *Server) showWhoami(w http.ResponseWriter, r *http.Request) error {
	t, _ := tokenFrom(r.Context())
	return writeJSON(w, http.StatusOK, tokenJSON{ID: t.ID, Name: t.Name, Prefix: t.Prefix, Scopes: t.Scopes, CreatedAt: rfc3339(t.CreatedAt), ExpiresAt: optTime(t.ExpiresAt)})
}

type auditJSON struct {
	ID        int64           `json:"id"`
	At        string          `json:"at"`
	Actor     string          `json:"actor"`
	Action    string          `json:"action"`
	Target    string          `json:"target"`
	Before    json.RawMessage `json:"before"`
	After     json.RawMessage `json:"after"`
	IP        string          `json:"ip"`
	RequestID string          `json:"request_id"`
}

// apiListAudit is GET /api/v1/audit: the audit log, newest first, keyset-paginated.
func (s *Server) apiListAudit(w http.ResponseWriter, r *http.Request) error {
	f, err := auditFilter(r.URL.Query())
	if err != nil {
		return err
	}
	entries, next, err := s.db.ListAudit(r.Context(), f)
	if err != nil {
		return err
	}
	out := struct {
		Entries    []auditJSON `json:"entries"`
		NextCursor *string     `json:"next_cursor"`
	}{Entries: []auditJSON{}}
	for _, e := range entries {
		out.Entries = append(out.Entries, auditJSON{ID: e.ID, At: rfc3339(e.At), Actor: e.Actor, Action: e.Action, Target: e.Target,
			Before: nullJSON(e.Before), After: nullJSON(e.After), IP: e.IP, RequestID: e.RequestID})
	}
	if next > 0 {
		c := strconv.FormatInt(next, 10)
		out.NextCursor = &c
	}
	return writeJSON(w, http.StatusOK, out)
}

func nullJSON(b json.RawMessage) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage("null")
	}
	return b
}

// tokenCache keeps recently authenticated tokens for a few seconds, so a service asking for
// thousands of decisions a second costs no query per call. Revoking a token or changing a user
// clears it, so revocation takes effect at once in this process; the TTL bounds how long a change
// made by another process on the same database takes. Only valid tokens are kept, so its size is
// bounded by the number of tokens.
type tokenCache struct {
	mu  sync.Mutex
	gen uint64
	m   map[[32]byte]cachedToken
}

type cachedToken struct {
	t  db.Token
	at time.Time
}

const tokenCacheTTL = 5 * time.Second

func (c *tokenCache) lookup(ctx context.Context, d *db.DB, secret string, now time.Time) (db.Token, error) {
	key := sha256.Sum256([]byte(secret))
	c.mu.Lock()
	e, ok := c.m[key]
	gen := c.gen
	c.mu.Unlock()
	if ok && now.Sub(e.at) < tokenCacheTTL && now.Sub(e.at) >= 0 && !e.t.Expired(now) {
		return e.t, nil
	}
	t, err := d.TokenBySecret(ctx, secret)
	if err != nil {
		return t, err
	}
	c.mu.Lock()
	if c.gen == gen { // nothing was revoked while this was read
		if c.m == nil {
			c.m = map[[32]byte]cachedToken{}
		}
		c.m[key] = cachedToken{t: t, at: now}
	}
	c.mu.Unlock()
	return t, nil
}

// invalidate forgets every cached token; call it after a token is revoked or a user changes.
func (c *tokenCache) invalidate() {
	c.mu.Lock()
	c.m = nil
	c.gen++
	c.mu.Unlock()
}
