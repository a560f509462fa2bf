package alerts

import (
	"context"
	"fmt"
	"time"

	"github.com/tensfer-golive/dashboard/internal/db"
)

// Head publication reasons, as the log line, the alert and the docs name them.
const (
	HeadAtStart = "start"
	HeadChanged = "changed"
	HeadAtStop  = "stop"
)

// headStopWait bounds the last publication, made after the server was asked to stop.
const headStopWait = 5 * time.Second

// PublishHead reads the audit chain's head and publishes it outside the database: a log line
// ("audit head", with head=SEQ:HASH), the /metrics gauges, and an alert of type audit.head to the
// channels that chose it. A copy kept outside is what `dashboard audit verify --head` checks
// against: deleting rows after it, or rewriting the chain up to it, no longer goes unnoticed.
// why is HeadAtStart, HeadChanged or HeadAtStop.
func (s *Service) PublishHead(ctx context.Context, why string) (db.AuditHead, error) {
	h, err := s.db.AuditHead(ctx)
	if err != nil {
		return h, err
	}
	s.log.Info("audit head", "head", h.String(), "seq", h.Seq, "hash", h.Hash, "reason", why)
	s.cfg.Metrics.AuditHead(h.Seq, h.Hash)
	a := Alert{Type: EventAuditHead, Status: StatusFiring, OccurredAt: rfc3339(s.now()), URL: s.link("/audit"),
		Title: fmt.Sprintf("Audit log head: row %d", h.Seq),
		Text:  fmt.Sprintf("Published head %s (%s). Keep this message: dashboard audit verify --head %s proves the audit log still holds every row up to it.", h, headReason(why), h),
		Data:  map[string]any{"head": h.String(), "seq": h.Seq, "hash": h.Hash, "reason": why}}
	if err := s.record(ctx, []Alert{a}, nil); err != nil {
		return h, err
	}
	s.headMu.Lock()
	s.published = h
	s.headMu.Unlock()
	return h, nil
}

// PublishHeadIfChanged publishes the head when it differs from the last one published.
func (s *Service) PublishHeadIfChanged(ctx context.Context) error {
	h, err := s.db.AuditHead(ctx)
	if err != nil {
		return err
	}
	s.headMu.Lock()
	same := h == s.published
	s.headMu.Unlock()
	if same {
		return nil
	}
	_, err = s.PublishHead(ctx, HeadChanged)
	return err
}

// PublishHeads publishes the head at once, then every HeadEvery when it changed, and a last time
// when ctx ends (run it so that it ends before the database closes); each only while this
// instance leads (cluster.Leader).
func (s *Service) PublishHeads(ctx context.Context) {
	leading := s.cfg.Leader.Leading // only the leading instance announces the head
	if leading() {
		if _, err := s.PublishHead(ctx, HeadAtStart); err != nil && ctx.Err() == nil {
			s.log.Warn("publish audit head", "error", err)
		}
	}
	t := time.NewTicker(s.opt.HeadEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if !leading() {
				return
			}
			stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), headStopWait)
			defer cancel()
			if _, err := s.PublishHead(stopCtx, HeadAtStop); err != nil {
				s.log.Warn("publish audit head at stop", "error", err)
			}
			return
		case <-t.C:
			if !leading() {
				continue
			}
			if err := s.PublishHeadIfChanged(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("publish audit head", "error", err)
			}
		}
	}
}

func headReason(why string) string {
	switch why {
	case HeadAtStart:
		return "at start"
	case HeadAtStop:
		return "at stop"
	}
	return "it changed"
}
