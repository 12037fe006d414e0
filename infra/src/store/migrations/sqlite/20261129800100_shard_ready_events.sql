-- The same shape as the PostgreSQL store's shard-ready log: idempotency
-- keys, unique per (user, key) across families, live in a table of their
-- own written in the same transaction as the event.
CREATE TABLE idempotency_keys
(
    user_id        TEXT    NOT NULL,
    key            TEXT    NOT NULL,
    aggregate_type TEXT    NOT NULL,
    aggregate_id   TEXT    NOT NULL,
    sequence       INTEGER NOT NULL,
    PRIMARY KEY (user_id, key)
) STRICT;

INSERT INTO idempotency_keys (user_id, key, aggregate_type, aggregate_id, sequence)
SELECT json_extract(metadata, '$.recorded_by_id'), json_extract(metadata, '$.idempotency_key'),
       aggregate_type, aggregate_id, sequence
FROM events
WHERE json_extract(metadata, '$.idempotency_key') IS NOT NULL;

DROP INDEX events_idempotency;
