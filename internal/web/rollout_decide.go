package web

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
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

// userID puts a user id from a request, named as name, in canonical form (rollout.Canonical),
// or says what is wrong with it.
func userID(name, raw string) (string, string) {
	id, err := rollout.Canonical(raw)
	switch {
	case err != nil:
		return "", name + " " + err.Error() + "; send ids as UTF-8"
	case id == "":
		return "", name + " is required"
	case len(id) > rollout.MaxIDBytes:
		return "", fmt.Sprintf("%s must be at most %d bytes", name, rollout.MaxIDBytes)
	}
	return id, ""
}

// attributeName puts an attribute's name from a request in canonical form, or says what is
// wrong with it; where names the attribute in the message.
func attributeName(where, raw string) (string, string) {
	name, err := rollout.Canonical(raw)
	switch {
	case err != nil:
		return "", where + " " + err.Error()
	case name == "":
		return "", where + " needs an attribute name, e.g. country"
	}
	return name, ""
}

// apiDecide is GET /api/v1/rollout/decide?user_id=U&attr.K=V[&include=config]. The plain answer
// is written without reflection: it is the hot path of every app asking where a user goes.
func (s *Server) apiDecide(w http.ResponseWriter, r *http.Request) error {
	u, include, problem := decideQuery(r.URL.RawQuery)
	if problem != "" {
		return errBadRequest("%s", problem)
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

// decideQuery reads user_id, attr.NAME and include from a query string in one pass, without
// building url.Values, and puts the id and the attributes in canonical form. What it cannot read
// faithfully it refuses with a sentence saying what to send instead: a literal + (a plus to
// some clients, a space to others), a ; (a separator to some servers), a bad %-escape, text that
// is not UTF-8, a parameter given twice, and a parameter it does not know (a misspelt attribute
// would otherwise be decided as unknown).
func decideQuery(raw string) (u rollout.User, include, problem string) {
	seenUser, seenInclude := false, false
	for raw != "" {
		var part string
		part, raw, _ = strings.Cut(raw, "&")
		if part == "" {
			continue
		}
		rawKey, rawValue, _ := strings.Cut(part, "=")
		k, err := url.PathUnescape(rawKey)
		if err != nil {
			return u, "", fmt.Sprintf("the query parameter %q is not percent-encoded correctly: a %% starts an escape such as %%2B; write a literal %% as %%25", rawKey)
		}
		switch {
		case strings.Contains(part, ";"):
			return u, "", fmt.Sprintf("the query parameter %q holds a ;, which some servers read as a separator: percent-encode it as %%3B", k)
		case strings.Contains(part, "+"):
			return u, "", fmt.Sprintf("the query parameter %q holds a literal +, which reads as a space to some and a plus to others: percent-encode a plus as %%2B and a space as %%20", k)
		}
		v, err := url.PathUnescape(rawValue)
		if err != nil {
			return u, "", fmt.Sprintf("the value of %q is not percent-encoded correctly: a %% starts an escape such as %%2B; write a literal %% as %%25", k)
		}
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return u, "", fmt.Sprintf("the query parameter %q is not valid UTF-8 once percent-decoded; send ids and values as UTF-8", strings.ToValidUTF8(k, "\ufffd"))
		}
		switch name, isAttr := strings.CutPrefix(k, "attr."); {
		case isAttr:
			name, msg := attributeName(k, name)
			if msg != "" {
				return u, "", msg
			}
			if u.Attributes == nil {
				u.Attributes = make(map[string]string, 4)
			}
			if _, dup := u.Attributes[name]; dup {
				return u, "", fmt.Sprintf("attr.%s is given twice; send each attribute once", name)
			}
			u.Attributes[name], _ = rollout.Canonical(v) // "" (unknown) when empty
		case k == "user_id":
			if seenUser {
				return u, "", "user_id is given twice; send it once"
			}
			u.ID, seenUser = v, true
		case k == "include":
			if seenInclude {
				return u, "", "include is given twice; send it once"
			}
			include, seenInclude = v, true
		default:
			return u, "", fmt.Sprintf("unknown query parameter %q; use user_id, attr.NAME (e.g. attr.country) and include", k)
		}
	}
	id, msg := userID("user_id", u.ID)
	u.ID = id
	return u, include, msg
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

// decideManyBody is POST /api/v1/rollout/decide's body. Attributes stay raw: each is a string or
// null (unknown), read by attributesFrom.
type decideManyBody struct {
	Users []struct {
		ID         string          `json:"id"`
		Attributes json.RawMessage `json:"attributes"`
	} `json:"users"`
}

// apiDecideMany is POST /api/v1/rollout/decide {"users":[{"id","attributes":{}}]}: up to 1,000
// decisions, in the order asked. Every problem with the users is reported at once.
func (s *Server) apiDecideMany(w http.ResponseWriter, r *http.Request) error {
	var body decideManyBody
	if err := decodeDecideJSON(r, &body); err != nil {
		return err
	}
	switch n := len(body.Users); {
	case n == 0:
		return writeFieldErrors(w, r, map[string]string{"users": "send at least one user"})
	case n > MaxDecideBatch:
		return writeFieldErrors(w, r, map[string]string{"users": fmt.Sprintf("at most %d users a request (got %d); split the list", MaxDecideBatch, n)})
	}
	users := make([]rollout.User, len(body.Users))
	problems := validation.Errors{}
	for i, u := range body.Users {
		field := fmt.Sprintf("users[%d]", i)
		id, msg := userID(field+".id", u.ID)
		if msg != "" && len(problems) < maxMemberProblems {
			problems.Add(field+".id", msg)
		}
		attrs, _ := attributesFrom(u.Attributes, field+".attributes", false, problems)
		users[i] = rollout.User{ID: id, Attributes: attrs}
	}
	if len(problems) > 0 {
		return writeFieldErrors(w, r, problems)
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
	}{Decisions: make([]decisionJSON, 0, len(users))}
	for _, u := range users {
		d := toDecisionJSON(s.rollout.Decide(u))
		if configs != nil {
			d.Config = configs[rollout.Env(d.Environment)]
		}
		out.Decisions = append(out.Decisions, d)
	}
	return writeJSON(w, http.StatusOK, out)
}

// decodeDecideJSON is decodeJSON for the decide endpoints, which also refuse a \u escape of a
// lone surrogate: encoding/json would quietly read it as U+FFFD, deciding another user.
func decodeDecideJSON(r *http.Request, v any) error {
	var body bytes.Buffer
	if _, err := body.ReadFrom(r.Body); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return errBodyCutShort
	}
	if at := loneSurrogate(body.Bytes()); at >= 0 {
		return errBadRequest("%s", loneSurrogateProblem(at))
	}
	r.Body = io.NopCloser(&body)
	return decodeJSON(r, v)
}

// loneSurrogate is the offset of the first \u escape in b that is half of a UTF-16 surrogate
// pair without its other half, or -1. In JSON a backslash appears only inside strings, and \\
// is skipped whole, so no string state is needed.
func loneSurrogate(b []byte) int {
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 >= len(b) {
			continue
		}
		if b[i+1] != 'u' {
			i++ // an escape such as \\ or \": skip its second byte
			continue
		}
		r, ok := hex4(b, i+2)
		switch {
		case !ok || r < 0xd800 || r > 0xdfff:
		case r <= 0xdbff: // a high surrogate must be followed by a low one
			if lo, ok := hex4(b, i+8); i+7 < len(b) && b[i+6] == '\\' && b[i+7] == 'u' && ok && lo >= 0xdc00 && lo <= 0xdfff {
				i += 11
				continue
			}
			return i
		default:
			return i
		}
		i += 5
	}
	return -1
}

