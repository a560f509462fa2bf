package tensfer

import (
	"context"
	"iter"
	"net/url"
	"strconv"
)

// ListParams selects a window of a cursor-paginated list.
type ListParams struct {
	// Limit is the page size; 0 lets the server choose (Tensfer's default
	// is 20, its maximum 100).
	Limit int
	// Cursor resumes after a page; "" starts at the beginning.
	Cursor string
}

func (p ListParams) query() url.Values {
	q := url.Values{}
	if p.Limit != 0 {
		q.Set("limit", strconv.Itoa(p.Limit))
	}
	if p.Cursor != "" {
		q.Set("cursor", p.Cursor)
	}
	return q
}

// Page is one page of a list: {"data":[..],"has_more":bool,
// "next_cursor":".."|null,"request_id":".."}.
type Page[T any] struct {
	Data    []T  `json:"data"`
	HasMore bool `json:"has_more"`
	// NextCursor is nil (JSON null or absent) on the last page.
	NextCursor *string `json:"next_cursor"`
	RequestID  string  `json:"request_id"`
}

// next returns the cursor of the following page, or "" when p is the last
// page. A server that says has_more without a cursor is reported.
func (p Page[T]) next() (string, *Error) {
	if p.NextCursor != nil && *p.NextCursor != "" {
		return *p.NextCursor, nil
	}
	if p.HasMore {
		return "", &Error{Kind: KindDecode, Code: CodeDecode, Message: "page has has_more=true but no next_cursor", RequestID: p.RequestID}
	}
	return "", nil
}

// getPage fetches one page of path.
func getPage[T any](ctx context.Context, c *Client, path string, key KeyKind, p ListParams) (Page[T], error) {
	var page Page[T]
	resp, err := c.Do(ctx, Request{Method: "GET", Path: path, Query: p.query(), Key: key}, &page)
	if page.RequestID == "" {
		page.RequestID = resp.RequestID
	}
	return page, err
}

// paginate walks every page of path from p.Cursor, yielding items in
// order. It stops at the first error (yielded once with a zero item), when
// the consumer stops, or after the last page. A cursor that does not
// advance is an error rather than an endless loop.
func paginate[T any](ctx context.Context, c *Client, path string, key KeyKind, p ListParams) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		for {
			page, err := getPage[T](ctx, c, path, key, p)
			if err != nil {
				yield(zero, err)
				return
			}
			for _, item := range page.Data {
				if !yield(item, nil) {
					return
				}
			}
			next, e := page.next()
			if e != nil {
				e.Env, e.Method, e.Path = c.env, "GET", path
				yield(zero, e)
				return
			}
			if next == "" {
				return
			}
			if next == p.Cursor {
				yield(zero, &Error{Kind: KindDecode, Env: c.env, Method: "GET", Path: path, Code: CodeDecode,
					Message: "next_cursor " + strconv.Quote(next) + " did not advance", RequestID: page.RequestID})
				return
			}
			p.Cursor = next
		}
	}
}
