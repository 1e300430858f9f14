-- What a run's page, the API and the CLI say beyond its status (issue 18):
-- threshold_hit: the deactivation threshold (as configured then, `10` or `5%`) that blocked
--   the run or, for a dry run, that a real run would have hit;
-- approved_by / approved_at: who approved a blocked run and when; its duration counts from
--   the approval;
-- failed: records that failed, counted apart from those skipped (until now `skipped` held
--   both); completed runs are split from their log.
ALTER TABLE sync_runs ADD COLUMN threshold_hit TEXT;
ALTER TABLE sync_runs ADD COLUMN approved_by TEXT;
ALTER TABLE sync_runs ADD COLUMN approved_at BIGINT;
ALTER TABLE sync_runs ADD COLUMN failed BIGINT NOT NULL DEFAULT 0;
UPDATE sync_runs SET failed = (
    SELECT COUNT(*) FROM sync_log_rows l WHERE l.run_id = sync_runs.id AND l.action = 'Failed'
) WHERE status IN ('success', 'needs_attention', 'above_deactivation_threshold');
UPDATE sync_runs SET skipped = skipped - failed WHERE failed > 0 AND skipped >= failed;
