package events

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tensfer-golive/dashboard/internal/dbtest"
)

// fileBytes checkpoints the write-ahead log into the database file and returns the file's size
// (page_count × page_size): what public input has really taken on disk.
func fileBytes(t *testing.T, f *fixture) int64 {
	t.Helper()
	var busy, logPages, moved int
	if err := f.db.W.QueryRow("PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logPages, &moved); err != nil || busy != 0 {
		t.Fatalf("checkpoint: busy %d, %v", busy, err)
	}
	var pages, size int64
	if err := f.db.W.QueryRow("PRAGMA page_count").Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if err := f.db.W.QueryRow("PRAGMA page_size").Scan(&size); err != nil || size != pageSize {
		t.Fatalf("page size %d (%v): the row costs assume %d", size, err, pageSize)
	}
	return pages * size
}

// costInput makes text of random sizes that cost what they can on disk.
type costInput struct{ r *rand.Rand }

// text is n characters: ASCII, '<' (six bytes once in JSON) or four-byte runes, at random.
func (c costInput) text(n int) string {
	switch c.r.IntN(3) {
	case 0:
		return strings.Repeat("<", n)
	case 1:
		var b strings.Builder
		for range n {
			b.WriteRune(rune(0x1F600 + c.r.IntN(64)))
		}
		return b.String()
	}
	return c.word(n)
}

// word is n lowercase letters.
func (c costInput) word(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(c.r.IntN(26))
	}
	return string(b)
}

// upTo is a random size up to n, the bound more often than not.
func (c costInput) upTo(n int) int {
	if c.r.IntN(2) == 0 {
		return n
	}
	return c.r.IntN(n + 1)
}

// beacon is a beacon with every field of a random size up to its bound (in characters, within
// the parser's limits: 255 for ids, 128 for the event, screen and error code; the event in a-z), eight unknown
// members, and the event_id unique.
func (c costInput) beacon(i int, token string) []byte {
	s := fmt.Sprintf(`{"event":%q,"event_id":"%d-%s","session_id":%q,"user_id":%q,"request_id":%q,"screen":%q,"error":{"code":%q,"message":%q},"occurred_at":"2026-11-30T11:59:00.123456789Z"`,
		c.word(1+c.upTo(127)), i, c.text(c.upTo(240)), c.text(c.upTo(255)), fmt.Sprint("user-", i), c.text(c.upTo(255)),
		c.text(c.upTo(128)), c.text(c.upTo(128)), c.text(c.upTo(1024)))
	for j := range 8 {
		s += fmt.Sprintf(`,"%d%s":0`, j, c.text(31))
	}
	if token != "" {
		s += fmt.Sprintf(`,"token":%q`, token)
	}
	return []byte(s + "}")
}

// headers are the four headers kept of a callback, each of a random size up to twice its bound.
func (c costInput) headers() http.Header {
	h := http.Header{}
	for _, k := range publicHeaders {
		h.Set(k, c.text(c.upTo(2*publicHeaderMax)))
	}
	return h
}

