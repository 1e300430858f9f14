-- Operator credentials for the admin API's operator calls (approving a run the deactivation
-- threshold blocked). Only a SHA-256 of each token is stored.
CREATE TABLE operator_tokens (
    digest       TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    revoked_at   BIGINT,
    last_used_at BIGINT
);
