package events

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
	"github.com/tensfer-golive/dashboard/internal/tensfer"
	"github.com/tensfer-golive/dashboard/internal/validation"
)

// MaxReplayBatch bounds one "replay all matching" run; a larger selection is narrowed by time.
const MaxReplayBatch = 200

// ReplayTarget is where env's webhooks are replayed to and the key they are signed with.
type ReplayTarget struct {
	URL string
	key []byte
}

// ReplayTarget returns env's replay URL and signing key. When replay is not possible yet the
// error is a validation.Problem saying what to set.
func (s *Service) ReplayTarget(ctx context.Context, env string) (ReplayTarget, error) {
	e, err := s.db.EnvironmentByName(ctx, env)
	if err != nil {
		return ReplayTarget{}, err
	}
	if e.ReplayURL == "" {
		return ReplayTarget{}, validation.Problem("Set a replay target for " + env + " under Environments first.")
	}
	_, keys, err := s.ActiveWebhookKeys(ctx, env)
	if err != nil {
		return ReplayTarget{}, err
	}
	if len(keys) == 0 {
		return ReplayTarget{}, validation.Problem("Add a webhook signing secret to " + env + " first; replays are signed with it.")
	}
	return ReplayTarget{URL: e.ReplayURL, key: keys[0]}, nil
}

// Replay forwards a stored webhook to t: the raw body, re-signed with the environment's active
// secret under the original webhook-id and a fresh timestamp (so the backend's own verification
// and idempotency work). Every attempt is recorded, whatever its outcome.
func (s *Service) Replay(ctx context.Context, e db.Event, t ReplayTarget, actor, reqID string) db.ReplayAttempt {
	a := db.ReplayAttempt{EventID: e.ID, Target: t.URL, Actor: actor, RequestID: reqID}
	id := e.Headers["webhook-id"]
	if id == "" {
		id = "msg_replay_" + strconv.FormatInt(e.ID, 10)
	}
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodPost, t.URL, bytes.NewReader(e.Payload))
	if err == nil {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", s.cfg.UserAgent+" (replay)")
		tensfer.SignRequest(req, id, s.now(), e.Payload, t.key)
		var res *http.Response
		if res, err = s.cfg.HTTPClient.Do(req); err == nil {
			io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
			res.Body.Close()
			a.Status = res.StatusCode
			if res.StatusCode >= 300 {
				a.Error = "answered " + res.Status
			}
		}
	}
	a.DurationMS = time.Since(start).Milliseconds()
	if err != nil {
		a.Error = err.Error()
	}
	if err := s.db.InsertReplayAttempt(context.WithoutCancel(ctx), a); err != nil {
		s.log.Error("record replay attempt", "event_id", e.ID, "error", err)
	}
	return a
}

// ReplayAll forwards evs to t, four at a time, and counts the outcomes.
func (s *Service) ReplayAll(ctx context.Context, evs []db.Event, t ReplayTarget, actor, reqID string) (ok, failed int) {
	var mu sync.Mutex
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for _, e := range evs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			at := s.Replay(ctx, e, t, actor, reqID)
			mu.Lock()
			if at.Error == "" {
				ok++
			} else {
				failed++
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return ok, failed
}

// ReplaySelection lists the webhooks a bulk replay of f would send: newest first, at most
// MaxReplayBatch, nothing newer than maxID when it is set (what a confirmation page counted),
// and whether there are more. f must name one environment.
func (s *Service) ReplaySelection(ctx context.Context, f db.EventFilter, maxID int64) ([]db.Event, bool, error) {
	if f.Env == "" {
		return nil, false, validation.Problem("choose one environment to replay (its replay target and secret are used)")
	}
	f.Source, f.Limit, f.BeforeID = db.SourceWebhook, MaxReplayBatch, 0
	if maxID > 0 {
		f.BeforeID = maxID + 1
	}
	evs, next, err := s.db.ListEvents(ctx, f)
	return evs, next > 0, err
}
