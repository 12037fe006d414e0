-- The event log. Column names and types that postgres-es reads and writes
-- (aggregate_type … metadata) are kept; the extra columns have defaults, so
-- the crate's INSERT, which names only its own columns, fills them.
CREATE TABLE events
(
    position       bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    event_id       uuid        NOT NULL DEFAULT gen_random_uuid() UNIQUE,
    aggregate_type text        NOT NULL,
    aggregate_id   text        NOT NULL,
    sequence       bigint      NOT NULL CHECK (sequence >= 0),
    event_type     text        NOT NULL,
    event_version  text        NOT NULL,
    payload        jsonb       NOT NULL,
    metadata       jsonb       NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    -- The writing transaction's id. Projections read only events of
    -- transactions older than the oldest one still running, in (tx_id,
    -- position) order, so an event committed late is never skipped.
    tx_id          bigint      NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);
CREATE INDEX events_tx_position ON events (tx_id, position);

-- One action per (user, idempotency key): a retried request finds its first
-- answer here, and two racing retries cannot both append.
CREATE UNIQUE INDEX events_idempotency
    ON events ((metadata ->> 'recorded_by_id'), (metadata ->> 'idempotency_key'))
    WHERE metadata ? 'idempotency_key';

-- The log is append-only in the database itself.
CREATE FUNCTION nuanxin_events_append_only() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    RAISE EXCEPTION 'events are append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER events_no_update_delete
    BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION nuanxin_events_append_only();

CREATE TRIGGER events_no_truncate
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION nuanxin_events_append_only();

-- Used by postgres-es only if snapshots are turned on.
CREATE TABLE snapshots
(
    aggregate_type   text   NOT NULL,
    aggregate_id     text   NOT NULL,
    last_sequence    bigint NOT NULL CHECK (last_sequence >= 0),
    current_snapshot bigint NOT NULL CHECK (current_snapshot >= 0),
    payload          jsonb  NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, last_sequence)
);

CREATE TABLE users
(
    id         text PRIMARY KEY,
    name       text        NOT NULL,
    role       text        NOT NULL CHECK (role IN ('caseworker', 'supervisor', 'admin')),
    scope      text        NOT NULL,
    token_hash text        NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);
