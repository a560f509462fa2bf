package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/tensfer"
)

// TestKillDuringIngestLosesNothingAcknowledged is the crash test of docs/architecture.md: the real binary
// receives signed webhooks from 16 concurrent senders and is killed with SIGKILL mid-stream; every
// webhook it answered 2xx must then be in the database exactly once.
func TestKillDuringIngestLosesNothingAcknowledged(t *testing.T) {
	dir := t.TempDir()
	notify := listenNotify(t)
	cmd := dashboardCommand(t, notify, "--data", dir, "--addr", "127.0.0.1:0", "--log-format", "json")

	// An admin token made with the CLI on the same data directory before the server starts.
	out, _, err := cli(t, nil, "", "token", "create", "--data", dir, "--name", "crash-test", "--scopes", "admin")
	if err != nil {
		t.Fatalf("token create: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	token := lines[len(lines)-1]

	cmd.Stdout = io.Discard
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	logs := &lockedBuffer{}
	go func() {
		// Keep draining stderr (one access-log line per request) so the server never blocks on it.
		io.Copy(logs, stderr)
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	base := "http://" + servingAddr(t, notify.await(t, "READY=1", exited, logs))

	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 32}}
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/environments/production/webhook-secrets", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var created struct{ Secret string }
	err = json.NewDecoder(res.Body).Decode(&created)
	res.Body.Close()
	if res.StatusCode != http.StatusCreated || err != nil {
		t.Fatalf("create webhook secret: status %d, %v", res.StatusCode, err)
	}
	key, err := tensfer.ParseSecret(created.Secret)
	if err != nil {
		t.Fatal(err)
	}

	const senders, killAfter = 16, 300
	var (
		mu       sync.Mutex
		acked    []string
		killed   atomic.Bool
		killOnce sync.Once
		wg       sync.WaitGroup
		inFlight atomic.Int64 // requests that failed after the kill: they were cut off mid-stream
	)
	kill := func() {
		killOnce.Do(func() {
			killed.Store(true)
			if err := cmd.Process.Kill(); err != nil { // SIGKILL: no shutdown code runs
				t.Errorf("kill: %v", err)
			}
		})
	}
	deadline := time.Now().Add(10 * time.Second)
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !killed.Load(); i++ {
				if time.Now().After(deadline) {
					t.Errorf("sender %d: fewer than %d acknowledgements within 10s", g, killAfter)
					kill()
					return
				}
				id := fmt.Sprintf("msg_crash_%02d_%06d", g, i)
				body := fmt.Appendf(nil, `{"id":"evt_%s","type":"payment.cancelled","created_at":"2026-03-01T12:00:00Z",`+
					`"request_id":"req_crash_%02d_%06d","data":{"user_id":"user_%d","payment_id":"pay_%06d","amount":1234,`+
					`"currency":"GBP","reason":"user_cancelled"}}`, id, g, i, g, i)
				req, _ := http.NewRequest(http.MethodPost, base+"/hooks/production", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				tensfer.SignRequest(req, id, time.Now(), body, key)
				res, err := hc.Do(req)
				if err != nil {
					if killed.Load() {
						inFlight.Add(1)
						return
					}
					t.Errorf("sender %d before the kill: %v", g, err)
					kill()
					return
				}
				// The status line is the acknowledgement: the server sends it only after commit.
				ok := res.StatusCode >= 200 && res.StatusCode < 300
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if !ok {
					if !killed.Load() {
						t.Errorf("delivery %s: status %d", id, res.StatusCode)
						kill()
					}
					return
				}
				mu.Lock()
				acked = append(acked, id)
				n := len(acked)
				mu.Unlock()
				if n >= killAfter {
					kill()
				}
			}
		}()
	}
	wg.Wait()
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("dashboard still running 10s after SIGKILL")
	}
	if t.Failed() {
		t.Fatalf("server log:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), `"msg":"stopped"`) {
		t.Fatal("the server shut down cleanly; it was meant to be killed")
	}
	t.Logf("%d deliveries acknowledged before SIGKILL; %d requests were cut off in flight", len(acked), inFlight.Load())

	// Reopen the database as the next start would (WAL recovery) and look every acknowledged
	// webhook-id up.
	ctx := context.Background()
	d, err := db.Open(ctx, dir)
	if err != nil {
		t.Fatalf("reopen after SIGKILL: %v", err)
	}
	defer d.Close()
	var check string
	if err := d.R.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check after SIGKILL: %q %v", check, err)
	}
	lost := 0
	for _, id := range acked {
		evs, err := d.LookupEvents(ctx, id, 0)
		if err != nil {
			t.Fatal(err)
		}
		found := 0
		for _, e := range evs {
			if e.ExternalID == id {
				found++
				if e.Source != db.SourceWebhook || e.Env != "production" || e.DedupeKey != "webhook:production:"+id {
					t.Errorf("acknowledged %s stored as %s/%s with dedupe key %q", id, e.Source, e.Env, e.DedupeKey)
				}
			}
		}
		if found != 1 {
			lost++
			if lost <= 10 {
				t.Errorf("acknowledged webhook %s is stored %d times, want exactly once", id, found)
			}
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged webhooks are not stored exactly once", lost, len(acked))
	}
	if n, err := d.LatestEventID(ctx); err != nil || n < int64(len(acked)) {
		t.Fatalf("latest event id %d after %d acknowledged: %v", n, len(acked), err)
	}
}