// hex4 reads four hex digits at b[i:].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

func loneSurrogateProblem(at int) string {
	return fmt.Sprintf("request body holds half of a UTF-16 surrogate pair (a \\u escape at byte %d), which is not a character; send ids and values as UTF-8", at+1)
}

// attributesFrom reads a user's attributes (a JSON object, null or absent) into canonical names
// and values, recording problems under path in problems. A value is a string, or null for
// unknown; OFREP (scalars true) also takes numbers, kept as the text JSON wrote them, and
// booleans. A name given twice (once canonical) is refused: which one to use cannot be known.
// Objects and arrays are refused, or for OFREP skipped as before.
func attributesFrom(raw json.RawMessage, path string, scalars bool, problems validation.Errors) (map[string]string, []member) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	members, ok := objectMembers(raw)
	if !ok {
		got := jsonKind(raw)
		if raw[0] == '"' {
			got = "the string " + validation.Clip(string(raw), 60)
		}
		problems.Add(path, path+` must be an object (got `+got+`), e.g. {"country":"SE"}`)
		return nil, nil
	}
	out := make(map[string]string, len(members))
	for _, m := range members {
		field := joinPath(path, m.name)
		if len(problems) >= maxMemberProblems {
			break
		}
		if scalars && m.name == "targetingKey" {
			continue
		}
		name, msg := attributeName(field, m.name)
		if msg != "" {
			problems.Add(field, msg)
			continue
		}
		if _, dup := out[name]; dup {
			problems.Add(field, fmt.Sprintf("attribute %q is given twice; send each attribute once", name))
			continue
		}
		var v string
		switch c := m.value[0]; {
		case c == 'n':
			// null: unknown, as if absent
		case c == '"':
			json.Unmarshal(m.value, &v)
			v, _ = rollout.Canonical(v) // the body is UTF-8 and has no lone surrogate
		case scalars && (c == 't' || c == 'f' || c == '-' || c >= '0' && c <= '9'):
			v = string(m.value) // a number exactly as JSON wrote it
		case scalars:
			continue // nested objects and arrays are not attributes
		default:
			problems.Add(field, mustBeAttribute(field, m.value))
			continue
		}
		out[name] = v
	}
	return out, members
}

