package web

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tensfer-golive/dashboard/internal/validation"
)

// errEmptyBody is decodeJSON's answer to a body with nothing in it; decodeOptionalJSON takes it
// as "no fields given".
var errEmptyBody = &httpError{status: http.StatusBadRequest, code: "bad_request", msg: "request body is empty; send a JSON object"}

// errBodyCutShort answers a request body that could not be read to its end (the client stopped
// sending, or sent less than its Content-Length).
var errBodyCutShort = &httpError{status: http.StatusBadRequest, code: "bad_request", msg: "the request body ended before its declared length; send it again"}

// decodeJSON reads a JSON API request body into the struct v, strictly. What is not JSON at all
// (or not one UTF-8 object) is a 400 with a sentence saying so; JSON whose members do not fit v
// (a string where a number goes, a time that does not parse, a field v does not have) is a
// validation.Errors naming each member by its path, which the API answers as 422
// validation_failed. The caller's own checks come after, so every answer names what to fix.
func decodeJSON(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return errBadRequest("Content-Type must be application/json")
	}
	var body bytes.Buffer
	if _, err := body.ReadFrom(r.Body); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return errBodyCutShort
	}
	return parseJSONBody(body.Bytes(), v, true)
}

// decodeOptionalJSON is decodeJSON for a body that may be left out: an empty one leaves v as is.
func decodeOptionalJSON(r *http.Request, v any) error {
	if r.ContentLength == 0 {
		return nil
	}
	if err := decodeJSON(r, v); err != nil && err != errEmptyBody {
		return err
	}
	return nil
}

