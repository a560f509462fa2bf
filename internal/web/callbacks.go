package web

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/tensfer"
	"github.com/tensfer-golive/dashboard/web/templates"
)

// MaxCallbackBytes bounds a front-end callback beacon.
const MaxCallbackBytes = 64 << 10

func callbackEnv(r *http.Request) (string, error) {
	env := chi.URLParam(r, "env")
	if env != "sandbox" && env != "production" {
		return "", errNotFound(fmt.Sprintf("there is no environment %q; callbacks go to /callbacks/sandbox or /callbacks/production", trim(env, 64)))
	}
	return env, nil
}

// corsAllowed reports whether origin may post beacons to env, and sets the CORS answer headers.
func (s *Server) corsAllowed(w http.ResponseWriter, r *http.Request, env string) (bool, error) {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true, nil // not a cross-origin browser request (a server, curl, or same origin)
	}
	e, err := s.db.EnvironmentByName(r.Context(), env)
	if err != nil {
		return false, err
	}
	w.Header().Add("Vary", "Origin")
	if !slices.Contains(e.AllowedOrigins, strings.ToLower(origin)) {
		return false, nil
	}
	w.Header().Set("Access-Control-Allow-Origin", origin)
	w.Header().Set("Access-Control-Allow-Methods", "POST")
	w.Header().Set("Access-Control-Allow-Headers", "Content-Type")
	w.Header().Set("Access-Control-Max-Age", "600")
	return true, nil
}

// callbackOrigin checks the environment of a beacon and that its Origin may post there.
func (s *Server) callbackOrigin(w http.ResponseWriter, r *http.Request) (string, error) {
	env, err := callbackEnv(r)
	if err != nil {
		return "", err
	}
	ok, err := s.corsAllowed(w, r, env)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", errForbidden(fmt.Sprintf("origin %s may not send callbacks to %s; add it to the environment's allowed callback origins", trim(r.Header.Get("Origin"), 200), env))
	}
	return env, nil
}

// preflightCallback answers the CORS preflight of a beacon.
func (s *Server) preflightCallback(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.callbackOrigin(w, r); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// limitCallback applies the per-client rate limit of public callback ingest.
func (s *Server) limitCallback(w http.ResponseWriter, r *http.Request) error {
	if ok, wait := s.callbackLimit.allow(s.clientKey(r)); !ok {
		secs := int(math.Ceil(wait.Seconds()))
		w.Header().Set("Retry-After", fmt.Sprint(secs))
		return &httpError{status: http.StatusTooManyRequests, code: "rate_limited", msg: fmt.Sprintf("too many callbacks from your address; retry in %d seconds", secs)}
	}
	return nil
}

// receiveCallback is POST /callbacks/{env}: a JSON beacon from the integrator's front end.
// CORS only for the environment's allowed origins; deduplicated by event_id when given.
func (s *Server) receiveCallback(w http.ResponseWriter, r *http.Request) error {
	env, err := s.callbackOrigin(w, r)
	if err != nil {
		return err
	}
	if err := s.limitCallback(w, r); err != nil {
		return err
	}
	body, err := readBody(w, r, MaxCallbackBytes)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &httpError{status: http.StatusRequestEntityTooLarge, code: "body_too_large", msg: fmt.Sprintf("callback body is larger than the %d byte limit", MaxCallbackBytes)}
	}
	if err != nil {
		return errBadRequest("cannot read the request body: %v", err)
	}
	// navigator.sendBeacon sends text/plain; anything that parses as the JSON object is fine.
	ev, err := tensfer.ParseCallbackEvent(body)
	if err != nil {
		return errBadRequest("callback rejected: %v", err)
	}
	return s.storeCallback(w, r, env, ev, body)
}

func (s *Server) storeCallback(w http.ResponseWriter, r *http.Request, env string, ev tensfer.CallbackEvent, payload []byte) error {
	in := db.EventInput{
		Source: db.SourceCallback, Env: env, Type: clipBytes(string(ev.Event), 255), RequestID: clipBytes(ev.RequestID, 1024),
		UserID: clipBytes(ev.UserID, 1024), ExternalID: clipBytes(ev.EventID, 256), OccurredAt: ev.OccurredAt, IsError: ev.Event == tensfer.CallbackInitializationError,
		Payload: payload, Headers: headerMap(r.Header), Demo: s.cfg.Demo,
	}
	if ev.EventID != "" {
		in.DedupeKey = dedupeKey("callback:"+env+":", ev.EventID)
	}
	res, err := s.ingester.Submit(r.Context(), []db.EventInput{in})
	if err != nil || w == nil {
		return err
	}
	answer, status := "accepted", http.StatusAccepted
	if res[0].Duplicate {
		answer, status = "duplicate", http.StatusOK
	}
	return writeJSON(w, status, ingestAnswer{ID: itoa(res[0].ID), Status: answer, RequestID: requestIDFrom(r.Context())})
}

// returnCallback is GET /callbacks/{env}/return: usable as the Tensfer callback (redirect) URL.
// It records the query as a callback event, then sends the browser to the environment's
// configured app URL with the same query. It never redirects to a URL taken from the request.
// Recording is best-effort here: the end user is always sent back to the app, even when the
// query does not parse, the client is rate-limited or storing fails (each is logged).
func (s *Server) returnCallback(w http.ResponseWriter, r *http.Request) error {
	env, err := callbackEnv(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	if ok, _ := s.callbackLimit.allow(s.clientKey(r)); !ok {
		s.log.Warn("return callback not recorded: rate limited", "request_id", requestIDFrom(r.Context()), "env", env)
	} else if err := s.recordReturn(r, env, q); err != nil {
		s.log.Warn("return callback not recorded", "request_id", requestIDFrom(r.Context()), "env", env, "error", err)
	}
	e, err := s.db.EnvironmentByName(r.Context(), env)
	if err != nil {
		return err
	}
	if e.AppURL == "" {
		w.Header().Set("Cache-Control", "no-store")
		return render(w, r, http.StatusOK, templates.ReturnRecordedPage(env))
	}
	target, err := url.Parse(e.AppURL)
	if err != nil {
		return err
	}
	if len(q) > 0 {
		merged := target.Query()
		for k, vs := range q {
			for _, v := range vs {
				merged.Add(k, v)
			}
		}
		target.RawQuery = merged.Encode()
	}
	http.Redirect(w, r, target.String(), http.StatusSeeOther)
	return nil
}

// recordReturn stores the return query as a callback event; a query without a recognisable
// event is kept as type "return" with the query as its payload.
func (s *Server) recordReturn(r *http.Request, env string, q url.Values) error {
	ev, err := tensfer.ParseCallbackQuery(q)
	if err != nil {
		ev = tensfer.CallbackEvent{Event: "return"}
	}
	payload, err := ev.MarshalJSON()
	if err != nil {
		return err
	}
	if ev.Event == "return" {
		flat := map[string]string{}
		for k := range q {
			flat[trim(k, 100)] = trim(q.Get(k), 1000)
		}
		if payload, err = json.Marshal(map[string]any{"event": "return", "query": flat}); err != nil {
			return err
		}
	}
	return s.storeCallback(nil, r, env, ev, payload)
}

// dedupeKey is prefix+id, or prefix and the id's SHA-256 when the id is long: the key stays
// within the database's bound whatever a client sends.
func dedupeKey(prefix, id string) string {
	if len(id) <= 200 {
		return prefix + id
	}
	sum := sha256.Sum256([]byte(id))
	return prefix + "sha256:" + hex.EncodeToString(sum[:])
}
