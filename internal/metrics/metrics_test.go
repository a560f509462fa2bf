package metrics

import (
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// fullySourced is a registry with every source set and something recorded in every metric, so
// that a scrape shows every family.
func fullySourced(t *testing.T) *Metrics {
	t.Helper()
	m := New(BuildInfo{Version: "v1.2.3", Revision: "0123456789abcdef", GoVersion: "go1.27.3"})
	m.ReadIngest(func() IngestState {
		return IngestState{
			Refusals: []Refusal{
				{Env: "production", Input: "callback", Reason: "quota", Total: 4, Ingest: true, Source: SourceCallback, Outcome: OutcomeRefusedQuota},
				{Env: "sandbox", Input: "refused_delivery", Reason: "rate_limited", Total: 2},
			},
			Queued: 1, CommitFailures: 1, StreamSubscribers: 2, StreamsDropped: 1,
			Disk: DiskState{Known: true, Free: 10 << 30, Size: 100 << 30, Soft: 5 << 30, Hard: 1 << 30},
		}
	})
	m.ReadRollout(func() RolloutState {
		return RolloutState{State: "active", Stage: 2, Stages: 5, ProductionRatio: 0.05, StageStartedAt: time.Unix(1_800_000_000, 0), Reach: 40,
			GuardrailsCheckedAt: time.Unix(1_800_000_100, 0), Guardrails: []GuardrailState{
				{Signal: "init_errors", Bad: 3, Total: 30, MaxRatio: 0.05, MinVolume: 20, Window: 15 * time.Minute, Breached: true},
				{Signal: "api_errors", MaxRatio: 0.02, MinVolume: 50, Window: 15 * time.Minute},
			}}
	})
	m.ReadReadiness(func() bool { return true })
	m.ReadLeader(func() bool { return true })
	m.Ingested("sandbox", SourceWebhook, OutcomeStored, 3*time.Millisecond)
	m.Committed(3, 2*time.Millisecond)
	m.Rejected("sandbox", "no_matching_signature")
	m.Verified("production", "ok")
	m.Decided("production", "percentage")
	m.GuardrailTripped("init_errors")
	return m
}

// scrape asks m's handler over loopback HTTP for the text format, and parses the answer with
// Prometheus' own parser.
func scrape(t *testing.T, m *Metrics) (string, map[string]*dto.MetricFamily) {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("scrape: %d %s\n%s", res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse the scrape: %v\n%s", err, body)
	}
	return string(body), fams
}

func runtimeFamily(name string) bool {
	return strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_")
}

// TestScrapeMatchesDefsAndLints: every metric defined is exposed with its type, help and labels;
// nothing else is exposed but the Go runtime's and the process's; promlint (what promtool check
// metrics runs) finds no problem.
func TestScrapeMatchesDefsAndLints(t *testing.T) {
	m := fullySourced(t)
	text, fams := scrape(t, m)
	defs := map[string]Def{}
	for _, d := range m.Defs() {
		if _, dup := defs[d.Name]; dup {
			t.Errorf("%s is defined twice", d.Name)
		}
		defs[d.Name] = d
		f := fams[d.Name]
		if f == nil {
			t.Errorf("%s is defined but not in the scrape", d.Name)
			continue
		}
		if got := strings.ToLower(f.GetType().String()); got != d.Type {
			t.Errorf("%s: type %s in the scrape, %s defined", d.Name, got, d.Type)
		}
		if f.GetHelp() != d.Help || d.Help == "" {
			t.Errorf("%s: help %q in the scrape, %q defined", d.Name, f.GetHelp(), d.Help)
		}
		for _, s := range f.GetMetric() {
			var names []string
			for _, l := range s.GetLabel() {
				names = append(names, l.GetName())
			}
			slices.Sort(names)
			want := slices.Clone(d.Labels)
			slices.Sort(want)
			if !slices.Equal(names, want) {
				t.Errorf("%s: labels %v, want %v", d.Name, names, want)
				break
			}
		}
	}
	for name := range fams {
		if _, ok := defs[name]; !ok && !runtimeFamily(name) {
			t.Errorf("%s is in the scrape but not defined", name)
		}
	}
	for _, want := range []string{"go_goroutines", "process_resident_memory_bytes", "process_start_time_seconds", "go_info"} {
		if fams[want] == nil {
			t.Errorf("the runtime and process collectors do not give %s", want)
		}
	}
	problems, err := promlint.New(strings.NewReader(text)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	// The linter is live: a counter without _total is a problem to it.
	if p, _ := promlint.New(strings.NewReader("# HELP bad_requests Requests.\n# TYPE bad_requests counter\nbad_requests 1\n")).Lint(); len(p) == 0 {
		t.Error("promlint finds nothing wrong with a counter named without _total")
	}
}

// docsRow is one row of the metrics table in docs/operations.md.
var docsRow = regexp.MustCompile("(?m)^\\| `([a-z_*]+)` \\| (counter|gauge|histogram|mixed) \\| ([^|]*) \\| [^|]+ \\|$")

// TestEveryMetricIsDocumented fails when a metric the registry exposes has no row in the metrics
// table of docs/operations.md, when its row gives another type or other labels, and when a row
// names a metric that does not exist.
func TestEveryMetricIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string][2]string{}
	for _, r := range docsRow.FindAllStringSubmatch(string(doc), -1) {
		rows[r[1]] = [2]string{r[2], r[3]}
	}
	m := fullySourced(t)
	_, fams := scrape(t, m)
	for name := range fams {
		if runtimeFamily(name) {
			if _, ok := rows[name[:strings.Index(name, "_")+1]+"*"]; !ok {
				t.Errorf("%s has no row (nor a %s* row) in the metrics table of docs/operations.md", name, name[:strings.Index(name, "_")+1])
			}
		}
	}
	defined := map[string]bool{"go_*": true, "process_*": true}
	for _, d := range m.Defs() {
		defined[d.Name] = true
		row, ok := rows[d.Name]
		if !ok {
			t.Errorf("%s has no row in the metrics table of docs/operations.md", d.Name)
			continue
		}
		if row[0] != d.Type {
			t.Errorf("docs give %s the type %s; it is a %s", d.Name, row[0], d.Type)
		}
		var labels []string
		for _, l := range regexp.MustCompile("`([a-z_]+)`").FindAllStringSubmatch(row[1], -1) {
			labels = append(labels, l[1])
		}
		if !slices.Equal(labels, d.Labels) {
			t.Errorf("docs give %s the labels %v; it has %v", d.Name, labels, d.Labels)
		}
	}
	for name := range rows {
		if !defined[name] {
			t.Errorf("docs/operations.md documents %s, which does not exist", name)
		}
	}
}

