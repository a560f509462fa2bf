// Package validation holds the one type every domain package uses to say what is wrong with
// input, field by field, in words a person can act on. A handler maps it to a form re-rendered
// with 422 or to the JSON API's field errors; nothing here knows about HTTP.
package validation

import (
	"fmt"
	"maps"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Errors maps a field name to what to fix in it. A nil or empty Errors means the input is valid.
// It is an error so that domain functions can return it as one; errors.As finds it.
type Errors map[string]string

// Has reports whether field has an error.
func (e Errors) Has(field string) bool { _, ok := e[field]; return ok }

// Add records msg for field unless the field already has an error (the first problem found is
// the one to fix first).
func (e Errors) Add(field, msg string) {
	if !e.Has(field) {
		e[field] = msg
	}
}

// Err returns e as an error, or nil when there is nothing to fix.
func (e Errors) Err() error {
	if len(e) == 0 {
		return nil
	}
	return e
}

// Error lists the problems in field order, e.g. "base_url: must use https in production".
func (e Errors) Error() string {
	keys := make([]string, 0, len(e))
	for k := range e {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+": "+e[k])
	}
	return strings.Join(parts, "; ")
}

// Messages are the errors' texts in the order of their fields' names, empty ones left out: what
// a sentence naming every problem lists.
func (e Errors) Messages() []string {
	msgs := make([]string, 0, len(e))
	for _, k := range slices.Sorted(maps.Keys(e)) {
		if e[k] != "" {
			msgs = append(msgs, e[k])
		}
	}
	return msgs
}

// Problem is bad input that is not about one field (or the whole request), said for a person.
type Problem string

func (p Problem) Error() string { return string(p) }

// Clip returns s cut to at most n bytes without splitting a UTF-8 character, for storing and
// echoing outside input within a bound.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// ParsePage reads a keyset page: cursor (the next_cursor of the previous page: an id to list
// below) and limit (1 to maxLimit; 0 when absent, for the caller's default).
func ParsePage(q url.Values, maxLimit int) (cursor int64, limit int, err error) {
	if c := q.Get("cursor"); c != "" {
		if cursor, err = strconv.ParseInt(c, 10, 64); err != nil || cursor <= 0 {
			return 0, 0, Problem(fmt.Sprintf("cursor %q is not valid; use the next_cursor value of the previous page", Clip(c, 40)))
		}
	}
	if l := q.Get("limit"); l != "" {
		if limit, err = strconv.Atoi(l); err != nil || limit < 1 || limit > maxLimit {
			return 0, 0, Problem(fmt.Sprintf("limit must be a whole number from 1 to %d", maxLimit))
		}
	}
	return cursor, limit, nil
}
