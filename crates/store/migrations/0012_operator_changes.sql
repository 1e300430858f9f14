-- What operators changed after setting a customer up (issue 17): who, when, what. `changes`
-- is a JSON object of field → [before, after] (secrets are recorded as changed, never kept).
CREATE TABLE operator_changes (
    id         TEXT PRIMARY KEY,
    org_id     TEXT NOT NULL REFERENCES organisations (id),
    by_whom    TEXT NOT NULL,
    at         BIGINT NOT NULL,
    subject    TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    action     TEXT NOT NULL,
    changes    TEXT NOT NULL
);
CREATE INDEX operator_changes_org ON operator_changes (org_id, at);

-- A disabled admin cannot sign in; disabling one ends their sessions.
ALTER TABLE admins ADD COLUMN disabled_at BIGINT;
