package metrics

import (
	"encoding/hex"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// auditHeadMetrics are the audit chain's published head: its row as a gauge, and its hash as
// the label of an info metric (one series at a time), so a scraper keeps a copy outside the
// database.
type auditHeadMetrics struct {
	seq  prometheus.Gauge
	info *prometheus.GaugeVec
}

func (m *Metrics) defineAuditHead() {
	m.auditHead.seq = m.gaugeVec("dashboard_audit_head_seq",
		"The last row of the audit log's hash chain as last published (at start, every minute when it changed, and at stop).").WithLabelValues()
	m.auditHead.info = m.gaugeVec("dashboard_audit_head_info",
		"Always 1, with the published head of the audit chain as labels: seq (its row) and hash (its link). dashboard audit verify --head SEQ:HASH proves the log still holds it.",
		"seq", "hash")
	m.auditHead.info.WithLabelValues("0", "").Set(1)
}

// AuditHead records the head of the audit chain just published: row seq, link hash. A hash that
// is not 64 hex digits is not a link and is recorded as "invalid" (labels stay bounded).
func (m *Metrics) AuditHead(seq int64, hash string) {
	if m == nil {
		return
	}
	if _, err := hex.DecodeString(hash); err != nil || (len(hash) != 64 && hash != "") {
		hash = "invalid"
	}
	m.auditHead.seq.Set(float64(seq))
	m.auditHead.info.Reset()
	m.auditHead.info.WithLabelValues(strconv.FormatInt(seq, 10), hash).Set(1)
}
