-- Runs an admin started by hand (Bulk Update): each user such a run writes is audited in the
-- admin's name, in the run's own transaction.
CREATE TABLE admin_runs (
    run_id       TEXT PRIMARY KEY REFERENCES sync_runs (id),
    admin_id     TEXT NOT NULL REFERENCES admins (id),
    audit_action TEXT NOT NULL
);
