-- Any change to users (a new token, a disabled user, a new role or scope)
-- tells every server process, which drop their cached token lookups.
CREATE FUNCTION nuanxin_notify_users() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    PERFORM pg_notify('nuanxin_users', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER users_notify
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION nuanxin_notify_users();
