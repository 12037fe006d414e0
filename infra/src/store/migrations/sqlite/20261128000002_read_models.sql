-- Read models. Every row here can be rebuilt from the event log
-- (`nuanxin projections rebuild`); none of it is the record.

CREATE TABLE case_files
(
    family_id             TEXT PRIMARY KEY,
    version               INTEGER NOT NULL,
    village_code          TEXT    NOT NULL,
    status                TEXT    NOT NULL,
    village_contact_name  TEXT,
    township_contact_name TEXT,
    state                 TEXT    NOT NULL,
    updated_at            TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;
CREATE INDEX case_files_village ON case_files (village_code, family_id);
CREATE INDEX case_files_gaps ON case_files (village_code, family_id)
    WHERE status = 'open' AND (village_contact_name IS NULL OR township_contact_name IS NULL);

CREATE TABLE family_key_periods
(
    family_id  TEXT    NOT NULL,
    valid_from TEXT    NOT NULL,
    valid_to   TEXT    NOT NULL,
    key_person INTEGER NOT NULL,
    PRIMARY KEY (family_id, valid_from)
) STRICT;

CREATE TABLE visit_schedule
(
    family_id     TEXT    NOT NULL,
    role          TEXT    NOT NULL,
    valid_from    TEXT    NOT NULL,
    valid_to      TEXT    NOT NULL,
    village_code  TEXT    NOT NULL,
    contact_id    TEXT    NOT NULL,
    contact_name  TEXT    NOT NULL,
    last_visit_on TEXT,
    last_home_on  TEXT,
    due_on        TEXT    NOT NULL,
    key_person    INTEGER NOT NULL,
    urgent        INTEGER NOT NULL,
    PRIMARY KEY (family_id, role, valid_from)
) STRICT;
CREATE INDEX visit_schedule_village_due ON visit_schedule (village_code, due_on, family_id, role);
CREATE INDEX visit_schedule_contact_due ON visit_schedule (contact_id, due_on, family_id, role);
CREATE INDEX visit_schedule_due ON visit_schedule (due_on, family_id, role);

CREATE TABLE projection_checkpoints
(
    name     TEXT PRIMARY KEY,
    tx_id    INTEGER NOT NULL DEFAULT 0,
    position INTEGER NOT NULL
) STRICT;

CREATE TABLE policy_state
(
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    policy     TEXT NOT NULL,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
) STRICT;

INSERT INTO projection_checkpoints (name, tx_id, position) VALUES ('read_models', 0, 0);
