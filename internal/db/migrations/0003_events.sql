-- Events: every verified webhook, every callback and every API call reported by the integrator's
-- services, kept with their raw bytes; and the deliveries we refused, kept apart for admins.
-- Times are Unix milliseconds (UTC).

-- NB: AUTOINCREMENT so an id is never reused, even after retention has emptied the table: the id
-- is the SSE event id and the keyset cursor that clients hold on to.
-- received_at is stamped by the single writer and never decreases as id grows, so a time window
-- is also an id range (see ListEvents).
CREATE TABLE events (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	source        TEXT NOT NULL CHECK (source IN ('webhook', 'callback', 'api')),
	env           TEXT NOT NULL CHECK (env IN ('sandbox', 'production')),
	type          TEXT NOT NULL,
	request_id    TEXT NOT NULL DEFAULT '',
	user_id       TEXT NOT NULL DEFAULT '',
	external_id   TEXT NOT NULL DEFAULT '',           -- evt_.., callback event_id, webhook-id
	dedupe_key    TEXT UNIQUE,                        -- 'webhook:production:<webhook-id>', NULL = never deduplicated
	received_at   INTEGER NOT NULL,
	occurred_at   INTEGER,
	is_error      INTEGER NOT NULL DEFAULT 0 CHECK (is_error IN (0, 1)),
	method        TEXT,                               -- api calls only, from here to error_message
	path          TEXT,
	status        INTEGER,                            -- NULL: no HTTP response (e.g. timeout)
	duration_ms   INTEGER,
	error_code    TEXT,
	error_message TEXT,
	payload       BLOB NOT NULL,                      -- the bytes exactly as received
	headers       TEXT,                               -- JSON object of the headers kept
	verification  TEXT,                               -- JSON, e.g. which webhook secret matched
	demo          INTEGER NOT NULL DEFAULT 0 CHECK (demo IN (0, 1))
);

-- Each index ends in id so that a filtered page is one range scan in keyset order, never a sort.
-- The lookup columns are mostly empty for some sources, so their indexes leave '' out; queries
-- repeat the "<> ''" term to use them.
CREATE INDEX events_request_id  ON events (request_id, id)  WHERE request_id <> '';
CREATE INDEX events_external_id ON events (external_id, id) WHERE external_id <> '';
CREATE INDEX events_user_id     ON events (user_id, id)     WHERE user_id <> '';
CREATE INDEX events_env         ON events (env, id);
CREATE INDEX events_env_source  ON events (env, source, id);
CREATE INDEX events_type        ON events (type, id);
CREATE INDEX events_errors      ON events (env, id) WHERE is_error = 1;
CREATE INDEX events_received_at ON events (received_at);

-- Totals that must not be recounted on every page view (e.g. production API calls used, for the
-- free allowance). Bumped in the ingest transaction; retention does not lower them.
CREATE TABLE event_counts (
	env    TEXT NOT NULL,
	source TEXT NOT NULL,
	n      INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (env, source)
) WITHOUT ROWID;

-- Deliveries refused before they became events (bad signature, skewed clock, unknown environment,
-- malformed or oversized body). env is the path segment as sent, so it may be unknown; body is
-- truncated, body_size is the size received.
CREATE TABLE rejected_deliveries (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	env         TEXT NOT NULL,
	received_at INTEGER NOT NULL,
	reason      TEXT NOT NULL,
	detail      TEXT NOT NULL DEFAULT '',
	headers     TEXT,
	body        BLOB NOT NULL,
	body_size   INTEGER NOT NULL DEFAULT 0,
	ip          TEXT NOT NULL DEFAULT '',
	request_id  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX rejected_deliveries_received_at ON rejected_deliveries (received_at);
CREATE INDEX rejected_deliveries_env         ON rejected_deliveries (env, id);
