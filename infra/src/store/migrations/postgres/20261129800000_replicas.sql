-- Several servers on one database.
--
-- The visit policy in force has a version; the read models record which
-- version each family's rows were computed with, so that one recompute
-- (by the leading server) can find and redo the families still on an
-- older one — including rows another server wrote before it adopted the
-- new policy — until none is left, and then mark the version applied.
ALTER TABLE policy_state ADD COLUMN version bigint NOT NULL DEFAULT 1;
ALTER TABLE policy_state ADD COLUMN applied bigint NOT NULL DEFAULT 1;
-- Rows written before this migration were computed with the stored policy,
-- which becomes version 1.
ALTER TABLE case_files ADD COLUMN policy_version bigint NOT NULL DEFAULT 1;
-- The leader looks for rows on an older policy every few seconds: an index
-- probe that finds nothing when there is nothing to do.
CREATE INDEX case_files_policy_version ON case_files (policy_version);

-- The webhook configuration every server of this database must share:
-- the URLs and a fingerprint of the signing secret (never the secret).
CREATE TABLE webhook_config
(
    id          integer PRIMARY KEY CHECK (id = 1),
    urls        text NOT NULL,
    secret_hash text NOT NULL,
    set_at      timestamptz NOT NULL DEFAULT now()
);
