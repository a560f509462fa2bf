-- Environments: the URLs of sandbox and production, their API keys (sealed with the master key,
-- bound to environment and kind) with history, and their webhook signing secrets.

CREATE TABLE environments (
	name              TEXT PRIMARY KEY CHECK (name IN ('sandbox', 'production')),
	base_url          TEXT NOT NULL DEFAULT '',
	callback_url      TEXT NOT NULL DEFAULT '',
	app_url           TEXT NOT NULL DEFAULT '',
	allowed_origins   TEXT NOT NULL DEFAULT '[]', -- JSON array of origins
	version           INTEGER NOT NULL DEFAULT 1, -- bumped on every change (ETag of the config)
	updated_at        INTEGER NOT NULL,
	updated_by        TEXT NOT NULL DEFAULT '',
	verified_at       INTEGER,                    -- last "Verify" against Tensfer
	verify_outcome    TEXT NOT NULL DEFAULT '',   -- ok | wrong_key | wrong_environment | unreachable | error
	verify_detail     TEXT NOT NULL DEFAULT '',
	verify_request_id TEXT NOT NULL DEFAULT '',
	verify_basis      TEXT NOT NULL DEFAULT ''   -- what was verified: base URL + key fingerprints
) WITHOUT ROWID;

INSERT INTO environments (name, updated_at) VALUES ('sandbox', 0), ('production', 0);

-- One row per key value ever set. The active key of a kind has retired_at NULL; a rolled key
-- keeps its row with retired_at set and, optionally, expires_at until which it is still served.
CREATE TABLE env_keys (
	id          INTEGER PRIMARY KEY,
	env         TEXT NOT NULL REFERENCES environments (name),
	kind        TEXT NOT NULL CHECK (kind IN ('client_token', 'public_key', 'secret_key')),
	sealed      TEXT NOT NULL,
	last4       TEXT NOT NULL,
	fingerprint TEXT NOT NULL,
	created_at  INTEGER NOT NULL,
	created_by  TEXT NOT NULL,
	retired_at  INTEGER,
	expires_at  INTEGER
);
CREATE UNIQUE INDEX env_keys_active ON env_keys (env, kind) WHERE retired_at IS NULL;
CREATE INDEX env_keys_fingerprint ON env_keys (fingerprint);

-- Webhook signing secrets (whsec_...). Several may be active at once during rotation.
CREATE TABLE webhook_secrets (
	id              TEXT PRIMARY KEY,
	env             TEXT NOT NULL REFERENCES environments (name),
	sealed          TEXT NOT NULL,
	fingerprint     TEXT NOT NULL,
	created_at      INTEGER NOT NULL,
	created_by      TEXT NOT NULL,
	expires_at      INTEGER,
	retired_at      INTEGER,
	last_matched_at INTEGER
) WITHOUT ROWID;
CREATE INDEX webhook_secrets_env ON webhook_secrets (env, retired_at);