// allowed is the closed list of a label's values, or nil when the label is not bounded by a list
// (the build's).
func allowed(metric, label string) []string {
	switch label {
	case "env":
		if metric == "dashboard_rollout_decisions_total" {
			return append(slices.Clone(DecisionEnvs), Other)
		}
		return Envs
	case "source":
		return sourceNames[:]
	case "outcome":
		if metric == "dashboard_key_verifications_total" {
			return append(slices.Clone(VerifyOutcomes), Other)
		}
		return outcomeNames[:]
	case "input":
		return append(slices.Clone(RefusalInputs), Other)
	case "reason":
		switch metric {
		case "dashboard_ingest_refusals_total":
			return append(slices.Clone(RefusalReasons), Other)
		case "dashboard_webhook_rejections_total":
			return append(slices.Clone(RejectionReasons), Other)
		}
		return append(slices.Clone(DecisionReasons), Other)
	case "state":
		return RolloutStates
	case "signal":
		return append(slices.Clone(Signals), Other)
	}
	return nil
}

// TestLabelsStayBounded feeds random text wherever a label value comes from outside: every value
// in the scrape is on its closed list, and a second round of other random text adds no series.
func TestLabelsStayBounded(t *testing.T) {
	m := New(BuildInfo{Version: "test"})
	var round atomic.Int64
	randomWord := func() string { return "x" + strings.Repeat("y", rand.IntN(8)) + string(rune('a'+rand.IntN(26))) }
	m.ReadIngest(func() IngestState {
		var st IngestState
		for range round.Load() * 10 {
			st.Refusals = append(st.Refusals, Refusal{Env: randomWord(), Input: randomWord(), Reason: randomWord(), Total: 1,
				Ingest: true, Source: SourceCallback, Outcome: OutcomeRefusedQuota})
		}
		return st
	})
	m.ReadRollout(func() RolloutState {
		st := RolloutState{State: randomWord(), GuardrailsCheckedAt: time.Now()}
		for range 5 {
			st.Guardrails = append(st.Guardrails, GuardrailState{Signal: randomWord()})
		}
		return st
	})
	feed := func() {
		round.Add(1)
		// Sources and outcomes are the pipeline's own constants (typed, never from a request):
		// every one of them, and some that do not exist, in every round.
		for s := range sourceCount + 2 {
			for o := range outcomeCount + 2 {
				m.Ingested(randomWord(), s, o, time.Millisecond)
			}
		}
		for range 200 {
			m.Rejected(randomWord(), randomWord())
			m.Verified(randomWord(), randomWord())
			m.Decided(randomWord(), randomWord())
			m.GuardrailTripped(randomWord())
		}
	}
	series := func() map[string]bool {
		_, fams := scrape(t, m)
		out := map[string]bool{}
		for name, f := range fams {
			// Build info and the audit head carry the binary's and the chain's own values, one
			// series at a time; no request reaches them.
			if runtimeFamily(name) || name == "dashboard_build_info" || name == "dashboard_audit_head_info" {
				continue
			}
			for _, s := range f.GetMetric() {
				key := name
				for _, l := range s.GetLabel() {
					if list := allowed(name, l.GetName()); l.GetName() != "le" && !slices.Contains(list, l.GetValue()) {
						t.Errorf("%s{%s=%q}: not one of %v", name, l.GetName(), l.GetValue(), list)
					}
					key += "," + l.GetName() + "=" + l.GetValue()
				}
				out[key] = true
			}
		}
		return out
	}
	feed()
	first := series()
	feed()
	second := series()
	for k := range second {
		if !first[k] {
			t.Errorf("random input made a new series: %s", k)
		}
	}
	if len(first) > 400 {
		t.Errorf("%d series: the label sets are not small", len(first))
	}
}

