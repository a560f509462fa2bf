package web

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/environment"
	"github.com/tensfer-golive/dashboard/internal/rollout"
	"github.com/tensfer-golive/dashboard/internal/validation"
)

// MaxDecideBatch is the most users one POST /api/v1/rollout/decide takes.
const MaxDecideBatch = 1000

// decisionJSON is one decision in the API.
type decisionJSON struct {
	UserID      string                 `json:"user_id"`
	Environment string                 `json:"environment"`
	Reason      string                 `json:"reason"`
	Cohort      string                 `json:"cohort,omitempty"`
	Bucket      int                    `json:"bucket"`
	Version     int64                  `json:"version"`
	Config      *environment.AppConfig `json:"config,omitempty"`
}

// userIDProblem says what is wrong with a user id from a request, named as name; "" when nothing.
func userIDProblem(name, id string) string {
	switch {
	case id == "":
		return name + " is required"
	case len(id) > rollout.MaxIDBytes:
		return fmt.Sprintf("%s must be at most %d bytes", name, rollout.MaxIDBytes)
	}
	return ""
}

// apiDecide is GET /api/v1/rollout/decide?user_id=U&attr.K=V[&include=config]. The plain answer
// is written without reflection: it is the hot path of every app asking where a user goes.
func (s *Server) apiDecide(w http.ResponseWriter, r *http.Request) error {
	u, include := decideQuery(r.URL.RawQuery)
	if msg := userIDProblem("user_id", u.ID); msg != "" {
		return errBadRequest("%s", msg)
	}
	// include is checked before deciding: a refused request counts nobody into the reach.
	switch include {
	case "":
	case "config":
		configs, err := s.decisionConfigs(w, r)
		if err != nil {
			return err
		}
		d := s.rollout.Decide(u)
		out := toDecisionJSON(d)
		out.Config = configs[d.Env]
		return writeJSON(w, http.StatusOK, out)
	default:
		return errBadRequest("include must be config or absent")
	}
	d := s.rollout.Decide(u)
	b := make([]byte, 0, 160)
	b = append(b, `{"user_id":`...)
	b = appendJSONString(b, d.UserID)
	b = append(b, `,"environment":"`...)
	b = append(b, d.Env...)
	b = append(b, `","reason":"`...)
	b = append(b, d.Reason...)
	b = append(b, '"')
	if d.Cohort != "" {
		b = append(b, `,"cohort":`...)
		b = appendJSONString(b, d.Cohort)
	}
	b = append(b, `,"bucket":`...)
	b = strconv.AppendInt(b, int64(d.Bucket), 10)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, d.Version, 10)
	b = append(b, "}\n"...)
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Cache-Control"] = []string{"no-store"}
	_, err := w.Write(b)
	return err
}

// decideQuery reads user_id, attr.K and include from a query string in one pass, without building
// url.Values, with url.Values' rules: the first value of a repeated name counts, and a pair that
// does not decode (or holds a semicolon) is skipped, as r.URL.Query() skips it.
func decideQuery(raw string) (u rollout.User, include string) {
	seenUser, seenInclude := false, false
	for raw != "" {
		var part string
		part, raw, _ = strings.Cut(raw, "&")
		if part == "" || strings.Contains(part, ";") {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		k, err1 := url.QueryUnescape(k)
		v, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			continue
		}
		switch name, isAttr := strings.CutPrefix(k, "attr."); {
		case isAttr:
			if u.Attributes == nil {
				u.Attributes = make(map[string]string, 4)
			}
			if _, dup := u.Attributes[name]; !dup {
				u.Attributes[name] = v
			}
		case k == "user_id" && !seenUser:
			u.ID, seenUser = v, true
		case k == "include" && !seenInclude:
			include, seenInclude = v, true
		}
	}
	return u, include
}

func toDecisionJSON(d rollout.Decision) decisionJSON {
	return decisionJSON{UserID: d.UserID, Environment: string(d.Env), Reason: string(d.Reason), Cohort: d.Cohort, Bucket: d.Bucket, Version: d.Version}
}

// decisionConfigs loads the app config of both environments once for a request that asked for
// include=config; it needs the config:read scope too, and never includes the secret key.
func (s *Server) decisionConfigs(w http.ResponseWriter, r *http.Request) (map[rollout.Env]*environment.AppConfig, error) {
	t, _ := tokenFrom(r.Context())
	if !auth.HasScope(t.Scopes, auth.ScopeConfigRead) {
		return nil, errScope(w, t, auth.ScopeConfigRead, "include=config needs the config:read scope as well")
	}
	out := map[rollout.Env]*environment.AppConfig{}
	for _, env := range []rollout.Env{rollout.Production, rollout.Sandbox} {
		st, err := s.envs.Load(r.Context(), string(env))
		if err != nil {
			return nil, err
		}
		c, err := s.envs.AppConfig(st, false)
		if err != nil {
			return nil, err
		}
		out[env] = &c
	}
	return out, nil
}

