-- Group activities and supervision inspections have streams of their own
-- in `events` (aggregate_type 'Activity' / 'Inspection'). These tables are
-- their read models, written in the same transaction as their events (and
-- rebuilt from the log by `projections rebuild`).

-- One row per activity.
CREATE TABLE activities
(
    activity_id         text PRIMARY KEY,
    version             bigint NOT NULL,
    -- Where it was held: a county, township or village code.
    village_code_prefix text COLLATE "C" NOT NULL,
    kind                text   NOT NULL,
    title               text   NOT NULL,
    held_on             date   NOT NULL,
    organiser           text   NOT NULL,
    -- Families attending (in any scope).
    families            bigint NOT NULL
);
CREATE INDEX activities_place ON activities (village_code_prefix, held_on);
CREATE INDEX activities_held ON activities (held_on, activity_id);

-- One row per activity and family attending: "last activity attended" and
-- the isolation list read it by family.
CREATE TABLE activity_attendance
(
    activity_id text NOT NULL,
    family_id   text NOT NULL,
    held_on     date NOT NULL,
    PRIMARY KEY (activity_id, family_id)
);
CREATE INDEX activity_attendance_family ON activity_attendance (family_id, held_on);

-- One row per inspection; `state` is the folded inspection (JSON).
CREATE TABLE inspections
(
    inspection_id text PRIMARY KEY,
    version       bigint  NOT NULL,
    -- The jurisdiction inspected, and the association that held it.
    jurisdiction  text COLLATE "C" NOT NULL,
    inspected_by  text COLLATE "C" NOT NULL,
    held_on       date    NOT NULL,
    -- Not voided: it counts towards its association's minimum.
    counts        boolean NOT NULL,
    state         text    NOT NULL
);
CREATE INDEX inspections_by ON inspections (inspected_by, held_on);
CREATE INDEX inspections_jurisdiction ON inspections (jurisdiction, held_on);

-- "Inspections behind schedule": one alert per association and year
-- (UNIQUE), raised by the daily scan when fewer inspections were held than
-- the pace asks for, resolved when a scan finds it caught up, reopened if
-- it falls behind again. Records of their own, like `alerts`.
CREATE TABLE inspection_alerts
(
    id           text PRIMARY KEY,
    jurisdiction text COLLATE "C" NOT NULL,
    level        text    NOT NULL CHECK (level IN ('city', 'county')),
    year         integer NOT NULL,
    required     integer NOT NULL,
    -- As of the last scan that looked at it.
    expected     integer NOT NULL,
    held         integer NOT NULL,
    checked_on   date    NOT NULL,
    raised_on    date    NOT NULL,
    status       text    NOT NULL CHECK (status IN ('open', 'resolved')),
    resolved_on  date,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (jurisdiction, year)
);
CREATE INDEX inspection_alerts_status ON inspection_alerts (status, id);

-- The outbox carries both kinds of alert to the same webhooks: its
-- `alert_id` names an overdue-visit alert or an inspection alert, as
-- `alert_kind` says.
ALTER TABLE alert_outbox DROP CONSTRAINT alert_outbox_alert_id_fkey;
ALTER TABLE alert_outbox ADD COLUMN alert_kind text NOT NULL DEFAULT 'overdue_visit'
    CHECK (alert_kind IN ('overdue_visit', 'inspections_behind'));
