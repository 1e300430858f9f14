-- How many times a worker has taken a run from the queue. A run that fails or whose process
-- stops is queued again; one taken too many times is ended as Data Load Failed instead of
-- holding up its configuration's later runs for ever.
ALTER TABLE sync_runs ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
