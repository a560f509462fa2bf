package validation

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestErrors(t *testing.T) {
	var none Errors
	if none.Err() != nil || (Errors{}).Err() != nil {
		t.Fatal("no field errors must be a nil error")
	}
	e := Errors{}
	e.Add("url", "must use https")
	e.Add("url", "second problem")
	e.Add("name", "is required")
	if e["url"] != "must use https" {
		t.Errorf("Add replaced the first problem: %q", e["url"])
	}
	var got Errors
	if !errors.As(error(e), &got) || got.Error() != "name: is required; url: must use https" {
		t.Errorf("as error: %v", e.Err())
	}
}

func TestClipNeverSplitsACharacter(t *testing.T) {
	for _, s := range []string{"", "abc", "héllo", strings.Repeat("€", 10), "a\U0001F600b"} {
		for n := 0; n <= len(s)+1; n++ {
			c := Clip(s, n)
			if len(c) > n || !utf8.ValidString(c) || !strings.HasPrefix(s, c) {
				t.Fatalf("Clip(%q, %d) = %q", s, n, c)
			}
		}
	}
}

func TestParsePage(t *testing.T) {
	tests := []struct {
		query       string
		cursor      int64
		limit       int
		wantProblem string
	}{
		{"", 0, 0, ""},
		{"cursor=42&limit=10", 42, 10, ""},
		{"limit=500", 0, 500, ""},
		{"limit=501", 0, 0, "limit must be a whole number from 1 to 500"},
		{"limit=0", 0, 0, "limit must be"},
		{"cursor=0", 0, 0, "cursor \"0\" is not valid"},
		{"cursor=abc", 0, 0, "use the next_cursor value"},
	}
	for _, tt := range tests {
		q, _ := url.ParseQuery(tt.query)
		cursor, limit, err := ParsePage(q, 500)
		var p Problem
		switch {
		case tt.wantProblem == "" && (err != nil || cursor != tt.cursor || limit != tt.limit):
			t.Errorf("%q: %d %d %v", tt.query, cursor, limit, err)
		case tt.wantProblem != "" && (!errors.As(err, &p) || !strings.Contains(string(p), tt.wantProblem)):
			t.Errorf("%q: error %v, want a problem containing %q", tt.query, err, tt.wantProblem)
		}
	}
}