// TestPublicRowCostsCoverDiskGrowth floods each unauthenticated input, and all of them at once,
// into a real database file through the real pipeline, and holds what the budgets were charged
// to what the file grew (after a checkpoint): a budget of B bytes lets a flood grow the
// database by B at most. Sizes are mixed: tiny beacons, beacons at their bounds with headers
// that JSON escaping inflates, request_ids long enough to spill out of their index page, return
// visits with long queries, refused deliveries of 4 KiB and of nothing. It also keeps the charge
// within four times the growth, so that the budget still lets a fair amount through.
func TestPublicRowCostsCoverDiskGrowth(t *testing.T) {
	dbtest.SQLiteOnly(t, "the SQLite file's growth per row")
	ctx := context.Background()
	const rows = 300
	const slack = 4 * pageSize // the pages a b-tree adds above its leaves as it grows
	type send func(f *fixture, c costInput, i int) error
	beaconKey := ""
	refused := func(body func(c costInput) string) send {
		return func(f *fixture, c costInput, i int) error {
			d := f.delivery("production", fmt.Sprint("msg_", i), body(c), nil)
			d.Header = c.headers()
			d.Header.Set("Webhook-Signature", "v1,"+c.text(c.upTo(2*rejectedHeaderMax)))
			d.Client, d.IP = fmt.Sprintf("198.51.%d.%d", i/250, i%250), fmt.Sprintf("198.51.%d.%d", i/250, i%250)
			_, err := f.svc.ReceiveWebhook(ctx, d)
			if rej := (*Rejection)(nil); !errors.As(err, &rej) || !rej.Kept {
				return fmt.Errorf("refused delivery %d not kept: %v", i, err)
			}
			return nil
		}
	}
	inputs := map[string]send{
		"tiny beacons": func(f *fixture, c costInput, i int) error {
			_, err := f.svc.ReceiveCallback(ctx, "production", []byte(`{"event":"x"}`), nil, "192.0.2.1")
			return err
		},
		"beacons of mixed sizes up to their bounds": func(f *fixture, c costInput, i int) error {
			_, err := f.svc.ReceiveCallback(ctx, "production", c.beacon(i, ""), c.headers(), "192.0.2.1")
			return err
		},
		"beacons whose request_id spills out of its index page": func(f *fixture, c costInput, i int) error {
			body := fmt.Sprintf(`{"event":"x","request_id":%q}`, strings.Repeat("😀", 248+c.r.IntN(8)))
			_, err := f.svc.ReceiveCallback(ctx, "production", []byte(body), nil, "192.0.2.1")
			return err
		},
		"verified beacons of mixed sizes": func(f *fixture, c costInput, i int) error {
			b, err := f.svc.ParseBeacon(ctx, "production", c.beacon(i, MintBeaconToken(beaconKey, "production", fmt.Sprint("user-", i), f.now.Add(time.Hour))))
			if err != nil || !b.Verified {
				return fmt.Errorf("beacon %d not verified: %v %s", i, err, b.TokenError)
			}
			_, err = f.svc.StoreBeacon(ctx, b, c.headers(), "192.0.2.1")
			return err
		},
		"return visits with long queries": func(f *fixture, c costInput, i int) error {
			q := url.Values{}
			for j := range 9 {
				q.Set(fmt.Sprint(j, c.text(c.upTo(64))), c.text(c.upTo(2*returnValueMax)))
			}
			return f.svc.RecordReturn(ctx, "production", q, c.headers(), "192.0.2.1")
		},
		"refused deliveries of 4 KiB":           refused(func(c costInput) string { return c.word(4 << 10) }),
		"refused deliveries with an empty body": refused(func(costInput) string { return "" }),
	}
	names := make([]string, 0, len(inputs))
	for name := range inputs {
		names = append(names, name)
	}
	inputs["all of them in turn"] = func(f *fixture, c costInput, i int) error {
		return inputs[names[c.r.IntN(len(names))]](f, c, i)
	}
	for name, send := range inputs {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, func(_ *fixture, c *Config) {
				c.PublicBudget = PublicBudget{BytesPerSecond: 1 << 40, RowsPerSecond: 1 << 30}
			})
			beaconKey = f.addBeaconKey(t, "production", 0)
			c := costInput{rand.New(rand.NewPCG(uint64(len(name)), 18))}
			before, charged := fileBytes(t, f), f.svc.charged.Load()
			for i := range rows {
				if err := send(f, c, i); err != nil {
					t.Fatalf("row %d: %v", i, err)
				}
				if i%40 == 39 {
					f.now = f.now.Add(time.Second) // the limits on refused deliveries refill
				}
			}
			grew, charged := fileBytes(t, f)-before, f.svc.charged.Load()-charged
			if n := countRows(t, f); n != rows {
				t.Fatalf("%d rows stored of %d sent", n, rows)
			}
			t.Logf("%s, %d rows: the file grew %d bytes a row, %d were charged (%.2f)", name, rows, grew/rows, charged/rows, float64(grew)/float64(charged))
			if grew > charged+slack {
				t.Errorf("the file grew %d bytes, %d more than the %d charged to the budget", grew, grew-charged, charged)
			}
			if charged > 4*grew {
				t.Errorf("charged %d bytes for %d of growth: the budget lets too little through", charged, grew)
			}
		})
	}
}
