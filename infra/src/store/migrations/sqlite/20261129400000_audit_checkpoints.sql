-- Signed checkpoints of the event log (see the PostgreSQL migration for
-- the notes).
CREATE TABLE audit_checkpoints
(
    id          TEXT PRIMARY KEY,
    taken_at    TEXT    NOT NULL,
    kind        TEXT    NOT NULL CHECK (kind IN ('daily', 'on_demand')),
    day         TEXT,
    position    INTEGER NOT NULL,
    events      INTEGER NOT NULL,
    streams     INTEGER NOT NULL,
    merkle_root TEXT    NOT NULL,
    key_id      TEXT    NOT NULL,
    file        TEXT    NOT NULL,
    body        TEXT    NOT NULL,
    fanned_out  INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    CHECK ((kind = 'daily') = (day IS NOT NULL))
) STRICT;
CREATE UNIQUE INDEX audit_checkpoints_daily ON audit_checkpoints (day) WHERE kind = 'daily';
CREATE INDEX audit_checkpoints_pending ON audit_checkpoints (id) WHERE NOT fanned_out;

-- Kept like the logs: only `fanned_out` may change.
CREATE TRIGGER audit_checkpoints_no_update
    BEFORE UPDATE OF id, taken_at, kind, day, position, events, streams, merkle_root, key_id,
        file, body, created_at
    ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'signed checkpoints are kept: UPDATE is not allowed');
END;

CREATE TRIGGER audit_checkpoints_no_delete
    BEFORE DELETE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'signed checkpoints are kept: DELETE is not allowed');
END;

CREATE TABLE audit_checkpoint_deliveries
(
    id              TEXT PRIMARY KEY,
    outbox_id       TEXT    NOT NULL REFERENCES audit_checkpoints (id),
    url             TEXT    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'delivered')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    delivered_at    TEXT,
    UNIQUE (outbox_id, url)
) STRICT;
CREATE INDEX audit_checkpoint_deliveries_due ON audit_checkpoint_deliveries (next_attempt_ms)
    WHERE status = 'pending';

CREATE TABLE audit_checkpoint_delivery_attempts
(
    delivery_id TEXT    NOT NULL REFERENCES audit_checkpoint_deliveries (id),
    attempt     INTEGER NOT NULL,
    at          TEXT    NOT NULL,
    status_code INTEGER,
    error       TEXT,
    PRIMARY KEY (delivery_id, attempt)
) STRICT;
