-- Configurations that are switched off or gone (issue 17). A disabled configuration starts no
-- run from any source; a deleted one keeps its row for the runs that name it, and its name is
-- free for a new configuration.
ALTER TABLE source_configs ADD COLUMN disabled_at BIGINT;
ALTER TABLE source_configs ADD COLUMN deleted_at BIGINT;
DROP INDEX source_configs_name;
CREATE UNIQUE INDEX source_configs_name ON source_configs (org_id, name) WHERE deleted_at IS NULL;
