-- A shard-ready event log (docs/scaling.md).
--
-- Hash partitioning (and Citus) distribute a table on one column and
-- demand that every unique key include it. The log distributes on the
-- family (`aggregate_id`): its primary key (aggregate_type, aggregate_id,
-- sequence) already does; `position` and `event_id` become plain or
-- family-qualified indexes (the sequence behind `position` and UUIDv7 keep
-- them unique); and the idempotency keys, which are unique per (user, key)
-- across families — a retried registration has no family id yet — move to
-- a table of their own, written in the same statement as the event.

CREATE TABLE idempotency_keys
(
    user_id        text   NOT NULL,
    key            text   NOT NULL,
    aggregate_type text   NOT NULL,
    aggregate_id   text   NOT NULL,
    sequence       bigint NOT NULL,
    PRIMARY KEY (user_id, key)
);

INSERT INTO idempotency_keys (user_id, key, aggregate_type, aggregate_id, sequence)
SELECT metadata ->> 'recorded_by_id', metadata ->> 'idempotency_key', aggregate_type,
       aggregate_id, sequence
FROM events
WHERE metadata ? 'idempotency_key';

DROP INDEX events_idempotency;
ALTER TABLE events DROP CONSTRAINT events_position_key;
CREATE INDEX events_position ON events (position);
ALTER TABLE events DROP CONSTRAINT events_event_id_key;
CREATE UNIQUE INDEX events_event_id ON events (aggregate_id, event_id);

-- A new store can have its log hash-partitioned on the family from the
-- start: connect with `nuanxin.partition_events` set (NUANXIN_PARTITION_EVENTS
-- does that) when it is first migrated. An existing log is left as it is.
DO
$$
DECLARE
    partitions int := coalesce(nullif(current_setting('nuanxin.partition_events', true), ''), '0')::int;
BEGIN
    IF partitions < 1 OR EXISTS (SELECT 1 FROM events) THEN
        RETURN;
    END IF;
    DROP TABLE events;
    -- Identity columns on partitioned tables need PostgreSQL 17: a sequence.
    CREATE SEQUENCE events_position_seq;
    CREATE TABLE events
    (
        position       bigint      NOT NULL DEFAULT nextval('events_position_seq'),
        event_id       uuid        NOT NULL DEFAULT gen_random_uuid(),
        aggregate_type text        NOT NULL,
        aggregate_id   text        NOT NULL,
        sequence       bigint      NOT NULL CHECK (sequence >= 0),
        event_type     text        NOT NULL,
        event_version  text        NOT NULL,
        payload        jsonb       NOT NULL,
        metadata       jsonb       NOT NULL,
        recorded_at    timestamptz NOT NULL DEFAULT now(),
        tx_id          bigint      NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
        PRIMARY KEY (aggregate_type, aggregate_id, sequence)
    ) PARTITION BY HASH (aggregate_id);
    ALTER SEQUENCE events_position_seq OWNED BY events.position;
    FOR i IN 0 .. partitions - 1 LOOP
        EXECUTE format('CREATE TABLE events_p%s PARTITION OF events FOR VALUES WITH (MODULUS %s, REMAINDER %s)',
                       i, partitions, i);
    END LOOP;
    CREATE INDEX events_tx_position ON events (tx_id, position);
    CREATE INDEX events_position ON events (position);
    CREATE UNIQUE INDEX events_event_id ON events (aggregate_id, event_id);
    CREATE TRIGGER events_no_update_delete
        BEFORE UPDATE OR DELETE ON events
        FOR EACH ROW EXECUTE FUNCTION nuanxin_events_append_only();
    CREATE TRIGGER events_no_truncate
        BEFORE TRUNCATE ON events
        FOR EACH STATEMENT EXECUTE FUNCTION nuanxin_events_append_only();
    CREATE TRIGGER events_notify
        AFTER INSERT ON events
        FOR EACH STATEMENT EXECUTE FUNCTION nuanxin_notify_events();
END
$$;