// parseJSONBody decodes body, one JSON object, into the struct v; strict refuses members v does
// not have. It answers a *httpError (400) for a body that is not one UTF-8 JSON object, and a
// validation.Errors for members that do not fit v.
func parseJSONBody(body []byte, v any, strict bool) error {
	if !utf8.Valid(body) {
		// encoding/json would quietly turn the bad bytes into U+FFFD and store that.
		return errBadRequest("request body is not valid UTF-8; JSON must be sent as UTF-8")
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return errEmptyBody
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if strict {
		dec.DisallowUnknownFields()
	}
	err := dec.Decode(v)
	var syntax *json.SyntaxError
	switch {
	case err == nil:
		if len(bytes.TrimSpace(body[dec.InputOffset():])) > 0 {
			return errBadRequest("request body has data after the JSON object (at byte %d); send one object", dec.InputOffset()+1)
		}
		return nil
	case errors.As(err, &syntax):
		return errBadRequest("request body is not valid JSON: %s (at byte %d)", strings.TrimPrefix(syntax.Error(), "json: "), syntax.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errBadRequest("request body is not valid JSON: it ends before the object is closed")
	case trimmed[0] != '{':
		return errBadRequest("request body must be a JSON object such as {\"name\": \"value\"}, not %s", jsonKind(trimmed))
	}
	fields := validation.Errors{}
	memberProblems(trimmed, reflect.TypeOf(v).Elem(), "", strict, fields)
	if len(fields) == 0 {
		// Nothing named: still never Go's own words, which name our types.
		return errBadRequest("request body does not fit this endpoint; docs/openapi.yaml lists its fields")
	}
	return fields
}

// maxMemberProblems bounds how many members one answer names (an allow-list of a million ids,
// each of the wrong type, is one problem said twenty times, not a million).
const maxMemberProblems = 20

var (
	timeType      = reflect.TypeFor[time.Time]()
	unmarshalerT  = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshal = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// memberProblems records in out, under its path (status, users[2].id, stages[0].percent), each
// member of raw that does not decode into t, with what it must be. It mirrors encoding/json:
// null fits anything, names match a field's JSON name exactly or else case-insensitively.
func memberProblems(raw []byte, t reflect.Type, path string, strict bool, out validation.Errors) {
	if len(out) >= maxMemberProblems || string(raw) == "null" {
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	pt := reflect.PointerTo(t)
	if pt.Implements(unmarshalerT) || pt.Implements(textUnmarshal) {
		if json.Unmarshal(raw, reflect.New(t).Interface()) != nil {
			out.Add(path, mustBe(path, t, raw))
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		members, ok := objectMembers(raw)
		if !ok {
			out.Add(path, mustBe(path, t, raw))
			return
		}
		fields := jsonFields(t)
		for _, m := range members {
			f, ok := fieldNamed(fields, m.name)
			switch {
			case ok:
				memberProblems(m.value, f.Type, joinPath(path, m.name), strict, out)
			case strict:
				out.Add(joinPath(path, m.name), unknownField(path, m.name, fields))
			}
		}
	case reflect.Map:
		members, ok := objectMembers(raw)
		if !ok || t.Key().Kind() != reflect.String {
			if json.Unmarshal(raw, reflect.New(t).Interface()) != nil {
				out.Add(path, mustBe(path, t, raw))
			}
			return
		}
		for _, m := range members {
			memberProblems(m.value, t.Elem(), joinPath(path, m.name), strict, out)
		}
	case reflect.Slice, reflect.Array:
		var items []json.RawMessage
		if raw[0] != '[' || json.Unmarshal(raw, &items) != nil {
			out.Add(path, mustBe(path, t, raw))
			return
		}
		for i, item := range items {
			memberProblems(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i), strict, out)
		}
	case reflect.Interface:
		// Any JSON value fits.
	default:
		if json.Unmarshal(raw, reflect.New(t).Interface()) != nil {
			out.Add(path, mustBe(path, t, raw))
		}
	}
}

type member struct {
	name  string
	value json.RawMessage
}

// objectMembers lists the members of a JSON object in the order sent; ok is false when raw is
// not an object.
func objectMembers(raw []byte) ([]member, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, false
	}
	var out []member
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return out, true
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return out, true
		}
		out = append(out, member{name: t.(string), value: v})
	}
	return out, true
}

// jsonFields is the struct's fields as encoding/json sees them: by JSON name.
func jsonFields(t reflect.Type) []reflect.StructField {
	var out []reflect.StructField
	for _, f := range reflect.VisibleFields(t) {
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		switch {
		case !f.IsExported() || tag == "-":
			continue
		case name == "" && f.Anonymous && f.Type.Kind() == reflect.Struct:
			continue // its fields are promoted and listed on their own
		case name == "":
			name = f.Name
		}
		f.Name = name
		out = append(out, f)
	}
	return out
}

func fieldNamed(fields []reflect.StructField, name string) (reflect.StructField, bool) {
	for _, f := range fields {
		if f.Name == name {
			return f, true
		}
	}
	for _, f := range fields {
		if strings.EqualFold(f.Name, name) {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// unknownField says that name is not a field of the object at path, and which are.
func unknownField(path, name string, fields []reflect.StructField) string {
	names := make([]string, 0, len(fields))
	for _, f := range fields {
		names = append(names, f.Name)
	}
	sort.Strings(names)
	if path == "" {
		return fmt.Sprintf("%s is not a field of this request; its fields are %s", validation.Clip(name, 80), strings.Join(names, ", "))
	}
	return fmt.Sprintf("%s is not a field of %s; its fields are %s", validation.Clip(name, 80), validation.Clip(path, 80), strings.Join(names, ", "))
}

// mustBe says what the member at path must be, and what it was.
func mustBe(path string, t reflect.Type, raw []byte) string {
	got := jsonKind(raw)
	switch raw[0] {
	case '"':
		got = "the string " + validation.Clip(string(raw), 60)
	case '{', '[':
	default:
		got = validation.Clip(string(raw), 60)
	}
	name := path
	if name == "" {
		name = "the value"
	}
	return fmt.Sprintf("%s must be %s (got %s)", validation.Clip(name, 80), describeType(t, raw), got)
}

// describeType names what a Go type takes, in JSON terms a person knows.
func describeType(t reflect.Type, raw []byte) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == timeType {
		return "an RFC 3339 time such as 2026-11-30T12:00:00Z"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if isWholeNumber(raw) { // the right kind, out of range
			bits := t.Bits()
			return fmt.Sprintf("a whole number from %d to %d", int64(-1)<<(bits-1), int64(math.MaxInt64>>(64-bits)))
		}
		return "a whole number"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if isWholeNumber(raw) {
			return fmt.Sprintf("a whole number from 0 to %d", uint64(math.MaxUint64>>(64-t.Bits())))
		}
		return "a whole number, 0 or more"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array of " + pluralOf(t.Elem())
	}
	return "a JSON value of another kind"
}

// pluralOf names many values of t, for "an array of ...".
func pluralOf(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == timeType:
		return "RFC 3339 times"
	case t.Kind() == reflect.String:
		return "strings"
	case t.Kind() == reflect.Bool:
		return "true or false values"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "whole numbers"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return "numbers"
	case t.Kind() == reflect.Struct || t.Kind() == reflect.Map:
		return "objects"
	case t.Kind() == reflect.Slice || t.Kind() == reflect.Array:
		return "arrays"
	}
	return "values"
}

// isWholeNumber reports whether raw is a JSON number without fraction or exponent.
func isWholeNumber(raw []byte) bool {
	s := strings.TrimPrefix(string(raw), "-")
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// jsonKind names the kind of a JSON value: a string, a number, an object ...
func jsonKind(raw []byte) string {
	switch c := raw[0]; {
	case c == '"':
		return "a string"
	case c == '{':
		return "an object"
	case c == '[':
		return "an array"
	case c == 't' || c == 'f':
		return "true or false"
	case c == 'n':
		return "null"
	}
	return "a number"
}

// fieldsSentence joins the field problems into one message, in field order.
func fieldsSentence(fields map[string]string) string {
	return strings.Join(validation.Errors(fields).Messages(), "; ")
}
