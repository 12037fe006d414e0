-- `state` is a snapshot: the case folded to `snapshot_version` (NULL: to
-- `version`). The command path rewrites it every few versions, not on every
-- command; readers fold the events after it (a handful) onto it.
ALTER TABLE case_files ADD COLUMN snapshot_version bigint;
