-- Overdue-visit alerts (see the PostgreSQL migration for the notes).
CREATE TABLE alerts
(
    id              TEXT PRIMARY KEY,
    family_id       TEXT    NOT NULL,
    role            TEXT    NOT NULL,
    due_on          TEXT    NOT NULL,
    village_code    TEXT    NOT NULL,
    contact_id      TEXT    NOT NULL,
    contact_name    TEXT    NOT NULL,
    raised_on       TEXT    NOT NULL,
    level           INTEGER NOT NULL DEFAULT 0 CHECK (level BETWEEN 0 AND 4),
    escalated_on    TEXT,
    status          TEXT    NOT NULL CHECK (status IN ('open', 'acknowledged', 'resolved')),
    resolved_on     TEXT,
    acknowledged_by TEXT,
    acknowledged_at TEXT,
    ack_note        TEXT,
    created_at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (family_id, role, due_on)
) STRICT;
CREATE INDEX alerts_status ON alerts (status, id);
CREATE INDEX alerts_village ON alerts (village_code, id);

CREATE TABLE alert_scans
(
    day      TEXT PRIMARY KEY,
    runs     INTEGER NOT NULL DEFAULT 1,
    first_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    last_at  TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;

CREATE TABLE alert_scan_lock
(
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    scans INTEGER NOT NULL
) STRICT;
INSERT INTO alert_scan_lock (id, scans) VALUES (1, 0);

CREATE TABLE alert_outbox
(
    id         TEXT PRIMARY KEY,
    alert_id   TEXT    NOT NULL REFERENCES alerts (id),
    kind       TEXT    NOT NULL CHECK (kind IN ('raised', 'escalated', 'reopened')),
    level      INTEGER NOT NULL,
    body       TEXT    NOT NULL,
    fanned_out INTEGER NOT NULL DEFAULT 0,
    created_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;
CREATE INDEX alert_outbox_alert ON alert_outbox (alert_id, created_at);
CREATE INDEX alert_outbox_pending ON alert_outbox (id) WHERE NOT fanned_out;

CREATE TABLE alert_deliveries
(
    id              TEXT PRIMARY KEY,
    outbox_id       TEXT    NOT NULL REFERENCES alert_outbox (id),
    url             TEXT    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'delivered')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    delivered_at    TEXT,
    UNIQUE (outbox_id, url)
) STRICT;
CREATE INDEX alert_deliveries_due ON alert_deliveries (next_attempt_ms) WHERE status = 'pending';

CREATE TABLE alert_delivery_attempts
(
    delivery_id TEXT    NOT NULL REFERENCES alert_deliveries (id),
    attempt     INTEGER NOT NULL,
    at          TEXT    NOT NULL,
    status_code INTEGER,
    error       TEXT,
    PRIMARY KEY (delivery_id, attempt)
) STRICT;
