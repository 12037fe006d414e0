-- Signed checkpoints of the event log (docs/audit.md). A checkpoint's
-- evidence is its files in the checkpoint directory and the copies posted
-- to the webhooks, outside this database; a row here records that it was
-- taken (for GET /api/v1/audit/checkpoints and the scheduler) and is the
-- outbox message that posts it: `body` is the exact JSON posted (and
-- HMAC-signed), `fanned_out` whether its deliveries were made. The columns
-- the delivery worker reads are those of alert_outbox.
CREATE TABLE audit_checkpoints
(
    id          text PRIMARY KEY,
    taken_at    timestamptz NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('daily', 'on_demand')),
    -- The local date of a daily checkpoint: one per day (index below).
    day         date,
    position    bigint      NOT NULL,
    events      bigint      NOT NULL,
    streams     bigint      NOT NULL,
    merkle_root text        NOT NULL,
    key_id      text        NOT NULL,
    file        text        NOT NULL,
    body        text        NOT NULL,
    fanned_out  boolean     NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'daily') = (day IS NOT NULL))
);
CREATE UNIQUE INDEX audit_checkpoints_daily ON audit_checkpoints (day) WHERE kind = 'daily';
CREATE INDEX audit_checkpoints_pending ON audit_checkpoints (id) WHERE NOT fanned_out;

-- Kept like the logs: only `fanned_out` may change.
CREATE FUNCTION nuanxin_audit_checkpoints_kept() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    IF TG_OP = 'UPDATE' AND (to_jsonb(NEW) - 'fanned_out') = (to_jsonb(OLD) - 'fanned_out') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'signed checkpoints are kept: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_checkpoints_kept
    BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION nuanxin_audit_checkpoints_kept();

CREATE TRIGGER audit_checkpoints_no_truncate
    BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION nuanxin_audit_checkpoints_kept();

-- One checkpoint message to one URL, retried until delivered (at least
-- once), and every attempt: the shapes of alert_deliveries and
-- alert_delivery_attempts.
CREATE TABLE audit_checkpoint_deliveries
(
    id              text PRIMARY KEY,
    outbox_id       text   NOT NULL REFERENCES audit_checkpoints (id),
    url             text   NOT NULL,
    status          text   NOT NULL CHECK (status IN ('pending', 'delivered')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_ms bigint NOT NULL,
    delivered_at    timestamptz,
    UNIQUE (outbox_id, url)
);
CREATE INDEX audit_checkpoint_deliveries_due ON audit_checkpoint_deliveries (next_attempt_ms)
    WHERE status = 'pending';

CREATE TABLE audit_checkpoint_delivery_attempts
(
    delivery_id text        NOT NULL REFERENCES audit_checkpoint_deliveries (id),
    attempt     integer     NOT NULL,
    at          timestamptz NOT NULL,
    status_code integer,
    error       text,
    PRIMARY KEY (delivery_id, attempt)
);
