-- Bytes a large sync writes: a million-user first sync wrote 1.3 GB, twice (the write-ahead
-- log, then the database), and every index entry is also a B-tree insert.

-- Keys a user may lack are indexed only where present (uniqueness is unchanged: NULLs never
-- collided). An HR file that maps no employee ID wrote a million (org_id, NULL) entries.
DROP INDEX users_employee_id;
CREATE UNIQUE INDEX users_employee_id ON users (org_id, employee_id) WHERE employee_id IS NOT NULL;
DROP INDEX users_email;
CREATE UNIQUE INDEX users_email ON users (email_norm) WHERE email_norm IS NOT NULL;
DROP INDEX users_phone_mobile;
CREATE UNIQUE INDEX users_phone_mobile ON users (phone_mobile_e164) WHERE phone_mobile_e164 IS NOT NULL;
DROP INDEX users_external_id;
CREATE UNIQUE INDEX users_external_id ON users (org_id, external_id) WHERE external_id IS NOT NULL;

-- begin: SQLite only
-- Log rows are read only by run, in order: clustered on (run_id, seq) they are one B-tree
-- instead of a table plus an index repeating the run id (PostgreSQL keeps its heap and index).
CREATE TABLE sync_log_rows_clustered (
    run_id          TEXT NOT NULL REFERENCES sync_runs (id),
    seq             BIGINT NOT NULL,
    row_num         BIGINT,
    external_id     TEXT NOT NULL,
    username        TEXT NOT NULL,
    action          TEXT NOT NULL,
    error_type      TEXT NOT NULL,
    message         TEXT NOT NULL,
    additional_data TEXT NOT NULL,
    changed_fields  TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
INSERT INTO sync_log_rows_clustered (run_id, seq, row_num, external_id, username, action,
    error_type, message, additional_data, changed_fields)
    SELECT run_id, seq, row_num, external_id, username, action, error_type, message,
        additional_data, changed_fields
    FROM sync_log_rows;
DROP TABLE sync_log_rows;
ALTER TABLE sync_log_rows_clustered RENAME TO sync_log_rows;
-- end: SQLite only
