-- Group activities and supervision inspections: their read models, and the
-- inspection alerts (see the PostgreSQL migration for the notes).
CREATE TABLE activities
(
    activity_id         TEXT PRIMARY KEY,
    version             INTEGER NOT NULL,
    village_code_prefix TEXT    NOT NULL,
    kind                TEXT    NOT NULL,
    title               TEXT    NOT NULL,
    held_on             TEXT    NOT NULL,
    organiser           TEXT    NOT NULL,
    families            INTEGER NOT NULL
) STRICT;
CREATE INDEX activities_place ON activities (village_code_prefix, held_on);
CREATE INDEX activities_held ON activities (held_on, activity_id);

CREATE TABLE activity_attendance
(
    activity_id TEXT NOT NULL,
    family_id   TEXT NOT NULL,
    held_on     TEXT NOT NULL,
    PRIMARY KEY (activity_id, family_id)
) STRICT;
CREATE INDEX activity_attendance_family ON activity_attendance (family_id, held_on);

CREATE TABLE inspections
(
    inspection_id TEXT PRIMARY KEY,
    version       INTEGER NOT NULL,
    jurisdiction  TEXT    NOT NULL,
    inspected_by  TEXT    NOT NULL,
    held_on       TEXT    NOT NULL,
    counts        INTEGER NOT NULL,
    state         TEXT    NOT NULL
) STRICT;
CREATE INDEX inspections_by ON inspections (inspected_by, held_on);
CREATE INDEX inspections_jurisdiction ON inspections (jurisdiction, held_on);

CREATE TABLE inspection_alerts
(
    id           TEXT PRIMARY KEY,
    jurisdiction TEXT    NOT NULL,
    level        TEXT    NOT NULL CHECK (level IN ('city', 'county')),
    year         INTEGER NOT NULL,
    required     INTEGER NOT NULL,
    expected     INTEGER NOT NULL,
    held         INTEGER NOT NULL,
    checked_on   TEXT    NOT NULL,
    raised_on    TEXT    NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('open', 'resolved')),
    resolved_on  TEXT,
    created_at   TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (jurisdiction, year)
) STRICT;
CREATE INDEX inspection_alerts_status ON inspection_alerts (status, id);

-- The outbox carries both kinds of alert, so its `alert_id` can no longer
-- reference `alerts`. SQLite cannot drop a constraint: the outbox and the
-- two tables that reference it are made again and their rows copied
-- (children dropped before parents, so no foreign key is ever left
-- dangling; renaming a table rewrites the references to it).
CREATE TABLE alert_outbox_v2
(
    id         TEXT PRIMARY KEY,
    alert_id   TEXT    NOT NULL,
    alert_kind TEXT    NOT NULL DEFAULT 'overdue_visit'
        CHECK (alert_kind IN ('overdue_visit', 'inspections_behind')),
    kind       TEXT    NOT NULL CHECK (kind IN ('raised', 'escalated', 'reopened')),
    level      INTEGER NOT NULL,
    body       TEXT    NOT NULL,
    fanned_out INTEGER NOT NULL DEFAULT 0,
    created_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;
INSERT INTO alert_outbox_v2 (id, alert_id, kind, level, body, fanned_out, created_at)
SELECT id, alert_id, kind, level, body, fanned_out, created_at FROM alert_outbox;

CREATE TABLE alert_deliveries_v2
(
    id              TEXT PRIMARY KEY,
    outbox_id       TEXT    NOT NULL REFERENCES alert_outbox_v2 (id),
    url             TEXT    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'delivered')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    delivered_at    TEXT,
    UNIQUE (outbox_id, url)
) STRICT;
INSERT INTO alert_deliveries_v2 (id, outbox_id, url, status, attempts, next_attempt_ms, delivered_at)
SELECT id, outbox_id, url, status, attempts, next_attempt_ms, delivered_at FROM alert_deliveries;

CREATE TABLE alert_delivery_attempts_v2
(
    delivery_id TEXT    NOT NULL REFERENCES alert_deliveries_v2 (id),
    attempt     INTEGER NOT NULL,
    at          TEXT    NOT NULL,
    status_code INTEGER,
    error       TEXT,
    PRIMARY KEY (delivery_id, attempt)
) STRICT;
INSERT INTO alert_delivery_attempts_v2 (delivery_id, attempt, at, status_code, error)
SELECT delivery_id, attempt, at, status_code, error FROM alert_delivery_attempts;

DROP TABLE alert_delivery_attempts;
DROP TABLE alert_deliveries;
DROP TABLE alert_outbox;
ALTER TABLE alert_outbox_v2 RENAME TO alert_outbox;
ALTER TABLE alert_deliveries_v2 RENAME TO alert_deliveries;
ALTER TABLE alert_delivery_attempts_v2 RENAME TO alert_delivery_attempts;
CREATE INDEX alert_outbox_alert ON alert_outbox (alert_id, created_at);
CREATE INDEX alert_outbox_pending ON alert_outbox (id) WHERE NOT fanned_out;
CREATE INDEX alert_deliveries_due ON alert_deliveries (next_attempt_ms) WHERE status = 'pending';
