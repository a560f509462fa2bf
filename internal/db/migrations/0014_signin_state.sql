-- Sign-in state that every instance on one database must see (issue 19): a browser behind a
-- round-robin balancer never notices which instance answered, and a lockout cannot be dodged by
-- asking another instance. Times are Unix ms.

-- The login soft lockout's counters, one per account and one per (account, source address). key
-- is a keyed hash of the counter's name (the email as typed, which may be a password typed into
-- the wrong field, is never stored). inflight counts attempts admitted and not yet ended, trusted
-- until inflight_until (an instance that dies mid-check does not hold it for ever). forget_at is
-- when the row holds nothing worth keeping; the row count is bounded by the lockout's MaxKeys.
CREATE TABLE login_counters (
	key            BLOB PRIMARY KEY,
	failures       INTEGER NOT NULL DEFAULT 0,
	inflight       INTEGER NOT NULL DEFAULT 0,
	inflight_until INTEGER NOT NULL DEFAULT 0,
	last_failure   INTEGER NOT NULL DEFAULT 0,
	locked_until   INTEGER NOT NULL DEFAULT 0,
	reported       INTEGER NOT NULL DEFAULT 0,
	forget_at      INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX login_counters_forget ON login_counters (forget_at);
CREATE INDEX login_counters_worth ON login_counters (failures, last_failure);

-- The second step of a login (password right, code not yet): the browser holds the token, the
-- row its SHA-256, the user, when it expires and how many codes it still accepts.
CREATE TABLE pending_logins (
	token_hash BLOB PRIMARY KEY,
	user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	expires_at INTEGER NOT NULL,
	codes_left INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX pending_logins_expires ON pending_logins (expires_at);

-- Token buckets shared by every instance (the password re-check budget per user), each kept as
-- the time its bucket is full again (GCRA): a full bucket has no row worth keeping.
CREATE TABLE rate_buckets (
	key     TEXT PRIMARY KEY,
	full_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX rate_buckets_full ON rate_buckets (full_at);