func mustBeAttribute(field string, raw []byte) string {
	return fmt.Sprintf("%s must be a string (got %s) or null for unknown; send numbers as text, e.g. \"30\"", validation.Clip(field, 80), validation.Clip(string(raw), 60))
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
	Context json.RawMessage `json:"context"`
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

// ofrepContext reads the evaluation context: targetingKey is the user id; other members are
// attributes: a string, a number (as JSON wrote it) or a boolean; null is unknown, and nested
// objects and arrays are ignored. Ids and attributes are read as rollout.Canonical puts them,
// and what cannot be read faithfully (a lone surrogate, a name given twice) is refused.
// It returns the context's members too, for the bulk answer's ETag.
func ofrepContext(r *http.Request) (rollout.User, []member, *ofrepFailure, int) {
	var req ofrepRequest
	parseError := func(details string) (rollout.User, []member, *ofrepFailure, int) {
		return rollout.User{}, nil, &ofrepFailure{ErrorCode: "PARSE_ERROR", ErrorDetails: details}, http.StatusBadRequest
	}
	invalid := func(details string) (rollout.User, []member, *ofrepFailure, int) {
		return rollout.User{}, nil, &ofrepFailure{ErrorCode: "INVALID_CONTEXT", ErrorDetails: details}, http.StatusBadRequest
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
	if at := loneSurrogate(body); at >= 0 {
		return parseError(loneSurrogateProblem(at))
	}
	var fields validation.Errors
	var he *httpError
	switch err := parseJSONBody(body, &req, false); {
	case errors.As(err, &fields):
		return invalid(fieldsSentence(fields) + `; send {"context":{"targetingKey":"user-1"}}`)
	case err == errEmptyBody:
		return parseError(`the body is empty; send a JSON object such as {"context":{"targetingKey":"user-1"}}`)
	case errors.As(err, &he):
		return parseError(he.msg)
	}
	if len(req.Context) == 0 || string(req.Context) == "null" {
		return invalid(`the body needs a "context" object with a targetingKey`)
	}
	problems := validation.Errors{}
	attrs, members := attributesFrom(req.Context, "context", true, problems)
	if len(problems) > 0 {
		return invalid(fieldsSentence(problems))
	}
	var key json.RawMessage
	for _, m := range members {
		if m.name == "targetingKey" {
			if key != nil {
				return invalid("context.targetingKey is given twice; send it once")
			}
			key = m.value
		}
	}
	var raw string
	if key != nil && string(key) != "null" {
		if key[0] != '"' {
			return rollout.User{}, nil, &ofrepFailure{ErrorCode: "TARGETING_KEY_MISSING", ErrorDetails: "context.targetingKey must be a string: it is the user id"}, http.StatusBadRequest
		}
		json.Unmarshal(key, &raw)
	}
	id, msg := userID("context.targetingKey", raw)
	switch {
	case msg == "context.targetingKey is required":
		return rollout.User{}, nil, &ofrepFailure{ErrorCode: "TARGETING_KEY_MISSING", ErrorDetails: "context.targetingKey is required: it is the user id"}, http.StatusBadRequest
	case msg != "":
		return invalid(msg)
	}
	return rollout.User{ID: id, Attributes: attrs}, members, nil, 0
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
	u, members, fail, status := ofrepContext(r)
	if fail != nil {
		return writeJSON(w, status, fail)
	}
	snap := s.rollout.Snapshot()
	canon, _ := json.Marshal(sortedContext(members))
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

// sortedContext lists a context's members in name order, for a stable ETag.
func sortedContext(members []member) [][2]any {
	sorted := slices.SortedFunc(slices.Values(members), func(a, b member) int { return strings.Compare(a.name, b.name) })
	out := make([][2]any, 0, len(sorted))
	for _, m := range sorted {
		out = append(out, [2]any{m.name, m.value})
	}
	return out
}
