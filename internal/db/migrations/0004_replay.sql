-- Replay: where an environment's stored webhooks can be forwarded (the integrator's backend), and
-- a record of every forwarding attempt. Attempts outlive purged events on purpose: they are the
-- history of what was sent where.
ALTER TABLE environments ADD COLUMN replay_url TEXT NOT NULL DEFAULT '';

CREATE TABLE replay_attempts (
	id          INTEGER PRIMARY KEY,
	event_id    INTEGER NOT NULL,
	at          INTEGER NOT NULL,
	target      TEXT NOT NULL,
	status      INTEGER,          -- NULL when no answer came
	duration_ms INTEGER NOT NULL,
	error       TEXT NOT NULL DEFAULT '',
	actor       TEXT NOT NULL,
	request_id  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX replay_attempts_event ON replay_attempts (event_id, id);
CREATE INDEX replay_attempts_at ON replay_attempts (at);
