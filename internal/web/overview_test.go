package web

import (
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
)

// text is the trimmed, space-collapsed text of the first match of sel.
func text(doc *goquery.Document, sel string) string {
	return strings.Join(strings.Fields(doc.Find(sel).First().Text()), " ")
}

// TestOverviewTrendWithKnownTraffic stores API calls in the hour before last and in the last hour
// (the database's clock set back for each) and reads the Overview's tiles, moves and trend.
func TestOverviewTrendWithKnownTraffic(t *testing.T) {
	app := newTestApp(t)
	writer := app.addToken("svc", auth.ScopeEventsWrite)
	viewer, _ := app.login(db.RoleViewer)
	var at atomic.Int64
	app.db.SetClock(func() time.Time { return time.UnixMilli(at.Load()) })
	call := func(status int) {
		res := app.api("POST", "/api/v1/api-calls", writer, strings.NewReader(fmt.Sprintf(`{"env":"production","method":"GET","path":"/v1/x","status":%d}`, status)))
		if res.StatusCode != 201 {
			t.Fatalf("api call: %d %s", res.StatusCode, res.body)
		}
	}
	at.Store(time.Now().Add(-90 * time.Minute).UnixMilli())
	for range 4 {
		call(200)
	}
	at.Store(time.Now().Add(-10 * time.Minute).UnixMilli())
	for _, st := range []int{200, 200, 503, 200, 503, 200} {
		call(st)
	}
	doc := viewer.get("/").doc(t)
	prod, sandbox := `[data-testid="signals-production"] `, `[data-testid="signals-sandbox"] `
	for _, tt := range []struct{ sel, want string }{
		{prod + `[data-testid="stat-events"]`, "6 ↑ 50 % up 50 % on the hour before vs hour before"},
		{prod + `[data-testid="events-change"]`, "↑ 50 % up 50 % on the hour before vs hour before"},
		{prod + `[data-testid="stat-error-rate"]`, "33.3 % ↑ 33.3 pts error rate up 33.3 pts on the hour before vs hour before"},
		{prod + `[data-testid="stat-day"]`, "10"},
		{prod + `[data-testid="stat-api-errors"]`, "2"},
		{sandbox + `[data-testid="stat-events"]`, "0 → none no events in this hour or the hour before vs hour before"},
		{sandbox + `[data-testid="stat-error-rate"]`, "–"},
		{sandbox + `[data-testid="trend-empty"]`, "Nothing arrived in the last 24 hours."},
	} {
		if got := text(doc, tt.sel); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.sel, got, tt.want)
		}
	}
	if c, _ := doc.Find(prod + `[data-testid="error-rate-change"]`).Attr("class"); !strings.Contains(c, "trend-bad") {
		t.Errorf("a rising error rate is not shown as bad news: class %q", c)
	}
	// The trend: 24 points each, the events line peaking at the last hour (6, y = 0) with the hour
	// before at 4 (y = 28 - 28*4/6), the errors line on the same scale (2 of 6 at the end).
	svg := doc.Find(prod + `svg.trend-spark`)
	if label, _ := svg.Attr("aria-label"); !strings.Contains(label, "10 events, at most 6 in an hour; 2 errors") {
		t.Errorf("trend label %q", label)
	}
	for _, tt := range []struct{ line, last2 string }{{"trend-events", "114.8,9.3 120.0,0.0"}, {"trend-errors", "114.8,28.0 120.0,18.7"}} {
		pts := strings.Fields(svg.Find(`[data-testid="`+tt.line+`"]`).AttrOr("points", ""))
		if len(pts) != 24 || strings.Join(pts[22:], " ") != tt.last2 {
			t.Errorf("%s: %d points ending %v, want 24 ending %s", tt.line, len(pts), pts[max(0, len(pts)-2):], tt.last2)
		}
	}
	if n := doc.Find(sandbox + `svg`).Length(); n != 0 {
		t.Errorf("sandbox had no traffic but draws %d charts", n)
	}
}

