-- Inactive rows of people never provisioned (issue 16): counted apart from skipped rows,
-- since a full HR export with past leavers is no problem.
ALTER TABLE sync_runs ADD COLUMN ignored_inactive BIGINT NOT NULL DEFAULT 0;
