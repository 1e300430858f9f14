-- SCIM activity is recorded as runs: one per SCIM configuration per clock hour with activity
-- (SPEC §6). `activity_hour` is the hour's start (Unix ms); the unique index makes concurrent
-- writers agree on one run per hour.
ALTER TABLE sync_runs ADD COLUMN activity_hour BIGINT;
CREATE UNIQUE INDEX sync_runs_activity_hour ON sync_runs (config_id, activity_hour);
-- SCIM lists the users it can see in a stable order across pages; the partial index lets a
-- page's count and offset be read from the index alone.
CREATE INDEX users_scim_page ON users (org_id, created_at, id) WHERE scim_deleted = 0;
