-- Users deleted through SCIM hold none of their values against anyone (issue 16, SPEC §3): their
-- unique columns are emptied (the normalised username becomes one no name can have: it
-- starts with a tab), and the values a return is matched by are kept here, for the
-- configuration's next record of the same person to bring the same account back.
CREATE TABLE deleted_user_keys (
    org_id  TEXT NOT NULL,
    user_id TEXT NOT NULL,
    kind    TEXT NOT NULL,
    value   TEXT NOT NULL,
    PRIMARY KEY (org_id, value, kind, user_id)
);
CREATE INDEX deleted_user_keys_user ON deleted_user_keys (user_id);
INSERT INTO deleted_user_keys (org_id, user_id, kind, value)
    SELECT org_id, id, 'external_id', external_id FROM users WHERE scim_deleted = 1 AND external_id IS NOT NULL;
INSERT INTO deleted_user_keys (org_id, user_id, kind, value)
    SELECT org_id, id, 'username', username_norm FROM users WHERE scim_deleted = 1;
INSERT INTO deleted_user_keys (org_id, user_id, kind, value)
    SELECT org_id, id, 'email', email_norm FROM users WHERE scim_deleted = 1 AND email_norm IS NOT NULL;
UPDATE users SET external_id = NULL, employee_id = NULL, email_norm = NULL, phone_mobile_e164 = NULL,
    username_norm = '	deleted ' || id WHERE scim_deleted = 1;
