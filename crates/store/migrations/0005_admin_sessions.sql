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

-- The User Provisioning page: its runs (Bulk Update runs live on their own page) newest first,
-- and by configuration and by status. Partial indexes, so that counting a filter's runs reads
-- only the index; queries spell the condition exactly as here, so both databases use them.
-- They replace the plain (org_id, queued_at) index, which SQLite's planner would otherwise pick
-- and then read every run's row to check its trigger.
DROP INDEX sync_runs_org_queued;
CREATE INDEX sync_runs_page ON sync_runs (org_id, queued_at) WHERE trigger_kind <> 'bulk';
CREATE INDEX sync_runs_page_config ON sync_runs (org_id, config_id, queued_at) WHERE trigger_kind <> 'bulk';
CREATE INDEX sync_runs_page_status ON sync_runs (org_id, status, queued_at) WHERE trigger_kind <> 'bulk';