// TestDecidedCountsEveryDecisionOnce: each decision the rollout makes has its own counter, and
// counting one allocates nothing.
func TestDecidedCountsEveryDecisionOnce(t *testing.T) {
	m := New(BuildInfo{})
	for i, k := range decisionKinds {
		for range i + 1 {
			m.Decided(k.env, k.reason)
		}
	}
	_, fams := scrape(t, m)
	got := map[string]float64{}
	for _, s := range fams["dashboard_rollout_decisions_total"].GetMetric() {
		l := s.GetLabel()
		got[l[0].GetValue()+"/"+l[1].GetValue()] = s.GetCounter().GetValue()
	}
	for i, k := range decisionKinds {
		if got[k.env+"/"+k.reason] != float64(i+1) {
			t.Errorf("%s/%s counted %v, want %d (all: %v)", k.env, k.reason, got[k.env+"/"+k.reason], i+1, got)
		}
	}
	if n := testing.AllocsPerRun(1000, func() { m.Decided("production", "percentage") }); n != 0 {
		t.Errorf("Decided allocates %v times", n)
	}
	var none *Metrics
	none.Decided("production", "percentage") // a nil *Metrics records nothing, and does not panic
	none.Ingested("sandbox", SourceWebhook, OutcomeStored, 0)
}

var sinkCounter atomic.Uint64

// BenchmarkDecided is the cost a decision pays for being counted, against one bare atomic add
// (the least a counter can cost) in the same run.
func BenchmarkDecided(b *testing.B) {
	b.Run("bare_atomic_add", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sinkCounter.Add(1)
		}
	})
	m := New(BuildInfo{})
	kinds := decisionKinds
	b.Run("decided", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			k := &kinds[i%decisionCount]
			m.Decided(k.env, k.reason)
		}
	})
}
