-- Admin panel sign-in sessions. The cookie holds a 256-bit random token; only its SHA-256 is
-- stored, so a copy of the database does not let anyone sign in.
CREATE TABLE admin_sessions (
    digest       TEXT PRIMARY KEY,
    admin_id     TEXT NOT NULL REFERENCES admins (id),
    csrf         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL
);
CREATE INDEX admin_sessions_admin ON admin_sessions (admin_id);

-- The User Provisioning page's filters: by configuration and by status, newest first.
CREATE INDEX sync_runs_org_config_queued ON sync_runs (org_id, config_id, queued_at);
CREATE INDEX sync_runs_org_status_queued ON sync_runs (org_id, status, queued_at);
