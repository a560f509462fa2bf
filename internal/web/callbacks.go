package web

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"

	"github.com/go-chi/chi/v5"

	"github.com/tensfer-golive/dashboard/internal/events"
	"github.com/tensfer-golive/dashboard/internal/validation"
	"github.com/tensfer-golive/dashboard/web/templates"
)

// callbackEnv reads the environment of a callback route.
func callbackEnv(r *http.Request) (string, error) {
	return envNamed(chi.URLParam(r, "env"), "callbacks go to /callbacks/sandbox or /callbacks/production")
}

// callbackOrigin checks the environment of a beacon and that its Origin may post there, and sets
// the CORS answer headers. A request without Origin is not a cross-origin browser request (a
// server, curl, or the same origin).
func (s *Server) callbackOrigin(w http.ResponseWriter, r *http.Request) (string, error) {
	env, err := callbackEnv(r)
	if err != nil {
		return "", err
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return env, nil
	}
	w.Header().Add("Vary", "Origin")
	ok, err := s.envs.OriginAllowed(r.Context(), env, origin)
	if err != nil {
		return "", err
	}
	if !ok {
		return "", errForbidden(fmt.Sprintf("origin %s may not send callbacks to %s; add it to the environment's allowed callback origins", validation.Clip(origin, 200), env))
	}
	w.Header().Set("Access-Control-Allow-Origin", origin)
	w.Header().Set("Access-Control-Allow-Methods", "POST")
	w.Header().Set("Access-Control-Allow-Headers", "Content-Type")
	w.Header().Set("Access-Control-Max-Age", "600")
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

// receiveCallback is POST /callbacks/{env}: a JSON beacon from the integrator's front end.
// CORS only for the environment's allowed origins; stored in its documented shape within the
// disk watermark; deduplicated by event_id when given. A beacon whose token verifies is stored
// within the budget of verified input and a limit per user, whatever its address; any other is
// rate-limited per client and stored within the budgets of unauthenticated input, marked
// unverified. Refusals are counted, not logged one by one.
func (s *Server) receiveCallback(w http.ResponseWriter, r *http.Request) error {
	env, err := s.callbackOrigin(w, r)
	if err != nil {
		return err
	}
	body, err := readBody(w, r, events.MaxCallbackBytes)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return s.events.Refuse(env, events.InputCallback, events.RefusedTooLarge, fmt.Sprintf("callback body is larger than the %d byte limit", events.MaxCallbackBytes), 0)
	}
	if err != nil {
		return errBodyCutShort
	}
	b, err := s.events.ParseBeacon(r.Context(), env, body)
	if err != nil {
		return err
	}
	if !b.Verified {
		if ok, wait := s.callbackLimit.Allow(s.clientKey(r)); !ok {
			secs := int(math.Ceil(wait.Seconds()))
			return s.events.Refuse(env, events.InputCallback, events.RefusedRateLimited, fmt.Sprintf("too many callbacks from your address; retry in %d seconds", secs), wait)
		}
	}
	res, err := s.events.StoreBeacon(r.Context(), b, r.Header, s.clientKey(r))
	if err != nil {
		return err
	}
	answer, status := "accepted", http.StatusAccepted
	if res.Duplicate {
		answer, status = "duplicate", http.StatusOK
	}
	return writeJSON(w, status, beaconAnswer{ingestAnswer: ingestAnswer{ID: itoa(res.ID), Status: answer, RequestID: requestIDFrom(r.Context())},
		Verified: b.Verified, TokenError: b.TokenError})
}

// beaconAnswer is the answer to a stored beacon: whether its token verified (only then does it
// count toward a guardrail), and if a token was sent that did not, why.
type beaconAnswer struct {
	ingestAnswer
	Verified   bool   `json:"verified"`
	TokenError string `json:"token_error,omitempty"`
}

// returnCallback is GET /callbacks/{env}/return: usable as the Tensfer callback (redirect) URL.
// It records the query as a callback event, then sends the browser to the environment's
// configured app URL with the same query. It never redirects to a URL taken from the request.
// Recording is best-effort here: the end user is always sent back to the app, even when the
// client is rate-limited, the visit is over the budgets or the disk watermark (each counted), or
// storing fails otherwise (logged).
func (s *Server) returnCallback(w http.ResponseWriter, r *http.Request) error {
	env, err := callbackEnv(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	var refusal *events.Refusal
	if ok, wait := s.callbackLimit.Allow(s.clientKey(r)); !ok {
		s.events.Refuse(env, events.InputReturn, events.RefusedRateLimited, "", wait)
	} else if err := s.events.RecordReturn(r.Context(), env, q, r.Header, s.clientKey(r)); err != nil && !errors.As(err, &refusal) {
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
