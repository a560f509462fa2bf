-- Two-factor login with TOTP.
--
-- user_totp has one row per user who started or finished enrolment. The seed is sealed with the
-- master key (context user/<id>/totp_seed); enabled_at stays NULL until the user confirmed a code
-- from their app, so an unconfirmed row is only a pending enrolment. last_step is the newest
-- 30-second step whose code was accepted: a code is never accepted twice (replay).
CREATE TABLE user_totp (
	user_id    INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
	sealed     TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	enabled_at INTEGER,
	last_step  INTEGER NOT NULL DEFAULT 0
);

-- Recovery codes, each stored as SHA-256 of the user id and the code, usable once.
CREATE TABLE recovery_codes (
	user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	hash    BLOB NOT NULL,
	used_at INTEGER,
	PRIMARY KEY (user_id, hash)
) WITHOUT ROWID;
