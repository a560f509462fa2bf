-- The audit log becomes tamper-evident: each new row stores the SHA-256 of the previous row's hash
-- and its own canonical form (audit.go, auditHash). Rows written before this migration carry no
-- hash; the first row after it chains from the hashes recomputed over all of them, so they are
-- covered too. `dashboard audit verify` walks the chain.
ALTER TABLE audit_log ADD COLUMN hash TEXT;
