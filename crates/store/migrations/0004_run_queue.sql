-- The run queue (SPEC §5, §6, §10). Uploaded files live in the database, so that every node
-- can read them, in chunks, so that neither an upload nor a run holds a whole file in memory.
-- `BLOB` is written `BYTEA` for PostgreSQL when the migration runs.
CREATE TABLE run_file_chunks (
    run_id TEXT NOT NULL REFERENCES sync_runs (id),
    seq    BIGINT NOT NULL,
    data   BLOB NOT NULL,
    PRIMARY KEY (run_id, seq)
);
INSERT INTO run_file_chunks (run_id, seq, data) SELECT run_id, 0, content FROM run_files;
DROP TABLE run_files;

-- The size of the stored file, and whether it is still kept (NULL: no file, or purged).
ALTER TABLE sync_runs ADD COLUMN file_size BIGINT;
-- A queued run taken by a worker: which node holds it, and until when (it renews the lease
-- while it works; a run whose lease ran out is queued again).
ALTER TABLE sync_runs ADD COLUMN claimed_by TEXT;
ALTER TABLE sync_runs ADD COLUMN lease_until BIGINT;
UPDATE sync_runs SET file_size = (SELECT SUM(LENGTH(c.data)) FROM run_file_chunks c WHERE c.run_id = sync_runs.id);

CREATE INDEX sync_runs_queue ON sync_runs (status, queued_at);
CREATE INDEX sync_runs_config_status ON sync_runs (config_id, status);
