package web

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tensfer-golive/dashboard/internal/auth"
	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/launch"
	"github.com/tensfer-golive/dashboard/internal/rollout"
)

// ofrepProvidersDir holds the Node project that drives OFREP with OpenFeature's own providers.
var ofrepProvidersDir = filepath.Join("testdata", "ofrep")

// ofrepAnswer is one line of testdata/ofrep/check.mjs: what the OpenFeature SDK gave the app.
type ofrepAnswer struct {
	Step         string         `json:"step"`
	Value        string         `json:"value"`
	Variant      string         `json:"variant"`
	Reason       string         `json:"reason"`
	ErrorCode    string         `json:"errorCode"`
	ErrorMessage string         `json:"errorMessage"`
	FlagMetadata map[string]any `json:"flagMetadata"`
	FlagsChanged []string       `json:"flagsChanged"`
	HTTP         *ofrepWire     `json:"http"`
	Fatal        string         `json:"fatal"`
}

// ofrepWire is the web provider's last bulk request as sent and answered.
type ofrepWire struct {
	Status      int    `json:"status"`
	IfNoneMatch string `json:"ifNoneMatch"`
	ETag        string `json:"etag"`
}

// ofrepProviders is check.mjs running against the app: one step in, one answer out.
type ofrepProviders struct {
	t      *testing.T
	in     io.WriteCloser
	out    chan string
	stderr *syncBuffer
}

// ofrepNode finds node and checks that OpenFeature's providers are installed under
// testdata/ofrep. Without them the test is skipped with a message, except in CI (CI=true), where
// .ci/run installs them and their absence fails.
func ofrepNode(t *testing.T) string {
	t.Helper()
	missing := ""
	node, err := exec.LookPath("node")
	if err != nil {
		missing = "no node on PATH (install Node.js 20 or later)"
	} else if _, err := os.Stat(filepath.Join(ofrepProvidersDir, "node_modules", "@openfeature", "ofrep-web-provider")); err != nil {
		missing = "OpenFeature's providers are not installed (run: npm ci --prefix internal/web/testdata/ofrep)"
	}
	if missing != "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI=true but %s; .ci/run must install them", missing)
		}
		t.Skip("OFREP conformance test skipped: " + missing)
	}
	return node
}

// startOFREPProviders runs check.mjs with node against the app, with a bearer token and the
// flag key; it is stopped when the test ends.
func startOFREPProviders(t *testing.T, node, baseURL, token, flag string) *ofrepProviders {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	cmd := exec.CommandContext(ctx, node, "check.mjs", baseURL, flag)
	cmd.Dir = ofrepProvidersDir
	cmd.Env = append(os.Environ(), "OFREP_TOKEN="+token) // kept out of the process list
	cmd.WaitDelay = 5 * time.Second
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	p := &ofrepProviders{t: t, in: in, out: make(chan string, 16), stderr: stderr}
	go func() {
		defer close(p.out)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.out <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		p.in.Close() // the script ends when its input does
		if t.Failed() {
			cancel() // a step may still be waiting: stop the script rather than wait for it
		}
		for range p.out {
		}
		err := cmd.Wait()
		cancel()
		if err != nil && !t.Failed() {
			t.Errorf("check.mjs: %v\n%s", err, p.stderr)
		}
	})
	return p
}

// do sends one step and returns the script's answer to it.
func (p *ofrepProviders) do(step map[string]any) ofrepAnswer {
	p.t.Helper()
	b, _ := json.Marshal(step)
	if _, err := p.in.Write(append(b, '\n')); err != nil {
		p.t.Fatalf("send %s: %v\n%s", b, err, p.stderr)
	}
	select {
	case line, ok := <-p.out:
		if !ok {
			p.t.Fatalf("check.mjs ended before answering %s\n%s", b, p.stderr)
		}
		var a ofrepAnswer
		if err := json.Unmarshal([]byte(line), &a); err != nil {
			p.t.Fatalf("answer to %s is not JSON: %q", b, line)
		}
		if a.Fatal != "" {
			p.t.Fatalf("check.mjs could not do %s: %s", b, a.Fatal)
		}
		p.t.Logf("%s -> %s", b, line)
		return a
	case <-time.After(30 * time.Second):
		p.t.Fatalf("no answer to %s within 30s\n%s", b, p.stderr)
	}
	return ofrepAnswer{}
}

