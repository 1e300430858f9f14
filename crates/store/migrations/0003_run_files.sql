-- The file a run read, kept when the run is blocked by the deactivation threshold so that the
-- operator's approval applies exactly that file (SPEC §4). `BLOB` is written `BYTEA` for
-- PostgreSQL when the migration runs.
CREATE TABLE run_files (
    run_id    TEXT PRIMARY KEY REFERENCES sync_runs (id),
    file_name TEXT NOT NULL,
    content   BLOB NOT NULL
);
