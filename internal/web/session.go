package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/gorilla/sessions"

	"github.com/tensfer-golive/dashboard/internal/accounts"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/validation"
)

// sessionStore is a gorilla/sessions Store that keeps sessions server-side in SQLite. The cookie
// holds only an opaque random id; the row (keyed by the id's hash) says whose session it is. Idle
// and absolute timeouts are checked on every load, and a disabled user's session is dropped.
type sessionStore struct {
	db     *db.DB            // reads the session row
	writes *accounts.Service // starts, refreshes and ends sessions
	secure bool
	idle   time.Duration
	max    time.Duration
	now    func() time.Time
}

const keyUserID = "user_id"

// cookieName is __Host- prefixed when served over https (the browser then pins it to this host,
// path / and Secure); browsers refuse that prefix over plain http, so local use gets a plain name.
func (st *sessionStore) cookieName() string {
	if st.secure {
		return "__Host-tfd_session"
	}
	return "tfd_session"
}

func (st *sessionStore) options() *sessions.Options {
	return &sessions.Options{Path: "/", MaxAge: int(st.max.Seconds()), Secure: st.secure, HttpOnly: true, SameSite: http.SameSiteLaxMode}
}

// Get returns the request's session, cached for the request by gorilla's registry.
func (st *sessionStore) Get(r *http.Request, name string) (*sessions.Session, error) {
	return sessions.GetRegistry(r).Get(st, name)
}

// New loads the session named by the cookie, or returns a new empty one when there is none or it
// has ended.
func (st *sessionStore) New(r *http.Request, name string) (*sessions.Session, error) {
	s := sessions.NewSession(st, name)
	s.Options = st.options()
	s.IsNew = true
	c, err := r.Cookie(name)
	if err != nil || c.Value == "" || len(c.Value) > 128 {
		return s, nil
	}
	row, err := st.db.SessionByID(r.Context(), c.Value)
	if errors.Is(err, db.ErrNotFound) {
		return s, nil
	}
	if err != nil {
		return s, err
	}
	now := st.now()
	if now.Sub(row.LastSeenAt) > st.idle || now.Sub(row.CreatedAt) > st.max {
		return s, st.writes.EndSession(r.Context(), c.Value)
	}
	s.ID = c.Value
	s.IsNew = false
	s.Values[keyUserID] = row.UserID
	s.Values["last_seen"] = row.LastSeenAt
	return s, nil
}

// Save persists the session: a new session with a user gets a fresh random id (so login always
// rotates the id); MaxAge < 0 deletes it; an existing one has its last-seen time refreshed at
// most once a minute to keep page views from being writes.
func (st *sessionStore) Save(r *http.Request, w http.ResponseWriter, s *sessions.Session) error {
	ctx := r.Context()
	if s.Options.MaxAge < 0 {
		if s.ID != "" {
			if err := st.writes.EndSession(ctx, s.ID); err != nil {
				return err
			}
		}
		http.SetCookie(w, sessions.NewCookie(s.Name(), "", s.Options))
		return nil
	}
	if s.IsNew {
		uid, ok := s.Values[keyUserID].(int64)
		if !ok {
			return nil
		}
		id, err := st.writes.StartSession(ctx, uid, clientIPFrom(ctx), validation.Clip(r.UserAgent(), 256))
		if err != nil {
			return err
		}
		s.ID = id
		s.IsNew = false
		http.SetCookie(w, sessions.NewCookie(s.Name(), s.ID, s.Options))
		return nil
	}
	if last, ok := s.Values["last_seen"].(time.Time); ok && st.now().Sub(last) < time.Minute {
		return nil
	}
	return st.writes.TouchSession(ctx, s.ID)
}

// currentUser is the logged-in user of a request.
type currentUser struct {
	db.User
	sessionID string
}

func userFrom(ctx context.Context) (currentUser, bool) {
	u, ok := ctx.Value(ctxUser).(currentUser)
	return u, ok
}

type ctxIPKey struct{}

func clientIPFrom(ctx context.Context) string {
	ip, _ := ctx.Value(ctxIPKey{}).(string)
	return ip
}

// loadUser puts the session's user (if any, and not disabled) in the request context.
func (s *Server) loadUser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := context.WithValue(r.Context(), ctxIPKey{}, s.clientIP(r))
		r = r.WithContext(ctx)
		sess, err := s.sessions.Get(r, s.sessions.cookieName())
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if uid, ok := sess.Values[keyUserID].(int64); ok && !sess.IsNew {
			u, err := s.db.UserByID(ctx, uid)
			switch {
			case errors.Is(err, db.ErrNotFound) || err == nil && u.Disabled():
				_ = s.accounts.EndSession(ctx, sess.ID)
			case err != nil:
				s.fail(w, r, err)
				return
			default:
				if err := sess.Save(r, w); err != nil {
					s.fail(w, r, err)
					return
				}
				infoFrom(ctx).authed = true
				r = r.WithContext(context.WithValue(ctx, ctxUser, currentUser{User: u, sessionID: sess.ID}))
			}
		}
		next.ServeHTTP(w, r)
	})
}

// requireRole lets a request through only for a logged-in user with at least role min. Someone
// not logged in is sent to the login page (and back afterwards); a lower role gets 403.
func (s *Server) requireRole(min db.Role) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u, ok := userFrom(r.Context())
			if !ok {
				if r.Method == http.MethodGet || r.Method == http.MethodHead {
					http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
					return
				}
				s.fail(w, r, errUnauthorized("your session has ended; log in again"))
				return
			}
			if !u.Role.AtLeast(min) {
				s.fail(w, r, errForbidden("this needs the "+string(min)+" role; you are "+string(u.Role)))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// auditFor describes the logged-in user making a change from this request.
func (s *Server) auditFor(r *http.Request, action string) db.Audit {
	a := db.Audit{Action: action, IP: s.clientIP(r), RequestID: requestIDFrom(r.Context())}
	if u, ok := userFrom(r.Context()); ok {
		a.Actor = actorUser(u.User)
	} else if t, ok := tokenFrom(r.Context()); ok {
		a.Actor = actorToken(t)
	} else {
		a.Actor = "anonymous"
	}
	return a
}

func actorUser(u db.User) string { return "user:" + itoa(u.ID) + " (" + u.Email + ")" }

func actorToken(t db.Token) string { return "token:" + itoa(t.ID) + " (" + t.Name + ")" }
