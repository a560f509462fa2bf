-- Guardrails that the internet cannot move (issue 17, items 15 to 17).

-- Beacon keys: each environment's key for the short-lived tokens that the integrator's backend
-- mints per user session and its front end sends with callback beacons. Only beacons whose token
-- verifies count toward a guardrail. One current key per environment (retired_at NULL); a
-- rotated key keeps verifying tokens until valid_until (the overlap), then never again. sealed is
-- the key under the master key, bound to its environment and id.
CREATE TABLE beacon_keys (
	id          TEXT PRIMARY KEY,
	env         TEXT NOT NULL CHECK (env IN ('sandbox', 'production')),
	sealed      TEXT NOT NULL,
	created_at  INTEGER NOT NULL,
	created_by  TEXT NOT NULL DEFAULT '',
	retired_at  INTEGER,
	valid_until INTEGER
);
CREATE UNIQUE INDEX beacon_keys_current ON beacon_keys (env) WHERE retired_at IS NULL;

-- A refused delivery whose signature verified with a secret of its environment (active, or
-- retired or expired lately) was refused for another reason (its timestamp, its body, a retired
-- secret still in use): only such refusals count toward the rejected-webhooks guardrail, once
-- per webhook_id. signed_by is the id of the secret that matched; NULL when none did.
ALTER TABLE rejected_deliveries ADD COLUMN signed_by TEXT;
ALTER TABLE rejected_deliveries ADD COLUMN webhook_id TEXT;
CREATE INDEX rejected_deliveries_signed ON rejected_deliveries (received_at) WHERE signed_by IS NOT NULL;

-- Senders are no longer trusted by address: a delivery from an address that once delivered a
-- valid webhook is judged like any other (a sandbox-signed webhook, or a proxy in front of every
-- client, made an address "known").
DROP TABLE webhook_senders;