// TestOFREPWithOpenFeatureProviders checks the OFREP endpoints with OpenFeature's published
// providers, as an app would use them: the server provider evaluates each user with a dynamic
// context; the web provider evaluates in bulk with a static context and polls with
// If-None-Match, seeing 304 until an operator changes the rollout.
func TestOFREPWithOpenFeatureProviders(t *testing.T) {
	node := ofrepNode(t)
	app := newTestApp(t)
	svc := app.srv.rollout
	ctx := context.Background()
	who := db.Audit{Actor: "test"}
	if _, _, err := svc.CreateCohort(ctx, launch.CohortInput{Name: "pilot", Env: "production", UserIDs: []string{"u_pilot"}}, 0, who); err != nil {
		t.Fatal(err)
	}
	nl := []rollout.Rule{{Attribute: "country", Op: rollout.OpEq, Values: []string{"NL"}}}
	if _, _, err := svc.CreateCohort(ctx, launch.CohortInput{Name: "dutch-testers", Env: "sandbox", Rules: nl}, 0, who); err != nil {
		t.Fatal(err)
	}
	snap := svc.Snapshot()
	flag := snap.Rollout.Key
	// Find a user the first stage's percentage takes in, and one it leaves out.
	first, err := snap.Rollout.Advance(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	atFirst := rollout.Compile(first, snap.Cohorts, 0)
	var in, out string
	for i := 0; in == "" || out == ""; i++ {
		id := fmt.Sprintf("user-%d", i)
		switch atFirst.Decide(rollout.User{ID: id}).Reason {
		case rollout.ReasonPercentage:
			in = cmp.Or(in, id)
		case rollout.ReasonDefault:
			out = cmp.Or(out, id)
		}
	}
	act := func(a launch.Action) func(*testing.T) {
		return func(t *testing.T) {
			if _, err := svc.Act(ctx, a, 0, 0, false, who); err != nil {
				t.Fatalf("%s: %v", a, err)
			}
		}
	}
	user := func(id string, attrs ...string) map[string]any {
		c := map[string]any{"targetingKey": id}
		for i := 0; i+1 < len(attrs); i += 2 {
			c[attrs[i]] = attrs[i+1]
		}
		return c
	}
	server := func(c map[string]any) map[string]any { return map[string]any{"op": "server", "context": c} }

	p := startOFREPProviders(t, node, app.url, app.addToken("ofrep", auth.ScopeRolloutDecide), flag)
	var etag string // the ETag of the flags the web provider holds, as the steps learn it
	steps := []struct {
		name   string
		before func(*testing.T) // a change an operator makes first
		send   map[string]any
		want   ofrepAnswer // value, variant, reason and errorCode exactly; metadata as a subset
		check  func(*testing.T, ofrepAnswer)
	}{
		{name: "not started", send: server(user(in, "country", "DE")),
			want: ofrepAnswer{Value: "off", Variant: "off", Reason: "DEFAULT", FlagMetadata: map[string]any{"reason": "not_started"}}},
		{name: "allow-list cohort", send: server(user("u_pilot")),
			want: ofrepAnswer{Value: "production", Variant: "production", Reason: "TARGETING_MATCH", FlagMetadata: map[string]any{"cohort": "pilot"}}},
		{name: "rules cohort on a context attribute", send: server(user("u_nl", "country", "NL")),
			want: ofrepAnswer{Value: "sandbox", Variant: "sandbox", Reason: "TARGETING_MATCH", FlagMetadata: map[string]any{"cohort": "dutch-testers"}}},
		{name: "unknown flag", send: map[string]any{"op": "server", "flag": "no-such-flag", "context": user(in)},
			want: ofrepAnswer{Value: "off", Reason: "ERROR", ErrorCode: "FLAG_NOT_FOUND"}},
		{name: "no targeting key", send: server(map[string]any{"country": "DE"}),
			want: ofrepAnswer{Value: "off", Reason: "ERROR", ErrorCode: "TARGETING_KEY_MISSING"}},
		{name: "targeting key too long", send: server(user(strings.Repeat("x", rollout.MaxIDBytes+1))),
			want: ofrepAnswer{Value: "off", Reason: "ERROR", ErrorCode: "INVALID_CONTEXT"}},

		{name: "web: bulk evaluation", send: map[string]any{"op": "web.start", "context": user(in, "country", "DE")},
			want: ofrepAnswer{Value: "off", Variant: "off", Reason: "DEFAULT"},
			check: func(t *testing.T, a ofrepAnswer) {
				if a.HTTP == nil || a.HTTP.Status != 200 || a.HTTP.ETag == "" || a.HTTP.IfNoneMatch != "" {
					t.Fatalf("first bulk request: %+v, want a 200 with an ETag, asked without If-None-Match", a.HTTP)
				}
				etag = a.HTTP.ETag
			}},
		{name: "web: poll without a change", send: map[string]any{"op": "web.notModified"},
			check: func(t *testing.T, a ofrepAnswer) {
				if a.HTTP.Status != 304 || a.HTTP.IfNoneMatch != etag {
					t.Errorf("poll: %+v, want 304 to If-None-Match %s", a.HTTP, etag)
				}
			}},
		{name: "web: poll after advancing to the first stage", before: act(launch.Advance), send: map[string]any{"op": "web.changed"},
			want: ofrepAnswer{Value: "production", Variant: "production", Reason: "SPLIT", FlagsChanged: []string{flag}},
			check: func(t *testing.T, a ofrepAnswer) {
				if a.HTTP.Status != 200 || a.HTTP.IfNoneMatch != etag || a.HTTP.ETag == etag || a.HTTP.ETag == "" {
					t.Errorf("poll after the change: %+v, want a 200 with a new ETag to If-None-Match %s", a.HTTP, etag)
				}
				etag = a.HTTP.ETag
			}},
		// The provider keeps its ETag while the targeting key stays: the ETag must cover the context.
		{name: "web: same user, another country", send: map[string]any{"op": "web.context", "context": user(in, "country", "NL")},
			want: ofrepAnswer{Value: "sandbox", Variant: "sandbox", Reason: "TARGETING_MATCH", FlagMetadata: map[string]any{"cohort": "dutch-testers"}},
			check: func(t *testing.T, a ofrepAnswer) {
				if a.HTTP.Status != 200 || a.HTTP.IfNoneMatch != etag || a.HTTP.ETag == etag {
					t.Errorf("bulk request for the new context: %+v, want a 200 with a new ETag to If-None-Match %s", a.HTTP, etag)
				}
			}},
		{name: "in the percentage", send: server(user(in, "country", "DE")),
			want: ofrepAnswer{Value: "production", Variant: "production", Reason: "SPLIT", FlagMetadata: map[string]any{"reason": "percentage"}}},
		{name: "outside the percentage", send: server(user(out, "country", "DE")),
			want: ofrepAnswer{Value: "off", Variant: "off", Reason: "SPLIT", FlagMetadata: map[string]any{"reason": "default"}}},
		{name: "web: another user", send: map[string]any{"op": "web.context", "context": user("u_pilot")},
			want: ofrepAnswer{Value: "production", Variant: "production", Reason: "TARGETING_MATCH", FlagMetadata: map[string]any{"cohort": "pilot"}}},
		{name: "web: poll after the kill", before: act(launch.Kill), send: map[string]any{"op": "web.changed"},
			want: ofrepAnswer{Value: "off", Variant: "off", Reason: "DISABLED", FlagsChanged: []string{flag}}},
		{name: "killed beats the cohort", send: server(user("u_pilot")),
			want: ofrepAnswer{Value: "off", Variant: "off", Reason: "DISABLED", FlagMetadata: map[string]any{"reason": "killed"}}},
		{name: "killed beats the percentage", send: server(user(in, "country", "DE")),
			want: ofrepAnswer{Value: "off", Variant: "off", Reason: "DISABLED"}},
		{name: "killed leaves sandbox testers", send: server(user("u_nl", "country", "NL")),
			want: ofrepAnswer{Value: "sandbox", Variant: "sandbox", Reason: "TARGETING_MATCH"}},
	}
	for _, st := range steps {
		if st.before != nil {
			st.before(t)
		}
		got := p.do(st.send)
		if got.Value != st.want.Value || got.Variant != st.want.Variant || got.Reason != st.want.Reason || got.ErrorCode != st.want.ErrorCode {
			t.Errorf("%s: the SDK gave value=%q variant=%q reason=%q errorCode=%q (%s), want %q %q %q %q",
				st.name, got.Value, got.Variant, got.Reason, got.ErrorCode, got.ErrorMessage, st.want.Value, st.want.Variant, st.want.Reason, st.want.ErrorCode)
		}
		for k, v := range st.want.FlagMetadata {
			if got.FlagMetadata[k] != v {
				t.Errorf("%s: flag metadata %s = %v, want %v (all: %v)", st.name, k, got.FlagMetadata[k], v, got.FlagMetadata)
			}
		}
		if st.want.FlagsChanged != nil && strings.Join(got.FlagsChanged, ",") != strings.Join(st.want.FlagsChanged, ",") {
			t.Errorf("%s: flags changed %v, want %v", st.name, got.FlagsChanged, st.want.FlagsChanged)
		}
		if st.check != nil {
			st.check(t, got)
		}
	}
}
