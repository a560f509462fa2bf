-- Cohort changes check only what they touch, and a deleted cohort can be restored.
--
-- Every cohort keeps the rollout version at which it last changed (version), and meta
-- 'rollout.cohort_order_version' the version at which the order or the set of cohorts last
-- changed: a change made against version V is refused only when the cohort it edits (or, for a
-- reorder, the order) changed after V. The rollout's own version still moves with every change,
-- so decisions and ETags follow each one.
--
-- A deleted cohort is kept with its members for 7 days, so that the deletion can be undone with
-- its name, environment, rules, members and place.
ALTER TABLE cohorts ADD COLUMN version INTEGER NOT NULL DEFAULT 0;

CREATE TABLE deleted_cohorts (
	id         INTEGER PRIMARY KEY,
	cohort_id  INTEGER NOT NULL,           -- the id it had
	name       TEXT NOT NULL,
	env        TEXT NOT NULL,
	position   INTEGER NOT NULL,
	kind       TEXT NOT NULL,
	match      TEXT NOT NULL,
	rules      TEXT NOT NULL,
	size       INTEGER NOT NULL,
	created_at INTEGER NOT NULL,
	deleted_at INTEGER NOT NULL,
	deleted_by TEXT NOT NULL
);
CREATE INDEX deleted_cohorts_deleted_at ON deleted_cohorts (deleted_at);

CREATE TABLE deleted_cohort_members (
	deletion_id INTEGER NOT NULL REFERENCES deleted_cohorts (id) ON DELETE CASCADE,
	user_id     TEXT NOT NULL,
	PRIMARY KEY (deletion_id, user_id)
) WITHOUT ROWID;
