package db

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestInsertRejectedKeepsABoundedCopy(t *testing.T) {
	d, _ := openTemp(t)
	ctx := context.Background()
	newTestClock(d, t0)
	big := bytes.Repeat([]byte("x"), MaxRejectedBody+10)
	for _, tc := range []struct {
		name string
		in   RejectedDelivery
		want RejectedDelivery // ID and ReceivedAt are filled in by the test
	}{
		{"bad signature, kept whole",
			RejectedDelivery{Env: "production", Reason: RejectNoMatchingSignature, Detail: "2 active secrets tried",
				Headers: map[string]string{"webhook-id": "msg_1"}, Body: []byte(`{"id":"evt_1"}`), IP: "203.0.113.9", RequestID: "req_x"},
			RejectedDelivery{Env: "production", Reason: RejectNoMatchingSignature, Detail: "2 active secrets tried",
				Headers: map[string]string{"webhook-id": "msg_1"}, Body: []byte(`{"id":"evt_1"}`), BodySize: 14, IP: "203.0.113.9", RequestID: "req_x"}},
		{"oversized body truncated, size kept",
			RejectedDelivery{Env: "sandbox", Reason: RejectBodyTooLarge, Body: big, BodySize: 5 << 20},
			RejectedDelivery{Env: "sandbox", Reason: RejectBodyTooLarge, Body: big[:MaxRejectedBody], BodySize: 5 << 20}},
		{"unknown env cut to a bound",
			RejectedDelivery{Env: strings.Repeat("é", 100), Reason: RejectUnknownEnvironment},
			RejectedDelivery{Env: strings.Repeat("é", 32), Reason: RejectUnknownEnvironment}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := d.InsertRejected(ctx, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := d.RejectedByID(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			tc.want.ID, tc.want.ReceivedAt = id, t0
			if len(got.Body) == 0 {
				got.Body = nil // an empty blob may read back as nil or empty
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("stored\n%+v\nwant\n%+v", got, tc.want)
			}
			if got.Truncated() != (len(tc.in.Body) > MaxRejectedBody || tc.in.BodySize > int64(len(tc.in.Body))) {
				t.Fatalf("Truncated() = %v", got.Truncated())
			}
		})
	}
	if _, err := d.InsertRejected(ctx, RejectedDelivery{Env: "sandbox"}); err == nil {
		t.Fatal("a rejected delivery without a reason was stored")
	}
	if _, err := d.RejectedByID(ctx, 999); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing: %v, want ErrNotFound", err)
	}
}

func TestListAndPurgeRejected(t *testing.T) {
	d, _ := openTemp(t)
	ctx := context.Background()
	clock := newTestClock(d, t0)
	envs := []string{"production", "sandbox", "production", "staging", "production", "production", "sandbox"}
	var ids []int64
	for i, env := range envs {
		clock.set(t0.Add(time.Duration(i) * time.Hour))
		id, err := d.InsertRejected(ctx, RejectedDelivery{Env: env, Reason: RejectTimestampSkew})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	for _, tc := range []struct {
		name string
		env  string
		want []int64
	}{
		{"every env", "", []int64{ids[6], ids[5], ids[4], ids[3], ids[2], ids[1], ids[0]}},
		{"production", "production", []int64{ids[5], ids[4], ids[2], ids[0]}},
		{"unknown env as sent", "staging", []int64{ids[3]}},
		{"nothing", "nope", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []int64
			var before int64
			for {
				rs, next, err := d.ListRejected(ctx, tc.env, before, 3)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range rs {
					got = append(got, r.ID)
				}
				if next == 0 {
					break
				}
				before = next
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	n, err := d.PurgeRejected(ctx, t0.Add(3*time.Hour), 2)
	if err != nil || n != 3 {
		t.Fatalf("purged %d (%v), want 3", n, err)
	}
	rs, _, err := d.ListRejected(ctx, "", 0, 0)
	if err != nil || len(rs) != 4 || rs[len(rs)-1].ID != ids[3] {
		t.Fatalf("left %d rows (%v), want 4 from id %d", len(rs), err, ids[3])
	}
}