// apiDecideMany is POST /api/v1/rollout/decide {"users":[{"id","attributes":{}}]}: up to 1,000
// decisions, in the order asked.
func (s *Server) apiDecideMany(w http.ResponseWriter, r *http.Request) error {
	var body struct {
		Users []struct {
			ID         string            `json:"id"`
			Attributes map[string]string `json:"attributes"`
		} `json:"users"`
	}
	if err := decodeJSON(r, &body); err != nil {
		return err
	}
	switch n := len(body.Users); {
	case n == 0:
		return writeFieldErrors(w, r, map[string]string{"users": "send at least one user"})
	case n > MaxDecideBatch:
		return writeFieldErrors(w, r, map[string]string{"users": fmt.Sprintf("at most %d users a request (got %d); split the list", MaxDecideBatch, n)})
	}
	for i, u := range body.Users {
		name := fmt.Sprintf("users[%d].id", i)
		if msg := userIDProblem(name, u.ID); msg != "" {
			return writeFieldErrors(w, r, map[string]string{name: msg})
		}
	}
	var configs map[rollout.Env]*environment.AppConfig
	switch include := r.URL.Query().Get("include"); include {
	case "":
	case "config":
		var err error
		if configs, err = s.decisionConfigs(w, r); err != nil {
			return err
		}
	default:
		return errBadRequest("include must be config or absent")
	}
	out := struct {
		Decisions []decisionJSON `json:"decisions"`
	}{Decisions: make([]decisionJSON, 0, len(body.Users))}
	for _, u := range body.Users {
		d := toDecisionJSON(s.rollout.Decide(rollout.User{ID: u.ID, Attributes: u.Attributes}))
		if configs != nil {
			d.Config = configs[rollout.Env(d.Environment)]
		}
		out.Decisions = append(out.Decisions, d)
	}
	return writeJSON(w, http.StatusOK, out)
}

