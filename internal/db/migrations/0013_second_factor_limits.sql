-- Wrong second-factor codes per account (issue 18), kept in the database so that the limit holds
-- across sign-ins, addresses and instances. failures counts codes taken since the last right code
-- or lock (taken before the check, so parallel guesses cannot pass the limit); locked_until (Unix
-- ms) ends the current lock; lockouts counts locks since the last right code, so each lasts longer.
CREATE TABLE second_factor_limits (
	user_id      INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
	failures     INTEGER NOT NULL DEFAULT 0,
	lockouts     INTEGER NOT NULL DEFAULT 0,
	locked_until INTEGER NOT NULL DEFAULT 0
);