// TestOverviewTilesFillTheirRows: every tile grid declares the count it holds, and only counts
// the stylesheet lays out without a lone tile on a row (3, 4, 6).
func TestOverviewTilesFillTheirRows(t *testing.T) {
	app := newTestApp(t)
	admin, _ := app.login(db.RoleAdmin)
	doc := admin.get("/").doc(t)
	grids := doc.Find(`[data-tiles]`)
	if grids.Length() < 5 {
		t.Fatalf("%d tile grids on the Overview, want the two environments, rollout, ingest and instance ones", grids.Length())
	}
	grids.Each(func(i int, g *goquery.Selection) {
		declared, _ := strconv.Atoi(g.AttrOr("data-tiles", ""))
		if n := g.Find(".stat").Length(); n != declared {
			t.Errorf("grid %d declares %d tiles and holds %d", i, declared, n)
		}
		if declared != 3 && declared != 4 && declared != 6 {
			t.Errorf("grid %d holds %d tiles: the stylesheet only lays out 3, 4 or 6 without an orphan", i, declared)
		}
		if c := g.AttrOr("class", ""); !strings.Contains(c, "tiles-"+strconv.Itoa(declared)) {
			t.Errorf("grid %d: class %q does not match its %d tiles", i, c, declared)
		}
	})
	// Recent changes: the target is cut with its full value on hover, never dropped.
	row := doc.Find(`[data-testid="overview-changes"] [data-testid="audit-row"]`).First()
	if target := row.Find(".changes-target"); target.Length() == 0 || target.AttrOr("title", "") != strings.TrimSpace(target.Text()) {
		t.Errorf("recent change target %q has title %q", target.Text(), target.AttrOr("title", ""))
	}
}

// TestGoLiveCountAgreesWithTheList: on the checklist page and the Overview, "N of M done" and the
// bar count the very steps listed; the free-calls meter is information, never a done step, and
// each item names its state in words.
func TestGoLiveCountAgreesWithTheList(t *testing.T) {
	app := newTestApp(t)
	viewer, _ := app.login(db.RoleViewer)
	type list struct{ items, progress, bar string }
	count := func(doc *goquery.Document, l list) (done, total int) {
		doc.Find(l.items).Each(func(_ int, li *goquery.Selection) {
			switch li.AttrOr("data-state", "") {
			case "info":
				return
			case "done":
				done++
			}
			total++
		})
		return done, total
	}
	pages := []struct {
		path  string
		lists []list
	}{
		{"/go-live", []list{
			{`[data-testid="golive-steps"] .checklist > li`, `[data-testid="golive-progress"]`, `[data-testid="golive-steps"] progress`},
			{`[data-testid="golive-practices"] .checklist > li`, `[data-testid="golive-practices-progress"]`, `[data-testid="golive-practices"] progress`},
		}},
		{"/", []list{{`[data-testid="overview-golive"] .checklist > li`, `[data-testid="overview-golive-progress"]`, `[data-testid="overview-golive"] progress`}}},
	}
	labels := map[string]string{"done": "Done:", "todo": "To do:", "blocked": "Needs attention:", "info": "For information:"}
	for _, p := range pages {
		doc := viewer.get(p.path).doc(t)
		for _, l := range p.lists {
			done, total := count(doc, l)
			if total == 0 {
				t.Fatalf("%s: no steps in %s", p.path, l.items)
			}
			if got, want := text(doc, l.progress), fmt.Sprintf("%d of %d", done, total); !strings.HasPrefix(got, want) {
				t.Errorf("%s: progress %q, want %q (the listed steps)", p.path, got, want)
			}
			bar := doc.Find(l.bar)
			if bar.AttrOr("value", "") != strconv.Itoa(done) || bar.AttrOr("max", "") != strconv.Itoa(total) {
				t.Errorf("%s: bar %s of %s, want %d of %d", p.path, bar.AttrOr("value", ""), bar.AttrOr("max", ""), done, total)
			}
			doc.Find(l.items).Each(func(_ int, li *goquery.Selection) {
				st := li.AttrOr("data-state", "")
				if got := strings.TrimSpace(li.Find(".check-title .sr-only").Text()); got != labels[st] {
					t.Errorf("%s %s: state %q says %q to a screen reader, want %q", p.path, li.AttrOr("data-testid", ""), st, got, labels[st])
				}
			})
		}
	}
	doc := viewer.get("/go-live").doc(t)
	free := doc.Find(`[data-testid="check-free_calls"]`)
	if st := free.AttrOr("data-state", ""); st != "info" {
		t.Errorf("free calls at 0 of 100: state %q, want info (a meter is not a done step)", st)
	}
	if m := free.Find(`[data-testid="meter-free_calls"]`); m.AttrOr("value", "") != "0" || m.AttrOr("max", "") != "100" {
		t.Errorf("free calls meter %s of %s, want 0 of 100", m.AttrOr("value", ""), m.AttrOr("max", ""))
	}
	if got := text(doc, `[data-testid="golive-practices-progress"]`); got != "0 of 2 done" {
		t.Errorf("best practices %q, want 0 of 2 done (signing secret and request_ids; the meter is not counted)", got)
	}
}
