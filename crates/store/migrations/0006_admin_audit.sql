-- What admins changed by hand in the admin panel: who, when, which user, which fields.
CREATE TABLE admin_audit (
    id             TEXT PRIMARY KEY,
    org_id         TEXT NOT NULL REFERENCES organisations (id),
    admin_id       TEXT NOT NULL REFERENCES admins (id),
    user_id        TEXT NOT NULL,
    action         TEXT NOT NULL,
    changed_fields TEXT NOT NULL,
    at             BIGINT NOT NULL
);
CREATE INDEX admin_audit_user ON admin_audit (org_id, user_id, at);
