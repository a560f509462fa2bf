-- Alerts: notification channels that admins manage (a Slack-compatible incoming webhook, or a
-- JSON webhook signed with Standard Webhooks), every alert delivery to one of them with its state,
-- each attempt with its answer, and the detector's own state (its place in the audit log, and
-- which bursts are going on), so a restart neither loses nor repeats an alert.
--
-- The URL is sealed with the master key (a Slack URL embeds its token), context
-- alert_channel/<id>/url; only its host and a keyed fingerprint are shown. The signing secret of a
-- webhook channel is sealed too, context alert_channel/<id>/secret.
CREATE TABLE alert_channels (
	id              TEXT PRIMARY KEY,
	name            TEXT NOT NULL UNIQUE,
	kind            TEXT NOT NULL CHECK (kind IN ('slack', 'webhook')),
	url_sealed      TEXT NOT NULL,
	url_host        TEXT NOT NULL,
	url_fingerprint TEXT NOT NULL,
	secret_sealed   TEXT NOT NULL DEFAULT '',
	events          TEXT NOT NULL, -- JSON array of event types
	envs            TEXT NOT NULL, -- JSON array of environments
	enabled         INTEGER NOT NULL DEFAULT 1,
	created_at      INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL,
	version         INTEGER NOT NULL DEFAULT 1
) WITHOUT ROWID;

-- One alert to one channel. payload is the JSON body a webhook channel receives (a Slack channel
-- gets a line made from it); msg_id is its webhook-id, the same on every attempt. A pending
-- delivery is tried again at next_at until max_attempts; delivered and failed ones are kept for
-- the retention window.
CREATE TABLE alert_deliveries (
	id           INTEGER PRIMARY KEY,
	channel_id   TEXT NOT NULL REFERENCES alert_channels (id) ON DELETE CASCADE,
	msg_id       TEXT NOT NULL UNIQUE,
	type         TEXT NOT NULL,
	env          TEXT NOT NULL DEFAULT '',
	status       TEXT NOT NULL CHECK (status IN ('firing', 'resolved')),
	title        TEXT NOT NULL,
	payload      BLOB NOT NULL,
	state        TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
	attempts     INTEGER NOT NULL DEFAULT 0,
	max_attempts INTEGER NOT NULL,
	next_at      INTEGER NOT NULL,
	created_at   INTEGER NOT NULL,
	done_at      INTEGER
);
CREATE INDEX alert_deliveries_pending ON alert_deliveries (next_at) WHERE state = 'pending';
CREATE INDEX alert_deliveries_channel ON alert_deliveries (channel_id, id);
CREATE INDEX alert_deliveries_created ON alert_deliveries (created_at);

-- Every attempt: the HTTP status (NULL when no answer came), the start of the answer's body,
-- how long it took and what went wrong.
CREATE TABLE alert_attempts (
	id          INTEGER PRIMARY KEY,
	delivery_id INTEGER NOT NULL REFERENCES alert_deliveries (id) ON DELETE CASCADE,
	at          INTEGER NOT NULL,
	status      INTEGER,
	answer      TEXT NOT NULL DEFAULT '',
	duration_ms INTEGER NOT NULL,
	error       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX alert_attempts_delivery ON alert_attempts (delivery_id, id);

-- The detector's state: "audit_cursor" (the last audit row looked at) and one row per burst
-- going on ("burst/<type>/<env>", JSON).
CREATE TABLE alert_state (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
) WITHOUT ROWID;
