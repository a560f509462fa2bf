-- The production rollout: one row of state (plan, stage, guardrails), its cohorts in evaluation
-- order with the members of allow-lists, and the persisted reach counters (HyperLogLog registers
-- per stage). Times are Unix milliseconds (UTC).
CREATE TABLE rollout (
	key              TEXT PRIMARY KEY,
	salt             TEXT NOT NULL,
	state            TEXT NOT NULL CHECK (state IN ('active', 'paused', 'killed')),
	stage            INTEGER NOT NULL CHECK (stage >= 0),
	stages           TEXT NOT NULL,            -- JSON [{"percent":1,"min_soak_ms":86400000}, ..]
	stage_started_at INTEGER,
	auto_advance     INTEGER NOT NULL DEFAULT 0 CHECK (auto_advance IN (0, 1)),
	guardrails       TEXT NOT NULL,            -- JSON [{"signal","max_rate","min_volume","window_ms"}, ..]
	on_breach        TEXT NOT NULL CHECK (on_breach IN ('pause', 'rollback')),
	held             TEXT NOT NULL DEFAULT '', -- why the rollout stopped by itself
	version          INTEGER NOT NULL,         -- bumped by any change to the rollout or a cohort
	updated_at       INTEGER NOT NULL,
	updated_by       TEXT NOT NULL DEFAULT ''
);

CREATE TABLE cohorts (
	id         INTEGER PRIMARY KEY,
	name       TEXT NOT NULL UNIQUE,
	env        TEXT NOT NULL CHECK (env IN ('production', 'sandbox', 'off')),
	position   INTEGER NOT NULL,
	kind       TEXT NOT NULL CHECK (kind IN ('list', 'rules')),
	match      TEXT NOT NULL DEFAULT '',
	rules      TEXT NOT NULL DEFAULT '[]',     -- JSON [{"attribute","op","values"}, ..]
	size       INTEGER NOT NULL DEFAULT 0,     -- members of an allow-list
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	updated_by TEXT NOT NULL DEFAULT ''
);

CREATE TABLE cohort_members (
	cohort_id INTEGER NOT NULL REFERENCES cohorts (id) ON DELETE CASCADE,
	user_id   TEXT NOT NULL,
	PRIMARY KEY (cohort_id, user_id)
) WITHOUT ROWID;

CREATE TABLE rollout_reach (
	stage      INTEGER PRIMARY KEY,
	registers  BLOB NOT NULL,
	updated_at INTEGER NOT NULL
);

-- Who sent a public delivery, as a keyed fingerprint of the client's address (never the address
-- itself on events): guardrails count unauthenticated signals per distinct sender, so one script
-- counts once however many requests it sends.
ALTER TABLE events ADD COLUMN client TEXT;
ALTER TABLE rejected_deliveries ADD COLUMN client TEXT;

-- Senders that have delivered a verified webhook (Tensfer's own addresses), refreshed at most once
-- a minute per sender: refusals count toward the rejected-webhooks guardrail only from them, so
-- a forger, who never passed verification, cannot trip it. A table rather than an index on
-- events, so that storing a webhook updates no extra index.
CREATE TABLE webhook_senders (
	client    TEXT PRIMARY KEY,
	last_seen INTEGER NOT NULL
) WITHOUT ROWID;
