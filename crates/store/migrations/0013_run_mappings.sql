-- The mapping each file run read with (issue 17): the run names it by the SHA-256 of its
-- stored form, and each distinct mapping is kept once, for `rollcall runs show`.
CREATE TABLE mappings (
    digest  TEXT PRIMARY KEY,
    mapping TEXT NOT NULL
);
ALTER TABLE sync_runs ADD COLUMN mapping_digest TEXT;
