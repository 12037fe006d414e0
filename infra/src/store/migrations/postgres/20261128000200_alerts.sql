-- Overdue-visit alerts. Unlike the read models these rows are records of
-- their own (raised, escalated, acknowledged with a note, delivered), so a
-- read-model rebuild leaves them alone. Duplicates are impossible by
-- construction: one alert per (family, role, due date), raised with
-- INSERT … ON CONFLICT DO NOTHING; escalations are conditional UPDATEs.
CREATE TABLE alerts
(
    id              text PRIMARY KEY,
    family_id       text    NOT NULL,
    role            text    NOT NULL,
    due_on          date    NOT NULL,
    village_code    text COLLATE "C" NOT NULL,
    contact_id      text    NOT NULL,
    contact_name    text    NOT NULL,
    raised_on       date    NOT NULL,
    -- 0 = the responsible contact / village, 1 = township, 2 = county,
    -- 3 = city, 4 = province.
    level           integer NOT NULL DEFAULT 0 CHECK (level BETWEEN 0 AND 4),
    escalated_on    date,
    status          text    NOT NULL CHECK (status IN ('open', 'acknowledged', 'resolved')),
    resolved_on     date,
    acknowledged_by text,
    acknowledged_at timestamptz,
    ack_note        text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (family_id, role, due_on)
);
CREATE INDEX alerts_status ON alerts (status, id);
CREATE INDEX alerts_village ON alerts (village_code, id);

-- The days a scan has run for: the daily scheduler scans a day only once.
CREATE TABLE alert_scans
(
    day        date PRIMARY KEY,
    runs       integer     NOT NULL DEFAULT 1,
    first_at   timestamptz NOT NULL DEFAULT now(),
    last_at    timestamptz NOT NULL DEFAULT now()
);

-- One row every scan updates first: scans (of any day, from any process)
-- run one after the other.
CREATE TABLE alert_scan_lock
(
    id    integer PRIMARY KEY CHECK (id = 1),
    scans bigint NOT NULL
);
INSERT INTO alert_scan_lock (id, scans) VALUES (1, 0);

-- The outbox: one message per raise / escalation / reopening, written in
-- the transaction that changed the alert. `body` is the exact JSON posted
-- (and signed). The delivery worker fans each message out to the configured
-- webhook URLs.
CREATE TABLE alert_outbox
(
    id         text PRIMARY KEY,
    alert_id   text        NOT NULL REFERENCES alerts (id),
    kind       text        NOT NULL CHECK (kind IN ('raised', 'escalated', 'reopened')),
    level      integer     NOT NULL,
    body       text        NOT NULL,
    fanned_out boolean     NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_outbox_alert ON alert_outbox (alert_id, created_at);
CREATE INDEX alert_outbox_pending ON alert_outbox (id) WHERE NOT fanned_out;

-- One message to one URL, retried until delivered (at-least-once).
CREATE TABLE alert_deliveries
(
    id              text PRIMARY KEY,
    outbox_id       text    NOT NULL REFERENCES alert_outbox (id),
    url             text    NOT NULL,
    status          text    NOT NULL CHECK (status IN ('pending', 'delivered')),
    attempts        integer NOT NULL DEFAULT 0,
    -- Unix milliseconds: when the next attempt is due (or the lease of the
    -- attempt in flight ends).
    next_attempt_ms bigint  NOT NULL,
    delivered_at    timestamptz,
    UNIQUE (outbox_id, url)
);
CREATE INDEX alert_deliveries_due ON alert_deliveries (next_attempt_ms) WHERE status = 'pending';

-- Every attempt: the HTTP status, or the error when there was no answer.
CREATE TABLE alert_delivery_attempts
(
    delivery_id text        NOT NULL REFERENCES alert_deliveries (id),
    attempt     integer     NOT NULL,
    at          timestamptz NOT NULL,
    status_code integer,
    error       text,
    PRIMARY KEY (delivery_id, attempt)
);
