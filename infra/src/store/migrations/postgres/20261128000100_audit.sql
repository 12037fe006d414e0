-- The access log: who read which family's case file or history, when, and
-- from which request. Like the event log, it is append-only in the database.
CREATE TABLE access_log
(
    position   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id         text        NOT NULL UNIQUE,
    user_id    text        NOT NULL,
    family_id  text        NOT NULL,
    endpoint   text        NOT NULL,
    at         timestamptz NOT NULL,
    request_id text        NOT NULL
);
CREATE INDEX access_log_family ON access_log (family_id, position);
CREATE INDEX access_log_user ON access_log (user_id, position);

CREATE FUNCTION nuanxin_access_log_append_only() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    RAISE EXCEPTION 'the access log is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER access_log_no_update_delete
    BEFORE UPDATE OR DELETE ON access_log
    FOR EACH ROW EXECUTE FUNCTION nuanxin_access_log_append_only();

CREATE TRIGGER access_log_no_truncate
    BEFORE TRUNCATE ON access_log
    FOR EACH STATEMENT EXECUTE FUNCTION nuanxin_access_log_append_only();
