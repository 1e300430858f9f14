-- rollcall schema, version 1. The same SQL runs on SQLite and PostgreSQL: TEXT and BIGINT
-- only (booleans are 0/1), timestamps are Unix milliseconds (UTC).

CREATE TABLE organisations (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    provisioning BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL
);
CREATE UNIQUE INDEX organisations_name ON organisations (name);

CREATE TABLE source_configs (
    id                     TEXT PRIMARY KEY,
    org_id                 TEXT NOT NULL REFERENCES organisations (id),
    name                   TEXT NOT NULL,
    kind                   TEXT NOT NULL,
    mode                   TEXT NOT NULL,
    mapping                TEXT,
    deactivation_threshold TEXT,
    notify_email           TEXT,
    phone_region           TEXT,
    sftp_user              TEXT,
    sftp_password_hash     TEXT,
    sftp_keys              TEXT,
    created_at             BIGINT NOT NULL
);
CREATE UNIQUE INDEX source_configs_name ON source_configs (org_id, name);
CREATE UNIQUE INDEX source_configs_sftp_user ON source_configs (sftp_user);

CREATE TABLE scim_tokens (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES organisations (id),
    config_id    TEXT NOT NULL REFERENCES source_configs (id),
    digest       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);
CREATE UNIQUE INDEX scim_tokens_digest ON scim_tokens (digest);

CREATE TABLE admins (
    id            TEXT PRIMARY KEY,
    org_id        TEXT NOT NULL REFERENCES organisations (id),
    email         TEXT NOT NULL,
    email_norm    TEXT NOT NULL,
    role          TEXT NOT NULL,
    sync_access   BIGINT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX admins_email ON admins (email_norm);

CREATE TABLE users (
    id                       TEXT PRIMARY KEY,
    org_id                   TEXT NOT NULL REFERENCES organisations (id),
    external_id              TEXT,
    username                 TEXT NOT NULL,
    username_norm            TEXT NOT NULL,
    employee_id              TEXT,
    first_name               TEXT,
    second_name              TEXT,
    email                    TEXT,
    email_norm               TEXT,
    email_from_source        BIGINT NOT NULL,
    phone_mobile             TEXT,
    phone_mobile_e164        TEXT,
    phone_mobile_from_source BIGINT NOT NULL,
    phone_work               TEXT,
    phone_work_e164          TEXT,
    manager_id               TEXT,
    job_title                TEXT,
    location                 TEXT,
    department               TEXT,
    company                  TEXT,
    description              TEXT,
    active                   BIGINT NOT NULL,
    start_employment_date    TEXT,
    end_employment_date      TEXT,
    custom_fields            TEXT NOT NULL,
    managed_by               TEXT,
    scim_deleted             BIGINT NOT NULL,
    version                  BIGINT NOT NULL,
    created_at               BIGINT NOT NULL,
    updated_at               BIGINT NOT NULL
);
-- Uniqueness is enforced here as well as by the planner, so racing writers cannot both win.
CREATE UNIQUE INDEX users_external_id ON users (org_id, external_id);
CREATE UNIQUE INDEX users_username ON users (org_id, username_norm);
CREATE UNIQUE INDEX users_employee_id ON users (org_id, employee_id);
-- Email and mobile are unique across all organisations (SPEC §2).
CREATE UNIQUE INDEX users_email ON users (email_norm);
CREATE UNIQUE INDEX users_phone_mobile ON users (phone_mobile_e164);
CREATE INDEX users_managed_by ON users (org_id, managed_by);

CREATE TABLE sync_runs (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES organisations (id),
    config_id    TEXT NOT NULL REFERENCES source_configs (id),
    connector    TEXT NOT NULL,
    trigger_kind TEXT NOT NULL,
    file_name    TEXT,
    file_sha256  TEXT,
    status       TEXT NOT NULL,
    dry_run      BIGINT NOT NULL,
    queued_at    BIGINT NOT NULL,
    started_at   BIGINT,
    ended_at     BIGINT,
    created      BIGINT NOT NULL DEFAULT 0,
    updated      BIGINT NOT NULL DEFAULT 0,
    deactivated  BIGINT NOT NULL DEFAULT 0,
    reactivated  BIGINT NOT NULL DEFAULT 0,
    unchanged    BIGINT NOT NULL DEFAULT 0,
    skipped      BIGINT NOT NULL DEFAULT 0,
    warnings     BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX sync_runs_org_queued ON sync_runs (org_id, queued_at);

CREATE TABLE sync_log_rows (
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
);
