-- The access log: who read which family's case file or history, when, and
-- from which request. Like the event log, it is append-only in the database.
CREATE TABLE access_log
(
    position   INTEGER PRIMARY KEY AUTOINCREMENT,
    id         TEXT NOT NULL UNIQUE,
    user_id    TEXT NOT NULL,
    family_id  TEXT NOT NULL,
    endpoint   TEXT NOT NULL,
    at         TEXT NOT NULL,
    request_id TEXT NOT NULL
) STRICT;
CREATE INDEX access_log_family ON access_log (family_id, position);
CREATE INDEX access_log_user ON access_log (user_id, position);

CREATE TRIGGER access_log_no_update
    BEFORE UPDATE ON access_log
BEGIN
    SELECT RAISE(ABORT, 'the access log is append-only: UPDATE is not allowed');
END;

CREATE TRIGGER access_log_no_delete
    BEFORE DELETE ON access_log
BEGIN
    SELECT RAISE(ABORT, 'the access log is append-only: DELETE is not allowed');
END;