// appendJSONString appends s as a JSON string. Control characters, quotes and backslashes are
// escaped; text that is not valid UTF-8 goes through encoding/json, which replaces bad bytes.
func appendJSONString(b []byte, s string) []byte {
	if !utf8.ValidString(s) {
		q, _ := json.Marshal(s)
		return append(b, q...)
	}
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20 || c == 0x7f:
			b = append(b, `\u00`...)
			b = append(b, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// OpenFeature Remote Evaluation Protocol: the rollout is one string flag whose key is the
// rollout's key and whose value is the environment.

type ofrepRequest struct {
	Context *map[string]any `json:"context"`
}

type ofrepSuccess struct {
	Key      string         `json:"key"`
	Value    string         `json:"value"`
	Reason   string         `json:"reason"`
	Variant  string         `json:"variant"`
	Metadata map[string]any `json:"metadata,omitempty"`
}

type ofrepFailure struct {
	Key          string `json:"key,omitempty"`
	ErrorCode    string `json:"errorCode"`
	ErrorDetails string `json:"errorDetails"`
}

// ofrepReason maps a decision's reason to OpenFeature's.
func ofrepReason(r rollout.Reason) string {
	switch r {
	case rollout.ReasonCohort, rollout.ReasonBlocked:
		return "TARGETING_MATCH"
	case rollout.ReasonPercentage, rollout.ReasonDefault:
		return "SPLIT"
	case rollout.ReasonKilled:
		return "DISABLED"
	}
	return "DEFAULT"
}

// maxOFREPBody bounds an evaluation request: a context is a user id and a few attributes.
const maxOFREPBody = 1 << 20

// ofrepContext reads the evaluation context: targetingKey is the user id; other string, number
// and boolean fields are attributes (nested objects are ignored).
func ofrepContext(r *http.Request) (rollout.User, map[string]any, *ofrepFailure, int) {
	var req ofrepRequest
	parseError := func(details string) (rollout.User, map[string]any, *ofrepFailure, int) {
		return rollout.User{}, nil, &ofrepFailure{ErrorCode: "PARSE_ERROR", ErrorDetails: details}, http.StatusBadRequest
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return parseError("Content-Type must be application/json")
	}
	body, err := readBody(nil, r, maxOFREPBody)
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return rollout.User{}, nil, &ofrepFailure{ErrorCode: "GENERAL", ErrorDetails: fmt.Sprintf("the body is larger than the %d byte limit", mbe.Limit)}, http.StatusRequestEntityTooLarge
	case err != nil:
		return parseError(errBodyCutShort.msg)
	}
	var fields validation.Errors
	var he *httpError
	switch err := parseJSONBody(body, &req, false); {
	case errors.As(err, &fields):
		return rollout.User{}, nil, &ofrepFailure{ErrorCode: "INVALID_CONTEXT", ErrorDetails: fieldsSentence(fields) + `; send {"context":{"targetingKey":"user-1"}}`}, http.StatusBadRequest
	case err == errEmptyBody:
		return parseError(`the body is empty; send a JSON object such as {"context":{"targetingKey":"user-1"}}`)
	case errors.As(err, &he):
		return parseError(he.msg)
	}
	if req.Context == nil {
		return rollout.User{}, nil, &ofrepFailure{ErrorCode: "INVALID_CONTEXT", ErrorDetails: `the body needs a "context" object with a targetingKey`}, http.StatusBadRequest
	}
	ctx := *req.Context
	key, _ := ctx["targetingKey"].(string)
	if key == "" {
		return rollout.User{}, nil, &ofrepFailure{ErrorCode: "TARGETING_KEY_MISSING", ErrorDetails: "context.targetingKey is required: it is the user id"}, http.StatusBadRequest
	}
	if len(key) > rollout.MaxIDBytes {
		return rollout.User{}, nil, &ofrepFailure{ErrorCode: "INVALID_CONTEXT", ErrorDetails: fmt.Sprintf("context.targetingKey must be at most %d bytes", rollout.MaxIDBytes)}, http.StatusBadRequest
	}
	u := rollout.User{ID: key, Attributes: map[string]string{}}
	for k, v := range ctx {
		switch v := v.(type) {
		case string:
			u.Attributes[k] = v
		case float64:
			u.Attributes[k] = strconv.FormatFloat(v, 'f', -1, 64)
		case bool:
			u.Attributes[k] = strconv.FormatBool(v)
		}
	}
	delete(u.Attributes, "targetingKey")
	return u, ctx, nil, 0
}

func (s *Server) ofrepEvaluate(key string, u rollout.User) ofrepSuccess {
	d := s.rollout.Decide(u)
	md := map[string]any{"reason": string(d.Reason), "bucket": d.Bucket, "version": d.Version}
	if d.Cohort != "" {
		md["cohort"] = d.Cohort
	}
	return ofrepSuccess{Key: key, Value: string(d.Env), Reason: ofrepReason(d.Reason), Variant: string(d.Env), Metadata: md}
}

// ofrepEvaluateFlag is POST /ofrep/v1/evaluate/flags/{key}.
func (s *Server) ofrepEvaluateFlag(w http.ResponseWriter, r *http.Request) error {
	key := chiParam(r, "key")
	u, _, fail, status := ofrepContext(r)
	if fail != nil {
		fail.Key = key
		return writeJSON(w, status, fail)
	}
	if want := s.rollout.Snapshot().Rollout.Key; key != want {
		return writeJSON(w, http.StatusNotFound, ofrepFailure{Key: key, ErrorCode: "FLAG_NOT_FOUND", ErrorDetails: fmt.Sprintf("flag %q was not found; this dashboard serves one flag, %q", key, want)})
	}
	return writeJSON(w, http.StatusOK, s.ofrepEvaluate(key, u))
}

// ofrepEvaluateFlags is POST /ofrep/v1/evaluate/flags: every flag (the rollout) for one context,
// with an ETag of the rollout's version and the context, so a client polling with If-None-Match
// gets 304 until something changes.
func (s *Server) ofrepEvaluateFlags(w http.ResponseWriter, r *http.Request) error {
	u, ctx, fail, status := ofrepContext(r)
	if fail != nil {
		return writeJSON(w, status, fail)
	}
	snap := s.rollout.Snapshot()
	canon, _ := json.Marshal(sortedContext(ctx))
	sum := sha256.Sum256(canon)
	etag := `"` + strconv.FormatInt(snap.Version(), 10) + "-" + hex.EncodeToString(sum[:8]) + `"`
	w.Header().Set("ETag", etag)
	if m := r.Header.Get("If-None-Match"); m != "" && etagMatches(m, etag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	out := struct {
		Flags    []ofrepSuccess `json:"flags"`
		Metadata map[string]any `json:"metadata"`
	}{Flags: []ofrepSuccess{s.ofrepEvaluate(snap.Rollout.Key, u)}, Metadata: map[string]any{"version": strconv.FormatInt(snap.Version(), 10)}}
	return writeJSON(w, http.StatusOK, out)
}

// sortedContext lists a context's fields in key order, for a stable ETag.
func sortedContext(ctx map[string]any) [][2]any {
	keys := make([]string, 0, len(ctx))
	for k := range ctx {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([][2]any, 0, len(keys))
	for _, k := range keys {
		out = append(out, [2]any{k, ctx[k]})
	}
	return out
}
